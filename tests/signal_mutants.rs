//! Tests that kill the mutants of `src/event_loop/signal.rs` the `signals`
//! suite left alive (see `docs/mutants.md`): removing the last handler of one
//! of two watched signals unwatches exactly that one, and
//! `run_until_signal` returns the signal that stopped it (or `None`).
//!
//! Signals are process-wide state: every test holds `serial()`, runs on a
//! fresh thread (its own signal mask) and only sends thread-directed signals.

mod common;

use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use muxloop::event_loop::SignalSource;
use muxloop::sys;
use muxloop::{Dispatcher, EventLoop};

const SIGUSR1: i32 = libc::SIGUSR1;
const SIGUSR2: i32 = libc::SIGUSR2;

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn on_fresh_thread(f: impl FnOnce() + Send + 'static) {
    let _guard = serial();
    thread::spawn(f).join().expect("test thread");
}

fn blocked(signal: i32) -> bool {
    sys::is_signal_blocked(signal).unwrap()
}

/// signalfd: a signal stays blocked while a handler for it is installed,
/// and is unblocked once its last handler goes, whatever other signals the
/// loop still watches.
fn signalfd_unwatches_only_the_removed_signal<D: Dispatcher + 'static>() {
    on_fresh_thread(|| {
        assert!(!blocked(SIGUSR1) && !blocked(SIGUSR2), "test thread starts unblocked");
        let mut ev = EventLoop::<D>::new().unwrap();
        ev.set_signal_source(SignalSource::Signalfd).unwrap();
        let one = ev.on_signal(SIGUSR1, |_, _| {}).unwrap();
        let one_again = ev.on_signal(SIGUSR1, |_, _| {}).unwrap();
        let two = ev.on_signal(SIGUSR2, |_, _| {}).unwrap();
        assert!(blocked(SIGUSR1) && blocked(SIGUSR2));
        // One of SIGUSR1's two handlers: still watched.
        assert!(ev.remove_signal(one).unwrap());
        assert!(blocked(SIGUSR1), "a handler for SIGUSR1 is left");
        // Its last handler: unwatched, while SIGUSR2 stays watched.
        assert!(ev.remove_signal(one_again).unwrap());
        assert!(!blocked(SIGUSR1), "SIGUSR1 has no handler left: its mask must be restored");
        assert!(blocked(SIGUSR2));
        assert!(!ev.remove_signal(one).unwrap(), "already removed");
        assert!(ev.remove_signal(two).unwrap());
        assert!(!blocked(SIGUSR2));
    });
}

/// Self-pipe: removing the last handler of SIGUSR1 frees its process-wide
/// slot (another loop may take it) even while SIGUSR2 is still watched.
fn self_pipe_frees_only_the_removed_signal<D: Dispatcher + 'static>() {
    on_fresh_thread(|| {
        let mut ev = EventLoop::<D>::new().unwrap();
        ev.set_signal_source(SignalSource::SelfPipe).unwrap();
        assert_eq!(ev.signal_source(), SignalSource::SelfPipe);
        let one = ev.on_signal(SIGUSR1, |_, _| {}).unwrap();
        let two = ev.on_signal(SIGUSR2, |_, _| {}).unwrap();
        let mut other = EventLoop::<D>::new().unwrap();
        other.set_signal_source(SignalSource::SelfPipe).unwrap();
        let err = other.on_signal(SIGUSR1, |_, _| {}).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert!(ev.remove_signal(one).unwrap());
        let taken = other.on_signal(SIGUSR1, |_, _| {}).expect("SIGUSR1's slot must be free again");
        assert!(other.remove_signal(taken).unwrap());
        assert!(ev.remove_signal(two).unwrap());
    });
}

/// `run_until_signal` returns the signal that arrived; `None` when the loop
/// was stopped some other way.
fn run_until_signal_reports_what_stopped_it<D: Dispatcher + 'static>() {
    on_fresh_thread(|| {
        let mut ev = EventLoop::<D>::new().unwrap();
        // signalfd (the Linux default) keeps a thread-directed signal pending
        // for this thread until the loop reads it.
        ev.run_after(Duration::from_millis(20), |_| {
            sys::signal_current_thread(SIGUSR2).unwrap();
        });
        let guard = ev.run_after(Duration::from_secs(10), |ev| ev.quit());
        assert_eq!(ev.run_until_signal(&[SIGUSR1, SIGUSR2]).unwrap(), Some(SIGUSR2));
        ev.cancel(guard);
        drop(ev);

        let mut ev = EventLoop::<D>::new().unwrap();
        ev.run_after(Duration::from_millis(20), |ev| ev.quit());
        assert_eq!(ev.run_until_signal(&[SIGUSR1]).unwrap(), None);
    });
}

/// Two different signals pending at once are read in one batch: each is
/// reported, once, to its own handlers (none is folded into the other).
fn two_pending_signals_both_reported(source: SignalSource) -> impl FnOnce() + Send + 'static {
    move || {
        let mut ev: EventLoop = EventLoop::new().unwrap();
        ev.set_signal_source(source).unwrap();
        let got = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        for signal in [SIGUSR1, SIGUSR2] {
            let got = std::rc::Rc::clone(&got);
            ev.on_signal(signal, move |_, info| got.borrow_mut().push((signal, info.signal, info.count)))
                .unwrap();
        }
        // Sent in the opposite order to the one they were watched in.
        sys::signal_current_thread(SIGUSR2).unwrap();
        sys::signal_current_thread(SIGUSR1).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while got.borrow().len() < 2 && std::time::Instant::now() < deadline {
            ev.run_once(Some(Duration::from_millis(50))).unwrap();
        }
        let mut got = got.borrow().clone();
        if source == SignalSource::SelfPipe {
            // The pipe's bytes give the order of arrival (signalfd reports
            // standard signals lowest number first instead).
            assert_eq!(got, [(SIGUSR2, SIGUSR2, 1), (SIGUSR1, SIGUSR1, 1)], "order of arrival");
        }
        got.sort_unstable();
        assert_eq!(got, [(SIGUSR1, SIGUSR1, 1), (SIGUSR2, SIGUSR2, 1)]);
    }
}

/// Real-time signals queue: two instances pending at once are two signalfd
/// records, reported as one `SignalInfo` with `count == 2`.
#[test]
fn queued_realtime_signal_is_counted() {
    on_fresh_thread(|| {
        let rt = libc::SIGRTMIN() + 3;
        let mut ev: EventLoop = EventLoop::new().unwrap();
        ev.set_signal_source(SignalSource::Signalfd).unwrap();
        let got = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let log = std::rc::Rc::clone(&got);
        let id = ev.on_signal(rt, move |_, info| log.borrow_mut().push((info.signal, info.count))).unwrap();
        sys::signal_current_thread(rt).unwrap();
        sys::signal_current_thread(rt).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while got.borrow().is_empty() && std::time::Instant::now() < deadline {
            ev.run_once(Some(Duration::from_millis(50))).unwrap();
        }
        assert_eq!(*got.borrow(), [(rt, 2)], "both queued instances, in one report");
        assert!(ev.remove_signal(id).unwrap());
    });
}

#[test]
fn two_pending_signals_signalfd() {
    on_fresh_thread(two_pending_signals_both_reported(SignalSource::Signalfd));
}

#[test]
fn two_pending_signals_self_pipe() {
    on_fresh_thread(two_pending_signals_both_reported(SignalSource::SelfPipe));
}

for_each_dispatcher!(
    signalfd_unwatches_only_the_removed_signal,
    self_pipe_frees_only_the_removed_signal,
    run_until_signal_reports_what_stopped_it,
);

/// The child half of `second_shutdown_signal_exits_with_128_plus_signal`:
/// it runs only when the parent re-executes this test binary with the
/// variable set.
#[test]
fn second_signal_child() {
    if std::env::var_os("MUXLOOP_SECOND_SIGNAL_CHILD").is_none() {
        return;
    }
    let mut ev: EventLoop = EventLoop::new().unwrap();
    ev.run_after(Duration::from_millis(10), |_| {
        sys::signal_current_thread(SIGUSR1).unwrap();
    });
    assert_eq!(ev.run_until_signal(&[SIGUSR1]).unwrap(), Some(SIGUSR1));
    // The impatient second one: the process ends with 128 + signal.
    sys::signal_current_thread(SIGUSR1).unwrap();
    for _ in 0..100 {
        ev.run_once(Some(Duration::from_millis(50))).unwrap();
    }
    std::process::exit(3); // not reached unless the second signal was ignored
}

/// A second shutdown signal during a graceful stop ends the process at once
/// with status 128 + signal (what a shell reports for a killed process).
#[test]
fn second_shutdown_signal_exits_with_128_plus_signal() {
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["second_signal_child", "--exact", "--test-threads=1", "--nocapture"])
        .env("MUXLOOP_SECOND_SIGNAL_CHILD", "1")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(128 + SIGUSR1), "{status:?}");
}
