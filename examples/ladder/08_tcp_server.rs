//! Rung 08 — the framework: `Server` and callbacks.
//!
//! **Teaches.** Everything rungs 04-07 wrote by hand, done once in the
//! library: the acceptor (non-blocking accept, the spare fd for `EMFILE`),
//! the connection (input and output buffers, write interest on only while
//! output is queued, deregister before close), and you write only what is
//! yours: a [`Handler`](muxloop::Handler), one per connection, whose
//! fields are that connection's state. Backpressure is built in: a client
//! that sends but does not read stops being read once its queued output
//! passes the output limit, until it drains.
//!
//! **Run.** `cargo run --release --example ladder_08_tcp_server -- [ADDR]`
//! (default `127.0.0.1:9180`).
//!
//! **Try.** `nc 127.0.0.1 9180`; compare this file's length with rung 05's.
//! `cargo run --release --example ladder -- --rungs 5,8` runs both.
//!
//! **Watch** (`RUST_LOG=trace`): `accepted 127.0.0.1:43222 as fd 7`,
//! `registered fd 7 for READABLE (Level)`, `connection 2 up: ...`,
//! `connection 2: read 6 bytes`, each dispatch, then `peer closed its side`
//! and `deregistered fd 7` before `fd 7 closed`.

mod common;

use muxloop::{Buffer, Connection, EventLoop, Handler, Server};

const USAGE: &str = "ladder_08_tcp_server [ADDR]   (default 127.0.0.1:9180)
An echo server on muxloop's Server, single-threaded.";

fn main() {
    common::main(8, USAGE, &[], run);
}

/// One per connection: counts what it echoed.
struct Echo {
    echoed: usize,
}

impl Handler for Echo {
    fn on_message(&mut self, ev: &mut EventLoop, conn: &Connection, input: &mut Buffer) {
        self.echoed += input.len();
        let _ = conn.send(ev, input.peek()); // an error means it is closing
        input.consume_all();
    }

    fn on_close(&mut self, _: &mut EventLoop, conn: &Connection) {
        log::debug!("{} down after {} bytes (fd {})", conn.peer_addr(), self.echoed, conn.fd());
    }
}

fn run(args: common::Args) -> common::Result {
    let mut ev: EventLoop = EventLoop::new()?;
    let server = Server::builder(args.addr, |_: &Connection| Echo { echoed: 0 })
        .output_limit(common::MAX_QUEUED)
        .name("ladder-08")
        .start(&mut ev)?;
    common::announce(server.local_addr(), ev.dispatcher_name());
    ev.run()?;
    Ok(())
}
