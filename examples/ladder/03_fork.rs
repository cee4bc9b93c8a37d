//! Rung 03 — one process per connection, and its zombies.
//!
//! **Teaches.** `fork` copies the server; the child serves one client with
//! rung 01's blocking loop and exits. Both processes now hold the connected
//! socket (its reference count is 2), so the parent closes its copy at once:
//! the connection ends only when the *last* holder closes it. An exited child
//! stays a zombie (`Z` in `ps`) until its parent collects its exit status
//! with `waitpid`; the kernel tells the parent with `SIGCHLD`. Our handler
//! only sets a flag and, installed without `SA_RESTART`, makes the blocked
//! `accept` return `EINTR`, so the main loop reaps every exited child
//! (signals merge: one `SIGCHLD` may stand for several children).
//!
//! **Run.** `cargo run --release --example ladder_03_fork -- [ADDR] [--no-reap]`
//! (default `127.0.0.1:9130`).
//!
//! **Try.** Connect and quit a few `nc 127.0.0.1 9130` clients, then run
//! `ps -o pid,stat,cmd --ppid $(pgrep -f ladder_03_fork)`: with `--no-reap`
//! every finished client left a `Z` (defunct) entry; by default there are
//! none. Each live client is a process: `pstree -p`.
//!
//! **Watch** (`RUST_LOG=debug`): `forked pid N for PEER`, then `SIGCHLD` and
//! `reaped pid N (exit status: 0)` when that client leaves.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use muxloop::sys::{self, Forked};

const USAGE: &str = "ladder_03_fork [ADDR] [--no-reap]   (default 127.0.0.1:9130)
A blocking echo server that forks a process per connection.
--no-reap  never call waitpid: finished children stay zombies (see them with ps)";

fn main() {
    common::main(3, USAGE, &["--no-reap"], run);
}

fn run(args: common::Args) -> common::Result {
    let reap = !args.has("--no-reap");
    if reap {
        sys::teaching::catch_sigchld()?;
    }
    // Not std's TcpListener: its accept retries on EINTR, and we want to see it.
    let listener = sys::tcp_listener(&args.addr, false, 1024)?;
    sys::set_nonblocking(listener.as_fd(), false)?; // a blocking accept, as in rung 01
    common::announce(sys::local_addr(listener.as_fd())?.to_inet()?, "a process per connection");
    loop {
        if reap && sys::teaching::take_sigchld() {
            log::debug!("SIGCHLD: reaping");
            reap_children();
        }
        let (socket, peer) = match sys::accept(listener.as_fd()) {
            Ok(pair) => pair,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue, // SIGCHLD: reap first
            Err(e) => {
                log::warn!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        sys::set_nonblocking(socket.as_fd(), false)?;
        let stream = TcpStream::from(socket);
        match sys::fork() {
            Ok(Forked::Child) => {
                // The child never accepts: close its copy of the listener.
                drop(listener);
                let code = match echo(stream) {
                    Ok(_) => 0,
                    Err(_) => 1,
                };
                std::process::exit(code);
            }
            Ok(Forked::Parent(pid)) => {
                log::debug!("forked pid {pid} for {peer} (fd {})", stream.as_raw_fd());
                // Our copy goes; the child's copy keeps the connection open.
                drop(stream);
            }
            Err(e) => log::warn!("cannot fork for {peer}: {e}"), // dropping `stream` refuses it
        }
    }
}

/// Collects every exited child; `waitpid` with `WNOHANG` never blocks.
fn reap_children() {
    loop {
        match sys::teaching::waitpid_nohang() {
            Ok(Some((pid, status))) => log::debug!("reaped pid {pid} ({status})"),
            Ok(None) => return, // children left, none exited
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => return, // no children at all
            Err(e) => return log::warn!("waitpid: {e}"),
        }
    }
}

/// Rung 01's loop, in the child.
fn echo(mut stream: TcpStream) -> std::io::Result<u64> {
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        stream.write_all(&buf[..n])?;
        total += n as u64;
    }
}
