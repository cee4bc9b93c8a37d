//! `epoll(7)`: the interest set lives in the kernel.
//!
//! Registering is a system call (`epoll_ctl`), but waiting is not proportional
//! to how many fds are registered: the kernel keeps a ready list and
//! `epoll_wait` copies out only what is on it. That is why epoll's time per
//! dispatch stays flat as the number of idle connections grows. A kernel
//! that keeps the registrations can also deliver edge-triggered (`EPOLLET`)
//! and oneshot (`EPOLLONESHOT`) events; select and poll, which hand the whole
//! set over on every call, cannot (muxloop emulates oneshot for them and
//! refuses edge). io_uring keeps registrations too, and its backend
//! ([`UringDispatcher`](crate::UringDispatcher)) does edge-triggered with
//! multishot polls.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::{Dispatcher, Event, Events, Interest, Mode, Ready, check_fd, check_request, timeout_ms};
use crate::sys::syscall;

/// Initial size of the buffer `epoll_wait` fills; it doubles whenever a call fills it.
const INITIAL_EVENTS: usize = 256;

/// The `epoll(7)` backend (Linux).
#[derive(Debug)]
pub struct EpollDispatcher {
    epoll: OwnedFd,
    /// Where `epoll_wait` writes; every element is initialised so no
    /// `set_len` is needed.
    buffer: Vec<libc::epoll_event>,
    registered: usize,
}

/// `Interest` + `Mode` -> the `events` mask of an `epoll_event`.
fn epoll_flags(interest: Interest, mode: Mode) -> u32 {
    let mut flags = 0;
    if interest.is_readable() {
        // RDHUP: tells an edge-triggered reader that a short read may have
        // stopped just before end of file (see `Ready::READ_CLOSED`). Unlike
        // HUP and ERR it is not implicit: without readable interest a peer's
        // half-close is not reported.
        flags |= libc::EPOLLIN | libc::EPOLLRDHUP;
    }
    if interest.is_writable() {
        flags |= libc::EPOLLOUT;
    }
    flags |= match mode {
        Mode::Level => 0,
        Mode::Oneshot => libc::EPOLLONESHOT,
        Mode::Edge => libc::EPOLLET,
    };
    flags as u32
}

/// The `events` mask the kernel returned -> `Ready`.
fn ready_from(flags: u32) -> Ready {
    let flags = flags as libc::c_int;
    let mut ready = Ready::EMPTY;
    if flags & (libc::EPOLLIN | libc::EPOLLPRI) != 0 {
        ready = ready | Ready::READABLE;
    }
    if flags & libc::EPOLLOUT != 0 {
        ready = ready | Ready::WRITABLE;
    }
    if flags & libc::EPOLLRDHUP != 0 {
        ready = ready | Ready::READ_CLOSED;
    }
    if flags & libc::EPOLLHUP != 0 {
        ready = ready | Ready::with_flag(Ready::HANGUP);
    }
    if flags & libc::EPOLLERR != 0 {
        ready = ready | Ready::with_flag(Ready::ERROR);
    }
    ready
}

impl EpollDispatcher {
    fn ctl(&self, op: libc::c_int, fd: RawFd, interest: Interest, mode: Mode) -> io::Result<()> {
        let mut event = libc::epoll_event { events: epoll_flags(interest, mode), u64: fd as u64 };
        // SAFETY: `event` is a valid epoll_event for the duration of the call
        // (the kernel copies it); EPOLL_CTL_DEL ignores it.
        syscall!(epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut event))?;
        Ok(())
    }
}

impl Dispatcher for EpollDispatcher {
    const NAME: &'static str = "epoll";

    fn new() -> io::Result<Self> {
        // SAFETY: plain integer flag.
        let fd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
        // SAFETY: `fd` was just created and is owned by nobody else.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        let empty = libc::epoll_event { events: 0, u64: 0 };
        Ok(EpollDispatcher { epoll, buffer: vec![empty; INITIAL_EVENTS], registered: 0 })
    }

    fn supports(&self, _mode: Mode) -> bool {
        true // level, oneshot (EPOLLONESHOT) and edge (EPOLLET)
    }

    fn register(&mut self, fd: RawFd, interest: Interest, mode: Mode) -> io::Result<()> {
        check_request(self, fd, interest, mode)?;
        // EEXIST maps to AlreadyExists, EBADF/EPERM say what is wrong with the fd.
        self.ctl(libc::EPOLL_CTL_ADD, fd, interest, mode)?;
        self.registered += 1;
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, interest: Interest, mode: Mode) -> io::Result<()> {
        check_request(self, fd, interest, mode)?;
        // ENOENT (unknown fd) maps to NotFound.
        self.ctl(libc::EPOLL_CTL_MOD, fd, interest, mode)
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        check_fd(fd)?;
        self.ctl(libc::EPOLL_CTL_DEL, fd, Interest::NONE, Mode::Level)?;
        self.registered -= 1;
        Ok(())
    }

    fn dispatch(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        let capacity = self.buffer.len().min(libc::c_int::MAX as usize) as libc::c_int;
        // SAFETY: the kernel writes at most `capacity` epoll_events into
        // `buffer`, which holds that many initialised elements.
        let n = match syscall!(epoll_wait(
            self.epoll.as_raw_fd(),
            self.buffer.as_mut_ptr(),
            capacity,
            timeout_ms(timeout)
        )) {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        };
        for event in &self.buffer[..n] {
            let (fd, flags) = (event.u64 as RawFd, event.events);
            events.push(Event::new(fd, ready_from(flags)));
        }
        // Only the ready list was copied out: that is epoll's whole point.
        events.set_scanned(n);
        if n == self.buffer.len() {
            // Full: more may be ready than we could take; make room for next time.
            self.buffer.resize(n * 2, libc::epoll_event { events: 0, u64: 0 });
        }
        Ok(())
    }

    fn len(&self) -> usize {
        self.registered
    }
}
