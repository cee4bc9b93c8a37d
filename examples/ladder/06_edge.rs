//! Rung 06 — edge-triggered epoll: drain, or stall.
//!
//! **Teaches.** Level-triggered (水平触发) epoll reports an fd on every call
//! while it is ready: epoll puts it back on its ready list after each
//! report. Edge-triggered (边缘触发, `EPOLLET`) reports it once per *change*
//! (new bytes arrived, room appeared) and never again for what is already
//! there. So an edge-triggered handler must read until `EAGAIN` (drain);
//! one that reads once and returns leaves bytes behind with no event to come
//! back for them: the connection stalls until the client sends something
//! new. In exchange, interest never has to be switched: each connection is
//! registered once for readable and writable. An edge is a wake-up, not one
//! condition: epoll then reports the fd's whole current mask (within the
//! interest), so `WRITABLE` comes with the registration and with every read
//! edge while the send buffer has room, and on its own when a full buffer
//! gets room again. A handler uses what is reported; it does not conclude
//! from `WRITABLE` that something changed on the write side.
//!
//! **Run.** `cargo run --release --example ladder_06_edge -- [ADDR] [--no-drain]`
//! (default `127.0.0.1:9160`).
//!
//! **Try.** `nc 127.0.0.1 9160` and type a line longer than 16 characters.
//! By default it all comes back. With `--no-drain` (which reads 16 bytes per
//! event, once) only the first 16 come back; each new line you type pushes
//! out 16 more of the old ones. The bytes were never lost, only never
//! reported again.
//!
//! **Watch** (`RUST_LOG=trace`; from a shell the first client is fd 6: 3 is
//! the listener, 4 the spare fd kept for `EMFILE`, 5 the epoll instance):
//! `fd 6 WRITABLE (edge)` on registration (room to write, nothing to read)
//! and `fd 6: drained (EAGAIN)`; then, for the line
//! `hello, a line longer than 16` (29 bytes with its newline), `fd 6 READABLE | WRITABLE (edge)`,
//! `fd 6: read 29` (one read takes all that arrived), `fd 6: drained (EAGAIN)`
//! and `fd 6: sent 29, 0 queued`. With `--no-drain`: `fd 6: read 16`, then
//! `fd 6: whatever is left unread, no event will come for it`, and the other
//! 13 bytes come out only at the client's next edge (more data, or its
//! close: `READABLE | WRITABLE | READ_CLOSED`).

// Without epoll (not Linux, or `--cfg muxloop_portable`) only a stub `run`
// that says so is compiled.
#![cfg_attr(not(muxloop_has_epoll), allow(dead_code, unused_imports))]
mod common;

use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

#[cfg(muxloop_has_epoll)]
use muxloop::EpollDispatcher;
use muxloop::{Buffer, Dispatcher, Events, Interest, Mode, sys};

const USAGE: &str = "ladder_06_edge [ADDR] [--no-drain]   (default 127.0.0.1:9160)
An echo server on edge-triggered epoll.
--no-drain  the bug on purpose: one 16-byte read per event (connections stall)";

/// Chunk size of the `--no-drain` reads, small so the stall is easy to see.
const CHUNK: usize = 16;

fn main() {
    common::main(6, USAGE, &["--no-drain"], run);
}

#[cfg(not(muxloop_has_epoll))]
fn run(_: common::Args) -> common::Result {
    Err("this rung needs epoll: Linux, built without --cfg muxloop_portable".into())
}

#[cfg(muxloop_has_epoll)]
fn run(args: common::Args) -> common::Result {
    let drain = !args.has("--no-drain");
    let listener = sys::tcp_listener(&args.addr, false, 4096)?;
    let lfd = listener.as_raw_fd();
    let mut spare = sys::open_dev_null().ok();
    let mut epoll = EpollDispatcher::new()?;
    // The listener stays level-triggered: with a burst of connections and
    // an accept that fails (EMFILE), an edge would never be reported again.
    epoll.register(lfd, Interest::READABLE, Mode::Level)?;
    let mut table: Vec<Option<(OwnedFd, Buffer)>> = Vec::new();
    let mut events = Events::with_capacity(256);
    common::announce(sys::local_addr(listener.as_fd())?.to_inet()?, "epoll, edge-triggered");
    loop {
        epoll.dispatch(&mut events, None)?;
        for event in &events {
            let fd = event.fd();
            if fd == lfd {
                while let Some((socket, peer)) = common::accept(listener.as_fd(), &mut spare)? {
                    let fd = socket.as_raw_fd();
                    epoll.register(fd, Interest::BOTH, Mode::Edge)?; // once, for good
                    log::debug!("{peer} connected as fd {fd}");
                    if table.len() <= fd as usize {
                        table.resize_with(fd as usize + 1, || None);
                    }
                    table[fd as usize] = Some((socket, Buffer::new()));
                }
                continue;
            }
            log::trace!("fd {fd} {:?} (edge)", event.ready());
            let Some(Some((socket, out))) = table.get_mut(fd as usize) else { continue };
            if !serve(socket.as_fd(), out, drain) {
                epoll.deregister(fd)?;
                table[fd as usize].take(); // closes the socket, after deregistering
                log::debug!("fd {fd} closed");
            }
        }
    }
}

/// Reads (all of it, unless told not to) and writes back what it can.
/// False: close the connection.
fn serve(socket: BorrowedFd<'_>, out: &mut Buffer, drain: bool) -> bool {
    let fd = socket.as_raw_fd();
    let mut eof = false;
    loop {
        let mut full = false;
        loop {
            if out.len() >= common::MAX_QUEUED {
                full = true; // stop reading until the output drains
                break;
            }
            let result = if drain {
                out.recv_fd(socket)
            } else {
                let mut chunk = [0u8; CHUNK];
                sys::recv(socket, &mut chunk).inspect(|&n| out.append(&chunk[..n]))
            };
            let more = matches!(&result, Ok(n) if *n > 0);
            match result {
                Ok(0) => eof = true,
                Ok(n) => log::trace!("fd {fd}: read {n}"),
                Err(e) if e.kind() == ErrorKind::WouldBlock => log::trace!("fd {fd}: drained (EAGAIN)"),
                Err(_) => return false,
            }
            if !more {
                break;
            }
            if !drain {
                log::trace!("fd {fd}: whatever is left unread, no event will come for it");
                break;
            }
        }
        // Write until done or EAGAIN; after EAGAIN the writable edge resumes us.
        let mut blocked = false;
        while !out.is_empty() && !blocked {
            match out.send_fd(socket) {
                Ok(n) => log::trace!("fd {fd}: sent {n}, {} queued", out.len()),
                Err(e) if e.kind() == ErrorKind::WouldBlock => blocked = true,
                Err(_) => return false,
            }
        }
        // Go round again only if reading stopped for room and the room is
        // back: no edge will say so.
        if !full || blocked {
            return !(eof && out.is_empty());
        }
    }
}
