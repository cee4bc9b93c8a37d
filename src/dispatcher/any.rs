//! Choosing the backend at run time: one enum over the compiled backends.
//!
//! This module teaches the other half of "pluggable": libevent picks its
//! backend when the program starts (`event_base_new_with_config`), muxloop's
//! type parameter picks it when the program is compiled. [`AnyDispatcher`]
//! offers the former on top of the latter: `--dispatcher poll` becomes
//! [`AnyDispatcher::by_name`] instead of a `match` that instantiates every
//! generic function once per backend. The price is one `match` per call,
//! which the branch predictor learns at once (the `dispatch` bench measures
//! `any-epoll` beside `epoll`).

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

#[cfg(muxloop_has_epoll)]
use super::EpollDispatcher;
#[cfg(muxloop_has_uring)]
use super::UringDispatcher;
use super::{DefaultDispatcher, Dispatcher, Events, Interest, Mode, PollDispatcher, SelectDispatcher};

/// A dispatcher whose backend is chosen at run time, by name.
///
/// ```
/// use muxloop::{AnyDispatcher, Dispatcher, EventLoop};
///
/// let ev = EventLoop::<AnyDispatcher>::with_backend("poll")?;
/// assert_eq!(ev.dispatcher_name(), "poll");
/// assert!(AnyDispatcher::names().contains(&"select"));
/// let err = AnyDispatcher::by_name("kqueue").unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
// One per loop, created once and never moved on a hot path: boxing the
// larger variants would only add an indirection to every call.
#[allow(clippy::large_enum_variant)]
pub enum AnyDispatcher {
    /// `select(2)`.
    Select(SelectDispatcher),
    /// `poll(2)`.
    Poll(PollDispatcher),
    /// `epoll(7)`.
    #[cfg(muxloop_has_epoll)]
    Epoll(EpollDispatcher),
    /// `io_uring(7)`, as readiness polls.
    #[cfg(muxloop_has_uring)]
    Uring(UringDispatcher),
}

/// Calls `$body` with `$d` bound to the backend inside `$self`.
macro_rules! each {
    ($self:expr, $d:ident => $body:expr) => {
        match $self {
            AnyDispatcher::Select($d) => $body,
            AnyDispatcher::Poll($d) => $body,
            #[cfg(muxloop_has_epoll)]
            AnyDispatcher::Epoll($d) => $body,
            #[cfg(muxloop_has_uring)]
            AnyDispatcher::Uring($d) => $body,
        }
    };
}

impl AnyDispatcher {
    /// The names [`by_name`](Self::by_name) accepts: the backends compiled
    /// for this target.
    pub fn names() -> &'static [&'static str] {
        &[
            SelectDispatcher::NAME,
            PollDispatcher::NAME,
            #[cfg(muxloop_has_epoll)]
            EpollDispatcher::NAME,
            #[cfg(muxloop_has_uring)]
            UringDispatcher::NAME,
        ]
    }

    /// A new dispatcher of the backend called `name` (ASCII case ignored).
    /// Errors: `InvalidInput` naming the valid choices for an unknown name;
    /// whatever the backend's `new` returns.
    pub fn by_name(name: &str) -> io::Result<AnyDispatcher> {
        let is = |backend: &str| name.eq_ignore_ascii_case(backend);
        if is(SelectDispatcher::NAME) {
            return SelectDispatcher::new().map(AnyDispatcher::Select);
        }
        if is(PollDispatcher::NAME) {
            return PollDispatcher::new().map(AnyDispatcher::Poll);
        }
        #[cfg(muxloop_has_epoll)]
        if is(EpollDispatcher::NAME) {
            return EpollDispatcher::new().map(AnyDispatcher::Epoll);
        }
        #[cfg(muxloop_has_uring)]
        if is(UringDispatcher::NAME) {
            return UringDispatcher::new().map(AnyDispatcher::Uring);
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown dispatcher {name:?} (choose one of: {})", Self::names().join(", ")),
        ))
    }
}

impl From<SelectDispatcher> for AnyDispatcher {
    fn from(d: SelectDispatcher) -> Self {
        AnyDispatcher::Select(d)
    }
}

impl From<PollDispatcher> for AnyDispatcher {
    fn from(d: PollDispatcher) -> Self {
        AnyDispatcher::Poll(d)
    }
}

#[cfg(muxloop_has_epoll)]
impl From<EpollDispatcher> for AnyDispatcher {
    fn from(d: EpollDispatcher) -> Self {
        AnyDispatcher::Epoll(d)
    }
}

#[cfg(muxloop_has_uring)]
impl From<UringDispatcher> for AnyDispatcher {
    fn from(d: UringDispatcher) -> Self {
        AnyDispatcher::Uring(d)
    }
}

impl Dispatcher for AnyDispatcher {
    const NAME: &'static str = "any";

    /// A dispatcher of [`DefaultDispatcher`]'s kind.
    fn new() -> io::Result<Self> {
        DefaultDispatcher::new().map(AnyDispatcher::from)
    }

    fn fresh(&self) -> io::Result<Self> {
        AnyDispatcher::by_name(self.name())
    }

    #[inline]
    fn name(&self) -> &'static str {
        each!(self, d => d.name())
    }

    #[inline]
    fn supports(&self, mode: Mode) -> bool {
        each!(self, d => d.supports(mode))
    }

    #[inline]
    fn register(&mut self, fd: RawFd, interest: Interest, mode: Mode) -> io::Result<()> {
        each!(self, d => d.register(fd, interest, mode))
    }

    #[inline]
    fn modify(&mut self, fd: RawFd, interest: Interest, mode: Mode) -> io::Result<()> {
        each!(self, d => d.modify(fd, interest, mode))
    }

    #[inline]
    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        each!(self, d => d.deregister(fd))
    }

    #[inline]
    fn dispatch(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        each!(self, d => d.dispatch(events, timeout))
    }

    #[inline]
    fn len(&self) -> usize {
        each!(self, d => d.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_builds_its_own_backend() {
        for &name in AnyDispatcher::names() {
            let d = match AnyDispatcher::by_name(name) {
                Err(e) if name == "uring" => return eprintln!("skipped: io_uring unavailable ({e})"),
                d => d.unwrap(),
            };
            assert_eq!(d.name(), name);
            assert_eq!(d.fresh().unwrap().name(), name, "fresh keeps the kind");
            assert_eq!(AnyDispatcher::by_name(&name.to_uppercase()).unwrap().name(), name);
        }
    }

    #[test]
    fn names_are_the_compiled_backends() {
        let names = AnyDispatcher::names();
        assert_eq!(&names[..2], ["select", "poll"]);
        #[cfg(muxloop_has_uring)]
        assert_eq!(&names[2..], ["epoll", "uring"]);
    }

    #[test]
    fn unknown_names_list_the_choices() {
        for bad in ["", "kqueue", "epoll "] {
            let err = AnyDispatcher::by_name(bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            for name in AnyDispatcher::names() {
                assert!(err.to_string().contains(name), "{err}");
            }
        }
    }

    #[test]
    fn new_is_the_default_kind_and_capabilities_follow_the_backend() {
        let d = AnyDispatcher::new().unwrap();
        assert_eq!(d.name(), DefaultDispatcher::NAME);
        assert_eq!(AnyDispatcher::NAME, "any");
        let poll = AnyDispatcher::by_name("poll").unwrap();
        assert!(!poll.supports(Mode::Edge) && poll.supports(Mode::Oneshot));
        let err = AnyDispatcher::by_name("select").unwrap().register(0, Interest::READABLE, Mode::Edge);
        assert!(err.unwrap_err().to_string().contains("select"), "errors name the real backend");
    }

    #[test]
    fn it_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<AnyDispatcher>();
    }
}
