//! Rung 07 — the event loop: handlers per fd, timers, and the idle kick.
//!
//! **Teaches.** Rungs 04-06 wrote the same loop each time: wait, look up the
//! fd, call its code. [`EventLoop`] is that loop, once: [`register`] stores a
//! handler per fd (the channel: fd -> handler), and timers live in it too:
//! the nearest deadline becomes the dispatch timeout, so one thread both
//! waits for I/O and keeps time. Here every client has an idle timer;
//! activity re-arms it (cancel + `run_after`), and a client silent for
//! `--idle` seconds is kicked. Per-connection state lives in the loop's
//! [`context`], not in a global map.
//!
//! [`register`]: EventLoop::register
//! [`context`]: EventLoop::context
//!
//! **Run.** `cargo run --release --example ladder_07_event_loop -- [ADDR] [--idle SECS]`
//! (default `127.0.0.1:9170`, 10 s).
//!
//! **Try.** `nc 127.0.0.1 9170`, type once, then wait: after 10 s the server
//! closes the connection (`ss -tn 'dport = :9170'` shows it leave
//! ESTABLISHED; Debian's netcat, netcat-openbsd, does not exit on the
//! server's close by itself). Keep typing and it never does.
//!
//! **Watch** (`RUST_LOG=trace`): the library's own lines between ours:
//! `[main] registered fd 7 for READABLE (Level)` (from a shell: 3 is the
//! epoll instance, 4 the loop's waker, 5 the listener, 6 the spare fd), each
//! dispatch (`[main] epoll (timeout 998.1 ms, 3 fds in the backend, waker included)
//! returned 1 events after 144.390 ms (1 fds scanned): fd 7 READABLE`). With
//! no client a wait lasts exactly until the next timer (`returned 0 events
//! after 1001.054 ms`): the timer is the timeout. `RUST_LOG=debug` adds a
//! once-a-second line with the loop's `Stats` (`timers_fired`, ...) and one
//! that ends `2 fds registered`: the listener and the client, the fds with
//! handlers; the dispatch line's 3 counts the waker too.

mod common;

use std::collections::HashMap;
use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use muxloop::{Buffer, Event, EventLoop, Interest, Mode, TimerId, sys};

const USAGE: &str = "ladder_07_event_loop [ADDR] [--idle SECS]   (default 127.0.0.1:9170, 10 s)
An echo server on muxloop's EventLoop that closes clients idle for SECS seconds.";

struct Client {
    socket: OwnedFd,
    out: Buffer,
    idle_timer: TimerId,
}

/// The loop's per-connection table (kept in `EventLoop::context`).
#[derive(Default)]
struct Clients {
    by_fd: HashMap<RawFd, Client>,
    idle: Duration,
}

fn main() {
    common::main(7, USAGE, &["--idle="], run);
}

fn run(args: common::Args) -> common::Result {
    let idle = Duration::from_secs_f64(args.value("--idle", 10.0)?);
    let mut ev: EventLoop = EventLoop::new()?;
    ev.context::<Clients>().idle = idle;
    let listener = sys::tcp_listener(&args.addr, false, 4096)?;
    let lfd = listener.as_raw_fd();
    let local = sys::local_addr(listener.as_fd())?.to_inet()?;
    let mut spare = sys::open_dev_null().ok();
    // The handler owns the listener (it lives as long as the loop).
    ev.register(lfd, Interest::READABLE, Mode::Level, move |ev, _| {
        loop {
            match common::accept(listener.as_fd(), &mut spare) {
                Ok(Some((socket, peer))) => {
                    let fd = socket.as_raw_fd();
                    if let Err(e) = ev.register(fd, Interest::READABLE, Mode::Level, on_client) {
                        log::warn!("{peer}: {e}");
                        continue;
                    }
                    let idle_timer = ev.run_after(idle, move |ev| kick(ev, fd));
                    ev.context::<Clients>()
                        .by_fd
                        .insert(fd, Client { socket, out: Buffer::new(), idle_timer });
                    log::debug!("{peer} connected as fd {fd}");
                }
                Ok(None) => return,
                Err(e) => return log::warn!("accept: {e}"),
            }
        }
    })?;
    ev.run_every(Duration::from_secs(1), |ev| {
        log::debug!("{} clients; {:?}", ev.context::<Clients>().by_fd.len(), ev.stats());
    });
    common::announce(local, ev.dispatcher_name());
    ev.run()?;
    Ok(())
}

fn on_client(ev: &mut EventLoop, event: Event) {
    let fd = event.fd();
    // Take the client out of the table while we work on it and the loop.
    let Some(mut client) = ev.context::<Clients>().by_fd.remove(&fd) else { return };
    let mut eof = false;
    if event.is_readable() && client.out.len() < common::MAX_QUEUED {
        match client.out.recv_fd(client.socket.as_fd()) {
            Ok(0) => eof = true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => eof = true,
        }
    }
    match client.out.send_fd(client.socket.as_fd()) {
        Err(e) if e.kind() != ErrorKind::WouldBlock => eof = true,
        _ => {}
    }
    if eof {
        return close(ev, client, "closed by the client");
    }
    // Activity: push the idle deadline back.
    ev.cancel(client.idle_timer);
    let idle = ev.context::<Clients>().idle;
    client.idle_timer = ev.run_after(idle, move |ev| kick(ev, fd));
    let mut want = Interest::NONE;
    if client.out.len() < common::MAX_QUEUED {
        want = want | Interest::READABLE;
    }
    if !client.out.is_empty() {
        want = want | Interest::WRITABLE;
    }
    if ev.interest(fd) != Some(want) {
        let _ = ev.set_interest(fd, want);
    }
    ev.context::<Clients>().by_fd.insert(fd, client);
}

/// The idle timer fired: nothing arrived for `--idle` seconds.
fn kick(ev: &mut EventLoop, fd: RawFd) {
    if let Some(client) = ev.context::<Clients>().by_fd.remove(&fd) {
        close(ev, client, "idle for too long");
    }
}

fn close(ev: &mut EventLoop, client: Client, why: &str) {
    let fd = client.socket.as_raw_fd();
    ev.cancel(client.idle_timer);
    let _ = ev.deregister(fd); // before the socket closes (dropped below)
    log::debug!("fd {fd}: {why}");
}
