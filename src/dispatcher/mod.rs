//! The I/O multiplexer behind the event loop: one trait, four system calls.
//!
//! This module teaches what `select(2)`, `poll(2)`, `epoll(7)` and
//! `io_uring(7)` have in common (ask "which of these fds are ready?", sleep
//! until an answer or a timeout) and, in the files next to it, how
//! differently they do it:
//!
//! | backend | interest lives in | cost of one wait | limits |
//! |---|---|---|---|
//! | [`SelectDispatcher`] | bitsets copied to the kernel on every call | O(highest fd) | none here: our bitsets grow past `FD_SETSIZE` |
//! | [`PollDispatcher`] | an array of `pollfd` copied on every call | O(registered fds) | none |
//! | [`EpollDispatcher`] | the kernel (registered once) | O(ready fds) | Linux only |
//! | [`UringDispatcher`] | the kernel, as one poll request per fd | O(ready fds) | Linux 5.13+, may be refused by a sandbox |
//!
//! [`AnyDispatcher`] picks one of them by name at run time.
//!
//! # The contract every backend keeps
//!
//! * **Level-triggered by default.** An fd that is still readable is reported
//!   again on the next [`dispatch`](Dispatcher::dispatch) until it is drained.
//! * **[`Mode::Oneshot`]** reports an fd once, then disarms it (it stays
//!   registered) until [`modify`](Dispatcher::modify) re-arms it. epoll does
//!   this in the kernel (`EPOLLONESHOT`); select and poll emulate it by
//!   clearing the interest after delivery.
//! * **[`Mode::Edge`]** reports an fd only when new readiness arrives. Only
//!   epoll (`EPOLLET`) and io_uring (multishot polls) can do that; select and
//!   poll return [`io::ErrorKind::Unsupported`] rather than silently degrading.
//! * **Hang-ups and errors are always reported**, as readable + writable plus
//!   a flag ([`Event::is_hangup`], [`Event::is_error`], [`Event::is_invalid`]),
//!   whatever the interest. A backend never closes or drops an fd on its own:
//!   closing is the owner's job, and the owner must deregister first.
//! * **Spurious wake-ups are allowed**: an fd reported readable may return
//!   `EAGAIN`. Every handler takes `WouldBlock` as "nothing now" and returns;
//!   level-triggered ones may read once per event (what is left is reported
//!   again), edge-triggered ones read until `WouldBlock`.
//! * **Timeouts are rounded up** to whole milliseconds (a 0.2 ms timer must
//!   not turn into a busy `timeout = 0` loop); `None` waits forever.
//! * **`EINTR` is not an error**: the call returns an empty batch.
//! * Registering an fd twice ([`AlreadyExists`](io::ErrorKind::AlreadyExists)),
//!   modifying or removing an unknown fd ([`NotFound`](io::ErrorKind::NotFound)),
//!   a negative fd or an empty interest ([`InvalidInput`](io::ErrorKind::InvalidInput))
//!   are errors, never panics.

use std::fmt;
use std::io;
use std::ops::BitOr;
use std::os::fd::RawFd;
use std::time::Duration;

pub mod any;
#[cfg(muxloop_has_epoll)]
pub mod epoll;
pub mod poll;
pub mod select;
pub mod sim;
/// io_uring in completion style (it lives in [`crate::uring`]).
#[cfg(muxloop_has_uring)]
pub use crate::uring::proactor;
/// io_uring's readiness backend (it lives in [`crate::uring`], with the ring
/// layer and the proactor).
#[cfg(muxloop_has_uring)]
pub use crate::uring::readiness as uring;

pub use any::AnyDispatcher;
#[cfg(muxloop_has_epoll)]
pub use epoll::EpollDispatcher;
pub use poll::PollDispatcher;
pub use select::SelectDispatcher;
pub use sim::SimDispatcher;
#[cfg(muxloop_has_uring)]
pub use uring::UringDispatcher;

cfg_if::cfg_if! {
    if #[cfg(muxloop_dispatcher = "select")] {
        /// The dispatcher chosen at compile time (here: `select`, by the `select` feature).
        pub type DefaultDispatcher = SelectDispatcher;
    } else if #[cfg(muxloop_dispatcher = "poll")] {
        /// The dispatcher chosen at compile time (here: `poll`, by the `poll`
        /// feature, or because the build has no epoll: not Linux, or `--cfg muxloop_portable`).
        pub type DefaultDispatcher = PollDispatcher;
    } else if #[cfg(muxloop_dispatcher = "uring")] {
        /// The dispatcher chosen at compile time (here: `io_uring`, by the `uring` feature).
        pub type DefaultDispatcher = UringDispatcher;
    } else {
        /// The dispatcher chosen at compile time (here: `epoll`, the default).
        pub type DefaultDispatcher = EpollDispatcher;
    }
}

/// The name of [`DefaultDispatcher`]: `"select"`, `"poll"`, `"epoll"` or `"uring"`.
pub fn default_dispatcher_name() -> &'static str {
    DefaultDispatcher::NAME
}

/// What the owner of an fd wants to hear about.
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct Interest(u8);

impl Interest {
    /// No interest: the event loop keeps the handler but takes the fd out of
    /// the backend (backends themselves reject an empty interest).
    pub const NONE: Interest = Interest(0);
    /// Wake me when a read would not block (data, EOF, or a pending accept).
    pub const READABLE: Interest = Interest(1);
    /// Wake me when a write would not block (socket buffer has room, connect finished).
    pub const WRITABLE: Interest = Interest(2);
    /// Both readable and writable.
    pub const BOTH: Interest = Interest(3);

    /// Whether readability is asked for.
    pub const fn is_readable(self) -> bool {
        self.0 & 1 != 0
    }
    /// Whether writability is asked for.
    pub const fn is_writable(self) -> bool {
        self.0 & 2 != 0
    }
    /// Whether nothing is asked for.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// This interest plus `other`.
    pub const fn add(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }
    /// This interest without `other`.
    pub const fn remove(self, other: Interest) -> Interest {
        Interest(self.0 & !other.0)
    }
}

impl BitOr for Interest {
    type Output = Interest;
    fn bitor(self, other: Interest) -> Interest {
        self.add(other)
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.is_readable(), self.is_writable()) {
            (false, false) => "NONE",
            (true, false) => "READABLE",
            (false, true) => "WRITABLE",
            (true, true) => "READABLE | WRITABLE",
        })
    }
}

/// How often readiness is reported.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Reported on every dispatch while the fd is ready (all backends).
    Level,
    /// Reported once, then disarmed until re-armed with `modify` (all backends;
    /// select and poll emulate it).
    Oneshot,
    /// Reported when readiness changes: the handler must drain until
    /// `WouldBlock` (epoll and uring; select and poll return `Unsupported`).
    Edge,
}

/// What a backend found: readiness bits plus hang-up/error flags.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct Ready(u8);

impl Ready {
    /// Nothing.
    pub const EMPTY: Ready = Ready(0);
    /// A read would not block.
    pub const READABLE: Ready = Ready(1);
    /// A write would not block.
    pub const WRITABLE: Ready = Ready(2);
    /// The peer hung up (`POLLHUP`/`EPOLLHUP`).
    pub const HANGUP: Ready = Ready(4);
    /// An error is pending on the fd (`POLLERR`/`EPOLLERR`); read it with `SO_ERROR`.
    pub const ERROR: Ready = Ready(8);
    /// The fd is not open (`POLLNVAL`, or `EBADF` from select): it was closed
    /// without being deregistered.
    pub const INVALID: Ready = Ready(16);
    /// The flags that are reported whatever the interest.
    pub const ALWAYS: Ready = Ready(4 | 8 | 16);
    /// The peer shut down its sending side (`EPOLLRDHUP`, `POLLRDHUP`): once
    /// the data before it is read, reads return end of file. Reported with
    /// readable interest, by epoll and io_uring only (the edge-triggered
    /// backends, where a reader must know whether a short read can be the
    /// last one); select and poll never set it.
    pub const READ_CLOSED: Ready = Ready(32);

    /// Whether all bits of `other` are set.
    pub const fn contains(self, other: Ready) -> bool {
        self.0 & other.0 == other.0
    }
    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// A flag (hang-up, error or invalid) as the contract reports it: with
    /// readable and writable set, so a handler that only reads still sees it.
    pub const fn with_flag(flag: Ready) -> Ready {
        Ready(flag.0 | Ready::READABLE.0 | Ready::WRITABLE.0)
    }
    /// The part of this readiness that `interest` asked for, plus the flags.
    pub const fn masked_by(self, interest: Interest) -> Ready {
        let read_closed = if interest.is_readable() { Ready::READ_CLOSED.0 } else { 0 };
        Ready(self.0 & (interest.0 | Ready::ALWAYS.0 | read_closed))
    }
}

impl BitOr for Ready {
    type Output = Ready;
    fn bitor(self, other: Ready) -> Ready {
        Ready(self.0 | other.0)
    }
}

impl fmt::Debug for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(Ready, &str); 6] = [
            (Ready::READABLE, "READABLE"),
            (Ready::WRITABLE, "WRITABLE"),
            (Ready::HANGUP, "HANGUP"),
            (Ready::ERROR, "ERROR"),
            (Ready::INVALID, "INVALID"),
            (Ready::READ_CLOSED, "READ_CLOSED"),
        ];
        let mut names = NAMES.iter().filter(|(bit, _)| self.contains(*bit)).map(|(_, name)| *name);
        match names.next() {
            None => f.write_str("EMPTY"),
            Some(first) => {
                f.write_str(first)?;
                names.try_for_each(|name| write!(f, " | {name}"))
            }
        }
    }
}

/// One ready fd, as reported by a backend.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Event {
    fd: RawFd,
    ready: Ready,
}

impl Event {
    /// An event for `fd` with readiness `ready`.
    pub const fn new(fd: RawFd, ready: Ready) -> Event {
        Event { fd, ready }
    }
    /// The fd this event is about.
    pub const fn fd(&self) -> RawFd {
        self.fd
    }
    /// The raw readiness bits.
    pub const fn ready(&self) -> Ready {
        self.ready
    }
    /// A read would not block (data, EOF, hang-up or error).
    pub const fn is_readable(&self) -> bool {
        self.ready.contains(Ready::READABLE)
    }
    /// A write would not block (room, or hang-up/error: the write will fail fast).
    pub const fn is_writable(&self) -> bool {
        self.ready.contains(Ready::WRITABLE)
    }
    /// The peer hung up (not reported by select, where EOF shows as readable).
    pub const fn is_hangup(&self) -> bool {
        self.ready.contains(Ready::HANGUP)
    }
    /// An error is pending on the fd.
    pub const fn is_error(&self) -> bool {
        self.ready.contains(Ready::ERROR)
    }
    /// The fd was closed without being deregistered.
    pub const fn is_invalid(&self) -> bool {
        self.ready.contains(Ready::INVALID)
    }
    /// The peer shut down its sending side ([`Ready::READ_CLOSED`]; epoll and io_uring).
    pub const fn is_read_closed(&self) -> bool {
        self.ready.contains(Ready::READ_CLOSED)
    }
}

/// A reusable list that [`Dispatcher::dispatch`] fills.
///
/// Reusing it across calls means a busy loop allocates nothing per dispatch.
#[derive(Debug, Default)]
pub struct Events {
    list: Vec<Event>,
    scanned: usize,
}

impl Events {
    /// Adds `ready` to the event at `slot` (a second completion for the
    /// same fd in one batch: one event, the union of what was reported).
    #[cfg(muxloop_has_uring)]
    pub(crate) fn merge(&mut self, slot: usize, ready: Ready) {
        let event = &mut self.list[slot];
        *event = Event::new(event.fd(), event.ready() | ready);
    }

    /// An empty list with room for `capacity` events.
    pub fn with_capacity(capacity: usize) -> Events {
        Events { list: Vec::with_capacity(capacity), scanned: 0 }
    }
    /// The events of the last dispatch.
    pub fn iter(&self) -> std::slice::Iter<'_, Event> {
        self.list.iter()
    }
    /// How many events the last dispatch reported.
    pub fn len(&self) -> usize {
        self.list.len()
    }
    /// Whether the last dispatch reported nothing (timeout, `EINTR`).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    /// The `i`-th event.
    pub fn get(&self, i: usize) -> Option<Event> {
        self.list.get(i).copied()
    }
    /// How many fd slots the backend had to look at to produce this batch:
    /// select scans every fd up to the highest, poll every registered fd,
    /// epoll and uring only the ready ones. This is the cost that separates them.
    pub fn scanned(&self) -> usize {
        self.scanned
    }
    /// Empties the list (backends call this first).
    pub fn clear(&mut self) {
        self.list.clear();
        self.scanned = 0;
    }
    /// Adds an event (backends call this).
    pub fn push(&mut self, event: Event) {
        self.list.push(event);
    }
    /// Records the scan cost of this batch (backends call this).
    pub fn set_scanned(&mut self, scanned: usize) {
        self.scanned = scanned;
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = &'a Event;
    type IntoIter = std::slice::Iter<'a, Event>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// An I/O multiplexer: remembers which fds we care about and waits until some
/// are ready. See the [module docs](self) for the semantics all of them keep.
pub trait Dispatcher: Sized + Send {
    /// `"select"`, `"poll"`, `"epoll"`, `"uring"`, or `"any"` for the
    /// run-time choice ([`AnyDispatcher`]); [`name`](Self::name) says which
    /// backend an instance really is.
    const NAME: &'static str;

    /// Creates an empty dispatcher.
    fn new() -> io::Result<Self>;

    /// A new empty dispatcher of the same kind as this one (a thread pool
    /// creates its sub-loops' dispatchers this way, so a backend chosen at
    /// run time is kept).
    fn fresh(&self) -> io::Result<Self> {
        Self::new()
    }

    /// The backend this instance runs: `"select"`, `"poll"`, `"epoll"` or `"uring"`.
    fn name(&self) -> &'static str {
        Self::NAME
    }

    /// Whether `mode` can be used with this backend (a run-time capability
    /// query: every backend does `Level` and `Oneshot`, only some `Edge`).
    fn supports(&self, mode: Mode) -> bool;

    /// Starts watching `fd`. Errors: `AlreadyExists` if it is registered,
    /// `InvalidInput` for a negative fd or empty interest, `Unsupported` for
    /// `Mode::Edge` on a backend without it.
    fn register(&mut self, fd: RawFd, interest: Interest, mode: Mode) -> io::Result<()>;

    /// Changes what `fd` is watched for; also re-arms a fired oneshot fd.
    /// Errors: `NotFound` if it is not registered, plus those of `register`.
    fn modify(&mut self, fd: RawFd, interest: Interest, mode: Mode) -> io::Result<()>;

    /// Stops watching `fd`. Call it before closing the fd. Errors: `NotFound`.
    fn deregister(&mut self, fd: RawFd) -> io::Result<()>;

    /// Waits until at least one fd is ready or `timeout` passes (`None`: no
    /// limit; rounded up to whole ms), then replaces `events` with what is ready.
    fn dispatch(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()>;

    /// How many fds are registered.
    fn len(&self) -> usize;

    /// Whether no fd is registered.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Rejects what no backend accepts: a negative fd, an empty interest, or an
/// edge-triggered request where edge is unsupported.
pub(crate) fn check_request<D: Dispatcher>(
    dispatcher: &D,
    fd: RawFd,
    interest: Interest,
    mode: Mode,
) -> io::Result<()> {
    check_fd(fd)?;
    if interest.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("fd {fd}: empty interest (deregister instead, or use the event loop's Interest::NONE)"),
        ));
    }
    check_mode(dispatcher, mode)
}

/// `Unsupported` for a mode the backend cannot do (the event loop checks too,
/// since a paused fd never reaches the backend).
pub(crate) fn check_mode<D: Dispatcher>(dispatcher: &D, mode: Mode) -> io::Result<()> {
    if dispatcher.supports(mode) {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{mode:?}-triggered mode is not supported by the {} dispatcher", dispatcher.name()),
    ))
}

/// select and poll size fd-indexed tables by the fd number, so they first
/// make sure the fd is open (as `epoll_ctl` does): a stray huge number must be
/// an `EBADF` error, not a gigabyte allocation.
pub(crate) fn check_open(fd: RawFd) -> io::Result<()> {
    if crate::sys::is_open(fd) { Ok(()) } else { Err(io::Error::from_raw_os_error(libc::EBADF)) }
}

pub(crate) fn check_fd(fd: RawFd) -> io::Result<()> {
    if fd < 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("negative file descriptor {fd}")));
    }
    Ok(())
}

pub(crate) fn already_registered(fd: RawFd, backend: &str) -> io::Error {
    io::Error::new(io::ErrorKind::AlreadyExists, format!("fd {fd} is already registered with {backend}"))
}

pub(crate) fn not_registered(fd: RawFd, backend: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("fd {fd} is not registered with {backend}"))
}

/// A timeout in whole milliseconds, rounded up; -1 means "wait forever".
pub(crate) fn timeout_ms(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(t) => {
            let ms = t.as_nanos().div_ceil(1_000_000);
            ms.min(libc::c_int::MAX as u128) as libc::c_int
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_up_to_whole_milliseconds() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_micros(200))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_millis(5))), 5);
        assert_eq!(timeout_ms(Some(Duration::from_micros(5001))), 6);
        assert_eq!(timeout_ms(Some(Duration::from_secs(u64::MAX))), libc::c_int::MAX);
    }

    #[test]
    fn readiness_masking_keeps_flags() {
        let hup = Ready::with_flag(Ready::HANGUP);
        let masked = hup.masked_by(Interest::READABLE);
        assert!(masked.contains(Ready::READABLE | Ready::HANGUP));
        assert!(!masked.contains(Ready::WRITABLE));
        assert!(Ready::WRITABLE.masked_by(Interest::READABLE).is_empty());
        assert_eq!(format!("{masked:?}"), "READABLE | HANGUP");
    }

    #[test]
    fn interest_algebra() {
        assert_eq!(Interest::READABLE.add(Interest::READABLE), Interest::READABLE, "adding twice");
        assert_eq!(Interest::READABLE | Interest::WRITABLE, Interest::BOTH);
        assert_eq!(Interest::BOTH.remove(Interest::READABLE), Interest::WRITABLE);
        assert_eq!(
            Interest::READABLE.remove(Interest::WRITABLE),
            Interest::READABLE,
            "removing what is absent"
        );
        assert!(Interest::WRITABLE.remove(Interest::WRITABLE).is_empty());
        let names: Vec<String> = [Interest::NONE, Interest::READABLE, Interest::WRITABLE, Interest::BOTH]
            .iter()
            .map(|i| format!("{i:?}"))
            .collect();
        assert_eq!(names, ["NONE", "READABLE", "WRITABLE", "READABLE | WRITABLE"]);
    }

    #[test]
    fn with_flag_is_idempotent() {
        let hup = Ready::with_flag(Ready::HANGUP);
        assert_eq!(Ready::with_flag(hup), hup, "a flag that already carries readable and writable");
        assert_eq!(Ready::with_flag(Ready::ERROR | Ready::READABLE), Ready::with_flag(Ready::ERROR));
    }
}
