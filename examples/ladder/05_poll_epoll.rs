//! Rung 05 — poll or epoll by hand, and write interest switched on and off.
//!
//! **Teaches.** A non-blocking `send` may take only part of what we give it
//! (a *partial write*): the kernel's send buffer is full because the client
//! reads slowly. The rest waits in the connection's output [`Buffer`], and
//! only then do we ask to hear "writable". The moment the buffer drains, we
//! switch writable interest off again: a socket with room in its send buffer
//! is writable all the time, so level-triggered writable interest left on
//! wakes the loop on every call, forever. `--leave-writable-on` does exactly
//! that wrong thing, to show the busy loop.
//!
//! **Run.** `cargo run --release --example ladder_05_poll_epoll -- [ADDR] [--dispatcher poll|epoll|select] [--leave-writable-on]`
//! (default `127.0.0.1:9150`, epoll).
//!
//! **Try.** Connect one idle `nc 127.0.0.1 9150` and read the once-a-second
//! line: about 1 dispatch/s. Restart with `--leave-writable-on`: hundreds of
//! thousands per second and a core at 100% (`top`), with nothing to do.
//! Partial writes: a client that sends 8 MiB and never reads, with its
//! receive buffer fixed by `SO_RCVBUF` (64 KiB asked, 128 KiB given: the
//! kernel doubles it) so that the run does not depend on the machine's
//! `tcp_rmem` default:
//! `python3 -c 'import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16); s.connect(("127.0.0.1", 9150)); s.sendall(b"x" * (8 << 20)); input()'`.
//! The echo can leave only as fast as it fits in the client's receive
//! buffer plus the server's send buffer (autotuned up to `tcp_wmem`'s
//! maximum, 4 MiB by default): an echo that fits there (a smaller payload, or
//! a machine whose buffers are larger) never makes a partial write. Past that,
//! sends are partial, the rest queues, and past 256 KiB queued the server
//! stops reading that client. What the client still sends waits in the
//! server's receive buffer, which autotuning grew while the server was
//! reading (up to `tcp_rmem`'s maximum), so `sendall` may well return; the
//! `input()` keeps the connection open until you press Enter.
//!
//! **Watch** (`RUST_LOG=trace`; from a shell the first client is fd 6, after
//! the listener, the spare fd and the epoll instance; the byte counts vary
//! from run to run): whole sends (`fd 6: sent 327704/327704`) until the
//! buffers are full (a few hundred KiB to a few MiB in), then a partial one,
//! `fd 6: sent 113018/327704 (partial write)`,
//! and writable interest on: `fd 6 READABLE -> READABLE | WRITABLE (214686 bytes queued)`.
//! Once more than 256 KiB is queued, reading stops:
//! `fd 6 READABLE | WRITABLE -> WRITABLE (476862 bytes queued)`; when the
//! read before the first partial send already left more than that, both
//! steps are one: `fd 6 READABLE -> WRITABLE (326068 bytes queued)`. A client
//! that reads its echo makes the queue drain:
//! `fd 6 READABLE | WRITABLE -> READABLE (drained)`.

mod common;

use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

#[cfg(muxloop_has_epoll)]
use muxloop::EpollDispatcher;
use muxloop::{Buffer, Dispatcher, Events, Interest, Mode, PollDispatcher, SelectDispatcher, sys};

const USAGE: &str = "ladder_05_poll_epoll [ADDR] [--dispatcher poll|epoll|select] [--leave-writable-on]
(default 127.0.0.1:9150, epoll). An echo server driving a dispatcher by hand.
--leave-writable-on  the bug on purpose: keep writable interest on while idle (busy loop)";

struct Channel {
    socket: OwnedFd, // owned here: dropping the row closes it
    out: Buffer,
    interest: Interest,
    eof: bool,
}

fn main() {
    common::main(5, USAGE, &["--dispatcher=", "--leave-writable-on"], |args| {
        match args.value("--dispatcher", String::from("epoll"))?.as_str() {
            #[cfg(muxloop_has_epoll)]
            "epoll" => run::<EpollDispatcher>(args),
            "poll" => run::<PollDispatcher>(args),
            "select" => run::<SelectDispatcher>(args),
            other => Err(format!("unknown dispatcher {other:?} (poll, epoll or select)").into()),
        }
    });
}

fn run<D: Dispatcher>(args: common::Args) -> common::Result {
    let always_writable = args.has("--leave-writable-on");
    let listener = sys::tcp_listener(&args.addr, false, 4096)?;
    let lfd = listener.as_raw_fd();
    let mut spare = sys::open_dev_null().ok();
    let mut backend = D::new()?;
    backend.register(lfd, Interest::READABLE, Mode::Level)?;
    let mut table: Vec<Option<Channel>> = Vec::new();
    let mut events = Events::with_capacity(256);
    let (mut calls, mut reported, mut since) = (0u64, 0u64, Instant::now());
    common::announce(sys::local_addr(listener.as_fd())?.to_inet()?, D::NAME);
    loop {
        backend.dispatch(&mut events, Some(Duration::from_secs(1)))?;
        calls += 1;
        reported += events.len() as u64;
        if since.elapsed() >= Duration::from_secs(1) {
            log::info!("{} dispatch calls/s, {reported} events, {} fds registered", calls, backend.len());
            (calls, reported, since) = (0, 0, Instant::now());
        }
        for event in &events {
            let fd = event.fd();
            log::trace!("{}: fd {fd} {:?}", D::NAME, event.ready());
            if fd == lfd {
                while let Some((socket, peer)) = common::accept(listener.as_fd(), &mut spare)? {
                    let fd = socket.as_raw_fd();
                    let interest = if always_writable { Interest::BOTH } else { Interest::READABLE };
                    backend.register(fd, interest, Mode::Level)?;
                    log::debug!("{peer} connected as fd {fd}");
                    if table.len() <= fd as usize {
                        table.resize_with(fd as usize + 1, || None);
                    }
                    table[fd as usize] = Some(Channel { socket, out: Buffer::new(), interest, eof: false });
                }
                continue;
            }
            let Some(Some(ch)) = table.get_mut(fd as usize) else { continue };
            let mut open = true;
            if event.is_readable() && !ch.eof && ch.out.len() < common::MAX_QUEUED {
                match ch.out.recv_fd(ch.socket.as_fd()) {
                    Ok(0) => ch.eof = true,
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => open = false,
                }
            }
            let queued = ch.out.len();
            match ch.out.send_fd(ch.socket.as_fd()) {
                Ok(n) if n < queued => log::trace!("fd {fd}: sent {n}/{queued} (partial write)"),
                Ok(n) if n > 0 => log::trace!("fd {fd}: sent {n}/{queued}"),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => open = false,
            }
            if !open || (ch.eof && ch.out.is_empty()) {
                backend.deregister(fd)?; // before the close, which `take` + drop does
                table[fd as usize].take();
                log::debug!("fd {fd} closed");
                continue;
            }
            // The lesson: writable interest only while output is queued.
            let mut want = if always_writable { Interest::WRITABLE } else { Interest::NONE };
            if !ch.out.is_empty() {
                want = want | Interest::WRITABLE;
            }
            if !ch.eof && ch.out.len() < common::MAX_QUEUED {
                want = want | Interest::READABLE;
            }
            if want != ch.interest {
                let why = if ch.out.is_empty() {
                    "drained".to_owned()
                } else {
                    format!("{} bytes queued", ch.out.len())
                };
                log::trace!("fd {fd} {:?} -> {want:?} ({why})", ch.interest);
                backend.modify(fd, want, Mode::Level)?;
                ch.interest = want;
            }
        }
    }
}
