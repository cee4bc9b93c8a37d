//! Rung 09 — the multi-reactor: one loop per thread.
//!
//! **Teaches.** One loop uses one core. The main reactor only accepts; each
//! new connection is handed to a sub-reactor (a loop on its own thread)
//! round-robin, through that loop's task queue and a wake-up of its eventfd.
//! From then on the connection lives on that thread alone: no locks on the
//! hot path. This is muduo's and yolanda's design; with `SO_REUSEPORT`
//! instead, each thread has its own listener and the kernel spreads the
//! connections (no hand-off, no thundering herd on one accept queue).
//!
//! **Run.** `cargo run --release --example ladder_09_multi_reactor -- [ADDR] [--threads N] [--reuse-port]`
//! (default `127.0.0.1:9190`, 2 sub-reactors).
//!
//! **Try.** Connect several `nc 127.0.0.1 9190` and see which thread took
//! each (`RUST_LOG=debug`); `ps -T -p $(pgrep -f ladder_09)` lists the loops.
//!
//! **Watch** (`RUST_LOG=debug`): `127.0.0.1:PORT up on ladder-09-0`, the
//! next client `up on ladder-09-1`: the hand-off, round-robin.
//! The main loop's `accepted ... as fd N` line is a library `trace` line:
//! `RUST_LOG=trace` adds `[main] accepted 127.0.0.1:PORT as fd 11` before
//! the first (from a shell: three loops with an epoll fd and a waker each
//! are 3-8, the listener 9, the spare fd kept for `EMFILE` 10) and every
//! dispatch of every loop.

mod common;

use muxloop::{Callbacks, EventLoop, Server};

const USAGE: &str =
    "ladder_09_multi_reactor [ADDR] [--threads N] [--reuse-port]   (default 127.0.0.1:9190, N = 2)
An echo server: a main reactor that accepts and N sub-reactors that serve.";

fn main() {
    common::main(9, USAGE, &["--threads=", "--reuse-port"], run);
}

fn run(args: common::Args) -> common::Result {
    let threads: usize = args.value("--threads", 2)?;
    let mut ev: EventLoop = EventLoop::new()?;
    let callbacks: Callbacks = Callbacks::new()
        .on_connection(|_, conn| {
            let thread = std::thread::current();
            let state = if conn.is_connected() { "up" } else { "down" };
            log::debug!("{} {state} on {}", conn.peer_addr(), thread.name().unwrap_or("?"));
        })
        .on_message(|ev, conn, input| {
            let _ = conn.send(ev, input.peek());
            input.consume_all();
        });
    let server = Server::builder(args.addr, callbacks)
        .output_limit(common::MAX_QUEUED)
        .threads(threads)
        .reuse_port(args.has("--reuse-port"))
        .name("ladder-09")
        .start(&mut ev)?;
    common::announce(server.local_addr(), &format!("{}, {threads} sub-reactors", ev.dispatcher_name()));
    ev.run()?;
    Ok(())
}
