//! Tests that kill mutants `cargo mutants --file 'src/dispatcher/*'` found
//! alive in the older suites (see `docs/mutants.md`). They drive the
//! `Dispatcher` trait directly, once per backend.

mod common;

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use muxloop::{Dispatcher, Events, Interest, Mode};

/// More ready fds than epoll's first event buffer (256) holds: the first
/// dispatch may report only part of them, but the buffer grows so the next
/// one reports all of them (level-triggered: they are all still ready).
fn many_ready_fds_all_reported_by_the_second_dispatch<D: Dispatcher + 'static>() {
    const N: usize = 300;
    let mut d = D::new().unwrap();
    let pairs: Vec<(OwnedFd, OwnedFd)> = (0..N).map(|_| muxloop::sys::socketpair().unwrap()).collect();
    for (a, b) in &pairs {
        muxloop::sys::write(b.as_fd(), b"x").unwrap();
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
    muxloop::sys::write(b_peer.as_fd(), b"x").unwrap();
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
    muxloop::sys::write(a_peer.as_fd(), b"y").unwrap();
    d.dispatch(&mut events, Some(Duration::from_secs(5))).unwrap();
    let fds: Vec<_> = events.iter().map(|e| e.fd()).collect();
    assert_eq!(fds, [b]);
    d.deregister(b).unwrap();
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// The contract: a wait interrupted by a signal (`EINTR`) is an empty batch,
/// not an error. Another thread signals this one until the wait returns.
fn interrupted_wait_is_an_empty_batch<D: Dispatcher + 'static>() {
    static SERIAL: Mutex<()> = Mutex::new(());
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: `ignore_signal` does nothing, which is async-signal-safe.
    let previous = unsafe { muxloop::sys::set_signal_handler(libc::SIGUSR2, ignore_signal) }.unwrap();
    let mut d = D::new().unwrap();
    let (idle, _peer) = muxloop::sys::socketpair().unwrap();
    d.register(idle.as_raw_fd(), Interest::READABLE, Mode::Level).unwrap();
    let me = muxloop::sys::current_thread();
    let done = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&done);
    let sender = thread::spawn(move || {
        while !stop.load(Ordering::Acquire) {
            thread::sleep(Duration::from_millis(20));
            if !stop.load(Ordering::Acquire) {
                // SAFETY: `me` is the test's thread, which joins this one before it returns.
                unsafe { muxloop::sys::signal_thread(me, libc::SIGUSR2) }.unwrap();
            }
        }
    });
    let mut events = Events::with_capacity(8);
    let t0 = Instant::now();
    let result = d.dispatch(&mut events, Some(Duration::from_secs(8)));
    done.store(true, Ordering::Release);
    sender.join().unwrap();
    muxloop::sys::restore_signal_action(libc::SIGUSR2, &previous).unwrap();
    assert!(result.is_ok(), "EINTR must be an empty batch, got {result:?}");
    assert!(events.is_empty());
    assert!(t0.elapsed() < Duration::from_secs(6), "the signal did not interrupt the wait");
    d.deregister(idle.as_raw_fd()).unwrap();
}

/// `READ_CLOSED` comes with readable interest once the peer shuts down its
/// sending side, on the backends that report it (those that support edge
/// triggering), and never before.
fn read_closed_only_after_the_peer_shuts_down<D: Dispatcher + 'static>() {
    let mut d = D::new().unwrap();
    let (a, peer) = std::os::unix::net::UnixStream::pair().unwrap();
    d.register(a.as_raw_fd(), Interest::READABLE, Mode::Level).unwrap();
    (&peer).write_all(b"data").unwrap();
    let mut events = Events::with_capacity(8);
    d.dispatch(&mut events, Some(Duration::from_secs(5))).unwrap();
    let event = events.get(0).expect("readable");
    assert!(event.is_readable() && !event.is_read_closed(), "{}: data only: {event:?}", D::NAME);
    assert_eq!(events.get(1), None);
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    d.dispatch(&mut events, Some(Duration::from_secs(5))).unwrap();
    let event = events.get(0).expect("readable");
    assert_eq!(event.is_read_closed(), d.supports(Mode::Edge), "{}: after shutdown: {event:?}", D::NAME);
    d.deregister(a.as_raw_fd()).unwrap();
}

/// select's cost follows the highest registered fd: removing that fd
/// shrinks the scan to the next highest, removing the last one to nothing.
#[test]
fn select_scan_follows_the_highest_fd() {
    let mut d = muxloop::SelectDispatcher::new().unwrap();
    let (low, _low_peer) = muxloop::sys::socketpair().unwrap();
    let (high, _high_peer) = muxloop::sys::socketpair().unwrap();
    let (low, high) = (low.as_raw_fd().min(high.as_raw_fd()), low.as_raw_fd().max(high.as_raw_fd()));
    let mut events = Events::with_capacity(8);
    for fd in [low, high] {
        d.register(fd, Interest::READABLE, Mode::Level).unwrap();
    }
    d.dispatch(&mut events, Some(Duration::ZERO)).unwrap();
    assert_eq!(events.scanned(), high as usize + 1);
    d.deregister(high).unwrap();
    d.dispatch(&mut events, Some(Duration::ZERO)).unwrap();
    assert_eq!(events.scanned(), low as usize + 1, "after removing the highest fd");
    d.deregister(low).unwrap();
    d.dispatch(&mut events, Some(Duration::ZERO)).unwrap();
    assert_eq!(events.scanned(), 0, "nothing registered");
}

for_each_dispatcher!(
    read_closed_only_after_the_peer_shuts_down,
    interrupted_wait_is_an_empty_batch,
    many_ready_fds_all_reported_by_the_second_dispatch,
    disarmed_oneshot_fd_survives_a_neighbour_removal,
);
