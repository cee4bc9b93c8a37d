//! `poll(2)`: the interest set is an array we own and hand to the kernel on
//! every call.
//!
//! There is no fd limit (unlike `select`'s fixed `fd_set`), but each call
//! copies the whole array into the kernel, which checks every entry, and we
//! then scan every entry again for `revents`: the cost grows with the number
//! of registered fds, however few are active. A call that may sleep costs
//! more still: the kernel hangs a wait-queue entry on every fd it checks
//! before finding a ready one (so it can be woken), and removes them all on
//! return; with a zero timeout it skips that work.
//!
//! Two small tricks keep the bookkeeping O(1): an `fd -> index` table for
//! lookups, and `swap_remove` for deregistration. A oneshot fd that fired is
//! disarmed by negating its `fd` field (`poll` ignores negative fds), so not
//! even a hang-up is reported until it is re-armed.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::{
    Dispatcher, Event, Events, Interest, Mode, Ready, already_registered, check_fd, check_open,
    check_request, not_registered, timeout_ms,
};
use crate::sys::syscall;

/// Marks an fd that has no entry in `pollfds`.
const ABSENT: usize = usize::MAX;

/// The `poll(2)` backend.
#[derive(Debug, Default)]
pub struct PollDispatcher {
    /// Handed to the kernel as is.
    pollfds: Vec<libc::pollfd>,
    /// `modes[i]` is the mode of `pollfds[i]`.
    modes: Vec<Mode>,
    /// `index[fd]` is the position of `fd` in `pollfds`, or `ABSENT`.
    index: Vec<usize>,
}

/// `Interest` -> the `events` field of a `pollfd`.
fn poll_flags(interest: Interest) -> libc::c_short {
    let mut flags = 0;
    if interest.is_readable() {
        flags |= libc::POLLIN;
    }
    if interest.is_writable() {
        flags |= libc::POLLOUT;
    }
    flags
}

/// The `revents` field the kernel returned -> `Ready`. The same table
/// reads an io_uring poll's result (`uring.rs`): `poll(2)`'s bits either way.
pub(crate) fn ready_from(revents: libc::c_short) -> Ready {
    let mut ready = Ready::EMPTY;
    if revents & (libc::POLLIN | libc::POLLPRI) != 0 {
        ready = ready | Ready::READABLE;
    }
    if revents & libc::POLLOUT != 0 {
        ready = ready | Ready::WRITABLE;
    }
    if revents & libc::POLLRDHUP != 0 {
        ready = ready | Ready::READ_CLOSED; // only io_uring asks for it
    }
    if revents & libc::POLLHUP != 0 {
        ready = ready | Ready::with_flag(Ready::HANGUP);
    }
    if revents & libc::POLLERR != 0 {
        ready = ready | Ready::with_flag(Ready::ERROR);
    }
    if revents & libc::POLLNVAL != 0 {
        ready = ready | Ready::with_flag(Ready::INVALID);
    }
    ready
}

/// The fd a `pollfd` stands for, whether armed (`fd`) or disarmed (`!fd`, negative).
fn real_fd(pollfd: &libc::pollfd) -> RawFd {
    if pollfd.fd < 0 { !pollfd.fd } else { pollfd.fd }
}

impl PollDispatcher {
    fn position(&self, fd: RawFd) -> Option<usize> {
        self.index.get(fd as usize).copied().filter(|&i| i != ABSENT)
    }
}

impl Dispatcher for PollDispatcher {
    const NAME: &'static str = "poll";

    fn new() -> io::Result<Self> {
        Ok(PollDispatcher::default())
    }

    fn supports(&self, mode: Mode) -> bool {
        mode != Mode::Edge
    }

    fn register(&mut self, fd: RawFd, interest: Interest, mode: Mode) -> io::Result<()> {
        check_request(self, fd, interest, mode)?;
        check_open(fd)?;
        if self.position(fd).is_some() {
            return Err(already_registered(fd, Self::NAME));
        }
        let slot = fd as usize;
        if slot >= self.index.len() {
            self.index.resize(slot + 1, ABSENT);
        }
        self.index[slot] = self.pollfds.len();
        self.pollfds.push(libc::pollfd { fd, events: poll_flags(interest), revents: 0 });
        self.modes.push(mode);
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, interest: Interest, mode: Mode) -> io::Result<()> {
        check_request(self, fd, interest, mode)?;
        let i = self.position(fd).ok_or_else(|| not_registered(fd, Self::NAME))?;
        // Writing `fd` back also re-arms a disarmed oneshot entry.
        self.pollfds[i] = libc::pollfd { fd, events: poll_flags(interest), revents: 0 };
        self.modes[i] = mode;
        Ok(())
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        check_fd(fd)?;
        let i = self.position(fd).ok_or_else(|| not_registered(fd, Self::NAME))?;
        self.pollfds.swap_remove(i);
        self.modes.swap_remove(i);
        self.index[fd as usize] = ABSENT;
        if let Some(moved) = self.pollfds.get(i) {
            self.index[real_fd(moved) as usize] = i;
        }
        Ok(())
    }

    fn dispatch(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        // SAFETY: `pollfds` is a valid array of `len` pollfd structs; the
        // kernel writes only their `revents` fields.
        let result = syscall!(poll(
            self.pollfds.as_mut_ptr(),
            self.pollfds.len() as libc::nfds_t,
            timeout_ms(timeout)
        ));
        let mut remaining = match result {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        };
        // The kernel only told us how many are ready, not which: scan.
        for (pollfd, mode) in self.pollfds.iter_mut().zip(&self.modes) {
            if remaining == 0 {
                break;
            }
            if pollfd.revents == 0 {
                continue;
            }
            remaining -= 1;
            events.push(Event::new(pollfd.fd, ready_from(pollfd.revents)));
            pollfd.revents = 0;
            if *mode == Mode::Oneshot {
                pollfd.fd = !pollfd.fd;
            }
        }
        // The kernel walked every entry, whatever we skipped afterwards.
        events.set_scanned(self.pollfds.len());
        Ok(())
    }

    fn len(&self) -> usize {
        self.pollfds.len()
    }
}
