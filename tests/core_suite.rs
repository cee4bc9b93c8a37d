//! The Dispatcher contract and the EventLoop, over real fds, once per
//! backend (select, poll, epoll): readiness, level/oneshot/edge modes,
//! hang-ups, errors, handlers that deregister during a batch, timers, cross-thread tasks, fds above FD_SETSIZE and 5,000 idle fds.

mod common;

use std::cell::{Cell, RefCell};
use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::wait_until;
use muxloop::{Dispatcher, Event, EventLoop, Events, Interest, Mode, sys};

const SHORT: Duration = Duration::from_millis(50);
const LONG: Duration = Duration::from_secs(5);

/// One dispatch; the events as a vector.
fn dispatch<D: Dispatcher>(d: &mut D, timeout: Duration) -> Vec<Event> {
    let mut events = Events::with_capacity(16);
    d.dispatch(&mut events, Some(timeout)).expect("dispatch");
    events.iter().copied().collect()
}

fn fds_of(events: &[Event]) -> Vec<RawFd> {
    let mut fds: Vec<RawFd> = events.iter().map(Event::fd).collect();
    fds.sort();
    fds
}

fn write(fd: &OwnedFd, data: &[u8]) {
    assert_eq!(sys::write(fd.as_raw_fd(), data).unwrap(), data.len());
}

fn drain(fd: RawFd) -> usize {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    while let Ok(n) = sys::read(fd, &mut buf) {
        if n == 0 {
            break;
        }
        total += n;
    }
    total
}

fn readiness_on_socketpairs_and_pipes<D: Dispatcher>() {
    let mut d = D::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    let (pipe_r, pipe_w) = sys::pipe().unwrap();
    d.register(a.as_raw_fd(), Interest::BOTH, Mode::Level).unwrap();
    d.register(pipe_r.as_raw_fd(), Interest::READABLE, Mode::Level).unwrap();
    d.register(pipe_w.as_raw_fd(), Interest::WRITABLE, Mode::Level).unwrap();
    assert_eq!(d.len(), 3);

    let events = dispatch(&mut d, SHORT);
    let a_event = events.iter().find(|e| e.fd() == a.as_raw_fd()).expect("a fresh socket is writable");
    assert!(a_event.is_writable() && !a_event.is_readable());
    assert!(events.iter().any(|e| e.fd() == pipe_w.as_raw_fd() && e.is_writable()));
    assert!(!events.iter().any(|e| e.fd() == pipe_r.as_raw_fd()), "an empty pipe is not readable");

    write(&b, b"x");
    write(&pipe_w, b"y");
    let events = dispatch(&mut d, SHORT);
    let a_event = events.iter().find(|e| e.fd() == a.as_raw_fd()).unwrap();
    assert!(a_event.is_readable() && a_event.is_writable());
    assert!(events.iter().any(|e| e.fd() == pipe_r.as_raw_fd() && e.is_readable()));
    for fd in [a.as_raw_fd(), pipe_r.as_raw_fd(), pipe_w.as_raw_fd()] {
        d.deregister(fd).unwrap();
    }
    assert!(d.is_empty());
}

fn level_triggered_redelivers_until_drained<D: Dispatcher>() {
    let mut d = D::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    d.register(a.as_raw_fd(), Interest::READABLE, Mode::Level).unwrap();
    write(&b, b"unread");
    for round in 0..3 {
        assert_eq!(fds_of(&dispatch(&mut d, SHORT)), [a.as_raw_fd()], "round {round}: still readable");
    }
    assert_eq!(drain(a.as_raw_fd()), 6);
    assert!(dispatch(&mut d, SHORT).is_empty(), "drained: nothing to report");
    d.deregister(a.as_raw_fd()).unwrap();
}

fn oneshot_fires_once_until_rearmed<D: Dispatcher>() {
    let mut d = D::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    let fd = a.as_raw_fd();
    d.register(fd, Interest::READABLE, Mode::Oneshot).unwrap();
    write(&b, b"data");
    assert_eq!(fds_of(&dispatch(&mut d, SHORT)), [fd]);
    assert!(dispatch(&mut d, SHORT).is_empty(), "disarmed although data is unread");
    drop(b); // even a hang-up is not reported while disarmed
    assert!(dispatch(&mut d, SHORT).is_empty());
    d.modify(fd, Interest::READABLE, Mode::Oneshot).unwrap();
    assert_eq!(fds_of(&dispatch(&mut d, SHORT)), [fd], "re-armed");
    assert!(dispatch(&mut d, SHORT).is_empty());
    assert_eq!(d.len(), 1, "a disarmed fd stays registered");
    d.deregister(fd).unwrap();
}

fn oneshot_in_the_event_loop<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    let fd = a.as_raw_fd();
    let calls = Rc::new(Cell::new(0));
    let counted = Rc::clone(&calls);
    ev.register(fd, Interest::READABLE, Mode::Oneshot, move |_, _| counted.set(counted.get() + 1)).unwrap();
    write(&b, b"data");
    for _ in 0..3 {
        ev.run_once(Some(SHORT)).unwrap();
    }
    assert_eq!(calls.get(), 1);
    ev.modify(fd, Interest::READABLE, Mode::Oneshot).unwrap();
    ev.run_once(Some(SHORT)).unwrap();
    ev.run_once(Some(SHORT)).unwrap();
    assert_eq!(calls.get(), 2);
    ev.deregister(fd).unwrap();
}

fn edge_triggered_only_where_supported<D: Dispatcher + 'static>() {
    let mut d = D::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    let fd = a.as_raw_fd();
    assert_eq!(D::supports(Mode::Edge), D::SUPPORTS_EDGE);
    if !D::SUPPORTS_EDGE {
        let err = d.register(fd, Interest::READABLE, Mode::Edge).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.to_string().contains(D::NAME), "{err}");
        assert!(d.is_empty(), "a refused registration leaves nothing behind");
        let mut ev = EventLoop::<D>::new().unwrap();
        let err = ev.register(fd, Interest::READABLE, Mode::Edge, |_, _| {}).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(!ev.is_registered(fd));
        return;
    }
    d.register(fd, Interest::READABLE, Mode::Edge).unwrap();
    write(&b, b"one");
    assert_eq!(fds_of(&dispatch(&mut d, SHORT)), [fd]);
    assert!(dispatch(&mut d, SHORT).is_empty(), "old data is not reported again");
    write(&b, b"two");
    assert_eq!(fds_of(&dispatch(&mut d, SHORT)), [fd], "new data is a new edge");
    assert!(dispatch(&mut d, SHORT).is_empty());
    assert_eq!(drain(fd), 6);
    d.deregister(fd).unwrap();
}

fn peer_close_reports_readable_and_eof<D: Dispatcher>() {
    let mut d = D::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    let fd = a.as_raw_fd();
    d.register(fd, Interest::READABLE, Mode::Level).unwrap();
    drop(b);
    let events = dispatch(&mut d, SHORT);
    assert_eq!(fds_of(&events), [fd]);
    assert!(events[0].is_readable(), "EOF is readable");
    if D::NAME != "select" {
        // poll and epoll report the hang-up itself; select has no way to.
        assert!(events[0].is_hangup(), "{:?}", events[0]);
    }
    assert_eq!(sys::read(fd, &mut [0u8; 8]).unwrap(), 0, "read returns 0 at EOF");
    d.deregister(fd).unwrap();
}

fn bad_requests_are_clear_errors<D: Dispatcher + 'static>() {
    let mut d = D::new().unwrap();
    let (a, _b) = sys::socketpair().unwrap();
    let fd = a.as_raw_fd();
    d.register(fd, Interest::READABLE, Mode::Level).unwrap();
    assert_eq!(d.register(fd, Interest::READABLE, Mode::Level).unwrap_err().kind(), ErrorKind::AlreadyExists);
    let (unknown, _c) = sys::socketpair().unwrap();
    let unknown = unknown.as_raw_fd();
    assert_eq!(d.modify(unknown, Interest::READABLE, Mode::Level).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(d.deregister(unknown).unwrap_err().kind(), ErrorKind::NotFound);
    for bad in [
        d.register(-1, Interest::READABLE, Mode::Level),
        d.modify(-5, Interest::READABLE, Mode::Level),
        d.deregister(-1),
    ] {
        assert_eq!(bad.unwrap_err().kind(), ErrorKind::InvalidInput);
    }
    assert_eq!(d.register(unknown, Interest::NONE, Mode::Level).unwrap_err().kind(), ErrorKind::InvalidInput);
    d.deregister(fd).unwrap();
    assert_eq!(d.deregister(fd).unwrap_err().kind(), ErrorKind::NotFound, "twice");

    let mut ev = EventLoop::<D>::new().unwrap();
    ev.register(fd, Interest::READABLE, Mode::Level, |_, _| {}).unwrap();
    assert_eq!(
        ev.register(fd, Interest::READABLE, Mode::Level, |_, _| {}).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        ev.register(-3, Interest::READABLE, Mode::Level, |_, _| {}).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(ev.modify(unknown, Interest::READABLE, Mode::Level).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(ev.deregister(unknown).unwrap_err().kind(), ErrorKind::NotFound);
    ev.deregister(fd).unwrap();
}

/// Two fds ready in one batch; whichever handler runs first deregisters the
/// other (and, in the second round, itself): the other handler never runs.
fn deregister_during_the_same_batch<D: Dispatcher + 'static>() {
    for also_self in [false, true] {
        let mut ev = EventLoop::<D>::new().unwrap();
        let (a, a_peer) = sys::socketpair().unwrap();
        let (b, b_peer) = sys::socketpair().unwrap();
        let (fa, fb) = (a.as_raw_fd(), b.as_raw_fd());
        let ran: Rc<RefCell<Vec<RawFd>>> = Rc::default();
        for (me, other) in [(fa, fb), (fb, fa)] {
            let ran = Rc::clone(&ran);
            ev.register(me, Interest::READABLE, Mode::Level, move |ev, _| {
                ran.borrow_mut().push(me);
                if ev.is_registered(other) {
                    ev.deregister(other).unwrap();
                }
                if also_self {
                    ev.deregister(me).unwrap();
                }
            })
            .unwrap();
        }
        write(&a_peer, b"1");
        write(&b_peer, b"2");
        assert_eq!(ev.run_once(Some(LONG)).unwrap(), 1, "one handler ran");
        assert_eq!(ran.borrow().len(), 1);
        assert_eq!(ev.registered_fds(), usize::from(!also_self));
        ev.run_once(Some(SHORT)).unwrap();
        assert_eq!(ran.borrow().len(), usize::from(!also_self) + 1, "the survivor keeps running (level)");
    }
}

fn timers_fire_in_deadline_order_and_cancel<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let order: Rc<RefCell<Vec<u32>>> = Rc::default();
    let start = Instant::now();
    for (ms, tag) in [(30, 30), (10, 10), (20, 20), (25, 25)] {
        let order = Rc::clone(&order);
        ev.run_after(Duration::from_millis(ms), move |_| {
            assert!(start.elapsed() >= Duration::from_millis(ms), "timer {tag} fired early");
            order.borrow_mut().push(tag);
        });
    }
    let cancelled = {
        let order = Rc::clone(&order);
        ev.run_after(Duration::from_millis(15), move |_| order.borrow_mut().push(15))
    };
    assert!(ev.cancel(cancelled));
    assert!(!ev.cancel(cancelled), "cancel reports only the first time");
    let done = Rc::clone(&order);
    let deadline = Instant::now() + LONG;
    while done.borrow().len() < 4 && Instant::now() < deadline {
        ev.run_once(None).unwrap();
    }
    assert_eq!(*order.borrow(), [10, 20, 25, 30]);
    assert_eq!(ev.pending_timers(), 0);
}

fn run_every_repeats_and_cancels_itself<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let ticks = Rc::new(Cell::new(0));
    let id = Rc::new(Cell::new(None));
    let (counted, own_id) = (Rc::clone(&ticks), Rc::clone(&id));
    let timer = ev.run_every(Duration::from_millis(5), move |ev| {
        counted.set(counted.get() + 1);
        if counted.get() == 3 {
            assert!(ev.cancel(own_id.get().unwrap()), "a repeating timer can cancel itself");
            ev.quit();
        }
    });
    id.set(Some(timer));
    let guard = ev.run_after(LONG, |_| panic!("run_every never reached 3 ticks"));
    ev.run().unwrap();
    ev.cancel(guard);
    assert_eq!(ticks.get(), 3);
    for _ in 0..3 {
        ev.run_once(Some(Duration::from_millis(10))).unwrap();
    }
    assert_eq!(ticks.get(), 3, "cancelled for good");
    assert!(!ev.cancel(timer));
}

fn a_timer_wakes_a_loop_with_no_fds<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    assert_eq!(ev.registered_fds(), 0);
    let start = Instant::now();
    ev.run_after(Duration::from_millis(30), |ev| ev.quit());
    let watchdog = ev.handle();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let guard = thread::spawn(move || {
        if !wait_until(LONG, || stopped.load(Ordering::SeqCst)) {
            watchdog.quit(); // make a hang a failure, not a stuck test
        }
    });
    ev.run().unwrap();
    stop.store(true, Ordering::SeqCst);
    guard.join().unwrap();
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(30), "quit before the timer ({took:?})");
    assert!(took < LONG, "the timer did not wake the loop");
}

fn run_in_loop_from_four_threads<D: Dispatcher + 'static>() {
    const THREADS: usize = 4;
    const TASKS: usize = 10_000;
    let mut ev = EventLoop::<D>::new().unwrap();
    let seen: Arc<Vec<AtomicU8>> = Arc::new((0..THREADS * TASKS).map(|_| AtomicU8::new(0)).collect());
    let senders: Vec<_> = (0..THREADS)
        .map(|t| {
            let (handle, seen) = (ev.handle(), Arc::clone(&seen));
            thread::spawn(move || {
                for i in 0..TASKS {
                    let seen = Arc::clone(&seen);
                    handle
                        .run_in_loop(move |_| {
                            seen[t * TASKS + i].fetch_add(1, Ordering::SeqCst);
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    let quitter = {
        let (handle, seen) = (ev.handle(), Arc::clone(&seen));
        thread::spawn(move || {
            let all_ran =
                wait_until(Duration::from_secs(20), || seen.iter().all(|s| s.load(Ordering::SeqCst) > 0));
            handle.quit();
            all_ran
        })
    };
    ev.run().unwrap();
    senders.into_iter().for_each(|s| s.join().unwrap());
    assert!(quitter.join().unwrap(), "every task ran before quit");
    ev.run_once(Some(SHORT)).unwrap(); // nothing left over
    assert!(seen.iter().all(|s| s.load(Ordering::SeqCst) == 1), "each task ran exactly once");

    let handle = ev.handle();
    assert!(handle.is_alive());
    drop(ev);
    assert!(!handle.is_alive());
    assert_eq!(handle.run_in_loop(|_| {}).unwrap_err().kind(), ErrorKind::BrokenPipe);
}

/// Fds numbered above FD_SETSIZE (1024) work on every backend, select included.
fn fds_above_fd_setsize<D: Dispatcher>() {
    let (soft, _) = sys::nofile_limit().unwrap();
    if soft < 4200 {
        assert!(sys::set_nofile_limit(4200).unwrap() >= 4200, "need 4200 fds for this test");
    }
    let mut d = D::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    let (c, e) = sys::socketpair().unwrap();
    let high = sys::dup_at_least(a.as_fd(), 1500).unwrap();
    let higher = sys::dup_at_least(c.as_fd(), 4000).unwrap();
    assert!(high.as_raw_fd() >= 1500 && higher.as_raw_fd() >= 4000);
    d.register(high.as_raw_fd(), Interest::READABLE, Mode::Level).unwrap();
    d.register(higher.as_raw_fd(), Interest::READABLE, Mode::Level).unwrap();
    assert!(dispatch(&mut d, SHORT).is_empty());
    write(&b, b"x");
    assert_eq!(fds_of(&dispatch(&mut d, SHORT)), [high.as_raw_fd()]);
    write(&e, b"y");
    assert_eq!(fds_of(&dispatch(&mut d, SHORT)), [high.as_raw_fd(), higher.as_raw_fd()]);
    d.deregister(high.as_raw_fd()).unwrap();
    d.deregister(higher.as_raw_fd()).unwrap();
}

/// 5,000 registered fds, one active: exactly that one is delivered, and the
/// scan cost differs the way the backends differ.
fn five_thousand_fds_one_active<D: Dispatcher + 'static>() {
    const N: usize = 5000;
    let (soft, _) = sys::nofile_limit().unwrap();
    if soft < (2 * N + 100) as u64 {
        assert!(sys::set_nofile_limit((2 * N + 100) as u64).unwrap() >= (2 * N + 100) as u64);
    }
    let pairs: Vec<(OwnedFd, OwnedFd)> = (0..N).map(|_| sys::socketpair().unwrap()).collect();
    let mut ev = EventLoop::<D>::new().unwrap();
    let hits: Rc<RefCell<Vec<usize>>> = Rc::default();
    for (i, (reader, _)) in pairs.iter().enumerate() {
        let hits = Rc::clone(&hits);
        ev.register(reader.as_raw_fd(), Interest::READABLE, Mode::Level, move |_, event| {
            drain(event.fd());
            hits.borrow_mut().push(i);
        })
        .unwrap();
    }
    assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 0, "nothing is ready");
    let active = 3777;
    write(&pairs[active].1, b"!");
    let before = ev.stats();
    assert_eq!(ev.run_once(Some(LONG)).unwrap(), 1);
    let after = ev.stats();
    assert_eq!(*hits.borrow(), [active]);
    let scanned = after.fds_scanned - before.fds_scanned;
    match D::NAME {
        "epoll" => assert!(scanned <= 2, "epoll copies out only ready fds ({scanned})"),
        "poll" => assert!(scanned > N as u64, "poll scans every registered fd ({scanned})"),
        _ => assert!(scanned >= 2 * N as u64, "select scans up to the highest fd ({scanned})"),
    }
    for (reader, _) in &pairs {
        ev.deregister(reader.as_raw_fd()).unwrap();
    }
}

fn stats_count_dispatches_and_deliveries<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    ev.register(a.as_raw_fd(), Interest::READABLE, Mode::Level, |_, event| {
        drain(event.fd());
    })
    .unwrap();
    let start = ev.stats();
    assert_eq!(start.dispatch_calls, 0);
    write(&b, b"1");
    ev.run_once(Some(LONG)).unwrap();
    ev.run_once(Some(Duration::from_millis(10))).unwrap();
    ev.defer(|_| {});
    ev.run_once(Some(LONG)).unwrap();
    let stats = ev.stats();
    assert_eq!(stats.dispatch_calls, 3);
    assert_eq!(stats.events_delivered, 1);
    assert_eq!(stats.tasks_run, 1);
    assert!(stats.wait_time >= Duration::from_millis(10), "the idle dispatch waited ({:?})", stats.wait_time);
    ev.deregister(a.as_raw_fd()).unwrap();
}

fn no_reentrant_run_and_interest_none_pauses<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (a, b) = sys::socketpair().unwrap();
    let fd = a.as_raw_fd();
    let nested: Rc<RefCell<Option<ErrorKind>>> = Rc::default();
    let calls = Rc::new(Cell::new(0));
    let (seen, counted) = (Rc::clone(&nested), Rc::clone(&calls));
    ev.register(fd, Interest::READABLE, Mode::Level, move |ev, _| {
        counted.set(counted.get() + 1);
        *seen.borrow_mut() = ev.run_once(Some(Duration::ZERO)).err().map(|e| e.kind());
    })
    .unwrap();
    write(&b, b"data");
    ev.run_once(Some(LONG)).unwrap();
    assert_eq!(*nested.borrow(), Some(ErrorKind::Other), "run_once inside a handler is refused");

    ev.set_interest(fd, Interest::NONE).unwrap();
    assert_eq!(ev.interest(fd), Some(Interest::NONE));
    let paused_at = calls.get();
    let start = Instant::now();
    assert_eq!(ev.run_once(Some(SHORT)).unwrap(), 0, "paused: unread data is not reported");
    assert!(start.elapsed() >= Duration::from_millis(40), "and the loop slept instead of spinning");
    assert_eq!(calls.get(), paused_at);
    ev.set_interest(fd, Interest::READABLE).unwrap();
    assert_eq!(ev.run_once(Some(LONG)).unwrap(), 1, "resumed: the data is there");
    ev.deregister(fd).unwrap();
}

for_each_dispatcher!(
    readiness_on_socketpairs_and_pipes,
    level_triggered_redelivers_until_drained,
    oneshot_fires_once_until_rearmed,
    oneshot_in_the_event_loop,
    edge_triggered_only_where_supported,
    peer_close_reports_readable_and_eof,
    bad_requests_are_clear_errors,
    deregister_during_the_same_batch,
    timers_fire_in_deadline_order_and_cancel,
    run_every_repeats_and_cancels_itself,
    a_timer_wakes_a_loop_with_no_fds,
    run_in_loop_from_four_threads,
    fds_above_fd_setsize,
    five_thousand_fds_one_active,
    stats_count_dispatches_and_deliveries,
    no_reentrant_run_and_interest_none_pauses,
);
