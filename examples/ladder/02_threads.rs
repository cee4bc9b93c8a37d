//! Rung 02 — one thread per connection.
//!
//! **Teaches.** The blocking code of rung 01, unchanged, on a thread per
//! client: now a slow client blocks only its own thread. The price is one
//! kernel thread (a stack, a scheduler entry, context switches) for every
//! connection, busy or idle, and the server cannot say no to the 10 000th.
//!
//! **Run.** `cargo run --release --example ladder_02_threads -- [ADDR] [--stack KIB]`
//! (default `127.0.0.1:9120`, stack 64 KiB).
//!
//! **Try.** Two `nc 127.0.0.1 9120` at once: both echo. Then open 1000
//! clients (`cargo run --release --example ladder -- --rungs 2 --clients 1000`)
//! and look at `ps -o nlwp,rss -p $(pgrep -f ladder_02)`: one thread each.
//!
//! **Watch** (`RUST_LOG=trace`): every line carries its thread name
//! (`conn-7`), and `N threads alive` on each connect and close.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

const USAGE: &str = "ladder_02_threads [ADDR] [--stack KIB]   (default 127.0.0.1:9120, 64 KiB stacks)
A blocking echo server with one thread per connection.";

static ALIVE: AtomicUsize = AtomicUsize::new(0);

fn main() {
    common::main(2, USAGE, &["--stack="], run);
}

fn run(args: common::Args) -> common::Result {
    let stack_kib: usize = args.value("--stack", 64)?;
    let listener = TcpListener::bind(args.addr)?;
    common::announce(listener.local_addr()?, "a thread per connection");
    for id in 1.. {
        let (stream, peer) = match listener.accept() {
            Ok(pair) => pair,
            Err(e) => {
                log::warn!("accept failed: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        // A small stack: the default 2 MiB is mostly untouched virtual memory,
        // but the address space and the kernel bookkeeping still add up.
        let spawned =
            thread::Builder::new().name(format!("conn-{id}")).stack_size(stack_kib * 1024).spawn(move || {
                let alive = ALIVE.fetch_add(1, Ordering::Relaxed) + 1;
                log::debug!("{peer} connected; {alive} threads alive");
                let result = echo(stream);
                let alive = ALIVE.fetch_sub(1, Ordering::Relaxed) - 1;
                log::debug!("{peer} left ({result:?}); {alive} threads alive");
            });
        // Out of threads (EAGAIN): the stream was dropped with the closure, so
        // this client is refused, and the server lives on.
        if let Err(e) = spawned {
            log::warn!("no thread for {peer}: {e}");
        }
    }
    Ok(())
}

/// Rung 01's loop, as it is: blocking is fine when nobody else waits on us.
fn echo(mut stream: TcpStream) -> std::io::Result<u64> {
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let fd = stream.as_raw_fd();
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        log::trace!("blocked in read on fd {fd}");
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        stream.write_all(&buf[..n])?;
        total += n as u64;
    }
}
