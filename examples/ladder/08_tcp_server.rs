//! Rung 08 — the framework: `TcpServer` and callbacks.
//!
//! **Teaches.** Everything rungs 04-07 wrote by hand, done once in the
//! library: the acceptor (non-blocking accept, the spare fd for `EMFILE`),
//! the connection (input and output buffers, write interest on only while
//! output is queued, deregister before close), and you write only what is
//! yours: what to do with a message. The high-water mark gives
//! backpressure: a client that sends but does not read stops being read
//! once its queued output passes the mark, until it drains.
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

use muxloop::{Callbacks, EventLoop, TcpServer};

const USAGE: &str = "ladder_08_tcp_server [ADDR]   (default 127.0.0.1:9180)
An echo server on muxloop's TcpServer, single-threaded.";

fn main() {
    common::main(8, USAGE, &[], run);
}

fn run(args: common::Args) -> common::Result {
    let mut ev: EventLoop = EventLoop::new()?;
    let callbacks: Callbacks = Callbacks::new()
        .on_connection(|_, conn| {
            let state = if conn.is_connected() { "up" } else { "down" };
            log::debug!("{} {state} (fd {})", conn.peer_addr(), conn.fd());
        })
        .on_message(|ev, conn, input| {
            let _ = conn.send(ev, input.peek()); // an error means it is closing
            input.consume_all();
        })
        .on_high_water_mark(common::MAX_QUEUED, |ev, conn, _| conn.stop_reading(ev))
        .on_write_complete(|ev, conn| conn.start_reading(ev));
    let server = TcpServer::builder(args.addr, callbacks).name("ladder-08").start(&mut ev)?;
    common::announce(server.local_addr(), ev.dispatcher_name());
    ev.run()?;
    Ok(())
}
