//! Rung 01 — the blocking server: one client at a time.
//!
//! **Teaches.** `accept`, `read` and `write` all block. While the server sits
//! in `read` waiting for client 1, client 2 has already connected (the kernel
//! finished its handshake and parked it in the accept queue, the backlog),
//! but nobody will `accept` it until client 1 leaves.
//!
//! **Run.** `cargo run --release --example ladder_01_blocking -- [ADDR]`
//! (default `127.0.0.1:9110`).
//!
//! **Try.** Open two terminals with `nc -N 127.0.0.1 9110` (`-N`: close the
//! connection at the end of input; without it Debian's netcat keeps the
//! connection open after Ctrl-D). Type in the first: it echoes. Type in the
//! second: nothing comes back. Quit the first (Ctrl-D) and the second's
//! lines arrive at once. `ss -ltn 'sport = :9110'` shows
//! the waiting client in the listener's `Recv-Q` (the accept queue).
//!
//! **Watch** (`RUST_LOG=trace`): `blocked in accept`, then `blocked in read
//! on fd 4` for as long as client 1 stays; client 2 appears in the log only
//! when client 1 is gone. The `ladder` runner shows the same in numbers:
//! with more than one client, all but one time out.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

const USAGE: &str = "ladder_01_blocking [ADDR]   (default 127.0.0.1:9110)
A blocking echo server that serves one client at a time.";

fn main() {
    common::main(1, USAGE, &[], run);
}

fn run(args: common::Args) -> common::Result {
    let listener = TcpListener::bind(args.addr)?;
    common::announce(listener.local_addr()?, "blocking, one client at a time");
    loop {
        log::trace!("blocked in accept on fd {}", listener.as_raw_fd());
        let (stream, peer) = match listener.accept() {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and friends: do not spin, try again shortly.
                log::warn!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        log::info!("{peer} connected (fd {}); every other client waits now", stream.as_raw_fd());
        match echo(stream) {
            Ok(total) => log::info!("{peer} left after {total} bytes; accepting the next client"),
            Err(e) => log::info!("{peer} dropped: {e}"),
        }
    }
}

/// Echoes until the client closes. A fixed 4 KiB buffer: memory per
/// connection is bounded however fast the client sends.
fn echo(mut stream: TcpStream) -> std::io::Result<u64> {
    // A client that never reads would block our write forever: bound it.
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let fd = stream.as_raw_fd();
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        log::trace!("blocked in read on fd {fd}");
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(total); // EOF: read returned 0, the client closed (or half-closed)
        }
        log::trace!("fd {fd}: read {n} bytes, writing them back (blocks if the client does not read)");
        stream.write_all(&buf[..n])?;
        total += n as u64;
    }
}
