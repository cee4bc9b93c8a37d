//! Echo server: every byte comes back, in order.
//!
//! ```text
//! cargo run --release --example echo -- [ADDR] [--threads N] [--dispatcher select|poll|epoll|uring] [--reuse-port] [--nofile N]
//! ```
//! Default address 127.0.0.1:9000. Backpressure: when a client sends faster
//! than it reads, its queued output crosses the high-water mark and the server
//! stops reading from it until the queue drains. `--nofile N` lowers the fd
//! limit, to watch the acceptor survive `EMFILE`.

mod common;

use common::{Args, Result};
use muxloop::{Callbacks, Dispatcher, EventLoop, TcpServer};

/// Queued output per connection above which we stop reading from it.
const HIGH_WATER_MARK: usize = 4 * 1024 * 1024;

fn run<D: Dispatcher + 'static>(args: Args) -> Result {
    if let Some(limit) = args.flag("--nofile") {
        muxloop::sys::set_nofile_limit(limit.parse()?)?;
    }
    let mut ev = EventLoop::<D>::new()?;
    let callbacks = Callbacks::<D>::new()
        .on_connection(common::log_connection)
        .on_message(|ev, conn, input| {
            let _ = conn.send(ev, input.peek());
            input.consume_all();
        })
        .on_high_water_mark(HIGH_WATER_MARK, |ev, conn, _| conn.stop_reading(ev))
        .on_write_complete(|ev, conn| conn.start_reading(ev));
    let server = TcpServer::builder(args.addr, callbacks)
        .threads(args.threads)
        .reuse_port(args.reuse_port)
        .name("echo")
        .start(&mut ev)?;
    common::serve(&mut ev, server.local_addr())
}

example_main!(9000, run);
