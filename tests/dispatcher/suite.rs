//! The behavioural suite for the `Dispatcher` contract (documented in
//! `src/dispatcher/mod.rs`) and for the `EventLoop` built on it.
//!
//! `for_each_dispatcher!` (in `tests/common`) instantiates the same generic
//! test functions in one module per dispatcher (`select`, `poll`, `epoll`,
//! `uring`, and `any`: `AnyDispatcher`, the run-time choice), so every case
//! runs against each of them on real fds: socket pairs, pipes, std
//! `UnixStream`s, fds above `FD_SETSIZE`, 5,000 idle socket pairs.
//! Expectations that differ by backend follow [`kind`], the backend a
//! dispatcher really runs on (for `any`, the one it chose).
//!
//! `for_sim_dispatcher!` runs the cases a single-threaded simulated kernel
//! can serve once more, in `mod sim`, on `SimDispatcher` (modelled on epoll:
//! edge-triggered, `READ_CLOSED`; its scan cost is every registered fd, as
//! poll's); the list at the end of this file says which cases it leaves out.
//!
//! Rules every test keeps:
//! * bounded in time: `run_once` with a timeout inside an overall deadline,
//!   and a guard timer or a watchdog thread around every `run()`;
//! * fds are deregistered before they are closed (except in the one test
//!   about the owner forgetting to);
//! * timing is only checked as a lower bound ("a 50 ms timer did not fire
//!   before 50 ms"), never as a performance bound.
//!
//! Fd numbers are process-wide and the harness runs tests on several threads.
//! Tests that need "the kernel reuses number X" therefore work in a private
//! range of high fd numbers (`private_fd_base`) where no other test
//! allocates, so the lowest free number at or above X really is X; and the test
//! that opens 10,000 fds holds `FD_HEAVY` so at most one such test runs at a
//! time (three at once would exceed a 20,000 fd limit).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use muxloop::{Dispatcher, Event, EventLoop, Events, Interest, Mode, TimerId, sys};

/// How long "nothing happens" is observed.
const QUIET: Duration = Duration::from_millis(20);
/// A short, measurable wait.
const SHORT: Duration = Duration::from_millis(50);
/// Generous bound for anything that should happen "now" on a noisy machine.
const PATIENCE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// Held by tests that open thousands of fds, so they never overlap.
static FD_HEAVY: Mutex<()> = Mutex::new(());
/// Serialises read-modify-write of RLIMIT_NOFILE (two threads raising it at
/// once must not end with the smaller value).
static NOFILE: Mutex<()> = Mutex::new(());

pub(crate) fn fd_heavy() -> MutexGuard<'static, ()> {
    FD_HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Raises the soft RLIMIT_NOFILE to `min(hard, 20,000)` (never lowers it) and
/// returns the soft limit now in force.
fn raise_nofile() -> u64 {
    let _guard = NOFILE.lock().unwrap_or_else(|e| e.into_inner());
    let (soft, hard) = sys::nofile_limit().unwrap();
    let wanted = hard.min(20_000);
    if soft >= wanted { soft } else { sys::set_nofile_limit(wanted).unwrap() }
}

/// Raises RLIMIT_NOFILE and insists on at least `min`.
pub(crate) fn need_nofile(min: u64) {
    let soft = raise_nofile();
    assert!(soft >= min, "this test needs RLIMIT_NOFILE >= {min}; the limit here is {soft} (ulimit -Hn)");
}

fn backend_index<D: Dispatcher>() -> i64 {
    match D::NAME {
        "select" => 0,
        "poll" => 1,
        "epoll" => 2,
        "uring" => 3,
        "sim" => 5,
        _ => 4, // "any"
    }
}

/// The backend `D` runs on: its own name, or for `AnyDispatcher` the one it
/// chose, so that backend-specific expectations follow what really runs.
fn kind<D: Dispatcher>() -> &'static str {
    D::new().expect("a dispatcher").name()
}

/// Tests that use a private fd range, one slot each.
const REUSE_OTHER_SLOT: i64 = 0;
const REUSE_SELF_SLOT: i64 = 1;
const REUSE_DISPATCHER_SLOT: i64 = 2;
const CLOSED_SLOT: i64 = 3;
/// `tests/dispatcher/uring.rs`'s fd-reuse test (it shares this process).
#[cfg(muxloop_has_uring)]
pub(crate) const URING_REUSE_SLOT: i64 = 4;
const SLOTS: i64 = 5;

/// The first number of a 100-fd range near the top of the fd limit that only
/// the test in `slot` for backend `D` uses. Everything else in this binary
/// allocates the lowest free numbers (at most ~10,200 of them at once), so
/// `dup_at_least(fd, x)` returns exactly `x` whenever this test has just freed `x`.
pub(crate) fn private_fd_base<D: Dispatcher>(slot: i64) -> RawFd {
    need_nofile(14_600);
    let top = raise_nofile().min(20_000) as i64;
    let base = top - 100 * (1 + backend_index::<D>() * SLOTS + slot);
    assert!(base > 12_000, "private fd range {base} would overlap the fds other tests open");
    base as RawFd
}

/// Moves `fd` onto the lowest free number `>= number` (closing the original).
fn moved_to(fd: OwnedFd, number: RawFd) -> OwnedFd {
    let moved = sys::dup_at_least(fd.as_fd(), number).unwrap();
    drop(fd); // only the duplicate refers to the socket now
    moved
}

/// A socket pair whose first end lives at or above `min`.
fn socketpair_at(min: RawFd) -> (OwnedFd, OwnedFd) {
    let (a, b) = sys::socketpair().unwrap();
    let a = moved_to(a, min);
    assert!(a.as_raw_fd() >= min);
    (a, b)
}

/// One dispatch; the events as a vector.
fn dispatch<D: Dispatcher>(d: &mut D, timeout: Duration) -> Vec<Event> {
    let mut events = Events::with_capacity(8);
    d.dispatch(&mut events, Some(timeout)).expect("dispatch");
    events.iter().copied().collect()
}

fn sorted_fds(events: &[Event]) -> Vec<RawFd> {
    let mut fds: Vec<RawFd> = events.iter().map(Event::fd).collect();
    fds.sort_unstable();
    fds
}

fn sorted(mut fds: Vec<RawFd>) -> Vec<RawFd> {
    fds.sort_unstable();
    fds
}

/// The event for `fd`, if reported (at most once per batch).
fn event_for(events: &[Event], fd: RawFd) -> Option<Event> {
    let mut found = events.iter().filter(|e| e.fd() == fd);
    let first = found.next().copied();
    assert!(found.next().is_none(), "fd {fd} reported twice in one batch: {events:?}");
    first
}

/// Asserts the batch is exactly one event, for `fd`, and returns it.
fn only_event(events: &[Event], fd: RawFd) -> Event {
    assert_eq!(sorted_fds(events), [fd], "expected exactly fd {fd}: {events:?}");
    events[0]
}

fn send(fd: &impl AsFd, data: &[u8]) {
    assert_eq!(sys::write(fd.as_fd(), data).unwrap(), data.len());
}

/// Reads until `WouldBlock` or EOF; returns the bytes. The suite speaks in
/// fd numbers (what a dispatcher sees), so this takes one.
fn read_all(fd: RawFd) -> Vec<u8> {
    // SAFETY: the suite passes only numbers of fds that an `OwnedFd` of the
    // calling test holds open for the whole call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match sys::read(borrowed, &mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return out,
            Err(e) => panic!("read fd {fd}: {e}"),
        }
    }
}

fn drain(fd: RawFd) -> usize {
    read_all(fd).len()
}

/// Turns the loop (20 ms at a time) until `done()` or `PATIENCE` passes.
fn turn_until<D: Dispatcher>(ev: &mut EventLoop<D>, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "{}: timed out waiting for {what}", D::NAME);
        ev.run_once(Some(QUIET)).unwrap();
    }
}

/// Turns the loop for at least `span` (used to show that something does *not* happen).
fn turn_for<D: Dispatcher>(ev: &mut EventLoop<D>, span: Duration) {
    let until = Instant::now() + span;
    while Instant::now() < until {
        ev.run_once(Some(until.saturating_duration_since(Instant::now()))).unwrap();
    }
}

/// `run()` under a guard timer: returns false if the guard had to stop it.
fn run_guarded<D: Dispatcher + 'static>(ev: &mut EventLoop<D>, limit: Duration) -> bool {
    let guard_fired = Rc::new(Cell::new(false));
    let flag = Rc::clone(&guard_fired);
    let guard = ev.run_after(limit, move |ev| {
        flag.set(true);
        ev.quit();
    });
    ev.run().unwrap();
    ev.cancel(guard);
    !guard_fired.get()
}

/// A shared log of what handlers saw.
type Log<T> = Rc<RefCell<Vec<T>>>;

fn counter() -> Rc<Cell<usize>> {
    Rc::new(Cell::new(0))
}

fn bump(c: &Cell<usize>) {
    c.set(c.get() + 1);
}

// ---------------------------------------------------------------------------
// 1. Readiness
// ---------------------------------------------------------------------------

fn readiness_on_socketpairs<D: Dispatcher>() {
    let mut d = D::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    let (fa, fb) = (a.as_raw_fd(), b.as_raw_fd());
    d.register(fa, Interest::BOTH, Mode::Level).unwrap();
    d.register(fb, Interest::READABLE, Mode::Level).unwrap();
    assert_eq!(d.len(), 2);
    assert!(!d.is_empty());

    let e = only_event(&dispatch(&mut d, PATIENCE), fa);
    assert!(e.is_writable() && !e.is_readable(), "a fresh end is writable, not readable: {e:?}");
    assert!(!e.is_hangup() && !e.is_error() && !e.is_invalid(), "{e:?}");

    send(&a, b"ping");
    let events = dispatch(&mut d, PATIENCE);
    assert_eq!(sorted_fds(&events), sorted(vec![fa, fb]));
    let ea = event_for(&events, fa).unwrap();
    assert!(ea.is_writable() && !ea.is_readable(), "writing does not make the writer readable: {ea:?}");
    let eb = event_for(&events, fb).unwrap();
    assert!(eb.is_readable() && !eb.is_writable(), "only what was asked for is reported: {eb:?}");

    send(&b, b"pong");
    let events = dispatch(&mut d, PATIENCE);
    let ea = event_for(&events, fa).unwrap();
    assert!(ea.is_readable() && ea.is_writable(), "{ea:?}");
    assert_eq!(read_all(fa), b"pong");
    assert_eq!(read_all(fb), b"ping");
    assert_eq!(sorted_fds(&dispatch(&mut d, QUIET)), [fa], "drained: only writability remains");

    d.deregister(fa).unwrap();
    d.deregister(fb).unwrap();
    assert!(d.is_empty());
}

fn readiness_on_pipes<D: Dispatcher>() {
    let mut d = D::new().unwrap();
    let (r, w) = sys::pipe().unwrap();
    let (fr, fw) = (r.as_raw_fd(), w.as_raw_fd());
    d.register(fr, Interest::READABLE, Mode::Level).unwrap();
    d.register(fw, Interest::WRITABLE, Mode::Level).unwrap();

    let e = only_event(&dispatch(&mut d, PATIENCE), fw);
    assert!(e.is_writable() && !e.is_readable(), "an empty pipe: write end writable, read end silent");

    send(&w, b"data");
    let events = dispatch(&mut d, PATIENCE);
    assert_eq!(sorted_fds(&events), sorted(vec![fr, fw]));
    let er = event_for(&events, fr).unwrap();
    assert!(er.is_readable() && !er.is_writable(), "{er:?}");
    assert_eq!(read_all(fr), b"data");
    assert_eq!(sorted_fds(&dispatch(&mut d, QUIET)), [fw]);

    // Fill the pipe: the write end stops being writable until the reader makes room.
    let chunk = [7u8; 4096];
    let mut filled = 0;
    loop {
        match sys::write(w.as_fd(), &chunk) {
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("write: {e}"),
        }
        assert!(filled < 64 << 20, "the pipe never filled");
    }
    let e = only_event(&dispatch(&mut d, PATIENCE), fr);
    assert!(e.is_readable(), "a full pipe: only the read end is reported: {e:?}");
    assert_eq!(drain(fr), filled);
    assert_eq!(sorted_fds(&dispatch(&mut d, PATIENCE)), [fw], "room again: writable again");

    d.deregister(fr).unwrap();
    d.deregister(fw).unwrap();
}

fn readiness_on_std_unix_streams<D: Dispatcher>() {
    let mut d = D::new().unwrap();
    let (mut a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let fa = a.as_raw_fd();
    d.register(fa, Interest::READABLE, Mode::Level).unwrap();
    assert!(dispatch(&mut d, QUIET).is_empty());
    b.write_all(b"hello").unwrap();
    assert!(only_event(&dispatch(&mut d, PATIENCE), fa).is_readable());
    let mut buf = [0u8; 16];
    assert_eq!(a.read(&mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(a.read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    assert!(dispatch(&mut d, QUIET).is_empty(), "drained through std: nothing to report");
    d.deregister(fa).unwrap();
}

fn interest_selects_what_is_reported<D: Dispatcher>() {
    let mut d = D::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    let fa = a.as_raw_fd();
    d.register(fa, Interest::WRITABLE, Mode::Level).unwrap();
    send(&b, b"x");
    let e = only_event(&dispatch(&mut d, PATIENCE), fa);
    assert!(e.is_writable() && !e.is_readable(), "data waits, but only writability was asked for: {e:?}");
    d.modify(fa, Interest::READABLE, Mode::Level).unwrap();
    let e = only_event(&dispatch(&mut d, PATIENCE), fa);
    assert!(e.is_readable() && !e.is_writable(), "{e:?}");
    d.modify(fa, Interest::BOTH, Mode::Level).unwrap();
    let e = only_event(&dispatch(&mut d, PATIENCE), fa);
    assert!(e.is_readable() && e.is_writable(), "{e:?}");
    assert_eq!(drain(fa), 1);
    d.modify(fa, Interest::READABLE, Mode::Level).unwrap();
    assert!(dispatch(&mut d, QUIET).is_empty());
    d.deregister(fa).unwrap();
}

// ---------------------------------------------------------------------------
// 2. Level-triggered redelivery
// ---------------------------------------------------------------------------

fn level_triggered_redelivers_until_drained<D: Dispatcher>() {
    let mut d = D::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    let fa = a.as_raw_fd();
    d.register(fa, Interest::READABLE, Mode::Level).unwrap();
    send(&b, b"0123456789");
    for round in 0..3 {
        assert!(only_event(&dispatch(&mut d, PATIENCE), fa).is_readable(), "round {round}");
    }
    assert_eq!(sys::read(a.as_fd(), &mut [0u8; 4]).unwrap(), 4);
    assert!(only_event(&dispatch(&mut d, PATIENCE), fa).is_readable(), "partly read: still readable");
    assert_eq!(read_all(fa), b"456789");
    assert!(dispatch(&mut d, QUIET).is_empty(), "drained: nothing to report");
    assert!(dispatch(&mut d, QUIET).is_empty());
    send(&b, b"more");
    assert!(only_event(&dispatch(&mut d, PATIENCE), fa).is_readable(), "new data is reported");
    assert_eq!(drain(fa), 4);
    d.deregister(fa).unwrap();
}

fn level_triggered_in_the_event_loop<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    let fa = a.as_raw_fd();
    let got: Log<u8> = Rc::default();
    let seen = Rc::clone(&got);
    // The handler owns the socket: deregistering drops it, then it closes.
    ev.register(fa, Interest::READABLE, Mode::Level, move |_, _| {
        // One byte per call: the rest must be reported again.
        let mut byte = [0u8; 1];
        assert_eq!(sys::read(a.as_fd(), &mut byte).unwrap(), 1);
        seen.borrow_mut().push(byte[0]);
    })
    .unwrap();
    send(&b, b"abcde");
    for _ in 0..5 {
        assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1);
    }
    assert_eq!(*got.borrow(), b"abcde");
    assert_eq!(ev.run_once(Some(QUIET)).unwrap(), 0, "drained: the handler is not called");
    assert_eq!(got.borrow().len(), 5);
    ev.deregister(fa).unwrap();
}

// ---------------------------------------------------------------------------
// 3. Oneshot
// ---------------------------------------------------------------------------

fn oneshot_fires_once_until_rearmed<D: Dispatcher>() {
    let mut d = D::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    let fa = a.as_raw_fd();
    d.register(fa, Interest::READABLE, Mode::Oneshot).unwrap();
    assert!(dispatch(&mut d, QUIET).is_empty(), "armed, but nothing to read yet");
    send(&b, b"data");
    assert!(only_event(&dispatch(&mut d, PATIENCE), fa).is_readable());
    assert!(dispatch(&mut d, QUIET).is_empty(), "disarmed although the data is unread");
    assert!(dispatch(&mut d, QUIET).is_empty());
    send(&b, b"more");
    assert!(dispatch(&mut d, QUIET).is_empty(), "new data does not re-arm it either");
    assert_eq!(d.len(), 1, "a disarmed fd stays registered");
    assert_eq!(
        d.register(fa, Interest::READABLE, Mode::Oneshot).unwrap_err().kind(),
        ErrorKind::AlreadyExists,
        "disarmed is still registered"
    );

    d.modify(fa, Interest::READABLE, Mode::Oneshot).unwrap();
    assert!(only_event(&dispatch(&mut d, PATIENCE), fa).is_readable(), "re-armed by modify");
    assert!(dispatch(&mut d, QUIET).is_empty(), "and disarmed again");

    d.modify(fa, Interest::WRITABLE, Mode::Oneshot).unwrap();
    let e = only_event(&dispatch(&mut d, PATIENCE), fa);
    assert!(e.is_writable() && !e.is_readable(), "re-armed with another interest: {e:?}");
    assert!(dispatch(&mut d, QUIET).is_empty());

    d.modify(fa, Interest::READABLE, Mode::Level).unwrap();
    for _ in 0..2 {
        assert!(only_event(&dispatch(&mut d, PATIENCE), fa).is_readable(), "back to level-triggered");
    }
    assert_eq!(read_all(fa), b"datamore");
    d.deregister(fa).unwrap();
    assert!(d.is_empty());
}

fn oneshot_in_the_event_loop<D: Dispatcher + 'static>() {
    // Re-armed from outside.
    let mut ev = EventLoop::<D>::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    let fa = a.as_raw_fd();
    let calls = counter();
    let counted = Rc::clone(&calls);
    ev.register(fa, Interest::READABLE, Mode::Oneshot, move |_, _| bump(&counted)).unwrap();
    send(&b, b"data");
    assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1);
    for _ in 0..3 {
        assert_eq!(ev.run_once(Some(QUIET)).unwrap(), 0, "not again while disarmed");
    }
    assert_eq!(calls.get(), 1);
    ev.modify(fa, Interest::READABLE, Mode::Oneshot).unwrap();
    assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1, "re-armed: the unread data is reported");
    assert_eq!(ev.run_once(Some(QUIET)).unwrap(), 0);
    assert_eq!(calls.get(), 2);
    ev.deregister(fa).unwrap();

    // Re-armed by the handler itself (the usual pattern), twice, then left disarmed.
    let (c, d) = sys::socketpair().unwrap();
    let fc = c.as_raw_fd();
    let calls = counter();
    let counted = Rc::clone(&calls);
    ev.register(fc, Interest::READABLE, Mode::Oneshot, move |ev, event| {
        bump(&counted);
        if counted.get() < 3 {
            ev.modify(event.fd(), Interest::READABLE, Mode::Oneshot).unwrap();
        }
    })
    .unwrap();
    send(&d, b"x");
    for round in 1..=3 {
        assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1, "round {round}");
    }
    assert_eq!(ev.run_once(Some(QUIET)).unwrap(), 0);
    assert_eq!(calls.get(), 3);
    ev.deregister(fc).unwrap();
    assert_eq!(ev.registered_fds(), 0);
}

// ---------------------------------------------------------------------------
// 4. Edge-triggered
// ---------------------------------------------------------------------------

fn edge_triggered_only_where_supported<D: Dispatcher>() {
    let mut d = D::new().unwrap();
    let edge = d.supports(Mode::Edge);
    assert!(d.supports(Mode::Level) && d.supports(Mode::Oneshot), "every backend does level and oneshot");
    assert_eq!(
        edge,
        matches!(d.name(), "epoll" | "uring" | "sim"),
        "only epoll and io_uring (and the simulator, modelled on epoll) can do edge-triggered"
    );

    let (a, b) = sys::socketpair().unwrap();
    let fa = a.as_raw_fd();
    if !edge {
        let err = d.register(fa, Interest::READABLE, Mode::Edge).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.to_string().contains(d.name()), "the error names the backend: {err}");
        assert!(d.is_empty(), "a refused registration leaves nothing behind");
        // Not silently degraded: the fd can still be registered level-triggered...
        d.register(fa, Interest::READABLE, Mode::Level).unwrap();
        // ...and switching it to edge is refused without changing it.
        assert_eq!(d.modify(fa, Interest::READABLE, Mode::Edge).unwrap_err().kind(), ErrorKind::Unsupported);
        send(&b, b"x");
        for _ in 0..2 {
            assert!(only_event(&dispatch(&mut d, PATIENCE), fa).is_readable(), "still level-triggered");
        }
        assert_eq!(drain(fa), 1);
        d.deregister(fa).unwrap();
        return;
    }

    d.register(fa, Interest::READABLE, Mode::Edge).unwrap();
    assert!(dispatch(&mut d, QUIET).is_empty());
    send(&b, b"one");
    assert!(only_event(&dispatch(&mut d, PATIENCE), fa).is_readable());
    assert!(dispatch(&mut d, QUIET).is_empty(), "old data is not reported again");
    send(&b, b"two");
    assert!(only_event(&dispatch(&mut d, PATIENCE), fa).is_readable(), "new data is a new edge");
    assert!(dispatch(&mut d, QUIET).is_empty());
    assert_eq!(read_all(fa), b"onetwo");
    assert!(dispatch(&mut d, QUIET).is_empty());

    // Writability is an edge too: reported once, not while it merely persists.
    d.modify(fa, Interest::BOTH, Mode::Edge).unwrap();
    let e = only_event(&dispatch(&mut d, PATIENCE), fa);
    assert!(e.is_writable() && !e.is_readable(), "{e:?}");
    assert!(dispatch(&mut d, QUIET).is_empty());
    d.deregister(fa).unwrap();
}

fn edge_triggered_in_the_event_loop<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    let fa = a.as_raw_fd();
    let calls = counter();
    let counted = Rc::clone(&calls);
    if !D::new().unwrap().supports(Mode::Edge) {
        let err = ev.register(fa, Interest::READABLE, Mode::Edge, |_, _| {}).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        let err = ev.register(fa, Interest::NONE, Mode::Edge, |_, _| {}).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "even for a paused registration");
        assert!(!ev.is_registered(fa));
        assert_eq!(ev.registered_fds(), 0);

        ev.register(fa, Interest::READABLE, Mode::Level, move |_, _| bump(&counted)).unwrap();
        assert_eq!(ev.modify(fa, Interest::READABLE, Mode::Edge).unwrap_err().kind(), ErrorKind::Unsupported);
        assert_eq!(
            ev.modify(fa, Interest::NONE, Mode::Edge).unwrap_err().kind(),
            ErrorKind::Unsupported,
            "a paused fd cannot be switched to edge either (it could never be resumed)"
        );
        assert_eq!(ev.interest(fa), Some(Interest::READABLE), "a refused modify changes nothing");
        send(&b, b"x");
        assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1);
        assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1, "still level-triggered");
        assert_eq!(calls.get(), 2);
        ev.deregister(fa).unwrap();
        return;
    }

    ev.register(fa, Interest::READABLE, Mode::Edge, move |_, event| {
        assert!(event.is_readable());
        bump(&counted); // deliberately does not drain
    })
    .unwrap();
    send(&b, b"a");
    assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1);
    assert_eq!(ev.run_once(Some(QUIET)).unwrap(), 0, "undrained old data: no new edge");
    send(&b, b"b");
    assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1, "each write is a new edge");
    assert_eq!(ev.run_once(Some(QUIET)).unwrap(), 0);
    assert_eq!(calls.get(), 2);
    assert_eq!(read_all(fa), b"ab");
    ev.deregister(fa).unwrap();
}

// ---------------------------------------------------------------------------
// 5. Peer close, hang-ups, errors on the fd
// ---------------------------------------------------------------------------

/// What the contract says a peer that closed both directions looks like.
fn assert_peer_closed<D: Dispatcher>(e: Event) {
    assert!(e.is_readable(), "{}: EOF is readable: {e:?}", D::NAME);
    if kind::<D>() == "select" {
        assert!(!e.is_hangup(), "select has no hang-up flag; EOF shows as readable: {e:?}");
    } else {
        assert!(e.is_hangup(), "{}: the hang-up is reported: {e:?}", D::NAME);
    }
    assert!(!e.is_error() && !e.is_invalid(), "{e:?}");
}

fn peer_close_reports_readable_then_eof<D: Dispatcher>() {
    let mut d = D::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    let fa = a.as_raw_fd();
    d.register(fa, Interest::READABLE, Mode::Level).unwrap();
    drop(b);
    let e = only_event(&dispatch(&mut d, PATIENCE), fa);
    assert_peer_closed::<D>(e);
    if e.is_hangup() {
        assert!(e.is_writable(), "a flag is reported as readable + writable: {e:?}");
    }
    assert_eq!(sys::read(a.as_fd(), &mut [0u8; 8]).unwrap(), 0, "read returns 0 at EOF");
    assert_peer_closed::<D>(only_event(&dispatch(&mut d, PATIENCE), fa));

    // Whatever the interest, the closed peer is reported.
    d.modify(fa, Interest::WRITABLE, Mode::Level).unwrap();
    let e = only_event(&dispatch(&mut d, PATIENCE), fa);
    assert!(e.is_writable(), "{e:?}");
    if D::NAME != "select" {
        assert!(e.is_hangup() && e.is_readable(), "a hang-up is reported whatever the interest: {e:?}");
    }
    d.deregister(fa).unwrap();
}

fn peer_close_in_the_event_loop<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    let fa = a.as_raw_fd();
    let seen: Log<(Event, usize)> = Rc::default();
    let log = Rc::clone(&seen);
    // The handler owns the socket: deregistering drops it, then it closes.
    ev.register(fa, Interest::READABLE, Mode::Level, move |ev, event| {
        let n = sys::read(a.as_fd(), &mut [0u8; 8]).unwrap();
        log.borrow_mut().push((event, n));
        if n == 0 {
            ev.deregister(event.fd()).unwrap(); // the owner's job: deregister, then close
        }
    })
    .unwrap();
    send(&b, b"bye");
    drop(b);
    turn_until(&mut ev, "EOF", || seen.borrow().last().is_some_and(|(_, n)| *n == 0));
    let seen = seen.borrow();
    assert_eq!(seen.iter().map(|(_, n)| n).sum::<usize>(), 3, "the data before the close arrives");
    let (last, _) = *seen.last().unwrap();
    assert_eq!(last.fd(), fa);
    assert_peer_closed::<D>(last);
    assert!(!ev.is_registered(fa));
    assert_eq!(ev.run_once(Some(QUIET)).unwrap(), 0);
}

fn half_close_is_eof_not_hangup<D: Dispatcher>() {
    let mut d = D::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    let fa = a.as_raw_fd();
    d.register(fa, Interest::READABLE, Mode::Level).unwrap();
    sys::shutdown(b.as_fd(), Shutdown::Write).unwrap();
    let e = only_event(&dispatch(&mut d, PATIENCE), fa);
    assert!(e.is_readable(), "{e:?}");
    assert!(!e.is_hangup() && !e.is_error(), "only one direction is closed: {e:?}");
    assert_eq!(sys::read(a.as_fd(), &mut [0u8; 8]).unwrap(), 0, "EOF");
    send(&a, b"still open");
    assert_eq!(read_all(b.as_raw_fd()), b"still open", "the other direction still works");
    d.deregister(fa).unwrap();
}

fn pipe_writer_closed_reports_data_then_eof<D: Dispatcher>() {
    let mut d = D::new().unwrap();
    let (r, w) = sys::pipe().unwrap();
    let fr = r.as_raw_fd();
    d.register(fr, Interest::READABLE, Mode::Level).unwrap();
    send(&w, b"last words");
    drop(w);
    assert_peer_closed::<D>(only_event(&dispatch(&mut d, PATIENCE), fr));
    assert_eq!(read_all(fr), b"last words", "data written before the close is still there");
    assert_eq!(sys::read(r.as_fd(), &mut [0u8; 8]).unwrap(), 0);
    d.deregister(fr).unwrap();
}

fn pipe_reader_closed_reports_error<D: Dispatcher>() {
    let mut d = D::new().unwrap();
    let (r, w) = sys::pipe().unwrap();
    let fw = w.as_raw_fd();
    d.register(fw, Interest::WRITABLE, Mode::Level).unwrap();
    drop(r);
    let e = only_event(&dispatch(&mut d, PATIENCE), fw);
    assert!(e.is_writable(), "a write would not block (it fails at once): {e:?}");
    if kind::<D>() == "select" {
        assert!(!e.is_error(), "select has no error flag: {e:?}");
    } else {
        assert!(e.is_error() && e.is_readable(), "ERR, reported as readable + writable + flag: {e:?}");
    }
    assert_eq!(sys::write(w.as_fd(), b"x").unwrap_err().kind(), ErrorKind::BrokenPipe);
    d.deregister(fw).unwrap();
}

/// The owner's bug: an fd closed while still registered. select and poll
/// report it as invalid; epoll forgets it by itself (the kernel drops a
/// closed file from the interest list). No backend panics or stops working.
fn closed_without_deregister<D: Dispatcher + 'static>() {
    let base = private_fd_base::<D>(CLOSED_SLOT);
    let mut d = D::new().unwrap();
    let (live, live_peer) = sys::socketpair().unwrap();
    d.register(live.as_raw_fd(), Interest::READABLE, Mode::Level).unwrap();
    let (x, _x_peer) = socketpair_at(base);
    let fx = x.as_raw_fd();
    d.register(fx, Interest::READABLE, Mode::Level).unwrap();
    drop(x);
    let events = dispatch(&mut d, SHORT);
    if kind::<D>() == "epoll" {
        assert!(events.is_empty(), "epoll: the closed fd left the interest list: {events:?}");
        assert!(d.deregister(fx).is_err(), "epoll cannot find it any more");
    } else {
        let e = only_event(&events, fx);
        assert!(e.is_invalid() && e.is_readable() && e.is_writable(), "{e:?}");
        d.deregister(fx).unwrap();
    }
    send(&live_peer, b"!");
    assert!(only_event(&dispatch(&mut d, PATIENCE), live.as_raw_fd()).is_readable(), "still works");
    d.deregister(live.as_raw_fd()).unwrap();

    // The same through the loop: the handler hears about it and deregisters.
    let mut ev = EventLoop::<D>::new().unwrap();
    let (x, _x_peer) = socketpair_at(base);
    let fx = x.as_raw_fd();
    let seen: Log<Event> = Rc::default();
    let log = Rc::clone(&seen);
    ev.register(fx, Interest::READABLE, Mode::Level, move |ev, event| {
        log.borrow_mut().push(event);
        assert!(ev.deregister(event.fd()).is_ok(), "select/poll still know the fd");
    })
    .unwrap();
    drop(x);
    ev.run_once(Some(SHORT)).unwrap();
    if kind::<D>() == "epoll" {
        assert!(seen.borrow().is_empty());
        assert!(ev.deregister(fx).is_err(), "the backend's complaint is returned");
        assert!(!ev.is_registered(fx), "but the channel is gone anyway");
    } else {
        let seen = seen.borrow();
        assert_eq!(seen.len(), 1);
        assert!(seen[0].is_invalid() && seen[0].is_readable(), "{:?}", seen[0]);
        assert!(!ev.is_registered(fx));
    }
    assert_eq!(ev.registered_fds(), 0);
}

// ---------------------------------------------------------------------------
// 6. Error cases
// ---------------------------------------------------------------------------

fn bad_requests_are_clear_errors<D: Dispatcher>() {
    let mut d = D::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    let (unknown, _unknown_peer) = sys::socketpair().unwrap();
    let (fa, fu) = (a.as_raw_fd(), unknown.as_raw_fd());
    d.register(fa, Interest::READABLE, Mode::Level).unwrap();

    let err = d.register(fa, Interest::WRITABLE, Mode::Level).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(d.len(), 1);
    assert_eq!(d.modify(fu, Interest::READABLE, Mode::Level).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(d.deregister(fu).unwrap_err().kind(), ErrorKind::NotFound);
    for (what, result) in [
        ("register -1", d.register(-1, Interest::READABLE, Mode::Level)),
        ("register i32::MIN", d.register(RawFd::MIN, Interest::BOTH, Mode::Oneshot)),
        ("modify -5", d.modify(-5, Interest::READABLE, Mode::Level)),
        ("deregister -1", d.deregister(-1)),
        ("register with no interest", d.register(fu, Interest::NONE, Mode::Level)),
        ("modify to no interest", d.modify(fa, Interest::NONE, Mode::Level)),
    ] {
        let err = result.expect_err(what);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{what}: {err}");
    }
    // A number that is not an open fd is EBADF on every backend, and a huge
    // one must not make select/poll size their fd-indexed tables to it.
    for bogus in [RawFd::MAX, 1_000_000] {
        let err = d.register(bogus, Interest::READABLE, Mode::Level).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF), "register {bogus}: {err}");
    }
    assert_eq!(d.len(), 1, "failed calls change nothing");

    // The first registration is intact: still READABLE only, still level-triggered.
    send(&b, b"x");
    for _ in 0..2 {
        let e = only_event(&dispatch(&mut d, PATIENCE), fa);
        assert!(e.is_readable() && !e.is_writable(), "{e:?}");
    }
    d.deregister(fa).unwrap();
    assert_eq!(d.deregister(fa).unwrap_err().kind(), ErrorKind::NotFound, "deregistered twice");
    assert_eq!(d.modify(fa, Interest::READABLE, Mode::Level).unwrap_err().kind(), ErrorKind::NotFound);
    assert!(d.is_empty());
    assert!(dispatch(&mut d, QUIET).is_empty(), "a dispatcher with nothing registered just times out");
}

fn bad_requests_in_the_event_loop<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    let (unknown, _unknown_peer) = sys::socketpair().unwrap();
    let (fa, fu) = (a.as_raw_fd(), unknown.as_raw_fd());
    let first = counter();
    let second = counter();
    let counted = Rc::clone(&first);
    ev.register(fa, Interest::READABLE, Mode::Level, move |_, e| {
        bump(&counted);
        drain(e.fd());
    })
    .unwrap();
    let counted = Rc::clone(&second);
    let err = ev.register(fa, Interest::READABLE, Mode::Level, move |_, _| bump(&counted)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let err = ev.register(-3, Interest::READABLE, Mode::Level, |_, _| {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(ev.modify(fu, Interest::READABLE, Mode::Level).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(ev.set_interest(fu, Interest::READABLE).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(ev.deregister(fu).unwrap_err().kind(), ErrorKind::NotFound);
    for result in [ev.modify(-1, Interest::READABLE, Mode::Level), ev.deregister(-1)] {
        // Nothing can be registered under a negative fd, so "not found" is as right as "invalid".
        let kind = result.unwrap_err().kind();
        assert!(matches!(kind, ErrorKind::NotFound | ErrorKind::InvalidInput), "{kind:?}");
    }
    assert_eq!(ev.registered_fds(), 1);

    send(&b, b"x");
    assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1);
    assert_eq!((first.get(), second.get()), (1, 0), "the refused handler was dropped, not swapped in");

    ev.deregister(fa).unwrap();
    assert_eq!(ev.deregister(fa).unwrap_err().kind(), ErrorKind::NotFound, "twice");
    assert_eq!(ev.registered_fds(), 0);
}

// ---------------------------------------------------------------------------
// 7. Handlers that change other fds during the same batch
// ---------------------------------------------------------------------------

fn deregister_during_the_same_batch<D: Dispatcher + 'static>() {
    for also_self in [false, true] {
        let mut ev = EventLoop::<D>::new().unwrap();
        let (a, a_peer) = sys::socketpair().unwrap();
        let (b, b_peer) = sys::socketpair().unwrap();
        let (fa, fb) = (a.as_raw_fd(), b.as_raw_fd());
        let ran: Log<RawFd> = Rc::default();
        for (me, other) in [(fa, fb), (fb, fa)] {
            let ran = Rc::clone(&ran);
            ev.register(me, Interest::READABLE, Mode::Level, move |ev, _| {
                ran.borrow_mut().push(me);
                drain(me);
                if ev.is_registered(other) {
                    ev.deregister(other).unwrap();
                }
                if also_self {
                    ev.deregister(me).unwrap();
                    assert!(!ev.is_registered(me));
                }
            })
            .unwrap();
        }
        send(&a_peer, b"1");
        send(&b_peer, b"2");
        assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1, "also_self={also_self}: one handler ran");
        let first = ran.borrow()[0];
        let other = if first == fa { fb } else { fa };
        assert_eq!(*ran.borrow(), [first]);
        assert!(!ev.is_registered(other));
        assert_eq!(ev.is_registered(first), !also_self);
        assert_eq!(ev.registered_fds(), usize::from(!also_self));

        // The removed one never runs again; the survivor (if any) keeps working.
        send(&a_peer, b"3");
        send(&b_peer, b"4");
        turn_for(&mut ev, SHORT);
        let expected = if also_self { vec![first] } else { vec![first, first] };
        assert_eq!(*ran.borrow(), expected, "also_self={also_self}");
        if !also_self {
            ev.deregister(first).unwrap();
        }
        assert_eq!(ev.registered_fds(), 0);
    }
}

fn narrow_or_pause_another_fd_during_the_batch<D: Dispatcher + 'static>() {
    for pause in [false, true] {
        let mut ev = EventLoop::<D>::new().unwrap();
        let (a, a_peer) = sys::socketpair().unwrap();
        let (b, b_peer) = sys::socketpair().unwrap();
        let (fa, fb) = (a.as_raw_fd(), b.as_raw_fd());
        let ran: Log<(RawFd, Event)> = Rc::default();
        let acted = Rc::new(Cell::new(false));
        for (me, other) in [(fa, fb), (fb, fa)] {
            let (ran, acted) = (Rc::clone(&ran), Rc::clone(&acted));
            ev.register(me, Interest::READABLE, Mode::Level, move |ev, event| {
                ran.borrow_mut().push((me, event));
                if !acted.replace(true) {
                    drain(me);
                    // Its batch event was READABLE; after this it must not be delivered.
                    let interest = if pause { Interest::NONE } else { Interest::WRITABLE };
                    ev.set_interest(other, interest).unwrap();
                }
            })
            .unwrap();
        }
        send(&a_peer, b"1");
        send(&b_peer, b"2");
        assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1, "pause={pause}: the other's stale event dropped");
        let first = ran.borrow()[0].0;
        let other = if first == fa { fb } else { fa };
        if pause {
            assert_eq!(ev.run_once(Some(QUIET)).unwrap(), 0, "paused: its unread data is not reported");
            ev.set_interest(other, Interest::READABLE).unwrap();
            assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1);
            let (fd, event) = ran.borrow()[1];
            assert!(fd == other && event.is_readable(), "resumed: {event:?}");
        } else {
            assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1);
            let (fd, event) = ran.borrow()[1];
            assert_eq!(fd, other);
            assert!(event.is_writable() && !event.is_readable(), "only the new interest: {event:?}");
        }
        assert_eq!(ran.borrow().len(), 2);
        ev.deregister(fa).unwrap();
        ev.deregister(fb).unwrap();
    }
}

// ---------------------------------------------------------------------------
// 8. Fd numbers reused within a batch
// ---------------------------------------------------------------------------

/// Two fds ready in one batch; the first handler deregisters and closes the
/// other (X), a new socket takes number X and is registered: the batch's old
/// event for X must not reach the new handler.
fn reused_fd_number_gets_no_stale_event<D: Dispatcher + 'static>() {
    let base = private_fd_base::<D>(REUSE_OTHER_SLOT);
    let mut ev = EventLoop::<D>::new().unwrap();
    let (a, a_peer) = socketpair_at(base);
    let (b, b_peer) = socketpair_at(base);
    let (fa, fb) = (a.as_raw_fd(), b.as_raw_fd());
    let sockets: Rc<RefCell<HashMap<RawFd, OwnedFd>>> =
        Rc::new(RefCell::new(HashMap::from([(fa, a), (fb, b)])));
    let log: Log<(&'static str, RawFd)> = Rc::default();
    let new_peer: Rc<RefCell<Option<OwnedFd>>> = Rc::default();
    let replaced = Rc::new(Cell::new(false));
    for (me, other) in [(fa, fb), (fb, fa)] {
        let (sockets, log, new_peer, replaced) =
            (Rc::clone(&sockets), Rc::clone(&log), Rc::clone(&new_peer), Rc::clone(&replaced));
        ev.register(me, Interest::READABLE, Mode::Level, move |ev, _| {
            log.borrow_mut().push(("old", me));
            drain(me);
            if replaced.replace(true) {
                return;
            }
            ev.deregister(other).unwrap();
            drop(sockets.borrow_mut().remove(&other)); // close X
            let (new, peer) = sys::socketpair().unwrap();
            let new = moved_to(new, other); // X is free again and nobody else allocates up here
            assert_eq!(new.as_raw_fd(), other, "the new socket reuses number X");
            let log = Rc::clone(&log);
            ev.register(other, Interest::READABLE, Mode::Level, move |_, event| {
                log.borrow_mut().push(("new", event.fd()));
                drain(event.fd());
            })
            .unwrap();
            sockets.borrow_mut().insert(other, new);
            *new_peer.borrow_mut() = Some(peer);
        })
        .unwrap();
    }
    send(&a_peer, b"1");
    send(&b_peer, b"2");
    assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1, "only the first handler ran");
    let first = log.borrow()[0].1;
    let x = if first == fa { fb } else { fa };
    assert_eq!(*log.borrow(), [("old", first)], "the stale event for X was dropped");
    assert_eq!(ev.run_once(Some(QUIET)).unwrap(), 0, "the new socket has no data");

    send(new_peer.borrow().as_ref().unwrap(), b"3");
    assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1);
    assert_eq!(log.borrow().last(), Some(&("new", x)), "new data reaches the new handler");
    let old_first_peer = if first == fa { &a_peer } else { &b_peer };
    send(old_first_peer, b"4");
    assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1);
    assert_eq!(log.borrow().last(), Some(&("old", first)), "the untouched fd keeps its handler");
    assert_eq!(log.borrow().len(), 3);

    for fd in sockets.borrow().keys() {
        ev.deregister(*fd).unwrap();
    }
    assert_eq!(ev.registered_fds(), 0);
}

/// A handler replaces its own fd: deregister, close, new socket on the same
/// number, new handler. After it returns the loop must keep the new handler.
fn handler_replaces_its_own_fd<D: Dispatcher + 'static>() {
    let base = private_fd_base::<D>(REUSE_SELF_SLOT);
    let mut ev = EventLoop::<D>::new().unwrap();
    let (x, x_peer) = socketpair_at(base);
    let fx = x.as_raw_fd();
    let current: Rc<RefCell<Option<OwnedFd>>> = Rc::new(RefCell::new(Some(x)));
    let new_peer: Rc<RefCell<Option<OwnedFd>>> = Rc::default();
    let log: Log<&'static str> = Rc::default();
    let (cur, peer_slot, old_log) = (Rc::clone(&current), Rc::clone(&new_peer), Rc::clone(&log));
    ev.register(fx, Interest::READABLE, Mode::Level, move |ev, event| {
        old_log.borrow_mut().push("old");
        let fd = event.fd();
        ev.deregister(fd).unwrap();
        drop(cur.borrow_mut().take()); // closes the old socket (data unread)
        let (new, peer) = sys::socketpair().unwrap();
        let new = moved_to(new, fd);
        assert_eq!(new.as_raw_fd(), fd);
        let new_log = Rc::clone(&old_log);
        ev.register(fd, Interest::READABLE, Mode::Level, move |_, event| {
            new_log.borrow_mut().push("new");
            drain(event.fd());
        })
        .unwrap();
        *cur.borrow_mut() = Some(new);
        *peer_slot.borrow_mut() = Some(peer);
    })
    .unwrap();
    send(&x_peer, b"unread");
    assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1);
    assert_eq!(ev.run_once(Some(QUIET)).unwrap(), 0, "the new socket has nothing to read");
    send(new_peer.borrow().as_ref().unwrap(), b"hello");
    assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1);
    assert_eq!(*log.borrow(), ["old", "new"], "the old handler was not put back over the new one");
    ev.deregister(fx).unwrap();
    drop(current.borrow_mut().take());
}

/// At the Dispatcher level: registering a new socket on a reused number
/// reports the new socket's state, not the old one's unread data.
fn reused_fd_number_in_the_dispatcher<D: Dispatcher>() {
    let base = private_fd_base::<D>(REUSE_DISPATCHER_SLOT);
    let mut d = D::new().unwrap();
    let (x, x_peer) = socketpair_at(base);
    let fx = x.as_raw_fd();
    d.register(fx, Interest::READABLE, Mode::Level).unwrap();
    send(&x_peer, b"old data");
    assert!(only_event(&dispatch(&mut d, PATIENCE), fx).is_readable());
    d.deregister(fx).unwrap();
    drop(x);
    let (y, y_peer) = socketpair_at(fx);
    assert_eq!(y.as_raw_fd(), fx, "same number");
    d.register(fx, Interest::READABLE, Mode::Level).unwrap();
    assert!(dispatch(&mut d, QUIET).is_empty(), "the new socket is empty");
    send(&y_peer, b"new");
    assert!(only_event(&dispatch(&mut d, PATIENCE), fx).is_readable());
    assert_eq!(read_all(fx), b"new");
    d.deregister(fx).unwrap();
}

// ---------------------------------------------------------------------------
// 9. Timers
// ---------------------------------------------------------------------------

fn timers_fire_in_deadline_order<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let fired: Log<(u64, Duration)> = Rc::default();
    let start = Instant::now();
    for ms in [30, 10, 20] {
        let fired = Rc::clone(&fired);
        ev.run_after(Duration::from_millis(ms), move |_| fired.borrow_mut().push((ms, start.elapsed())));
    }
    assert_eq!(ev.pending_timers(), 3);
    turn_until(&mut ev, "three timers", || fired.borrow().len() == 3);
    let order: Vec<u64> = fired.borrow().iter().map(|(ms, _)| *ms).collect();
    assert_eq!(order, [10, 20, 30]);
    for (ms, at) in fired.borrow().iter() {
        assert!(*at >= Duration::from_millis(*ms), "timer {ms} ms fired early, at {at:?}");
    }
    assert_eq!(ev.pending_timers(), 0);
}

fn cancelled_timers_never_fire<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let fired: Log<&'static str> = Rc::default();
    let arm = |ev: &mut EventLoop<D>, ms: u64, tag: &'static str| {
        let fired = Rc::clone(&fired);
        ev.run_after(Duration::from_millis(ms), move |_| fired.borrow_mut().push(tag))
    };
    let a = arm(&mut ev, 10, "a");
    let b = arm(&mut ev, 20, "b");
    let c = arm(&mut ev, 30, "c");
    let victim = arm(&mut ev, 12, "victim");
    assert!(ev.cancel(b), "an armed timer is cancelled");
    assert!(!ev.cancel(b), "cancel reports true only once");
    assert_eq!(ev.pending_timers(), 3);
    // A callback cancels another timer, due or not by then: that one never fires.
    let fired_x = Rc::clone(&fired);
    let cancelled_in_callback = Rc::new(Cell::new(None));
    let result = Rc::clone(&cancelled_in_callback);
    ev.run_after(Duration::from_millis(8), move |ev| {
        fired_x.borrow_mut().push("canceller");
        result.set(Some(ev.cancel(victim)));
    });
    turn_until(&mut ev, "timer c", || fired.borrow().contains(&"c"));
    turn_for(&mut ev, QUIET);
    assert_eq!(*fired.borrow(), ["canceller", "a", "c"]);
    assert_eq!(cancelled_in_callback.get(), Some(true));
    assert!(!ev.cancel(a) && !ev.cancel(c), "fired timers are no longer armed");
    assert_eq!(ev.pending_timers(), 0);
}

fn run_every_repeats_then_cancels_itself<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let interval = Duration::from_millis(10);
    let ticks: Log<Duration> = Rc::default();
    let own_id: Rc<Cell<Option<TimerId>>> = Rc::default();
    let cancel_results: Log<bool> = Rc::default();
    let start = Instant::now();
    let (log, id, results) = (Rc::clone(&ticks), Rc::clone(&own_id), Rc::clone(&cancel_results));
    let timer = ev.run_every(interval, move |ev| {
        log.borrow_mut().push(start.elapsed());
        if log.borrow().len() == 3 {
            let me = id.get().expect("id stored before the first tick");
            results.borrow_mut().push(ev.cancel(me));
            results.borrow_mut().push(ev.cancel(me));
        }
    });
    own_id.set(Some(timer));
    turn_until(&mut ev, "three ticks", || ticks.borrow().len() >= 3);
    turn_for(&mut ev, interval * 6);
    let ticks = ticks.borrow();
    assert_eq!(ticks.len(), 3, "cancelled from its own callback: never fires again ({ticks:?})");
    assert_eq!(*cancel_results.borrow(), [true, false], "cancel is true once, even from inside");
    for (i, at) in ticks.iter().enumerate() {
        assert!(*at >= interval * (i as u32 + 1), "tick {i} came early: {at:?}");
    }
    assert!(!ev.cancel(timer));
    assert_eq!(ev.pending_timers(), 0);
}

fn a_timer_wakes_run_with_no_fds<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    assert_eq!(ev.registered_fds(), 0);
    let fired = Rc::new(Cell::new(false));
    let flag = Rc::clone(&fired);
    let start = Instant::now();
    ev.run_after(Duration::from_millis(30), move |ev| {
        flag.set(true);
        ev.quit();
    });
    // run() with no guard timer of its own: a watchdog thread turns a hang into a failure.
    let handle = ev.handle();
    let done = Arc::new(AtomicBool::new(false));
    let watchdog_fired = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (done, watchdog_fired) = (Arc::clone(&done), Arc::clone(&watchdog_fired));
        thread::spawn(move || {
            let until = Instant::now() + PATIENCE;
            while !done.load(Ordering::SeqCst) {
                if Instant::now() >= until {
                    watchdog_fired.store(true, Ordering::SeqCst);
                    handle.quit();
                    return;
                }
                thread::sleep(Duration::from_millis(5));
            }
        })
    };
    ev.run().unwrap();
    let took = start.elapsed();
    done.store(true, Ordering::SeqCst);
    watchdog.join().unwrap();
    assert!(!watchdog_fired.load(Ordering::SeqCst), "the timer never woke run()");
    assert!(fired.get());
    assert!(took >= Duration::from_millis(30), "run() returned before the timer ({took:?})");
}

fn a_timer_never_fires_before_its_deadline<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let delay = Duration::from_millis(50);
    let fired_after: Rc<Cell<Option<Duration>>> = Rc::default();
    let slot = Rc::clone(&fired_after);
    let armed = Instant::now();
    ev.run_after(delay, move |_| slot.set(Some(armed.elapsed())));
    // Many short waits that each end before the deadline.
    while fired_after.get().is_none() && armed.elapsed() < PATIENCE {
        ev.run_once(Some(Duration::from_millis(3))).unwrap();
    }
    let at = fired_after.get().expect("fired");
    assert!(at >= delay, "fired after {at:?}");

    // One long wait: the timer, not the requested timeout, ends it.
    let slot = Rc::clone(&fired_after);
    fired_after.set(None);
    let armed = Instant::now();
    ev.run_after(delay, move |_| slot.set(Some(armed.elapsed())));
    ev.run_once(Some(PATIENCE)).unwrap();
    let at = fired_after.get().expect("the nearest deadline bounds the dispatch timeout");
    assert!(at >= delay, "fired after {at:?}");
}

fn sub_millisecond_timeouts_round_up<D: Dispatcher + 'static>() {
    let mut d = D::new().unwrap();
    let (a, _b) = sys::socketpair().unwrap();
    d.register(a.as_raw_fd(), Interest::READABLE, Mode::Level).unwrap();
    let start = Instant::now();
    for _ in 0..5 {
        assert!(dispatch(&mut d, Duration::from_micros(200)).is_empty());
    }
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(5), "200 µs must round up to 1 ms, not down to 0 ({took:?})");
    d.deregister(a.as_raw_fd()).unwrap();

    // In the loop: a 300 µs timer costs one dispatch, not a busy loop of zero timeouts.
    let mut ev = EventLoop::<D>::new().unwrap();
    let fired = Rc::new(Cell::new(false));
    let flag = Rc::clone(&fired);
    ev.run_after(Duration::from_micros(300), move |_| flag.set(true));
    ev.run_once(Some(PATIENCE)).unwrap();
    assert!(fired.get(), "the rounded-up wait outlasts the timer");
    assert_eq!(ev.stats().dispatch_calls, 1);
}

// ---------------------------------------------------------------------------
// 10. Cross-thread tasks and quit
// ---------------------------------------------------------------------------

#[derive(Default)]
struct TaskOrder {
    next: Vec<usize>,
    out_of_order: usize,
    wrong_thread: usize,
}

fn run_in_loop_from_four_threads<D: Dispatcher + 'static>() {
    const THREADS: usize = 4;
    const TASKS: usize = 10_000;
    let mut ev = EventLoop::<D>::new().unwrap();
    let loop_thread = thread::current().id();
    let seen: Arc<Vec<AtomicU8>> = Arc::new((0..THREADS * TASKS).map(|_| AtomicU8::new(0)).collect());
    let senders: Vec<_> = (0..THREADS)
        .map(|t| {
            let (handle, seen) = (ev.handle(), Arc::clone(&seen));
            thread::spawn(move || {
                for i in 0..TASKS {
                    let seen = Arc::clone(&seen);
                    handle
                        .run_in_loop(move |ev| {
                            seen[t * TASKS + i].fetch_add(1, Ordering::SeqCst);
                            let order = ev.context::<TaskOrder>();
                            order.next.resize(THREADS, 0);
                            if order.next[t] != i {
                                order.out_of_order += 1;
                            }
                            order.next[t] = i + 1;
                            if thread::current().id() != loop_thread {
                                order.wrong_thread += 1;
                            }
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    let quitter = {
        let (handle, seen) = (ev.handle(), Arc::clone(&seen));
        thread::spawn(move || {
            let until = Instant::now() + PATIENCE * 3;
            let all_ran = loop {
                if seen.iter().all(|s| s.load(Ordering::SeqCst) > 0) {
                    break true;
                }
                if Instant::now() >= until {
                    break false;
                }
                thread::sleep(Duration::from_millis(2));
            };
            handle.quit();
            all_ran
        })
    };
    assert!(run_guarded(&mut ev, PATIENCE * 6), "handle.quit() from another thread stops run()");
    for sender in senders {
        sender.join().unwrap();
    }
    assert!(quitter.join().unwrap(), "every task ran before the quit");
    ev.run_once(Some(QUIET)).unwrap(); // anything left over would run now
    let counts: Vec<u8> = seen.iter().map(|s| s.load(Ordering::SeqCst)).collect();
    let wrong: Vec<usize> = (0..counts.len()).filter(|&k| counts[k] != 1).collect();
    assert!(wrong.is_empty(), "{} tasks did not run exactly once, e.g. #{:?}", wrong.len(), wrong.first());
    let order = ev.context::<TaskOrder>();
    assert_eq!(order.out_of_order, 0, "tasks from one thread run in the order queued");
    assert_eq!(order.wrong_thread, 0, "tasks run on the loop's thread");
    assert!(ev.stats().tasks_run >= (THREADS * TASKS) as u64);
}

fn quit_and_wake_from_another_thread<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let handle = ev.handle();

    // wake() interrupts a sleeping dispatch, twice (the pending flag resets).
    for round in 0..2 {
        let h = handle.clone();
        let waker = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            h.wake();
        });
        let start = Instant::now();
        assert_eq!(ev.run_once(Some(PATIENCE * 3)).unwrap(), 0, "the waker is not a user event");
        assert!(start.elapsed() < PATIENCE * 3, "round {round}: wake() did not interrupt the dispatch");
        waker.join().unwrap();
    }
    // The waker was drained: the next dispatch sleeps (and reports nothing).
    let reported = ev.stats().events_reported;
    let start = Instant::now();
    assert_eq!(ev.run_once(Some(SHORT)).unwrap(), 0);
    assert!(start.elapsed() >= SHORT - Duration::from_millis(5), "woke early: the waker is not drained");
    assert_eq!(ev.stats().events_reported, reported);

    // quit() from another thread while run() sleeps with nothing to do.
    let h = handle.clone();
    let quitter = thread::spawn(move || {
        thread::sleep(Duration::from_millis(30));
        h.quit();
    });
    assert!(run_guarded(&mut ev, PATIENCE * 3), "quit() woke the sleeping loop");
    quitter.join().unwrap();

    // A quit requested before run() makes it return at once, and is consumed.
    handle.quit();
    assert!(run_guarded(&mut ev, PATIENCE), "an early quit is honoured");
    let fired = Rc::new(Cell::new(false));
    let flag = Rc::clone(&fired);
    ev.run_after(Duration::from_millis(20), move |ev| {
        flag.set(true);
        ev.quit();
    });
    assert!(run_guarded(&mut ev, PATIENCE));
    assert!(fired.get(), "the earlier quit was consumed: this run() lasted until the timer");

    // A task can stop the loop too.
    handle.run_in_loop(|ev| ev.quit()).unwrap();
    assert!(run_guarded(&mut ev, PATIENCE));
}

fn loop_handle_after_the_loop_is_dropped<D: Dispatcher + 'static>() {
    let ev = EventLoop::<D>::new().unwrap();
    let handle = ev.handle();
    assert!(handle.is_alive());
    let payload = Arc::new(());
    let held = Arc::clone(&payload);
    handle.run_in_loop(move |_| drop(held)).unwrap();
    assert_eq!(Arc::strong_count(&payload), 2, "queued, not run yet");
    drop(ev);
    assert_eq!(Arc::strong_count(&payload), 1, "a dropped loop drops its queued tasks");
    assert!(!handle.is_alive());
    let err = handle.run_in_loop(|_| {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    let clone = handle.clone();
    thread::spawn(move || {
        assert_eq!(clone.run_in_loop(|_| {}).unwrap_err().kind(), ErrorKind::BrokenPipe);
        clone.quit(); // harmless
        clone.wake();
    })
    .join()
    .unwrap();
}

// ---------------------------------------------------------------------------
// 11. Fds above FD_SETSIZE
// ---------------------------------------------------------------------------

/// Checks `Events::scanned` against the documented cost: select scans up to
/// the highest registered fd, poll every registered fd, epoll only the ready ones.
fn assert_scan_cost<D: Dispatcher>(events: &Events, registered: usize, highest_fd: RawFd) {
    let scanned = events.scanned();
    match kind::<D>() {
        "select" => assert!(scanned > highest_fd as usize, "select scans up to fd {highest_fd}: {scanned}"),
        "poll" | "sim" => {
            assert!(scanned >= registered, "poll and sim scan all {registered} registered fds: {scanned}")
        }
        _ => assert!(
            scanned <= events.len(),
            "epoll/uring scan only the {} ready fds: {scanned}",
            events.len()
        ),
    }
}

fn fds_above_fd_setsize<D: Dispatcher + 'static>() {
    need_nofile(12_000);
    let (a, a_peer) = socketpair_at(1500);
    let (c, c_peer) = socketpair_at(4000);
    let (high, higher) = (a.as_raw_fd(), c.as_raw_fd());
    assert!(high >= 1500 && higher >= 4000 && high != higher);

    let mut d = D::new().unwrap();
    d.register(high, Interest::READABLE, Mode::Level).unwrap();
    d.register(higher, Interest::READABLE, Mode::Level).unwrap();
    let mut events = Events::with_capacity(4);
    d.dispatch(&mut events, Some(QUIET)).unwrap();
    assert!(events.is_empty());
    send(&a_peer, b"x");
    d.dispatch(&mut events, Some(PATIENCE)).unwrap();
    let list: Vec<Event> = events.iter().copied().collect();
    assert!(only_event(&list, high).is_readable(), "exactly the fd above 1024");
    assert_scan_cost::<D>(&events, 2, high.max(higher));
    send(&c_peer, b"y");
    d.dispatch(&mut events, Some(PATIENCE)).unwrap();
    let list: Vec<Event> = events.iter().copied().collect();
    assert_eq!(sorted_fds(&list), sorted(vec![high, higher]));
    assert_eq!(drain(high) + drain(higher), 2);
    d.modify(higher, Interest::BOTH, Mode::Level).unwrap();
    let e = only_event(&dispatch(&mut d, PATIENCE), higher);
    assert!(e.is_writable() && !e.is_readable(), "{e:?}");
    d.deregister(higher).unwrap();
    d.deregister(high).unwrap();
    assert!(d.is_empty());

    // Through the loop.
    let mut ev = EventLoop::<D>::new().unwrap();
    let seen: Log<RawFd> = Rc::default();
    for fd in [high, higher] {
        let seen = Rc::clone(&seen);
        ev.register(fd, Interest::READABLE, Mode::Level, move |_, event| {
            seen.borrow_mut().push(event.fd());
            drain(event.fd());
        })
        .unwrap();
    }
    send(&c_peer, b"z");
    assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1);
    assert_eq!(*seen.borrow(), [higher]);
    ev.deregister(high).unwrap();
    ev.deregister(higher).unwrap();
}

// ---------------------------------------------------------------------------
// 12. 5,000 registered fds, one active
// ---------------------------------------------------------------------------

fn five_thousand_fds_one_active<D: Dispatcher + 'static>() {
    const N: usize = 5000;
    let _heavy = fd_heavy();
    need_nofile(2 * N as u64 + 1000);
    let pairs: Vec<(OwnedFd, OwnedFd)> = (0..N).map(|_| sys::socketpair().unwrap()).collect();
    let readers: Vec<RawFd> = pairs.iter().map(|(r, _)| r.as_raw_fd()).collect();
    let highest = *readers.iter().max().unwrap();
    let active = N * 3 / 4;

    let mut d = D::new().unwrap();
    for &fd in &readers {
        d.register(fd, Interest::READABLE, Mode::Level).unwrap();
    }
    assert_eq!(d.len(), N);
    let mut events = Events::with_capacity(4);
    d.dispatch(&mut events, Some(Duration::ZERO)).unwrap();
    assert!(events.is_empty(), "nothing is ready");
    let idle_scanned = events.scanned();
    send(&pairs[active].1, b"!");
    d.dispatch(&mut events, Some(PATIENCE)).unwrap();
    let list: Vec<Event> = events.iter().copied().collect();
    assert!(only_event(&list, readers[active]).is_readable(), "exactly the active fd");
    let busy_scanned = events.scanned();
    assert_scan_cost::<D>(&events, N, highest);
    match kind::<D>() {
        "epoll" | "uring" => {
            assert!(idle_scanned == 0 && busy_scanned <= 2, "{idle_scanned}, {busy_scanned}")
        }
        "poll" => assert!(idle_scanned >= N && busy_scanned >= N, "{idle_scanned}, {busy_scanned}"),
        _ => assert!(
            idle_scanned > highest as usize && busy_scanned >= N,
            "select: {idle_scanned}, {busy_scanned}, highest fd {highest}"
        ),
    }
    assert_eq!(drain(readers[active]), 1);
    for &fd in &readers {
        d.deregister(fd).unwrap();
    }
    assert!(d.is_empty());

    // Through the loop: one active, then 625 at once (more than epoll's
    // initial 256-event buffer): each handler runs exactly once.
    let mut ev = EventLoop::<D>::new().unwrap();
    let hits: Log<usize> = Rc::default();
    for (i, &fd) in readers.iter().enumerate() {
        let hits = Rc::clone(&hits);
        ev.register(fd, Interest::READABLE, Mode::Level, move |_, event| {
            drain(event.fd());
            hits.borrow_mut().push(i);
        })
        .unwrap();
    }
    assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 0);
    send(&pairs[active].1, b"!");
    let before = ev.stats();
    assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1);
    assert_eq!(*hits.borrow(), [active]);
    let scanned = (ev.stats().fds_scanned - before.fds_scanned) as usize;
    match kind::<D>() {
        "epoll" | "uring" => assert!(scanned <= 2, "{scanned}"),
        _ => assert!(scanned >= N, "{scanned}"),
    }

    hits.borrow_mut().clear();
    let chosen: Vec<usize> = (0..N).step_by(8).collect();
    for &i in &chosen {
        send(&pairs[i].1, b"!");
    }
    let mut iterations = 0;
    while hits.borrow().len() < chosen.len() {
        iterations += 1;
        assert!(iterations <= 4, "{} of {} delivered after 4 dispatches", hits.borrow().len(), chosen.len());
        ev.run_once(Some(PATIENCE)).unwrap();
    }
    assert_eq!(ev.run_once(Some(QUIET)).unwrap(), 0);
    let mut got = hits.borrow().clone();
    got.sort_unstable();
    assert_eq!(got, chosen, "each ready fd delivered exactly once, no idle one");
    for &fd in &readers {
        ev.deregister(fd).unwrap();
    }
    assert_eq!(ev.registered_fds(), 0);
}

// ---------------------------------------------------------------------------
// 13. Stats
// ---------------------------------------------------------------------------

fn stats_count_dispatches_and_events<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    assert_eq!(ev.stats(), muxloop::Stats::default());
    let (a, b) = sys::socketpair().unwrap();
    let fa = a.as_raw_fd();
    let drain_it = Rc::new(Cell::new(true));
    let flag = Rc::clone(&drain_it);
    ev.register(fa, Interest::READABLE, Mode::Level, move |_, event| {
        if flag.get() {
            drain(event.fd());
        }
    })
    .unwrap();

    send(&b, b"1");
    assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1);
    let s = ev.stats();
    assert_eq!((s.dispatch_calls, s.events_reported, s.events_delivered), (1, 1, 1));

    assert_eq!(ev.run_once(Some(Duration::from_millis(10))).unwrap(), 0);
    let s = ev.stats();
    assert_eq!((s.dispatch_calls, s.events_reported, s.events_delivered), (2, 1, 1));
    assert!(s.wait_time >= Duration::from_millis(10), "the idle dispatch waited: {:?}", s.wait_time);

    // Level-triggered and not drained: three dispatches, three deliveries.
    drain_it.set(false);
    send(&b, b"2");
    for _ in 0..3 {
        assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1);
    }
    let s = ev.stats();
    assert_eq!((s.dispatch_calls, s.events_reported, s.events_delivered), (5, 4, 4));
    assert_eq!(drain(fa), 1);

    // The waker is reported by the backend but never delivered.
    ev.handle().wake();
    assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 0);
    let s = ev.stats();
    assert_eq!((s.dispatch_calls, s.events_reported, s.events_delivered), (6, 5, 4));

    // Timers and tasks.
    let fired = Rc::new(Cell::new(false));
    let flag = Rc::clone(&fired);
    ev.run_after(Duration::from_millis(1), move |_| flag.set(true));
    turn_until(&mut ev, "the timer", || fired.get());
    assert_eq!(ev.stats().timers_fired, 1);
    let tasks = counter();
    let counted = Rc::clone(&tasks);
    ev.defer(move |_| bump(&counted));
    ev.handle().run_in_loop(|_| {}).unwrap();
    let before = ev.stats().tasks_run;
    assert_eq!(before, 0);
    ev.run_once(Some(PATIENCE)).unwrap();
    assert_eq!(tasks.get(), 1);
    assert_eq!(ev.stats().tasks_run, 2, "one deferred task, one from a handle");

    // The scan cost adds up per dispatch: epoll only what was reported, poll
    // (and sim) every registered fd (the waker and `a`), select every fd up to the highest.
    let s = ev.stats();
    assert!(s.events_delivered <= s.events_reported);
    match kind::<D>() {
        "epoll" | "uring" => assert_eq!(s.fds_scanned, s.events_reported),
        "poll" | "sim" => assert_eq!(s.fds_scanned, 2 * s.dispatch_calls),
        _ => assert!(s.fds_scanned >= s.dispatch_calls * (fa as u64 + 1), "{s:?}"),
    }
    ev.deregister(fa).unwrap();
}

// ---------------------------------------------------------------------------
// 14. Re-entrancy and pausing
// ---------------------------------------------------------------------------

fn no_run_once_inside_a_callback<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    let fa = a.as_raw_fd();
    let calls = counter();
    let nested: Log<(&'static str, bool)> = Rc::default();
    let (counted, log) = (Rc::clone(&calls), Rc::clone(&nested));
    ev.register(fa, Interest::READABLE, Mode::Level, move |ev, event| {
        bump(&counted);
        log.borrow_mut().push(("handler run_once", ev.run_once(Some(Duration::ZERO)).is_err()));
        log.borrow_mut().push(("handler run", ev.run().is_err()));
        drain(event.fd());
    })
    .unwrap();
    let log = Rc::clone(&nested);
    ev.run_after(Duration::from_millis(1), move |ev| {
        log.borrow_mut().push(("timer run_once", ev.run_once(Some(Duration::ZERO)).is_err()));
    });
    let log = Rc::clone(&nested);
    ev.defer(move |ev| log.borrow_mut().push(("task run_once", ev.run_once(Some(Duration::ZERO)).is_err())));
    send(&b, b"data");
    turn_until(&mut ev, "handler, timer and task", || nested.borrow().len() == 4);
    assert_eq!(calls.get(), 1, "the nested calls did not dispatch (no recursion)");
    let mut got = nested.borrow().clone();
    got.sort_unstable();
    assert_eq!(
        got,
        [
            ("handler run", true),
            ("handler run_once", true),
            ("task run_once", true),
            ("timer run_once", true)
        ],
        "every nested call is refused with an error"
    );
    ev.deregister(fa).unwrap();
}

/// A nested `run()` is refused without eating a `quit()` requested earlier in
/// the same callback: the outer `run()` still returns.
fn nested_run_keeps_a_pending_quit<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    let fa = a.as_raw_fd();
    let nested_ok: Rc<Cell<Option<bool>>> = Rc::default();
    let slot = Rc::clone(&nested_ok);
    ev.register(fa, Interest::READABLE, Mode::Level, move |ev, event| {
        drain(event.fd());
        ev.quit();
        slot.set(Some(ev.run().is_ok()));
    })
    .unwrap();
    send(&b, b"x");
    assert!(run_guarded(&mut ev, PATIENCE), "the quit requested by the handler stopped run()");
    assert_eq!(nested_ok.get(), Some(false), "run() inside a handler is an error");
    ev.deregister(fa).unwrap();
}

fn interest_none_pauses_delivery<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    let fa = a.as_raw_fd();
    let got: Log<Vec<u8>> = Rc::default();
    let log = Rc::clone(&got);
    ev.register(fa, Interest::READABLE, Mode::Level, move |_, event| {
        log.borrow_mut().push(read_all(event.fd()));
    })
    .unwrap();
    ev.modify(fa, Interest::NONE, Mode::Level).unwrap();
    assert_eq!(ev.interest(fa), Some(Interest::NONE));
    assert!(ev.is_registered(fa), "paused, not removed");
    send(&b, b"waiting");
    let calls_before = ev.stats().dispatch_calls;
    let start = Instant::now();
    assert_eq!(ev.run_once(Some(SHORT)).unwrap(), 0, "paused: the unread data is not reported");
    assert!(start.elapsed() >= SHORT - Duration::from_millis(5), "and the dispatch slept, not spun");
    assert_eq!(ev.stats().dispatch_calls, calls_before + 1);
    assert!(got.borrow().is_empty());
    ev.set_interest(fa, Interest::READABLE).unwrap();
    assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1, "resumed: the data is still there");
    assert_eq!(*got.borrow(), [b"waiting".to_vec()]);

    // Registered paused from the start, then enabled.
    let (c, d) = sys::socketpair().unwrap();
    let fc = c.as_raw_fd();
    let calls = counter();
    let counted = Rc::clone(&calls);
    ev.register(fc, Interest::NONE, Mode::Level, move |_, event| {
        bump(&counted);
        drain(event.fd());
    })
    .unwrap();
    send(&d, b"x");
    assert_eq!(ev.run_once(Some(QUIET)).unwrap(), 0);
    ev.set_interest(fc, Interest::READABLE).unwrap();
    assert_eq!(ev.run_once(Some(PATIENCE)).unwrap(), 1);
    assert_eq!(calls.get(), 1);
    // A paused fd can be deregistered like any other.
    ev.set_interest(fc, Interest::NONE).unwrap();
    ev.deregister(fc).unwrap();
    ev.deregister(fa).unwrap();
    assert_eq!(ev.registered_fds(), 0);
}

// ---------------------------------------------------------------------------
// Random register/modify/deregister/write/read sequences against a model
// ---------------------------------------------------------------------------

/// xorshift64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[derive(Copy, Clone, Debug)]
struct Expected {
    interest: Interest,
    mode: Mode,
    armed: bool,
}

fn random_operations_match_a_model<D: Dispatcher>() {
    const PAIRS: usize = 12;
    const STEPS: usize = 3000;
    let pairs: Vec<(OwnedFd, OwnedFd)> = (0..PAIRS).map(|_| sys::socketpair().unwrap()).collect();
    let mut d = D::new().unwrap();
    let mut model: BTreeMap<RawFd, Expected> = BTreeMap::new();
    let mut unread = [0usize; PAIRS];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ backend_index::<D>() as u64);
    let mut events = Events::with_capacity(2);
    let interests = [Interest::READABLE, Interest::WRITABLE, Interest::BOTH];
    let modes = [Mode::Level, Mode::Oneshot];
    for step in 0..STEPS {
        let i = rng.below(PAIRS as u64) as usize;
        let fd = pairs[i].0.as_raw_fd();
        let interest = interests[rng.below(3) as usize];
        let mode = modes[rng.below(2) as usize];
        let registered = model.contains_key(&fd);
        match rng.below(7) {
            0 => {
                let result = d.register(fd, interest, mode);
                if registered {
                    assert_eq!(result.unwrap_err().kind(), ErrorKind::AlreadyExists, "step {step}");
                } else {
                    result.unwrap();
                    model.insert(fd, Expected { interest, mode, armed: true });
                }
            }
            1 | 2 => {
                let result = d.modify(fd, interest, mode);
                if registered {
                    result.unwrap();
                    model.insert(fd, Expected { interest, mode, armed: true });
                } else {
                    assert_eq!(result.unwrap_err().kind(), ErrorKind::NotFound, "step {step}");
                }
            }
            3 => {
                let result = d.deregister(fd);
                if registered {
                    result.unwrap();
                    model.remove(&fd);
                } else {
                    assert_eq!(result.unwrap_err().kind(), ErrorKind::NotFound, "step {step}");
                }
            }
            4 => {
                send(&pairs[i].1, b"+");
                unread[i] += 1;
            }
            5 => {
                assert_eq!(drain(fd), unread[i], "step {step}");
                unread[i] = 0;
            }
            _ => {
                d.dispatch(&mut events, Some(Duration::ZERO)).unwrap();
                let mut got: Vec<(RawFd, bool, bool)> =
                    events.iter().map(|e| (e.fd(), e.is_readable(), e.is_writable())).collect();
                got.sort_unstable();
                let mut want = Vec::new();
                for (k, (reader, _)) in pairs.iter().enumerate() {
                    let Some(exp) = model.get_mut(&reader.as_raw_fd()) else { continue };
                    let readable = exp.interest.is_readable() && unread[k] > 0;
                    let writable = exp.interest.is_writable();
                    // io_uring's poll completion says "was readable when it fired":
                    // data drained since then is a (permitted) spurious readable.
                    let stale = kind::<D>() == "uring"
                        && exp.armed
                        && exp.interest.is_readable()
                        && got.iter().any(|&(fd, r, _)| fd == reader.as_raw_fd() && r);
                    let readable = readable || stale;
                    if exp.armed && (readable || writable) {
                        want.push((reader.as_raw_fd(), readable, writable));
                        if exp.mode == Mode::Oneshot {
                            exp.armed = false;
                        }
                    }
                }
                want.sort_unstable();
                assert_eq!(got, want, "step {step}: model {model:?}");
            }
        }
        assert_eq!(d.len(), model.len(), "step {step}");
    }
    for fd in model.keys() {
        d.deregister(*fd).unwrap();
    }
    assert!(d.is_empty());
}

// ---------------------------------------------------------------------------
// Exact cases that pin what the cases above left loose (each killed a mutant
// of `src/dispatcher` that survived them; `docs/mutants.md` lists which)
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// One module per dispatcher
// ---------------------------------------------------------------------------

for_each_dispatcher!(
    readiness_on_socketpairs,
    readiness_on_pipes,
    readiness_on_std_unix_streams,
    interest_selects_what_is_reported,
    level_triggered_redelivers_until_drained,
    level_triggered_in_the_event_loop,
    oneshot_fires_once_until_rearmed,
    oneshot_in_the_event_loop,
    edge_triggered_only_where_supported,
    edge_triggered_in_the_event_loop,
    peer_close_reports_readable_then_eof,
    peer_close_in_the_event_loop,
    half_close_is_eof_not_hangup,
    pipe_writer_closed_reports_data_then_eof,
    pipe_reader_closed_reports_error,
    closed_without_deregister,
    bad_requests_are_clear_errors,
    bad_requests_in_the_event_loop,
    deregister_during_the_same_batch,
    narrow_or_pause_another_fd_during_the_batch,
    reused_fd_number_gets_no_stale_event,
    handler_replaces_its_own_fd,
    reused_fd_number_in_the_dispatcher,
    timers_fire_in_deadline_order,
    cancelled_timers_never_fire,
    run_every_repeats_then_cancels_itself,
    a_timer_wakes_run_with_no_fds,
    a_timer_never_fires_before_its_deadline,
    sub_millisecond_timeouts_round_up,
    run_in_loop_from_four_threads,
    quit_and_wake_from_another_thread,
    loop_handle_after_the_loop_is_dropped,
    fds_above_fd_setsize,
    five_thousand_fds_one_active,
    stats_count_dispatches_and_events,
    no_run_once_inside_a_callback,
    nested_run_keeps_a_pending_quit,
    interest_none_pauses_delivery,
    random_operations_match_a_model,
    read_closed_only_after_the_peer_shuts_down,
    interrupted_wait_is_an_empty_batch,
    many_ready_fds_all_reported_by_the_second_dispatch,
    disarmed_oneshot_fd_survives_a_neighbour_removal,
);

// The same cases on the simulated kernel (`SimDispatcher`, one `Sim` per
// test thread, no faults, the real clock). Left out, because a
// single-threaded simulated kernel cannot serve them:
// * readiness_on_std_unix_streams, read_closed_only_after_the_peer_shuts_down:
//   std `UnixStream::pair` makes real sockets, which the sim backend refuses;
// * pipe_reader_closed_reports_error: pipe semantics (POLLERR on a write end
//   whose reader closed); a simulated pipe is a Unix stream pair, which hangs up;
// * closed_without_deregister, reused_fd_number_gets_no_stale_event,
//   handler_replaces_its_own_fd, reused_fd_number_in_the_dispatcher,
//   fds_above_fd_setsize: `dup_at_least` copies the real placeholder fd, which
//   the simulator does not know (the copy is not a simulated socket);
// * five_thousand_fds_one_active: thousands of fds (each simulated socket
//   holds a real pipe, and the sim's fd limit is 1,024);
// * run_in_loop_from_four_threads, quit_and_wake_from_another_thread: other
//   threads post tasks and wake the loop, and only the loop's thread reaches
//   its simulated kernel;
// * interrupted_wait_is_an_empty_batch: a real signal; the sim's wait is a
//   plain sleep (its EINTR is the fault `DispatchInterrupted`).
for_sim_dispatcher!(
    readiness_on_socketpairs,
    readiness_on_pipes,
    interest_selects_what_is_reported,
    level_triggered_redelivers_until_drained,
    level_triggered_in_the_event_loop,
    oneshot_fires_once_until_rearmed,
    oneshot_in_the_event_loop,
    edge_triggered_only_where_supported,
    edge_triggered_in_the_event_loop,
    peer_close_reports_readable_then_eof,
    peer_close_in_the_event_loop,
    half_close_is_eof_not_hangup,
    pipe_writer_closed_reports_data_then_eof,
    bad_requests_are_clear_errors,
    bad_requests_in_the_event_loop,
    deregister_during_the_same_batch,
    narrow_or_pause_another_fd_during_the_batch,
    timers_fire_in_deadline_order,
    cancelled_timers_never_fire,
    run_every_repeats_then_cancels_itself,
    a_timer_wakes_run_with_no_fds,
    a_timer_never_fires_before_its_deadline,
    sub_millisecond_timeouts_round_up,
    loop_handle_after_the_loop_is_dropped,
    stats_count_dispatches_and_events,
    no_run_once_inside_a_callback,
    nested_run_keeps_a_pending_quit,
    interest_none_pauses_delivery,
    random_operations_match_a_model,
    many_ready_fds_all_reported_by_the_second_dispatch,
    disarmed_oneshot_fd_survives_a_neighbour_removal,
);
