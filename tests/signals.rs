//! `EventLoop::on_signal` on every dispatcher, through signalfd and through
//! the self-pipe.
//!
//! Signal dispositions are process-wide and libtest runs tests on parallel
//! threads whose mask we do not control (nor the harness' main thread's), so
//! every case here (a) holds one global lock and (b) sends *thread-directed*
//! signals (`pthread_kill`) to the loop's own thread, which no other thread
//! can receive. Process-directed `kill(getpid())` is exercised in
//! `tests/signals_process.rs`, a harness-less binary that owns every thread.
//!
//! A test crate of its own: it installs and removes signal handlers and
//! changes signal masks, which are process-wide, so no other suite shares
//! its process.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use muxloop::event_loop::COMMON_SIGNALS;
use muxloop::event_loop::{SignalInfo, SignalSource};
use muxloop::sys::{self, Disposition};
use muxloop::{Dispatcher, EventLoop, EventLoopThread};

const SIGUSR1: i32 = libc::SIGUSR1;
const SIGUSR2: i32 = libc::SIGUSR2;

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `test` on signalfd where it is compiled (`muxloop_linux`); without
/// it (not Linux, or `--cfg muxloop_portable`) checks that a loop refuses
/// signalfd with `Unsupported` instead.
fn on_signalfd<D: Dispatcher + 'static>(test: fn(SignalSource)) {
    if cfg!(muxloop_linux) {
        test(SignalSource::Signalfd)
    } else {
        let err = EventLoop::<D>::new().unwrap().set_signal_source(SignalSource::Signalfd).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    }
}

fn new_loop<D: Dispatcher + 'static>(source: SignalSource) -> EventLoop<D> {
    let mut ev = EventLoop::<D>::new().expect("loop");
    ev.set_signal_source(source).expect("source");
    ev
}

/// Runs the loop until `done` or 5 s pass; false on timeout.
fn run_until<D: Dispatcher>(ev: &mut EventLoop<D>, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        ev.run_once(Some(Duration::from_millis(50))).expect("run_once");
    }
    true
}

type Log = Rc<RefCell<Vec<SignalInfo>>>;

fn logging_handler<D: Dispatcher>(log: &Log) -> impl FnMut(&mut EventLoop<D>, SignalInfo) + 'static {
    let log = Rc::clone(log);
    move |_, info| log.borrow_mut().push(info)
}

fn once_per_send<D: Dispatcher + 'static>(source: SignalSource) {
    let _guard = serial();
    let mut ev = new_loop::<D>(source);
    let log: Log = Rc::default();
    let id = ev.on_signal(SIGUSR1, logging_handler(&log)).expect("on_signal");
    assert_eq!(id.signal(), SIGUSR1);
    for sent in 1..=5 {
        sys::signal_current_thread(SIGUSR1).expect("pthread_kill");
        assert!(
            run_until(&mut ev, || log.borrow().len() == sent),
            "send {sent} not delivered on {}",
            D::NAME
        );
    }
    // Nothing more arrives by itself.
    ev.run_once(Some(Duration::from_millis(100))).unwrap();
    let log = log.borrow();
    assert_eq!(log.len(), 5);
    for info in log.iter() {
        assert_eq!((info.signal, info.count), (SIGUSR1, 1), "{info:?}");
        match source {
            SignalSource::Signalfd => assert_eq!(info.pid, Some(sys::getpid() as u32)),
            SignalSource::SelfPipe => assert_eq!(info.pid, None),
        }
    }
    assert!(ev.remove_signal(id).unwrap());
    assert!(!ev.remove_signal(id).unwrap(), "a second removal finds nothing");
}

fn two_signals<D: Dispatcher + 'static>(source: SignalSource) {
    let _guard = serial();
    let mut ev = new_loop::<D>(source);
    let (usr1, usr2): (Log, Log) = Default::default();
    let a = ev.on_signal(SIGUSR1, logging_handler(&usr1)).unwrap();
    let b = ev.on_signal(SIGUSR2, logging_handler(&usr2)).unwrap();
    sys::signal_current_thread(SIGUSR2).unwrap();
    assert!(run_until(&mut ev, || usr2.borrow().len() == 1));
    sys::signal_current_thread(SIGUSR1).unwrap();
    assert!(run_until(&mut ev, || usr1.borrow().len() == 1));
    sys::signal_current_thread(SIGUSR1).unwrap();
    assert!(run_until(&mut ev, || usr1.borrow().len() == 2));
    ev.run_once(Some(Duration::from_millis(50))).unwrap();
    assert!(usr1.borrow().iter().all(|i| i.signal == SIGUSR1 && i.count == 1));
    assert_eq!(usr2.borrow().len(), 1);
    assert_eq!(usr2.borrow()[0].signal, SIGUSR2);
    ev.remove_signal(a).unwrap();
    ev.remove_signal(b).unwrap();
}

/// Signals that arrive before the loop reads are reported, with their count,
/// never dropped silently; two handlers of one signal both run.
fn burst_is_counted<D: Dispatcher + 'static>(source: SignalSource) {
    let _guard = serial();
    let mut ev = new_loop::<D>(source);
    let (first, second): (Log, Log) = Default::default();
    ev.on_signal(SIGUSR1, logging_handler(&first)).unwrap();
    ev.on_signal(SIGUSR1, logging_handler(&second)).unwrap();
    for _ in 0..10 {
        sys::signal_current_thread(SIGUSR1).unwrap();
    }
    assert!(run_until(&mut ev, || !first.borrow().is_empty()));
    ev.run_once(Some(Duration::from_millis(50))).unwrap();
    let total: u64 = first.borrow().iter().map(|i| i.count).sum();
    match source {
        // Each send ran the handler at once (the loop's thread does not block it).
        SignalSource::SelfPipe => assert_eq!(total, 10),
        // Blocked and pending: the kernel merges a standard signal into one instance.
        SignalSource::Signalfd => assert_eq!(total, 1),
    }
    assert_eq!(*first.borrow(), *second.borrow(), "both handlers see the same reports");
}

fn remove_restores_self_pipe<D: Dispatcher + 'static>() {
    let _guard = serial();
    let original = sys::set_signal_disposition(SIGUSR2, Disposition::Ignore).unwrap();
    let mut ev = new_loop::<D>(SignalSource::SelfPipe);
    let log: Log = Rc::default();
    let id = ev.on_signal(SIGUSR2, logging_handler(&log)).unwrap();
    assert!(matches!(sys::signal_disposition(SIGUSR2).unwrap(), Disposition::Handler(_)));
    assert!(ev.remove_signal(id).unwrap());
    assert_eq!(sys::signal_disposition(SIGUSR2).unwrap(), Disposition::Ignore);
    // Ignored again: a send neither reaches the old handler nor kills us.
    sys::signal_current_thread(SIGUSR2).unwrap();
    ev.run_once(Some(Duration::from_millis(50))).unwrap();
    assert!(log.borrow().is_empty());
    // The signal is free for another loop once the first let go of it...
    let mut other = new_loop::<D>(SignalSource::SelfPipe);
    let id = other.on_signal(SIGUSR2, |_, _| {}).unwrap();
    // ...but two self-pipe loops cannot hold it at once.
    let err = ev.on_signal(SIGUSR2, |_, _| {}).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(ev.registered_fds(), 0, "no pipe kept open for a refused signal");
    // Dropping a loop restores too.
    drop(other);
    let _ = id;
    assert_eq!(sys::signal_disposition(SIGUSR2).unwrap(), Disposition::Ignore);
    sys::restore_signal_action(SIGUSR2, &original).unwrap();
}

fn remove_restores_signalfd<D: Dispatcher + 'static>() {
    on_signalfd::<D>(|_| remove_restores_signalfd_on::<D>())
}

fn remove_restores_signalfd_on<D: Dispatcher + 'static>() {
    let _guard = serial();
    sys::unblock_signals(&[SIGUSR2]).unwrap();
    let mut ev = new_loop::<D>(SignalSource::Signalfd);
    let log: Log = Rc::default();
    let id = ev.on_signal(SIGUSR2, logging_handler(&log)).unwrap();
    assert!(sys::is_signal_blocked(SIGUSR2).unwrap(), "signalfd needs the signal blocked");
    assert!(
        matches!(sys::signal_disposition(SIGUSR2).unwrap(), Disposition::Handler(_)),
        "signalfd installs a handler that forwards the signal from other threads"
    );
    // Pending when the handler goes: discarded, not delivered by default
    // action (which would kill this test process) when unblocked.
    sys::signal_current_thread(SIGUSR2).unwrap();
    assert!(ev.remove_signal(id).unwrap());
    assert!(!sys::is_signal_blocked(SIGUSR2).unwrap(), "the thread's mask is back");
    assert_eq!(sys::signal_disposition(SIGUSR2).unwrap(), Disposition::Default, "and the action");
    assert!(log.borrow().is_empty());
    // A signal the thread blocked before stays blocked.
    sys::block_signals(&[SIGUSR2]).unwrap();
    let id = ev.on_signal(SIGUSR2, |_, _| {}).unwrap();
    ev.remove_signal(id).unwrap();
    assert!(sys::is_signal_blocked(SIGUSR2).unwrap());
    sys::unblock_signals(&[SIGUSR2]).unwrap();
    // Dropping the loop unblocks as well.
    let mut ev = new_loop::<D>(SignalSource::Signalfd);
    ev.on_signal(SIGUSR2, |_, _| {}).unwrap();
    drop(ev);
    assert!(!sys::is_signal_blocked(SIGUSR2).unwrap());
    assert_eq!(sys::signal_disposition(SIGUSR2).unwrap(), Disposition::Default);
}

/// Another thread signals the loop's thread while the loop sleeps in its
/// dispatcher; it waits for each signal to be handled before the next (so
/// signalfd's pending-merge cannot blur the count).
fn from_another_thread<D: Dispatcher + 'static>(source: SignalSource) {
    let _guard = serial();
    let mut ev = new_loop::<D>(source);
    let log: Log = Rc::default();
    let (ack_tx, ack_rx) = std::sync::mpsc::channel();
    let id = ev
        .on_signal(SIGUSR1, {
            let log = Rc::clone(&log);
            move |_, info| {
                log.borrow_mut().push(info);
                let _ = ack_tx.send(());
            }
        })
        .unwrap();
    let me = sys::current_thread();
    let sender = thread::spawn(move || {
        for _ in 0..3 {
            thread::sleep(Duration::from_millis(20)); // let the loop fall asleep
            // SAFETY: `me` is the test's thread, which joins this one before it returns.
            unsafe { sys::signal_thread(me, SIGUSR1) }.unwrap();
            ack_rx.recv_timeout(Duration::from_secs(5)).expect("the loop handled the signal");
        }
    });
    let ok = run_until(&mut ev, || log.borrow().len() == 3);
    sender.join().unwrap();
    assert!(ok, "3 signals from another thread on {}", D::NAME);
    assert!(log.borrow().iter().all(|i| i.count == 1));
    ev.remove_signal(id).unwrap();
}

fn refuses_bad_signals<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    for bad in [0, -1, 65, libc::SIGKILL, libc::SIGSTOP, libc::SIGSEGV] {
        let err = ev.on_signal(bad, |_, _| {}).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "signal {bad}");
    }
    assert_eq!(ev.registered_fds(), 0, "nothing opened for a refused signal");
}

/// A handler may remove itself, and the fd goes once the last one is gone.
fn handler_removes_itself<D: Dispatcher + 'static>(source: SignalSource) {
    let _guard = serial();
    let mut ev = new_loop::<D>(source);
    let fds_before = ev.registered_fds();
    let calls = Rc::new(RefCell::new(0));
    let id = Rc::new(RefCell::new(None));
    let installed = ev
        .on_signal(SIGUSR1, {
            let (calls, id) = (Rc::clone(&calls), Rc::clone(&id));
            move |ev, _| {
                *calls.borrow_mut() += 1;
                let me = id.borrow().expect("set below");
                assert!(ev.remove_signal(me).unwrap());
            }
        })
        .unwrap();
    *id.borrow_mut() = Some(installed);
    assert_eq!(ev.registered_fds(), fds_before + 1);
    sys::signal_current_thread(SIGUSR1).unwrap();
    assert!(run_until(&mut ev, || *calls.borrow() == 1));
    assert_eq!(ev.registered_fds(), fds_before, "signal fd deregistered with the last handler");
    assert!(!ev.remove_signal(installed).unwrap());
}

fn once_per_send_signalfd<D: Dispatcher + 'static>() {
    on_signalfd::<D>(once_per_send::<D>)
}
fn once_per_send_self_pipe<D: Dispatcher + 'static>() {
    once_per_send::<D>(SignalSource::SelfPipe)
}
fn two_signals_signalfd<D: Dispatcher + 'static>() {
    on_signalfd::<D>(two_signals::<D>)
}
fn two_signals_self_pipe<D: Dispatcher + 'static>() {
    two_signals::<D>(SignalSource::SelfPipe)
}
fn burst_signalfd<D: Dispatcher + 'static>() {
    on_signalfd::<D>(burst_is_counted::<D>)
}
fn burst_self_pipe<D: Dispatcher + 'static>() {
    burst_is_counted::<D>(SignalSource::SelfPipe)
}
fn other_thread_signalfd<D: Dispatcher + 'static>() {
    on_signalfd::<D>(from_another_thread::<D>)
}
fn other_thread_self_pipe<D: Dispatcher + 'static>() {
    from_another_thread::<D>(SignalSource::SelfPipe)
}
fn removes_itself_signalfd<D: Dispatcher + 'static>() {
    on_signalfd::<D>(handler_removes_itself::<D>)
}
fn removes_itself_self_pipe<D: Dispatcher + 'static>() {
    handler_removes_itself::<D>(SignalSource::SelfPipe)
}

/// Pool threads block the common signals, whatever their parent's mask.
fn pool_threads_block_common_signals<D: Dispatcher + 'static>() {
    let thread = EventLoopThread::<D>::spawn("sig-mask".into()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread
        .handle()
        .run_in_loop(move |_| {
            tx.send(COMMON_SIGNALS.map(|s| sys::is_signal_blocked(s).unwrap())).unwrap();
        })
        .unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), [true; 7]);
    assert!(!sys::is_signal_blocked(libc::SIGTERM).unwrap(), "the caller's mask is untouched");
}

// ---------------------------------------------------------------------------
// Exact cases that pin what the cases above left loose (each killed a mutant
// of the signal code that survived them; `docs/mutants.md` lists which): the
// last handler of one of two signals removed unwatches exactly that one, and
// `run_until_signal` returns the signal that stopped it (or `None`). Each
// holds `serial()` and runs on a fresh thread (its own signal mask).
// ---------------------------------------------------------------------------

fn on_fresh_thread(f: impl FnOnce() + Send + 'static) {
    let _guard = serial();
    thread::spawn(f).join().expect("test thread");
}

#[cfg(muxloop_linux)]
fn blocked(signal: i32) -> bool {
    sys::is_signal_blocked(signal).unwrap()
}

/// signalfd: a signal stays blocked while a handler for it is installed,
/// and is unblocked once its last handler goes, whatever other signals the
/// loop still watches.
#[cfg(muxloop_linux)]
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
#[cfg(muxloop_linux)]
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

#[cfg(muxloop_linux)]
#[test]
fn two_pending_signals_signalfd() {
    on_fresh_thread(two_pending_signals_both_reported(SignalSource::Signalfd));
}

#[test]
fn two_pending_signals_self_pipe() {
    on_fresh_thread(two_pending_signals_both_reported(SignalSource::SelfPipe));
}

for_each_dispatcher!(
    pool_threads_block_common_signals,
    once_per_send_signalfd,
    once_per_send_self_pipe,
    two_signals_signalfd,
    two_signals_self_pipe,
    burst_signalfd,
    burst_self_pipe,
    remove_restores_self_pipe,
    remove_restores_signalfd,
    other_thread_signalfd,
    other_thread_self_pipe,
    refuses_bad_signals,
    removes_itself_signalfd,
    removes_itself_self_pipe,
    #[cfg(muxloop_linux)]
    signalfd_unwatches_only_the_removed_signal,
    self_pipe_frees_only_the_removed_signal,
    run_until_signal_reports_what_stopped_it,
);

#[cfg(not(muxloop_linux))]
#[test]
fn default_source_is_the_self_pipe_without_linux_calls() {
    let mut ev: EventLoop = EventLoop::new().unwrap();
    assert_eq!(ev.signal_source(), SignalSource::SelfPipe);
}

#[cfg(muxloop_linux)]
#[test]
fn default_source_is_signalfd_on_linux() {
    let _guard = serial();
    let mut ev: EventLoop = EventLoop::new().unwrap();
    assert_eq!(ev.signal_source(), SignalSource::Signalfd);
    ev.on_signal(SIGUSR1, |_, _| {}).unwrap();
    let err = ev.set_signal_source(SignalSource::SelfPipe).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

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

/// Graceful stop in a program that started threads before the loop.
///
/// The trap: with signalfd a process-directed SIGTERM goes to any thread that
/// does not block it, and a thread spawned before the loop blocked it (here,
/// one the program spawns, and libtest's own main thread) takes the default
/// action: the process dies with status 143 instead of stopping. Each test
/// runs a child copy of this binary that spawns a thread, then waits in
/// `run_until_signal`, sends it SIGTERM and expects a clean exit with the
/// signal reported by the loop.
mod threads_started_first {
    use crate::common;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::thread;
    use std::time::Duration;

    use muxloop::event_loop::SignalSource;
    use muxloop::signal::SIGTERM;
    use muxloop::{EventLoop, sys};

    const CHILD_ENV: &str = "MUXLOOP_SIGNAL_CHILD";

    fn child_name() -> String {
        common::test_name(module_path!(), "child_waits_for_sigterm_after_spawning_a_thread")
    }

    /// The child's part: `BACKEND,SOURCE` in the environment.
    #[test]
    #[ignore = "run by the tests below in a child process"]
    fn child_waits_for_sigterm_after_spawning_a_thread() {
        let Ok(spec) = std::env::var(CHILD_ENV) else { return };
        let (backend, source) = spec.split_once(',').expect("BACKEND,SOURCE");
        // A thread that never blocks SIGTERM, started before the loop exists.
        thread::spawn(|| thread::sleep(Duration::from_secs(60)));
        let mut ev = EventLoop::with_backend(backend).unwrap();
        ev.set_signal_source(if source == "signalfd" {
            SignalSource::Signalfd
        } else {
            SignalSource::SelfPipe
        })
        .unwrap();
        // The sender's pid survives the forwarding (None from the self-pipe).
        ev.on_signal(SIGTERM, |_, info| println!("from {:?}", info.pid)).unwrap();
        ev.run_after(Duration::ZERO, |_| println!("ready"));
        let got = ev.run_until_signal(&[SIGTERM]).unwrap();
        println!("stopped by {got:?}");
    }

    fn sigterm_stops_cleanly(backend: &str, source: &str) {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &child_name(), "--ignored", "--nocapture"])
            .env(CHILD_ENV, format!("{backend},{source}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.by_ref().map_while(Result::ok).any(|line| line == "ready");
        assert!(ready, "{backend}/{source}: the child never said ready");
        sys::kill(child.id() as i32, SIGTERM).unwrap();
        let status = common::exit_within(&mut child, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{backend}/{source}: the child did not stop within 10 s of SIGTERM"));
        let said: Vec<String> = lines.map_while(Result::ok).collect();
        assert!(
            status.success(),
            "{backend}/{source}: exit {status} (143 = killed by SIGTERM), said {said:?}"
        );
        let sender =
            if source == "signalfd" { format!("Some({})", std::process::id()) } else { "None".into() };
        for expected in [format!("from {sender}"), format!("stopped by Some({SIGTERM})")] {
            assert!(said.contains(&expected), "{backend}/{source}: expected {expected:?}, said {said:?}");
        }
    }

    fn on_each_source(backend: &str) {
        sigterm_stops_cleanly(backend, "self-pipe");
        if cfg!(muxloop_linux) {
            sigterm_stops_cleanly(backend, "signalfd");
        }
    }

    #[test]
    fn select() {
        on_each_source("select");
    }

    #[test]
    fn poll() {
        on_each_source("poll");
    }

    #[cfg(muxloop_has_epoll)]
    #[test]
    fn epoll() {
        on_each_source("epoll");
    }

    #[cfg(muxloop_has_uring)]
    #[test]
    fn uring() {
        if !common::uring_unavailable() {
            on_each_source("uring");
        }
    }
}
