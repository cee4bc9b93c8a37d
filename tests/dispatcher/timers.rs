//! Timers with upper bounds, on every dispatcher.
//!
//! The dispatcher suite only checks that a timer never fires *early*; a loop
//! that sleeps through its timers (e.g. `run_once(Some(10 s))` honouring the
//! 10 s and ignoring a 30 ms timer) passes that. Here every wait also has a
//! generous but finite ceiling ([`CEILING`]), far above scheduling noise on a
//! loaded machine and far below the long timeouts the loop is handed, so a
//! lost wake-up shows as a failure, not as a slow pass.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use muxloop::{Dispatcher, EventLoop};

/// A wake-up that should take milliseconds must take less than this.
const CEILING: Duration = Duration::from_secs(2);
/// The timeout handed to `run_once`: a loop that honours it instead of the
/// nearer timer blows through [`CEILING`].
const LONG: Duration = Duration::from_secs(10);
/// Hard stop for any loop in this file.
const GUARD: Duration = Duration::from_secs(20);

/// Turns `run_once(Some(LONG))` until `done` or [`GUARD`]; returns the time taken.
fn turn_until<D: Dispatcher>(ev: &mut EventLoop<D>, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < GUARD, "{}: gave up after {GUARD:?}", D::NAME);
        ev.run_once(Some(LONG)).unwrap();
    }
    start.elapsed()
}

/// A 50 ms timer driven by `run()` fires in [50 ms, 2 s].
fn one_shot_fires_within_bounds<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let fired: Rc<Cell<Option<Instant>>> = Rc::default();
    let start = Instant::now();
    let f = Rc::clone(&fired);
    ev.run_after(Duration::from_millis(50), move |ev| {
        f.set(Some(Instant::now()));
        ev.quit();
    });
    let guard = ev.run_after(GUARD, |ev| ev.quit());
    ev.run().unwrap();
    ev.cancel(guard);
    let at = fired.get().expect("the timer fired before the guard").duration_since(start);
    assert!(at >= Duration::from_millis(50), "{}: fired early, after {at:?}", D::NAME);
    assert!(at < CEILING, "{}: a 50 ms timer took {at:?}", D::NAME);
}

/// `run_once(Some(10 s))` with a 30 ms timer armed returns for the timer.
fn run_once_wakes_for_a_nearer_timer<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let fired = Rc::new(Cell::new(false));
    let f = Rc::clone(&fired);
    ev.run_after(Duration::from_millis(30), move |_| f.set(true));
    let took = turn_until(&mut ev, || fired.get());
    assert!(took >= Duration::from_millis(30), "{}: fired early, after {took:?}", D::NAME);
    assert!(took < CEILING, "{}: run_once(Some(10 s)) slept {took:?} past a 30 ms timer", D::NAME);
    assert_eq!(ev.pending_timers(), 0);
}

/// The other direction: a requested timeout shorter than the next timer
/// wins, and the timer does not fire.
fn run_once_honours_a_shorter_timeout<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let fired = Rc::new(Cell::new(false));
    let f = Rc::clone(&fired);
    let id = ev.run_after(LONG, move |_| f.set(true));
    let start = Instant::now();
    ev.run_once(Some(Duration::from_millis(40))).unwrap();
    let took = start.elapsed();
    assert!(took < CEILING, "{}: run_once(Some(40 ms)) took {took:?} with a 10 s timer armed", D::NAME);
    assert!(!fired.get(), "{}: the 10 s timer fired after {took:?}", D::NAME);
    assert!(ev.cancel(id), "{}: the 10 s timer is still armed", D::NAME);
}

/// A 20 ms `run_every` fires 10 times in [200 ms, 2 s], driven by
/// `run_once(Some(10 s))`, then cancels itself and stays quiet.
fn run_every_fires_n_times_in_a_window<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let ticks: Rc<RefCell<Vec<Instant>>> = Rc::default();
    let id: Rc<Cell<Option<muxloop::TimerId>>> = Rc::default();
    let (t, me) = (Rc::clone(&ticks), Rc::clone(&id));
    let start = Instant::now();
    id.set(Some(ev.run_every(Duration::from_millis(20), move |ev| {
        t.borrow_mut().push(Instant::now());
        if t.borrow().len() == 10 {
            assert!(ev.cancel(me.get().unwrap()));
        }
    })));
    let took = turn_until(&mut ev, || ticks.borrow().len() == 10);
    assert!(took >= Duration::from_millis(200), "{}: 10 ticks of 20 ms in {took:?}", D::NAME);
    assert!(took < CEILING, "{}: 10 ticks of 20 ms took {took:?}", D::NAME);
    for (i, at) in ticks.borrow().iter().enumerate() {
        let due = Duration::from_millis(20 * (i as u64 + 1));
        assert!(at.duration_since(start) >= due, "{}: tick {i} before {due:?}", D::NAME);
    }
    assert_eq!(ev.pending_timers(), 0, "{}: the timer cancelled itself", D::NAME);
    ev.run_once(Some(Duration::from_millis(60))).unwrap();
    assert_eq!(ticks.borrow().len(), 10, "{}: no tick after cancel", D::NAME);
}

/// Ten timers at 10..100 ms, armed in reverse: each fires within its
/// deadline + 2 s, all in deadline order, under `run_once(Some(10 s))`.
fn many_timers_each_within_bounds<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let start = Instant::now();
    let log: Rc<RefCell<Vec<(u64, Duration)>>> = Rc::default();
    for ms in (1..=10u64).rev().map(|i| i * 10) {
        let log = Rc::clone(&log);
        ev.run_after(Duration::from_millis(ms), move |_| log.borrow_mut().push((ms, start.elapsed())));
    }
    turn_until(&mut ev, || log.borrow().len() == 10);
    let order: Vec<u64> = log.borrow().iter().map(|&(ms, _)| ms).collect();
    assert_eq!(order, (1..=10).map(|i| i * 10).collect::<Vec<u64>>(), "{}: deadline order", D::NAME);
    for &(ms, at) in log.borrow().iter() {
        let due = Duration::from_millis(ms);
        assert!(at >= due && at < due + CEILING, "{}: the {ms} ms timer fired at {at:?}", D::NAME);
    }
}

/// A timer armed from a timer callback is also waited for, not slept past.
fn a_timer_armed_in_a_callback_is_not_slept_past<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let second: Rc<Cell<Option<Instant>>> = Rc::default();
    let s = Rc::clone(&second);
    let start = Instant::now();
    ev.run_after(Duration::from_millis(20), move |ev| {
        ev.run_after(Duration::from_millis(30), move |_| s.set(Some(Instant::now())));
    });
    turn_until(&mut ev, || second.get().is_some());
    let at = second.get().unwrap().duration_since(start);
    assert!(at >= Duration::from_millis(50) && at < CEILING, "{}: chained timer at {at:?}", D::NAME);
}

/// A deferred task makes the next `run_once(Some(10 s))` return at once.
fn deferred_task_does_not_sleep<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let ran = Rc::new(Cell::new(false));
    let r = Rc::clone(&ran);
    ev.defer(move |_| r.set(true));
    let start = Instant::now();
    ev.run_once(Some(LONG)).unwrap();
    let took = start.elapsed();
    assert!(ran.get(), "{}: the deferred task ran in the first iteration", D::NAME);
    assert!(took < CEILING, "{}: run_once slept {took:?} with a task queued", D::NAME);
}

/// `run_in_loop` from another thread wakes `run_once(Some(10 s))` promptly.
fn cross_thread_task_wakes_a_long_wait<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let handle = ev.handle();
    let (tx, rx) = std::sync::mpsc::channel();
    let poster = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        let sent = Instant::now();
        handle.run_in_loop(move |_| tx.send(sent.elapsed()).unwrap()).unwrap();
    });
    let start = Instant::now();
    let mut latency = None;
    while latency.is_none() {
        assert!(start.elapsed() < GUARD, "{}: the task never ran", D::NAME);
        ev.run_once(Some(LONG)).unwrap();
        latency = rx.try_recv().ok();
    }
    poster.join().unwrap();
    let took = start.elapsed();
    assert!(took < CEILING, "{}: woke after {took:?}", D::NAME);
    assert!(latency.unwrap() < CEILING, "{}: task latency {:?}", D::NAME, latency.unwrap());
}

for_each_dispatcher!(
    one_shot_fires_within_bounds,
    run_once_wakes_for_a_nearer_timer,
    run_once_honours_a_shorter_timeout,
    run_every_fires_n_times_in_a_window,
    many_timers_each_within_bounds,
    a_timer_armed_in_a_callback_is_not_slept_past,
    deferred_task_does_not_sleep,
    cross_thread_task_wakes_a_long_wait,
);

// On the simulated kernel (real clock, see `for_sim_dispatcher!`). Left out:
// * cross_thread_task_wakes_a_long_wait: another thread posts the task and
//   wakes the loop, and only the loop's thread reaches its simulated kernel.
for_sim_dispatcher!(
    one_shot_fires_within_bounds,
    run_once_wakes_for_a_nearer_timer,
    run_once_honours_a_shorter_timeout,
    run_every_fires_n_times_in_a_window,
    many_timers_each_within_bounds,
    a_timer_armed_in_a_callback_is_not_slept_past,
    deferred_task_does_not_sleep,
);
