//! Tests that kill mutants `cargo mutants --file 'src/dispatcher/*'` found
//! alive in the older suites (see `docs/mutants.md`). They drive the
//! `Dispatcher` trait directly, once per backend.

mod common;

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use muxloop::{Dispatcher, Events, Interest, Mode};

/// More ready fds than epoll's first event buffer (256) holds: the first
/// dispatch may report only part of them, but the buffer grows so the next
/// one reports all of them (level-triggered: they are all still ready).
fn many_ready_fds_all_reported_by_the_second_dispatch<D: Dispatcher + 'static>() {
    const N: usize = 300;
    let mut d = D::new().unwrap();
    let pairs: Vec<(OwnedFd, OwnedFd)> = (0..N).map(|_| muxloop::sys::socketpair().unwrap()).collect();
    for (a, b) in &pairs {
        muxloop::sys::write(b.as_raw_fd(), b"x").unwrap();
        d.register(a.as_raw_fd(), Interest::READABLE, Mode::Level).unwrap();
    }
    assert_eq!(d.len(), N);
    let mut events = Events::with_capacity(8);
    d.dispatch(&mut events, Some(Duration::from_secs(5))).unwrap();
    let first = events.len();
    assert!((1..=N).contains(&first), "first dispatch: {first}");
    d.dispatch(&mut events, Some(Duration::from_secs(5))).unwrap();
    assert_eq!(events.len(), N, "second dispatch (first gave {first})");
    d.dispatch(&mut events, Some(Duration::from_secs(5))).unwrap();
    assert_eq!(events.len(), N, "third dispatch");
    for (a, _) in &pairs {
        d.deregister(a.as_raw_fd()).unwrap();
    }
    assert_eq!(d.len(), 0);
    assert!(d.is_empty());
}

/// A fired (disarmed) oneshot fd survives another fd's removal moving it
/// in the backend's tables: it is then re-armed, reported again, and removed.
fn disarmed_oneshot_fd_survives_a_neighbour_removal<D: Dispatcher + 'static>() {
    let mut d = D::new().unwrap();
    let (a, a_peer) = muxloop::sys::socketpair().unwrap();
    let (b, b_peer) = muxloop::sys::socketpair().unwrap();
    let (c, _c_peer) = muxloop::sys::socketpair().unwrap();
    let (a, b, c) = (a.as_raw_fd(), b.as_raw_fd(), c.as_raw_fd());
    d.register(a, Interest::READABLE, Mode::Level).unwrap();
    d.register(b, Interest::READABLE, Mode::Oneshot).unwrap();
    d.register(c, Interest::READABLE, Mode::Level).unwrap();
    muxloop::sys::write(b_peer.as_raw_fd(), b"x").unwrap();
    let mut events = Events::with_capacity(8);
    d.dispatch(&mut events, Some(Duration::from_secs(5))).unwrap();
    let fds: Vec<_> = events.iter().map(|e| e.fd()).collect();
    assert_eq!(fds, [b]);
    // Fired: disarmed, not reported while still readable.
    d.dispatch(&mut events, Some(Duration::ZERO)).unwrap();
    assert!(events.is_empty(), "a fired oneshot fd is reported once");
    // Removing `a` moves the last entry into its place (poll's swap_remove).
    d.deregister(a).unwrap();
    d.deregister(c).unwrap();
    assert_eq!(d.len(), 1);
    d.modify(b, Interest::READABLE, Mode::Oneshot).unwrap();
    d.dispatch(&mut events, Some(Duration::from_secs(5))).unwrap();
    let fds: Vec<_> = events.iter().map(|e| e.fd()).collect();
    assert_eq!(fds, [b], "re-armed after the move");
    d.deregister(b).unwrap();
    assert_eq!(d.len(), 0);
    // `a` is gone from the backend: its readiness is not reported.
    d.register(b, Interest::READABLE, Mode::Level).unwrap();
    muxloop::sys::write(a_peer.as_raw_fd(), b"y").unwrap();
    d.dispatch(&mut events, Some(Duration::from_secs(5))).unwrap();
    let fds: Vec<_> = events.iter().map(|e| e.fd()).collect();
    assert_eq!(fds, [b]);
    d.deregister(b).unwrap();
}

for_each_dispatcher!(
    many_ready_fds_all_reported_by_the_second_dispatch,
    disarmed_oneshot_fd_survives_a_neighbour_removal,
);
