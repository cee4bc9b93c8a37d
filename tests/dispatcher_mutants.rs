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

for_each_dispatcher!(many_ready_fds_all_reported_by_the_second_dispatch);
