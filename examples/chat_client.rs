//! Chat client: lines typed on stdin go to the chat server; lines from the
//! other clients are printed as they arrive.
//!
//! ```text
//! cargo run --example chat_client -- [ADDR] [--dispatcher NAME]     # default 127.0.0.1:9002
//! ```
//! The network runs on an event-loop thread; the main thread blocks reading
//! stdin and hands each line to the connection through its `Send` handle, the
//! same way muduo's chat client does. End of stdin half-closes the connection.

mod common;

use std::io::{BufRead, Write};
use std::sync::mpsc;

use common::{Args, Result};
use muxloop::{Callbacks, ConnectOptions, Dispatcher, EventLoop, TcpClient};

fn run<D: Dispatcher + 'static>(args: Args) -> Result {
    let (connected_tx, connected_rx) = mpsc::channel();
    let failed_tx = connected_tx.clone();
    let addr = args.addr;
    let network = std::thread::spawn(move || -> Result {
        let mut ev = EventLoop::<D>::new()?;
        let callbacks = Callbacks::<D>::new()
            .on_connection(move |ev, conn| {
                if conn.is_connected() {
                    let _ = connected_tx.send(Ok(conn.handle()));
                } else {
                    eprintln!("*** disconnected from {}", conn.peer_addr());
                    ev.quit();
                }
            })
            .on_message(|_, _, input| {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(input.peek());
                let _ = out.flush();
                input.consume_all();
            });
        let options = ConnectOptions { retries: 3, ..ConnectOptions::default() };
        TcpClient::new(addr, callbacks)
            .options(options)
            .on_connect_error(move |ev, e| {
                let _ = failed_tx.send(Err(e.to_string()));
                ev.quit();
            })
            .connect(&mut ev);
        ev.run()?;
        Ok(())
    });

    let conn = match connected_rx.recv() {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return Err(format!("cannot connect to {addr}: {e}").into()),
        Err(_) => return network.join().map_err(|_| "network thread panicked")?,
    };
    eprintln!("*** connected to {addr} ({}); type lines, Ctrl-D to leave", D::NAME);
    for line in std::io::stdin().lock().lines() {
        let mut line = line?;
        line.push('\n');
        if conn.send(line).is_err() {
            break; // the loop is gone: the server closed the connection
        }
    }
    let _ = conn.shutdown();
    network.join().map_err(|_| "network thread panicked")?
}

example_main!(9002, run);
