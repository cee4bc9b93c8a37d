//! What only the io_uring backend has to get right, beyond the shared
//! dispatcher suite: completions that arrive after their registration is
//! gone (generations), multishot polls the kernel ends (re-arm), poll updates
//! that miss a poll which just fired, and rings far smaller than the number
//! of ready fds (a full submission queue, an overflowing completion queue).
//!
//! Every test first checks that io_uring is usable here and otherwise says
//! "skipped: io_uring unavailable (reason)". Tests hold one lock: several of
//! them need "the next socket gets this fd number". They share a process with
//! the dispatcher suite, so they also use its fd rules: the fd-number reuse
//! happens in a private range of high numbers (`suite::private_fd_base`), the
//! fd limit is only raised under its lock, and a test opening thousands of
//! fds holds its `fd_heavy` lock.
#![cfg(muxloop_has_uring)]

use crate::common;
use crate::suite::{URING_REUSE_SLOT, fd_heavy, private_fd_base};

use std::collections::HashSet;
use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use muxloop::{Dispatcher, Event, Events, Interest, Mode, UringDispatcher, sys};

const QUIET: Duration = Duration::from_millis(20);
const PATIENCE: Duration = Duration::from_secs(10);

static SERIAL: Mutex<()> = Mutex::new(());

/// The tests' lock, or `None` (the test then returns) where io_uring is
/// unavailable.
fn serial() -> Option<MutexGuard<'static, ()>> {
    if common::uring_unavailable() {
        return None;
    }
    Some(SERIAL.lock().unwrap_or_else(|e| e.into_inner()))
}

fn dispatch(d: &mut UringDispatcher, timeout: Duration) -> Vec<Event> {
    let mut events = Events::with_capacity(8);
    d.dispatch(&mut events, Some(timeout)).expect("dispatch");
    events.iter().copied().collect()
}

fn send(fd: &impl AsFd, data: &[u8]) {
    assert_eq!(sys::write(fd.as_fd(), data).unwrap(), data.len());
}

/// Reads until `WouldBlock` or EOF; returns the byte count. The suite
/// speaks in fd numbers (what a dispatcher sees), so this takes one.
fn drain(fd: RawFd) -> usize {
    // SAFETY: the suite passes only numbers of fds that an `OwnedFd` of the
    // calling test holds open for the whole call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let mut total = 0;
    let mut buf = [0u8; 4096];
    loop {
        match sys::read(borrowed, &mut buf) {
            Ok(0) => return total,
            Ok(n) => total += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return total,
            Err(e) => panic!("read fd {fd}: {e}"),
        }
    }
}

/// Raises RLIMIT_NOFILE to at least `min` (never lowers it: the suite's
/// tests in this process raise it too, under the same lock).
fn raise_nofile(min: u64) {
    crate::suite::need_nofile(min);
}

/// Deregisters and closes `a`, then checks that its peer sees the end: no
/// poll left in the kernel still holds the file.
fn close_and_check_no_poll_holds(d: &mut UringDispatcher, a: OwnedFd, a_peer: &OwnedFd, what: &str) {
    d.deregister(a.as_raw_fd()).unwrap();
    drop(a);
    let mut buf = [0u8; 8];
    let end = sys::read(a_peer.as_fd(), &mut buf);
    assert_eq!(end.as_ref().ok(), Some(&0), "{what}: the peer sees the file closed: {end:?}");
}

/// Dispatches until `fds` have each been reported at least once; returns how
/// many times each fd was reported in all (panics after `PATIENCE`).
fn collect_until_all(d: &mut UringDispatcher, fds: &[RawFd]) -> Vec<RawFd> {
    let wanted: HashSet<RawFd> = fds.iter().copied().collect();
    let mut seen = HashSet::new();
    let mut all = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while seen.len() < wanted.len() {
        assert!(Instant::now() < deadline, "only {} of {} fds reported", seen.len(), wanted.len());
        for e in dispatch(d, QUIET) {
            assert!(wanted.contains(&e.fd()), "unexpected event {e:?}");
            seen.insert(e.fd());
            all.push(e.fd());
        }
    }
    all
}

/// The old registration's poll fires, its completion waits in the queue, the
/// owner deregisters and closes the fd, and a new socket with the same number
/// is registered, all before the next dispatch: the stale completion must not
/// be delivered to the new owner.
#[test]
fn fd_reuse_after_deregister_within_one_batch() {
    let Some(_serial) = serial() else { return };
    let base = private_fd_base::<UringDispatcher>(URING_REUSE_SLOT);
    let mut d = UringDispatcher::new().unwrap();
    let (a, a_peer) = sys::socketpair().unwrap();
    let a = sys::dup_at_least(a.as_fd(), base).unwrap(); // a number nobody else here takes
    let number = a.as_raw_fd();
    d.register(number, Interest::READABLE, Mode::Level).unwrap();
    assert!(dispatch(&mut d, Duration::ZERO).is_empty(), "armed, nothing ready");
    send(&a_peer, b"old");
    // The write's return to user space runs the poll's completion: it is in
    // the completion queue now, tagged with the old registration.
    d.deregister(number).unwrap();
    drop(a);
    let (b, b_peer) = sys::socketpair().unwrap();
    let b = sys::dup_at_least(b.as_fd(), number).unwrap();
    assert_eq!(b.as_raw_fd(), number, "the number was reused");
    d.register(number, Interest::READABLE, Mode::Level).unwrap();
    assert!(dispatch(&mut d, QUIET).is_empty(), "the old file's readiness is not the new one's");
    send(&b_peer, b"new");
    let events = dispatch(&mut d, PATIENCE);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].fd() == number && events[0].is_readable());
    assert_eq!(drain(number), 3);
    d.deregister(number).unwrap();
}

/// A oneshot poll fires and, before its completion is harvested, `modify`
/// re-arms it: the poll update finds no poll (it already completed), the old
/// completion is stale, and the backend must arm a fresh poll in the same
/// dispatch, which then reports exactly once.
#[test]
fn modify_on_a_fired_oneshot() {
    let Some(_serial) = serial() else { return };
    let mut d = UringDispatcher::new().unwrap();
    let (a, a_peer) = sys::socketpair().unwrap();
    let fa = a.as_raw_fd();
    d.register(fa, Interest::READABLE, Mode::Oneshot).unwrap();
    assert!(dispatch(&mut d, Duration::ZERO).is_empty());
    send(&a_peer, b"x");
    d.modify(fa, Interest::BOTH, Mode::Oneshot).unwrap();
    let events = dispatch(&mut d, PATIENCE);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].is_readable() && events[0].is_writable(), "the new interest: {:?}", events[0]);
    assert!(dispatch(&mut d, QUIET).is_empty(), "oneshot: not again until modified");

    // Modify after the event was harvested: a new poll, one more event.
    d.modify(fa, Interest::WRITABLE, Mode::Oneshot).unwrap();
    let events = dispatch(&mut d, PATIENCE);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].is_writable() && !events[0].is_readable(), "{:?}", events[0]);
    assert!(dispatch(&mut d, QUIET).is_empty());

    // Modify of a poll still in flight (nothing ready): a poll update that takes.
    d.modify(fa, Interest::READABLE, Mode::Oneshot).unwrap();
    assert_eq!(drain(fa), 1);
    assert!(dispatch(&mut d, QUIET).is_empty());
    d.modify(fa, Interest::READABLE, Mode::Level).unwrap();
    assert!(dispatch(&mut d, QUIET).is_empty(), "updated in flight, still nothing to read");
    send(&a_peer, b"y");
    assert_eq!(dispatch(&mut d, PATIENCE).len(), 1);
    assert_eq!(dispatch(&mut d, PATIENCE).len(), 1, "level now: reported again until drained");
    d.deregister(fa).unwrap();
}

/// `modify` from level to edge: a poll update cannot make the armed
/// one-shot poll multishot, so the backend must replace it. Then each new
/// edge is reported once, and unread data is never reported again (a
/// one-shot poll, re-armed after the first edge, would report it again).
#[test]
fn level_modified_to_edge_is_edge_triggered() {
    let Some(_serial) = serial() else { return };
    let mut d = UringDispatcher::new().unwrap();
    let (a, a_peer) = sys::socketpair().unwrap();
    let fa = a.as_raw_fd();
    d.register(fa, Interest::READABLE, Mode::Level).unwrap();
    assert!(dispatch(&mut d, QUIET).is_empty(), "armed, nothing to read");
    d.modify(fa, Interest::READABLE, Mode::Edge).unwrap();
    assert!(dispatch(&mut d, QUIET).is_empty(), "nothing to read yet");
    for round in 0..3 {
        send(&a_peer, b"edge");
        let events = dispatch(&mut d, PATIENCE);
        assert_eq!(events.len(), 1, "round {round}: {events:?}");
        assert!(events[0].fd() == fa && events[0].is_readable() && !events[0].is_writable());
        for _ in 0..3 {
            assert!(dispatch(&mut d, QUIET).is_empty(), "round {round}: unread data is no new edge");
        }
    }
    assert_eq!(drain(fa), 12);
    d.deregister(fa).unwrap();
}

/// `modify` from edge to level: the multishot poll must go (not stay beside
/// the level one), so the fd is reported as level-triggered, and after
/// `deregister` and `close` no poll holds the file: the peer sees the end.
#[test]
fn edge_modified_to_level_leaves_no_poll_behind() {
    let Some(_serial) = serial() else { return };
    let mut d = UringDispatcher::new().unwrap();
    let (a, a_peer) = sys::socketpair().unwrap();
    let fa = a.as_raw_fd();
    d.register(fa, Interest::READABLE, Mode::Edge).unwrap();
    assert!(dispatch(&mut d, QUIET).is_empty(), "armed, nothing to read");
    d.modify(fa, Interest::READABLE, Mode::Level).unwrap();
    send(&a_peer, b"level");
    for pass in 0..3 {
        let events = dispatch(&mut d, PATIENCE);
        assert_eq!(events.len(), 1, "pass {pass}: unread data is reported again: {events:?}");
        assert!(events[0].fd() == fa && events[0].is_readable());
    }
    assert_eq!(drain(fa), 5);
    close_and_check_no_poll_holds(&mut d, a, &a_peer, "edge -> level");
}

/// A `modify` that keeps the mode is one poll update, and the update's own
/// completion is bookkeeping: it must not arm a second poll beside the
/// updated one (a second poll would hold the file open after `deregister`
/// and `close`, and the peer would never see the end).
#[test]
fn modified_registration_leaves_one_poll() {
    let Some(_serial) = serial() else { return };
    for mode in [Mode::Level, Mode::Edge] {
        let mut d = UringDispatcher::new().unwrap();
        let (a, a_peer) = sys::socketpair().unwrap();
        let fa = a.as_raw_fd();
        d.register(fa, Interest::READABLE, mode).unwrap();
        assert!(dispatch(&mut d, QUIET).is_empty(), "{mode:?}: armed, nothing to read");
        d.modify(fa, Interest::BOTH, mode).unwrap();
        let events = dispatch(&mut d, PATIENCE);
        assert!(events.len() == 1 && events[0].is_writable(), "{mode:?}: {events:?}");
        d.modify(fa, Interest::READABLE, mode).unwrap();
        assert!(dispatch(&mut d, QUIET).is_empty(), "{mode:?}: nothing to read");
        close_and_check_no_poll_holds(&mut d, a, &a_peer, &format!("{mode:?}"));
    }
}

/// A failed poll update (its poll had fired) whose completion arrives after
/// the fd was deregistered and registered again belongs to the old
/// registration: it must not arm a second poll beside the new one (which,
/// never firing, would keep the file open after the final `deregister` and
/// `close`).
#[test]
fn failed_update_of_an_old_registration_is_ignored() {
    let Some(_serial) = serial() else { return };
    let mut d = UringDispatcher::new().unwrap();
    let (a, a_peer) = sys::socketpair().unwrap();
    let fa = a.as_raw_fd();
    d.register(fa, Interest::READABLE, Mode::Oneshot).unwrap();
    assert!(dispatch(&mut d, Duration::ZERO).is_empty(), "armed, nothing to read");
    send(&a_peer, b"x"); // the poll fires; its completion waits in the queue
    d.modify(fa, Interest::READABLE, Mode::Oneshot).unwrap(); // an update that will find no poll
    d.deregister(fa).unwrap(); // submits the update and the remove now
    assert_eq!(drain(fa), 1);
    d.register(fa, Interest::READABLE, Mode::Oneshot).unwrap();
    assert!(dispatch(&mut d, QUIET).is_empty(), "the old data is gone");
    close_and_check_no_poll_holds(&mut d, a, &a_peer, "re-registered");
}

/// A dispatch with a zero timeout still collects completions the kernel has
/// pending for this thread. With cooperative task running, a poll that fires
/// because of another thread's write completes as task work of this thread,
/// run at its next entry into the kernel: the zero-timeout path, which
/// otherwise makes no system call, must enter when the ring flags such work.
/// (This thread makes no system call between the write and the dispatch: it
/// waits for the writer by spinning on an atomic. An interrupt in between
/// may run the work early, so the check repeats.)
#[test]
fn zero_timeout_dispatch_reports_what_is_ready() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let Some(_serial) = serial() else { return };
    const ROUNDS: u32 = 20;
    let mut d = UringDispatcher::new().unwrap();
    let (a, a_peer) = sys::socketpair().unwrap();
    let fa = a.as_raw_fd();
    d.register(fa, Interest::READABLE, Mode::Edge).unwrap(); // multishot: nothing to re-arm
    assert!(dispatch(&mut d, Duration::ZERO).is_empty(), "armed, nothing to read");
    let (go, done) = (AtomicU32::new(0), AtomicU32::new(0));
    let deadline = Instant::now() + PATIENCE;
    let wait_for = |counter: &AtomicU32, round: u32| {
        while counter.load(Ordering::Acquire) < round {
            assert!(Instant::now() < deadline, "round {round}: the other thread never got there");
            std::hint::spin_loop();
        }
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            for round in 1..=ROUNDS {
                wait_for(&go, round);
                send(&a_peer, b"x");
                done.store(round, Ordering::Release);
            }
        });
        for round in 1..=ROUNDS {
            go.store(round, Ordering::Release);
            wait_for(&done, round);
            let events = dispatch(&mut d, Duration::ZERO);
            assert!(
                events.len() == 1 && events[0].fd() == fa && events[0].is_readable(),
                "round {round}: {events:?}"
            );
        }
    });
    assert_eq!(drain(fa), ROUNDS as usize);
    d.deregister(fa).unwrap();
}

/// With a tiny completion queue, a burst of edges overflows it; the kernel
/// then ends multishot polls (a completion without `IORING_CQE_F_MORE`). The
/// backend re-arms them (on a grown ring), so every later edge is still
/// reported, and unread data stops being reported after a few dispatches.
#[test]
fn edge_multishot_is_rearmed_when_the_kernel_ends_it() {
    let Some(_serial) = serial() else { return };
    // 256: twice that plus 2 needs the next power of two up (1,024).
    const N: usize = 256;
    raise_nofile(2 * N as u64 + 256);
    let mut d = UringDispatcher::with_entries(2).unwrap();
    assert!(d.completion_capacity() < N);
    let pairs: Vec<(OwnedFd, OwnedFd)> = (0..N).map(|_| sys::socketpair().unwrap()).collect();
    let fds: Vec<RawFd> = pairs.iter().map(|(a, _)| a.as_raw_fd()).collect();
    for &fd in &fds {
        d.register(fd, Interest::READABLE, Mode::Edge).unwrap();
    }
    assert!(dispatch(&mut d, QUIET).is_empty());
    for round in 0..6 {
        for (_, peer) in &pairs {
            send(peer, b"e");
        }
        collect_until_all(&mut d, &fds);
        // Edge: the data is left unread. Re-armed polls may report it once more
        // (a spurious wake-up, allowed), but it must settle, not flood.
        let settled = (0..4).any(|_| dispatch(&mut d, QUIET).is_empty());
        assert!(settled, "round {round}: unread data still reported after 4 dispatches");
        assert!(dispatch(&mut d, QUIET).is_empty(), "round {round}: old data is no new edge");
    }
    // Grown once, to twice the registered fds (rounded up to a power of two).
    assert_eq!(d.completion_capacity(), (2 * N + 2).next_power_of_two(), "the ring grew");
    for &fd in &fds {
        assert_eq!(drain(fd), 6);
        d.deregister(fd).unwrap();
    }
    assert!(d.is_empty());
}

/// Few fds can overflow a small completion queue too (here with the
/// completions of 30 poll updates on 3 fds): the ring still grows, to at
/// least twice its size, and keeps reporting.
#[test]
fn an_overflow_with_few_fds_still_grows_the_ring() {
    let Some(_serial) = serial() else { return };
    let mut d = UringDispatcher::with_entries(1).unwrap();
    assert_eq!(d.completion_capacity(), 8);
    let pairs: Vec<(OwnedFd, OwnedFd)> = (0..3).map(|_| sys::socketpair().unwrap()).collect();
    for (a, _) in &pairs {
        d.register(a.as_raw_fd(), Interest::READABLE, Mode::Level).unwrap();
    }
    assert!(dispatch(&mut d, Duration::ZERO).is_empty());
    for _ in 0..10 {
        for (a, _) in &pairs {
            d.modify(a.as_raw_fd(), Interest::READABLE, Mode::Level).unwrap();
        }
    }
    assert!(dispatch(&mut d, QUIET).is_empty(), "updates are bookkeeping, not events");
    assert_eq!(d.completion_capacity(), 16, "grown to twice its size");
    send(&pairs[1].1, b"after");
    let events = dispatch(&mut d, PATIENCE);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].fd() == pairs[1].0.as_raw_fd() && events[0].is_readable());
    for (a, _) in &pairs {
        d.deregister(a.as_raw_fd()).unwrap();
    }
}

/// 5,000 fds on the default ring (256 submission slots, 2,048 completion
/// slots): registering them overflows the submission queue many times, and
/// all of them ready at once overflows the completion queue. One dispatch
/// still reports each exactly once, and a drained set reports nothing.
#[test]
fn five_thousand_ready_fds_in_one_dispatch() {
    let Some(_serial) = serial() else { return };
    let _heavy = fd_heavy();
    const N: usize = 5000;
    raise_nofile(2 * N as u64 + 256);
    let mut d = UringDispatcher::new().unwrap();
    let pairs: Vec<(OwnedFd, OwnedFd)> = (0..N).map(|_| sys::socketpair().unwrap()).collect();
    for (a, _) in &pairs {
        d.register(a.as_raw_fd(), Interest::READABLE, Mode::Level).unwrap();
    }
    assert_eq!(d.len(), N);
    assert!(dispatch(&mut d, QUIET).is_empty(), "all idle");
    for (_, peer) in &pairs {
        send(peer, b"!");
    }
    let events = dispatch(&mut d, PATIENCE);
    let fds: HashSet<RawFd> = events.iter().map(Event::fd).collect();
    assert_eq!(fds.len(), events.len(), "each fd once per batch");
    assert_eq!(events.len(), N, "every ready fd in one dispatch (completion queue overflow fetched)");
    assert!(events.iter().all(Event::is_readable));
    assert_eq!(d.completion_capacity(), (2 * N + 2).next_power_of_two(), "grown to twice the fds");

    // Level: undrained fds are reported again; drained ones are not.
    for (a, _) in &pairs[..N / 2] {
        assert_eq!(drain(a.as_raw_fd()), 1);
    }
    let again = dispatch(&mut d, PATIENCE);
    assert_eq!(again.len(), N - N / 2, "only the undrained half");
    for (a, _) in &pairs[N / 2..] {
        assert_eq!(drain(a.as_raw_fd()), 1);
    }
    assert!(dispatch(&mut d, QUIET).is_empty());
    for (a, _) in &pairs {
        d.deregister(a.as_raw_fd()).unwrap();
    }
    assert!(d.is_empty());
}

/// A ring of two slots still handles many registrations, modifies and
/// removals between dispatches (each full submission queue is flushed).
#[test]
fn a_tiny_ring_takes_any_number_of_requests() {
    let Some(_serial) = serial() else { return };
    let mut d = UringDispatcher::with_entries(2).unwrap();
    let pairs: Vec<(OwnedFd, OwnedFd)> = (0..100).map(|_| sys::socketpair().unwrap()).collect();
    for (a, _) in &pairs {
        d.register(a.as_raw_fd(), Interest::READABLE, Mode::Level).unwrap();
        d.modify(a.as_raw_fd(), Interest::WRITABLE, Mode::Level).unwrap();
    }
    let events = dispatch(&mut d, PATIENCE);
    assert_eq!(events.len(), 100, "all writable");
    for (a, _) in &pairs[..50] {
        d.deregister(a.as_raw_fd()).unwrap();
    }
    let events = dispatch(&mut d, PATIENCE);
    assert_eq!(events.len(), 50, "the removed half is gone: {}", events.len());
    for (a, _) in &pairs[50..] {
        d.deregister(a.as_raw_fd()).unwrap();
    }
    assert!(dispatch(&mut d, QUIET).is_empty());
}

/// Errors say what is wrong, as the other backends do.
#[test]
fn errors_have_the_contract_kinds() {
    let Some(_serial) = serial() else { return };
    let mut d = UringDispatcher::new().unwrap();
    let (a, _peer) = sys::socketpair().unwrap();
    let fa = a.as_raw_fd();
    assert_eq!(d.deregister(fa).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(d.modify(fa, Interest::READABLE, Mode::Level).unwrap_err().kind(), ErrorKind::NotFound);
    d.register(fa, Interest::READABLE, Mode::Edge).unwrap();
    assert_eq!(d.register(fa, Interest::READABLE, Mode::Level).unwrap_err().kind(), ErrorKind::AlreadyExists);
    assert_eq!(d.modify(fa, Interest::NONE, Mode::Level).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(d.register(-1, Interest::READABLE, Mode::Level).unwrap_err().kind(), ErrorKind::InvalidInput);
    let err = d.register(1 << 30, Interest::READABLE, Mode::Level).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(9), "EBADF for a number that is not open: {err}");
    d.deregister(fa).unwrap();
    assert!(d.is_empty());
}

/// A dispatch asleep with no timeout wakes when another thread makes an fd
/// ready (the poll completes on that thread's side; the sleeper must be
/// woken to process it, cooperative task running or not).
#[test]
fn another_thread_wakes_a_dispatch_without_timeout() {
    let Some(_serial) = serial() else { return };
    let mut d = UringDispatcher::new().unwrap();
    let (a, a_peer) = sys::socketpair().unwrap();
    let fa = a.as_raw_fd();
    d.register(fa, Interest::READABLE, Mode::Level).unwrap();
    for round in 0..20 {
        let writer = std::thread::spawn({
            let peer = a_peer.try_clone().unwrap();
            move || {
                std::thread::sleep(Duration::from_millis(20));
                send(&peer, b"w");
            }
        });
        let start = Instant::now();
        let mut events = Events::with_capacity(4);
        d.dispatch(&mut events, None).unwrap();
        assert!(start.elapsed() < Duration::from_secs(5), "round {round}: woke late");
        assert_eq!(events.len(), 1, "round {round}");
        writer.join().unwrap();
        assert_eq!(drain(fa), 1);
    }
    d.deregister(fa).unwrap();
}
