//! Chat client: lines typed on stdin go to the chat server; lines from the
//! other clients are printed as they arrive.
//!
//! ```text
//! cargo run --example chat_client -- [ADDR] [--dispatcher NAME]     # default 127.0.0.1:9002
//! ```
//! The network runs on an event-loop thread; the main thread blocks reading
//! stdin and hands each line to the connection through its `Send` handle, the
//! same way muduo's chat client does. End of stdin half-closes the connection.

use std::error::Error;
use std::io::{BufRead, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::mpsc;

use clap::Parser;
use muxloop::{AnyDispatcher, Callbacks, ConnectOptions, EventLoop, TcpClient};

/// Chat client: stdin lines go to the server, other clients' lines are printed.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Server address: HOST:PORT, :PORT or PORT
    #[arg(value_name = "ADDR", default_value = "127.0.0.1:9002", value_parser = parse_addr)]
    addr: SocketAddr,
    /// The I/O multiplexer
    #[arg(long, value_name = "NAME", default_value = muxloop::default_dispatcher_name(),
          value_parser = clap::builder::PossibleValuesParser::new(AnyDispatcher::names()), ignore_case = true)]
    dispatcher: String,
}

/// `HOST:PORT`, `:PORT` or `PORT` (host 127.0.0.1).
fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.strip_prefix(':').unwrap_or(s).parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let mut addrs = s.to_socket_addrs().map_err(|e| format!("expected HOST:PORT, :PORT or PORT ({e})"))?;
    addrs.next().ok_or_else(|| format!("{s} resolves to no address"))
}

/// The network thread's errors cross to the main thread, hence `Send`.
type Fallible<T = ()> = Result<T, Box<dyn Error + Send + Sync>>;

fn run(cli: Cli) -> Fallible {
    let (connected_tx, connected_rx) = mpsc::channel();
    let failed_tx = connected_tx.clone();
    let Cli { addr, dispatcher } = cli;
    let network = std::thread::spawn(move || -> Fallible {
        let mut ev = EventLoop::<AnyDispatcher>::with_backend(&dispatcher)?;
        let callbacks = Callbacks::new()
            .on_connection(move |ev, conn| {
                if conn.is_connected() {
                    let _ = connected_tx.send(Ok((conn.handle(), ev.dispatcher_name())));
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

    let (conn, backend) = match connected_rx.recv() {
        Ok(Ok(up)) => up,
        Ok(Err(e)) => return Err(format!("cannot connect to {addr}: {e}").into()),
        Err(_) => return network.join().map_err(|_| "network thread panicked")?,
    };
    eprintln!("*** connected to {addr} ({backend}); type lines, Ctrl-D to leave");
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
