//! The server half of muduo's pingpong throughput test: echo everything, as
//! fast as possible.
//!
//! ```text
//! cargo run --release --example pingpong_server -- [ADDR] [--threads N] [--dispatcher NAME] [--reuse-port]   # default 127.0.0.1:9003
//! cargo run --release --example pingpong_client -- 127.0.0.1:9003 --sessions 100 --block 16384 --seconds 10
//! ```
//! Unlike `echo` there is no backpressure: pingpong clients keep exactly one
//! block in flight, so output can never pile up.

mod common;

use common::{Args, Result};
use muxloop::{Callbacks, Dispatcher, EventLoop, TcpServer};

fn run<D: Dispatcher + 'static>(args: Args) -> Result {
    let mut ev = EventLoop::<D>::new()?;
    let callbacks = Callbacks::<D>::new().on_message(|ev, conn, input| {
        let _ = conn.send(ev, input.peek());
        input.consume_all();
    });
    let server = TcpServer::builder(args.addr, callbacks)
        .threads(args.threads)
        .reuse_port(args.reuse_port)
        .name("pingpong")
        .start(&mut ev)?;
    common::serve(&mut ev, server.local_addr())
}

example_main!(9003, run);
