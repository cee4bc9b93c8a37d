//! `select(2)`: the interest set is a pair of bitsets, one bit per fd number,
//! copied into the kernel on every call and overwritten with the answer.
//!
//! Because the kernel overwrites them, we keep the interest sets and hand it
//! scratch copies; because the answer is a bitset too, we scan every word up
//! to the highest fd to find what is ready. The cost grows with the *highest
//! fd number*, not with the number of active fds.
//!
//! libc's `fd_set` is a fixed 1024-bit array, and `FD_SET(fd)` with
//! `fd >= FD_SETSIZE` writes past it (glibc's fortify aborts; libevent's
//! select backend dies there). The kernel itself only reads `nfds` bits from
//! whatever buffer it is given, so these bitsets are plain growable
//! `Vec<c_ulong>`s and fds above 1024 just work.
//!
//! select has no notion of hang-up or error: a closed peer shows as readable
//! (the read returns 0), a pending socket error as readable and writable. An
//! fd closed while still registered makes the whole call fail with `EBADF`;
//! we then find the culprits and report them as invalid, like `POLLNVAL`.

use std::io;
use std::os::fd::RawFd;
use std::ptr;
use std::time::Duration;

use super::{
    Dispatcher, Event, Events, Interest, Mode, Ready, already_registered, check_fd, check_open,
    check_request, not_registered, timeout_ms,
};
use crate::sys::{self, syscall};

const WORD_BITS: usize = libc::c_ulong::BITS as usize;

/// A bitset of fd numbers with no upper limit, laid out like `fd_set`.
#[derive(Debug, Default)]
struct FdSet {
    words: Vec<libc::c_ulong>,
}

fn word_and_bit(fd: RawFd) -> (usize, libc::c_ulong) {
    let fd = fd as usize;
    (fd / WORD_BITS, 1 << (fd % WORD_BITS))
}

impl FdSet {
    fn insert(&mut self, fd: RawFd) {
        let (word, bit) = word_and_bit(fd);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= bit;
    }

    fn remove(&mut self, fd: RawFd) {
        let (word, bit) = word_and_bit(fd);
        if let Some(w) = self.words.get_mut(word) {
            *w &= !bit;
        }
    }

    fn contains(&self, fd: RawFd) -> bool {
        let (word, bit) = word_and_bit(fd);
        self.words.get(word).is_some_and(|w| w & bit != 0)
    }

    /// Makes this set a copy of the first `nwords` words of `other`.
    fn copy_from(&mut self, other: &FdSet, nwords: usize) {
        self.words.clear();
        self.words.extend_from_slice(&other.words[..nwords.min(other.words.len())]);
        self.words.resize(nwords, 0);
    }

    fn as_fd_set(&mut self) -> *mut libc::fd_set {
        if self.words.is_empty() { ptr::null_mut() } else { self.words.as_mut_ptr().cast() }
    }
}

/// How one fd is registered; `interest` is `NONE` while a oneshot fd is disarmed.
#[derive(Debug, Copy, Clone)]
struct Registration {
    interest: Interest,
    mode: Mode,
}

/// The `select(2)` backend, without the `FD_SETSIZE` limit.
#[derive(Debug)]
pub struct SelectDispatcher {
    /// `registry[fd]`: how `fd` is registered, if it is.
    registry: Vec<Option<Registration>>,
    want_read: FdSet,
    want_write: FdSet,
    /// Scratch copies the kernel overwrites with the answer.
    ready_read: FdSet,
    ready_write: FdSet,
    /// Highest registered fd, or -1: `nfds` is this + 1.
    max_fd: RawFd,
    registered: usize,
}

impl SelectDispatcher {
    fn registration(&self, fd: RawFd) -> Option<Registration> {
        self.registry.get(fd as usize).copied().flatten()
    }

    /// Puts `fd` in the interest bitsets that `interest` asks for, and in no other.
    fn set_interest(&mut self, fd: RawFd, interest: Interest, mode: Mode) {
        if interest.is_readable() {
            self.want_read.insert(fd);
        } else {
            self.want_read.remove(fd);
        }
        if interest.is_writable() {
            self.want_write.insert(fd);
        } else {
            self.want_write.remove(fd);
        }
        self.registry[fd as usize] = Some(Registration { interest, mode });
    }

    /// After `EBADF`: reports every registered fd that is no longer open.
    fn report_closed_fds(&self, events: &mut Events) {
        let armed =
            self.registry.iter().enumerate().filter(|(_, r)| r.is_some_and(|r| !r.interest.is_empty()));
        for (fd, _) in armed {
            let fd = fd as RawFd;
            if !sys::is_open(fd) {
                events.push(Event::new(fd, Ready::with_flag(Ready::INVALID)));
            }
        }
        events.set_scanned(self.registry.len());
    }
}

impl Dispatcher for SelectDispatcher {
    const NAME: &'static str = "select";

    fn new() -> io::Result<Self> {
        Ok(SelectDispatcher {
            registry: Vec::new(),
            want_read: FdSet::default(),
            want_write: FdSet::default(),
            ready_read: FdSet::default(),
            ready_write: FdSet::default(),
            max_fd: -1,
            registered: 0,
        })
    }

    fn supports(&self, mode: Mode) -> bool {
        mode != Mode::Edge
    }

    fn register(&mut self, fd: RawFd, interest: Interest, mode: Mode) -> io::Result<()> {
        check_request(self, fd, interest, mode)?;
        check_open(fd)?;
        if self.registration(fd).is_some() {
            return Err(already_registered(fd, Self::NAME));
        }
        if fd as usize >= self.registry.len() {
            self.registry.resize(fd as usize + 1, None);
        }
        self.set_interest(fd, interest, mode);
        self.max_fd = self.max_fd.max(fd);
        self.registered += 1;
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, interest: Interest, mode: Mode) -> io::Result<()> {
        check_request(self, fd, interest, mode)?;
        if self.registration(fd).is_none() {
            return Err(not_registered(fd, Self::NAME));
        }
        self.set_interest(fd, interest, mode);
        Ok(())
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        check_fd(fd)?;
        if self.registration(fd).is_none() {
            return Err(not_registered(fd, Self::NAME));
        }
        self.want_read.remove(fd);
        self.want_write.remove(fd);
        self.registry[fd as usize] = None;
        self.registered -= 1;
        if fd == self.max_fd {
            self.max_fd = self.registry.iter().rposition(Option::is_some).map_or(-1, |i| i as RawFd);
            self.registry.truncate((self.max_fd + 1) as usize);
        }
        Ok(())
    }

    fn dispatch(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        let nfds = (self.max_fd + 1) as usize;
        let nwords = nfds.div_ceil(WORD_BITS);
        self.ready_read.copy_from(&self.want_read, nwords);
        self.ready_write.copy_from(&self.want_write, nwords);
        let ms = timeout_ms(timeout);
        let mut tv =
            libc::timeval { tv_sec: (ms / 1000) as libc::time_t, tv_usec: ((ms % 1000) * 1000) as _ };
        let tv_ptr = if ms < 0 { ptr::null_mut() } else { &mut tv as *mut libc::timeval };
        // SAFETY: each set pointer is null or points to `nwords` words, enough
        // for the `nfds` bits the kernel reads and writes; `tv_ptr` is null or
        // points to a live timeval.
        let result = syscall!(select(
            nfds as libc::c_int,
            self.ready_read.as_fd_set(),
            self.ready_write.as_fd_set(),
            ptr::null_mut(),
            tv_ptr
        ));
        match result {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBADF) => {
                self.report_closed_fds(events);
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        // The answer is a bitset: walk every word up to nfds, skipping empty ones.
        for word in 0..nwords {
            let mut bits = self.ready_read.words[word] | self.ready_write.words[word];
            while bits != 0 {
                let fd = (word * WORD_BITS + bits.trailing_zeros() as usize) as RawFd;
                bits &= bits - 1;
                let mut ready = Ready::EMPTY;
                if self.ready_read.contains(fd) {
                    ready = ready | Ready::READABLE;
                }
                if self.ready_write.contains(fd) {
                    ready = ready | Ready::WRITABLE;
                }
                events.push(Event::new(fd, ready));
                if self.registration(fd).is_some_and(|r| r.mode == Mode::Oneshot) {
                    self.set_interest(fd, Interest::NONE, Mode::Oneshot);
                }
            }
        }
        events.set_scanned(nfds);
        Ok(())
    }

    fn len(&self) -> usize {
        self.registered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_set_grows_past_fd_setsize() {
        let mut set = FdSet::default();
        set.insert(3);
        set.insert(5000);
        assert!(set.contains(3) && set.contains(5000));
        assert!(!set.contains(4) && !set.contains(4999) && !set.contains(100_000));
        set.remove(5000);
        assert!(!set.contains(5000));
        let mut copy = FdSet::default();
        copy.copy_from(&set, 2);
        assert_eq!(copy.words.len(), 2);
        assert!(copy.contains(3));
    }
}
