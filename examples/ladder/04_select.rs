//! Rung 04 — one thread, many clients: a `select` loop by hand.
//!
//! **Teaches.** The reactor's skeleton without the framework: every socket
//! is non-blocking, one call ([`SelectDispatcher::dispatch`], i.e.
//! `select(2)`) says which fds are ready, and a table indexed by fd holds
//! each connection's state: its socket and its output [`Buffer`]. That table
//! is the course's *channel layer* (通道层): fd -> what we know about it.
//! `select` rebuilds its fd sets and scans every fd up to the highest on each
//! call: the cost grows with the highest fd, not with the ready ones.
//!
//! **Run.** `cargo run --release --example ladder_04_select -- [ADDR]`
//! (default `127.0.0.1:9140`).
//!
//! **Try.** Many `nc 127.0.0.1 9140` at once: all echo, one thread
//! (`ps -o nlwp -p $(pgrep -f ladder_04)` says 1). Then the runner:
//! `cargo run --release --example ladder -- --rungs 2,4 --clients 1000`.
//!
//! **Watch** (`RUST_LOG=trace`, one client typing `hello`): from a shell the
//! client is fd 5 (0-2 are stdio, 3 the listener, 4 the spare fd kept for
//! `EMFILE`), so each call logs `select: 1 ready of 2 registered, scanned 6 fd slots`
//! (slots 0 to 5: the highest fd plus one, whatever is registered), then
//! `fd 5 READABLE`, `fd 5: read 6` and `fd 5: sent 6/6`. Interest switches
//! silently here; rung 05 logs them.

mod common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use muxloop::{Buffer, Dispatcher, Event, Events, Interest, Mode, SelectDispatcher, sys};

const USAGE: &str = "ladder_04_select [ADDR]   (default 127.0.0.1:9140)
A single-threaded echo server: a select(2) loop driven by hand.";

/// One connection: the channel layer's row.
struct Channel {
    socket: OwnedFd,
    peer: SocketAddr,
    out: Buffer,
    interest: Interest,
    eof: bool,
}

fn main() {
    common::main(4, USAGE, &[], run);
}

fn run(args: common::Args) -> common::Result {
    let listener = sys::tcp_listener(&args.addr, false, 4096)?;
    let lfd = listener.as_raw_fd();
    let mut spare = sys::open_dev_null().ok();
    let mut select = SelectDispatcher::new()?;
    select.register(lfd, Interest::READABLE, Mode::Level)?;
    let mut table: Vec<Option<Channel>> = Vec::new(); // indexed by fd
    let mut events = Events::with_capacity(256);
    common::announce(sys::local_addr(listener.as_fd())?.to_inet()?, "select, one thread");
    loop {
        select.dispatch(&mut events, None)?;
        log::trace!(
            "select: {} ready of {} registered, scanned {} fd slots",
            events.len(),
            select.len(),
            events.scanned()
        );
        for event in &events {
            log::trace!("fd {} {:?}", event.fd(), event.ready());
            if event.fd() == lfd {
                while let Some((socket, peer)) = common::accept(listener.as_fd(), &mut spare)? {
                    let fd = socket.as_raw_fd();
                    select.register(fd, Interest::READABLE, Mode::Level)?;
                    log::debug!("{peer} connected as fd {fd}");
                    let channel = Channel {
                        socket,
                        peer,
                        out: Buffer::new(),
                        interest: Interest::READABLE,
                        eof: false,
                    };
                    if table.len() <= fd as usize {
                        table.resize_with(fd as usize + 1, || None);
                    }
                    table[fd as usize] = Some(channel);
                }
            } else if !serve(&mut table, event) {
                // Deregister before close: the fd number may be reused at once.
                let channel = table[event.fd() as usize].take().expect("in the table");
                select.deregister(event.fd())?;
                log::debug!("{} closed (fd {})", channel.peer, channel.socket.as_raw_fd());
            } else {
                let channel = table[event.fd() as usize].as_mut().expect("in the table");
                update_interest(&mut select, channel)?;
            }
        }
    }
}

/// Reads what arrived, writes back what it can. False: close the connection.
fn serve(table: &mut [Option<Channel>], event: &Event) -> bool {
    let Some(Some(ch)) = table.get_mut(event.fd() as usize) else { return true };
    let fd = event.fd();
    if event.is_readable() && !ch.eof && ch.out.len() < common::MAX_QUEUED {
        match ch.out.recv_fd(ch.socket.as_fd()) {
            Ok(0) => ch.eof = true, // the client is done sending: flush, then close
            Ok(n) => log::trace!("fd {fd}: read {n}"),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {} // a spurious wake-up
            Err(_) => return false,
        }
    }
    let queued = ch.out.len();
    match ch.out.send_fd(ch.socket.as_fd()) {
        Ok(n) if queued > 0 => log::trace!("fd {fd}: sent {n}/{queued}"),
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Err(_) => return false,
    }
    !(ch.eof && ch.out.is_empty())
}

/// Readable while there is room to queue, writable while output is queued.
fn update_interest(select: &mut SelectDispatcher, ch: &mut Channel) -> std::io::Result<()> {
    let mut want = Interest::NONE;
    if !ch.eof && ch.out.len() < common::MAX_QUEUED {
        want = want | Interest::READABLE;
    }
    if !ch.out.is_empty() {
        want = want | Interest::WRITABLE;
    }
    if want != ch.interest && !want.is_empty() {
        let fd = ch.socket.as_raw_fd();
        log::trace!("fd {fd} {:?} -> {want:?} ({} bytes queued)", ch.interest, ch.out.len());
        select.modify(fd, want, Mode::Level)?;
        ch.interest = want;
    }
    Ok(())
}
