//! The event loop's own state, beside the contract cases in `suite.rs`: loop
//! identity and names, the counters in `stats()`, `Debug` output, handle
//! liveness, the context map, the bookkeeping of registered fds, timers at the
//! edges (very late, overflowing delays). Each runs once per dispatcher. They
//! were written to kill the mutants of `src/event_loop` that survived the
//! suite (`docs/mutants.md` lists each).

use std::cell::Cell;
use std::os::fd::{AsFd, AsRawFd};
use std::rc::Rc;
use std::thread;
use std::time::Duration;

use muxloop::{Dispatcher, EventLoop, Interest, Mode};

/// A loop is named after the thread that created it, and `set_name` renames it.
fn loop_name_follows_thread_and_set_name<D: Dispatcher + 'static>() {
    let name = thread::Builder::new()
        .name("mutant-probe".into())
        .spawn(|| {
            let mut ev = EventLoop::<D>::new().unwrap();
            let first = ev.name().to_owned();
            ev.set_name("renamed");
            (first, ev.name().to_owned())
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(name, ("mutant-probe".to_owned(), "renamed".to_owned()));
}

/// Loop ids are distinct, and the backend name is the dispatcher's own.
fn ids_differ_and_backend_is_named<D: Dispatcher + 'static>() {
    let a = EventLoop::<D>::new().unwrap();
    let b = EventLoop::<D>::new().unwrap();
    let c = EventLoop::<D>::new().unwrap();
    assert_ne!(a.id(), b.id());
    assert_ne!(b.id(), c.id());
    assert_ne!(a.id(), c.id());
    let backend = D::new().unwrap();
    assert_eq!(a.dispatcher_name(), backend.name());
    let known: &[&str] = if D::NAME == "sim" { &["sim"] } else { &["select", "poll", "epoll", "uring"] };
    assert!(known.contains(&a.dispatcher_name()), "{}", a.dispatcher_name());
    assert_eq!(a.fresh_dispatcher().unwrap().name(), backend.name());
}

/// `registered_fds` counts handlers up and down; `Debug` shows the counts.
fn registered_count_and_debug<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (a, _a2) = muxloop::sys::socketpair().unwrap();
    let (b, _b2) = muxloop::sys::socketpair().unwrap();
    assert_eq!(ev.registered_fds(), 0);
    ev.register(a.as_raw_fd(), Interest::READABLE, Mode::Level, |_, _| {}).unwrap();
    assert_eq!(ev.registered_fds(), 1);
    ev.register(b.as_raw_fd(), Interest::NONE, Mode::Level, |_, _| {}).unwrap();
    assert_eq!(ev.registered_fds(), 2);
    ev.run_after(Duration::from_secs(60), |_| {});
    let text = format!("{ev:?}");
    assert!(text.starts_with("EventLoop"), "{text}");
    assert!(text.contains("registered_fds: 2"), "{text}");
    assert!(text.contains("pending_timers: 1"), "{text}");
    assert!(text.contains(ev.dispatcher_name()), "{text}");
    assert_eq!(ev.interest(a.as_raw_fd()), Some(Interest::READABLE));
    assert_eq!(ev.interest(b.as_raw_fd()), Some(Interest::NONE));
    assert!(ev.is_registered(a.as_raw_fd()) && ev.is_registered(b.as_raw_fd()));
    assert_eq!(ev.pending_timers(), 1);
    ev.run_after(Duration::from_secs(60), |_| {});
    assert_eq!(ev.pending_timers(), 2);
    ev.deregister(a.as_raw_fd()).unwrap();
    assert_eq!(ev.registered_fds(), 1);
    assert!(!ev.is_registered(a.as_raw_fd()));
    assert_eq!(ev.interest(a.as_raw_fd()), None);
    ev.deregister(b.as_raw_fd()).unwrap();
    assert_eq!(ev.registered_fds(), 0);
    let handle = ev.handle();
    let text = format!("{handle:?}");
    assert!(text.contains("LoopHandle") && text.contains(D::NAME), "{text}");
}

/// A handle reports the loop alive until the loop is dropped; a clone too.
fn handle_liveness<D: Dispatcher + 'static>() {
    let ev = EventLoop::<D>::new().unwrap();
    let handle = ev.handle();
    let clone = handle.clone();
    assert!(handle.is_alive() && clone.is_alive());
    drop(ev);
    assert!(!handle.is_alive() && !clone.is_alive());
    assert_eq!(clone.run_in_loop(|_| {}).unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
}

/// Every counter in `stats()` moves by what happened, and only by that.
fn stats_count_what_happened<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (reader, writer) = muxloop::sys::socketpair().unwrap();
    let fd = reader.as_raw_fd();
    let reads = Rc::new(Cell::new(0));
    let r = Rc::clone(&reads);
    // The handler owns the socket: deregistering drops it, then it closes.
    ev.register(fd, Interest::READABLE, Mode::Level, move |_, _| {
        let mut buf = [0u8; 16];
        let _ = muxloop::sys::read(reader.as_fd(), &mut buf);
        r.set(r.get() + 1);
    })
    .unwrap();
    assert_eq!(ev.stats(), muxloop::Stats::default());

    // One idle dispatch that sleeps ~30 ms.
    assert_eq!(ev.run_once(Some(Duration::from_millis(30))).unwrap(), 0);
    let s = ev.stats();
    assert_eq!(s.dispatch_calls, 1);
    assert_eq!(s.events_delivered, 0);
    assert!(s.wait_time >= Duration::from_millis(25), "{s:?}");
    assert!(s.wait_time < Duration::from_secs(5), "{s:?}");

    // Time spent between dispatches is handle time.
    thread::sleep(Duration::from_millis(40));
    muxloop::sys::write(writer.as_fd(), b"x").unwrap();
    assert_eq!(ev.run_once(Some(Duration::from_secs(5))).unwrap(), 1);
    let s = ev.stats();
    assert_eq!(s.dispatch_calls, 2);
    assert_eq!(s.events_reported, 1);
    assert_eq!(s.events_delivered, 1);
    assert!(s.handle_time >= Duration::from_millis(35), "{s:?}");
    assert!(s.handle_time < Duration::from_secs(5), "{s:?}");
    assert!(s.wait_time < Duration::from_secs(5), "{s:?}");
    assert_eq!(reads.get(), 1);
    assert!(s.fds_scanned >= 1, "{s:?}");

    // Two tasks (one local, one remote) and one timer.
    ev.defer(|_| {});
    ev.handle().run_in_loop(|_| {}).unwrap();
    ev.run_after(Duration::ZERO, |_| {});
    thread::sleep(Duration::from_millis(2));
    ev.run_once(Some(Duration::from_secs(5))).unwrap();
    let s = ev.stats();
    assert_eq!(s.timers_fired, 1, "{s:?}");
    assert_eq!(s.tasks_run, 2, "{s:?}");
    assert_eq!(s.dispatch_calls, 3);
    // The waker's own event is reported but not delivered.
    assert_eq!(s.events_delivered, 1, "{s:?}");
    assert!(s.events_reported >= 1, "{s:?}");
    ev.deregister(fd).unwrap();
}

/// A second `register` of one fd is refused even when neither reaches the
/// backend (paused with `Interest::NONE`), and the first handler stays.
fn duplicate_paused_registration_is_refused<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (a, b) = muxloop::sys::socketpair().unwrap();
    let fd = a.as_raw_fd();
    let hits = Rc::new(Cell::new((0, 0)));
    let h = Rc::clone(&hits);
    ev.register(fd, Interest::NONE, Mode::Level, move |_, _| h.set((h.get().0 + 1, h.get().1))).unwrap();
    let h = Rc::clone(&hits);
    let err = ev
        .register(fd, Interest::NONE, Mode::Level, move |_, _| h.set((h.get().0, h.get().1 + 1)))
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(ev.registered_fds(), 1);
    muxloop::sys::write(b.as_fd(), b"x").unwrap();
    ev.set_interest(fd, Interest::READABLE).unwrap();
    ev.run_once(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(hits.get(), (1, 0), "the first handler must still be the one called");
    ev.deregister(fd).unwrap();
}

/// A repeating timer that fires late keeps its period: the next deadline is
/// the missed one plus the interval, not "now" plus the interval.
fn late_repeating_timer_keeps_its_period<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let start = std::time::Instant::now();
    let fired = Rc::new(std::cell::RefCell::new(Vec::new()));
    let f = Rc::clone(&fired);
    ev.run_every(Duration::from_millis(300), move |_| f.borrow_mut().push(start.elapsed()));
    // Late by 150 ms: the loop was busy.
    thread::sleep(Duration::from_millis(450));
    ev.run_once(Some(Duration::ZERO)).unwrap();
    assert_eq!(fired.borrow().len(), 1, "fired once, no replay of missed periods");
    let deadline = start + Duration::from_secs(10);
    while fired.borrow().len() < 2 && std::time::Instant::now() < deadline {
        ev.run_once(Some(Duration::from_secs(1))).unwrap();
    }
    let second = fired.borrow()[1];
    // Period kept: due at 600 ms. Rescheduled from "now" it would be 750 ms.
    assert!(second < Duration::from_millis(720), "second tick at {second:?}");
    assert!(second >= Duration::from_millis(590), "second tick at {second:?}");
}

/// A delay too long for `Instant` arms a timer that never fires (no panic).
fn overflowing_delay_is_far_future<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let fired = Rc::new(Cell::new(false));
    let f = Rc::clone(&fired);
    ev.run_after(Duration::MAX, move |_| f.set(true));
    ev.run_every(Duration::MAX, |_| panic!("must not fire"));
    assert_eq!(ev.pending_timers(), 2);
    ev.run_once(Some(Duration::from_millis(10))).unwrap();
    assert!(!fired.get());
    assert_eq!(ev.pending_timers(), 2);
}

/// `LoopHandle::wake` from another thread ends a long wait with nothing to
/// do, and the waker is drained: the next wait sleeps its full timeout.
fn handle_wake_interrupts_and_is_drained<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let handle = ev.handle();
    let waker = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        handle.wake();
    });
    let t0 = std::time::Instant::now();
    assert_eq!(ev.run_once(Some(Duration::from_secs(20))).unwrap(), 0);
    assert!(t0.elapsed() < Duration::from_secs(10), "wake did not interrupt the wait");
    waker.join().unwrap();
    let t1 = std::time::Instant::now();
    ev.run_once(Some(Duration::from_millis(60))).unwrap();
    assert!(t1.elapsed() >= Duration::from_millis(50), "the waker was left readable");
    // A second wake works as well (the in-flight flag was cleared).
    let handle = ev.handle();
    let waker = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        handle.wake();
    });
    let t2 = std::time::Instant::now();
    ev.run_once(Some(Duration::from_secs(20))).unwrap();
    assert!(t2.elapsed() < Duration::from_secs(10), "second wake did not interrupt the wait");
    waker.join().unwrap();
}

/// `context::<T>()` keeps one value per type for the loop's lifetime.
fn context_keeps_state_per_type<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    assert_eq!(*ev.context::<u32>(), 0);
    *ev.context::<u32>() += 7;
    ev.context::<Vec<&str>>().push("kept");
    assert_eq!(*ev.context::<u32>(), 7);
    assert_eq!(*ev.context::<Vec<&str>>(), ["kept"]);
    let other = EventLoop::<D>::new().map(|mut o| *o.context::<u32>()).unwrap();
    assert_eq!(other, 0, "contexts are per loop");
}

/// A repeating timer late by several periods fires once, then again one
/// period after it ran: missed periods are not replayed in a burst.
fn very_late_repeating_timer_fires_once<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let fired = Rc::new(Cell::new(0));
    let f = Rc::clone(&fired);
    let id = Rc::new(Cell::new(None));
    let own = Rc::clone(&id);
    let timer = ev.run_every(Duration::from_millis(40), move |ev| {
        f.set(f.get() + 1);
        // Bounded even if periods were replayed: stop after five.
        if f.get() >= 5 {
            ev.cancel(own.get().unwrap());
        }
    });
    id.set(Some(timer));
    thread::sleep(Duration::from_millis(250));
    ev.run_once(Some(Duration::ZERO)).unwrap();
    assert_eq!(fired.get(), 1, "six missed periods must give one call, not a burst");
    // Rescheduled one period from now, not in the past and not "now".
    ev.run_once(Some(Duration::ZERO)).unwrap();
    assert_eq!(fired.get(), 1, "rescheduled into the past");
    let t0 = std::time::Instant::now();
    while fired.get() < 2 && t0.elapsed() < Duration::from_secs(10) {
        ev.run_once(Some(Duration::from_secs(1))).unwrap();
    }
    assert_eq!(fired.get(), 2);
    assert!(ev.cancel(timer));
}

for_each_dispatcher!(
    very_late_repeating_timer_fires_once,
    context_keeps_state_per_type,
    late_repeating_timer_keeps_its_period,
    overflowing_delay_is_far_future,
    handle_wake_interrupts_and_is_drained,
    duplicate_paused_registration_is_refused,
    loop_name_follows_thread_and_set_name,
    ids_differ_and_backend_is_named,
    registered_count_and_debug,
    handle_liveness,
    stats_count_what_happened,
);

// On the simulated kernel (real clock, see `for_sim_dispatcher!`). Left out:
// * loop_name_follows_thread_and_set_name: the loop is made on a thread of
//   its own, which has no simulated kernel;
// * handle_wake_interrupts_and_is_drained: another thread wakes the loop, and
//   only the loop's thread reaches its simulated kernel.
for_sim_dispatcher!(
    very_late_repeating_timer_fires_once,
    context_keeps_state_per_type,
    late_repeating_timer_keeps_its_period,
    overflowing_delay_is_far_future,
    duplicate_paused_registration_is_refused,
    ids_differ_and_backend_is_named,
    registered_count_and_debug,
    handle_liveness,
    stats_count_what_happened,
);
