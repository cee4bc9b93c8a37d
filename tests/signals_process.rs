//! Process-directed signals (`kill(getpid())`) reaching exactly one loop.
//!
//! A harness-less test (`harness = false` in Cargo.toml): libtest's main
//! thread would not block the signals and would take them (and die of
//! SIGUSR1's default action), so this binary owns `main`, blocks SIGUSR1 and
//! SIGUSR2 before any other thread exists, and every thread inherits that.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use muxloop::event_loop::SignalSource;
use muxloop::{Dispatcher, EventLoop, EventLoopThread, PollDispatcher, SelectDispatcher, sys};

const SIGUSR1: i32 = libc::SIGUSR1;
const SIGUSR2: i32 = libc::SIGUSR2;
const WAIT: Duration = Duration::from_secs(5);

/// Loop on this thread; another thread `kill`s the process, waiting for each
/// signal to be handled before sending the next.
fn kill_reaches_loop<D: Dispatcher + 'static>(source: SignalSource) {
    let mut ev = EventLoop::<D>::new().unwrap();
    ev.set_signal_source(source).unwrap();
    let (ack_tx, ack_rx) = mpsc::channel();
    let mut handled = 0u64;
    let id = ev.on_signal(SIGUSR1, move |_, info| ack_tx.send(info).unwrap()).unwrap();
    let sender = thread::spawn(move || {
        if source == SignalSource::SelfPipe {
            // The only thread that can run the handler: it writes to the loop's
            // pipe from here, and the loop (on main) wakes up.
            sys::unblock_signals(&[SIGUSR1]).unwrap();
        }
        for _ in 0..3 {
            thread::sleep(Duration::from_millis(20));
            sys::kill(sys::getpid(), SIGUSR1).unwrap();
        }
    });
    let deadline = Instant::now() + WAIT;
    while handled < 3 && Instant::now() < deadline {
        ev.run_once(Some(Duration::from_millis(50))).unwrap();
        while let Ok(info) = ack_rx.try_recv() {
            assert_eq!(info.signal, SIGUSR1);
            handled += info.count;
        }
    }
    sender.join().unwrap();
    // Sends 20 ms apart may still merge under load with signalfd; never more than 3.
    assert!(handled == 3 || (source == SignalSource::Signalfd && (1..=3).contains(&handled)), "{handled}");
    assert!(ev.remove_signal(id).unwrap());
    println!("{} {source:?}: kill() from another thread -> {handled} deliveries counted", D::NAME);
}

/// Two pool threads (which block the common signals); one watches SIGUSR2 by
/// signalfd: a `kill` reaches it, and only it.
fn pool_thread_receives<D: Dispatcher + 'static>() {
    // Spawned from a thread that does not block SIGUSR2, so the pool threads
    // block it themselves (or the bystander would die of it).
    sys::unblock_signals(&[SIGUSR2]).unwrap();
    let watcher = EventLoopThread::<D>::spawn("sig-watcher".into()).unwrap();
    let _bystander = EventLoopThread::<D>::spawn("sig-bystander".into()).unwrap();
    sys::block_signals(&[SIGUSR2]).unwrap();
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    watcher
        .handle()
        .run_in_loop(move |ev| {
            let id = ev.on_signal(SIGUSR2, move |_, info| tx.send(info).unwrap());
            ready_tx.send(id.map(drop)).unwrap();
        })
        .unwrap();
    ready_rx.recv_timeout(WAIT).unwrap().unwrap();
    sys::kill(sys::getpid(), SIGUSR2).unwrap();
    let info = rx.recv_timeout(WAIT).expect("the pool loop got the signal");
    assert_eq!((info.signal, info.count, info.pid), (SIGUSR2, 1, Some(sys::getpid() as u32)));
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err(), "delivered once");
    println!("{}: kill() reached the one pool loop watching SIGUSR2", D::NAME);
}

fn all<D: Dispatcher + 'static>() {
    kill_reaches_loop::<D>(SignalSource::Signalfd);
    kill_reaches_loop::<D>(SignalSource::SelfPipe);
    pool_thread_receives::<D>();
}

fn main() {
    sys::block_signals(&[SIGUSR1, SIGUSR2]).unwrap();
    // A hang is a failure, not a stuck CI job.
    thread::spawn(|| {
        thread::sleep(Duration::from_secs(60));
        eprintln!("signals_process: timed out");
        std::process::exit(2);
    });
    all::<SelectDispatcher>();
    all::<PollDispatcher>();
    #[cfg(muxloop_has_epoll)]
    all::<muxloop::EpollDispatcher>();
    println!("signals_process: ok");
}
