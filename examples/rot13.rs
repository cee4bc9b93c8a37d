//! rot13 server (the lecture notes' first non-blocking server): every line a
//! client sends comes back rot13-encoded. Lines end with `\n`; a partial line
//! waits in the input buffer until the rest arrives.
//!
//! ```text
//! cargo run --example rot13 -- [ADDR] [--threads N] [--dispatcher NAME]     # default 127.0.0.1:9001
//! printf 'Hello\n' | nc -q1 127.0.0.1 9001                                    # Uryyb
//! ```

mod common;

use common::{Args, Result};
use log::warn;
use muxloop::{Callbacks, Dispatcher, EventLoop, TcpServer};

/// A client that sends more than this without a newline is disconnected.
const MAX_LINE: usize = 16 * 1024;

fn rot13(byte: u8) -> u8 {
    match byte {
        b'a'..=b'z' => (byte - b'a' + 13) % 26 + b'a',
        b'A'..=b'Z' => (byte - b'A' + 13) % 26 + b'A',
        other => other,
    }
}

fn run<D: Dispatcher + 'static>(args: Args) -> Result {
    let mut ev = EventLoop::<D>::new()?;
    let callbacks =
        Callbacks::<D>::new().on_connection(common::log_connection).on_message(|ev, conn, input| {
            while let Some(eol) = input.find_eol() {
                let line: Vec<u8> = input.peek()[..=eol].iter().copied().map(rot13).collect();
                input.consume(eol + 1);
                let _ = conn.send(ev, &line);
            }
            if input.len() > MAX_LINE {
                warn!("{}: line longer than {MAX_LINE} bytes, closing", conn.peer_addr());
                conn.force_close(ev);
            }
        });
    let server =
        TcpServer::builder(args.addr, callbacks).threads(args.threads).name("rot13").start(&mut ev)?;
    common::serve(&mut ev, server.local_addr())
}

example_main!(9001, run);
