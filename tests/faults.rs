//! A battery of faults (floods, resets, task storms, signals) as regression
//! tests, on every dispatcher.
//!
//! * flood fairness: 200 clients that send and never read, one probe doing
//!   200 echo round trips, each under 2 s (one flood must not starve others);
//! * RST before accept while the acceptor's loop is busy;
//! * a peer reset with 32 MiB queued for it;
//! * 100,000 `LoopHandle::run_in_loop` calls from 4 threads during echo traffic;
//! * an EINTR storm: SIGUSR1 to the loop thread every millisecond for 1 s.
//!
//! Removing and re-adding the same fd number inside one batch is covered in
//! `tests/dispatcher/suite.rs` (`reused_fd_number_gets_no_stale_event`,
//! `handler_replaces_its_own_fd`, `reused_fd_number_in_the_dispatcher`).
//! The HTTP and chat output bounds, the body deadline and the rate of
//! fd-limit warnings are guarded in `tests/http/suite.rs`,
//! `tests/learn/chat.rs` and `tests/emfile.rs`.
//!
//! The tests here count process-wide things (open fds, a process-wide signal
//! handler) and load the machine, so they take [`SERIAL`] and run one at a time,
//! in a test crate of their own (no other suite shares the process).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use muxloop::event_loop::{SignalId, SignalSource};
use muxloop::{Buffer, Connection, Dispatcher, EventLoop, Handler, sys};

mod common;
use common::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn open_fds() -> usize {
    sys::open_fd_count().unwrap()
}

/// Waits (up to 10 s) for the process to be back at `baseline` open fds.
fn assert_fds_back_to(baseline: usize, what: &str) {
    let back = wait_until(Duration::from_secs(10), || open_fds() <= baseline);
    assert!(back, "{what}: {} fds open, {baseline} before", open_fds());
}

/// One echo round trip on an open stream; returns its latency.
fn timed_round_trip(stream: &mut TcpStream, payload: &[u8]) -> Duration {
    let start = Instant::now();
    stream.write_all(payload).unwrap();
    let back = read_up_to(stream, payload.len());
    assert!(back == payload, "echo returned {} of {} bytes, or different ones", back.len(), payload.len());
    start.elapsed()
}

// ---------------------------------------------------------------------------
// (a) flood fairness
// ---------------------------------------------------------------------------

const FLOODERS: usize = 200;
/// What each flooder tries to send in all; it blocks long before (small
/// socket buffers, and the server stops reading at [`FLOOD_LIMIT`]).
const FLOOD_EACH: usize = 1024 * 1024;
/// The server's output limit here: bounds its memory to about
/// 200 x 2 x 128 KiB while the flooders' queues are full.
const FLOOD_LIMIT: usize = 128 * 1024;
/// A probe round trip must take less than this, flood or not.
const FAIR: Duration = Duration::from_secs(2);

/// 200 clients send and never read (small socket buffers, so the server's
/// output to them queues up to its limit and it stops reading them) while one probe client does 200 echo round
/// trips on the same loop: every round trip completes, each under 2 s.
fn flood_does_not_starve_a_neighbour<D: Dispatcher + 'static>() {
    let _serial = serial();
    // Small receive buffers on the server side too (inherited from the
    // listener), so the kernel cannot absorb the flood: the server reads it
    // in many passes while the probe runs.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    sys::set_buffer_sizes(listener.as_fd(), None, Some(8 * 1024)).unwrap();
    let server = spawn_server_with::<D, _, _>(echo_callbacks::<D>(), move |b| {
        b.listener(listener).threads(0).output_limit(Some(FLOOD_LIMIT))
    });
    let flooders: Vec<TcpStream> = (0..FLOODERS)
        .map(|_| {
            let s = connect(server.addr);
            sys::set_buffer_sizes(s.as_fd(), Some(16 * 1024), Some(4096)).unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let progress_total = Arc::new(AtomicUsize::new(0));
    let (flood_stop, flood_total) = (Arc::clone(&stop), Arc::clone(&progress_total));
    let flood = thread::spawn(move || {
        let chunk = vec![0x5a; 16 * 1024];
        let mut sent = vec![0usize; FLOODERS];
        let mut flooders = flooders;
        while !flood_stop.load(Ordering::Relaxed) {
            let mut progress = false;
            for (s, sent) in flooders.iter_mut().zip(&mut sent) {
                if *sent >= FLOOD_EACH {
                    continue;
                }
                match s.write(&chunk[..chunk.len().min(FLOOD_EACH - *sent)]) {
                    Ok(n) => {
                        *sent += n;
                        flood_total.fetch_add(n, Ordering::Relaxed);
                        progress = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => panic!("flooder write: {e}"),
                }
            }
            if !progress {
                thread::sleep(Duration::from_millis(1));
            }
        }
        (sent.iter().sum::<usize>(), flooders)
    });
    // The probe starts once the flood is under way (16 KiB per flooder).
    let under_way = wait_until(IO_TIMEOUT, || progress_total.load(Ordering::Relaxed) >= FLOODERS * 16 * 1024);
    assert!(under_way, "{}: the flood did not start", D::NAME);
    let mut probe = connect(server.addr);
    let mut rng = Rng::new(4);
    let mut latencies: Vec<Duration> = (0..200)
        .map(|_| {
            let n = rng.range(1, 512);
            timed_round_trip(&mut probe, &rng.bytes(n))
        })
        .collect();
    stop.store(true, Ordering::Relaxed);
    let (flooded, flooders) = flood.join().unwrap();
    latencies.sort();
    let (p99, max) = (latencies[197], latencies[199]);
    eprintln!("{}: flood of {flooded} bytes; probe p99 {p99:?}, max {max:?}", D::NAME);
    assert!(max < FAIR, "{}: a probe round trip took {max:?} during the flood (p99 {p99:?})", D::NAME);
    assert!(flooded >= FLOODERS * 16 * 1024, "{}: the flood really happened ({flooded} bytes)", D::NAME);
    drop(flooders);
    drop(probe);
}

// ---------------------------------------------------------------------------
// (b) RST before accept, slow acceptor
// ---------------------------------------------------------------------------

/// The server's only loop is busy for 200 ms inside a timer while 50
/// clients connect and reset (SO_LINGER 0). Afterwards the resets were
/// absorbed as ordinary closes: no fd left behind, and the server serves.
fn rst_before_accept_with_a_slow_acceptor<D: Dispatcher + 'static>() {
    let _serial = serial();
    let server = spawn_server::<D, _>(echo_callbacks::<D>(), 0);
    assert!(echo_round_trip(server.addr, b"warm"), "{}: serves before", D::NAME);
    thread::sleep(Duration::from_millis(100)); // the server closes its side of "warm"
    let baseline = open_fds();
    let (busy_tx, busy_rx) = mpsc::channel();
    server
        .main_loop
        .run_in_loop(move |ev| {
            ev.run_after(Duration::ZERO, move |_| {
                busy_tx.send(()).unwrap();
                thread::sleep(Duration::from_millis(200)); // the loop is stuck
            });
        })
        .unwrap();
    busy_rx.recv_timeout(IO_TIMEOUT).expect("the busy timer started");
    let started = Instant::now();
    for _ in 0..50 {
        let client = TcpStream::connect(server.addr).unwrap(); // completes in the kernel's backlog
        sys::set_linger(client.as_fd(), Some(Duration::ZERO)).unwrap();
        drop(client); // RST while still unaccepted
    }
    assert!(started.elapsed() < Duration::from_millis(200), "{}: resets sent while busy", D::NAME);
    for i in 0..5u8 {
        assert!(echo_round_trip(server.addr, &[b'a' + i; 100]), "{}: serves after the resets", D::NAME);
    }
    assert_fds_back_to(baseline, &format!("{}: after 50 resets before accept", D::NAME));
    assert!(echo_round_trip(server.addr, b"still"), "{}: still serves", D::NAME);
}

// ---------------------------------------------------------------------------
// (c) peer reset with megabytes queued
// ---------------------------------------------------------------------------

const BIG: usize = 32 << 20;

/// Echo, except that a message starting `BIG\n` is answered with 32 MiB.
/// Counts closes and drops (a connection whose handler is never dropped leaked).
struct BigOrEcho {
    queued: Arc<AtomicUsize>,
    closes: Arc<AtomicUsize>,
    drops: Arc<AtomicUsize>,
}

impl<D: Dispatcher + 'static> Handler<D> for BigOrEcho {
    fn on_message(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>, input: &mut Buffer) {
        if input.peek().starts_with(b"BIG\n") {
            conn.send_owned(ev, vec![b'x'; BIG]).unwrap();
            self.queued.store(conn.queued_output(), Ordering::SeqCst);
        } else {
            let _ = conn.send(ev, input.peek());
        }
        input.consume_all();
    }
    fn on_close(&mut self, _: &mut EventLoop<D>, _: &Connection<D>) {
        self.closes.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for BigOrEcho {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// A client asks for 32 MiB, reads 64 KiB of it and resets: the server
/// closes the connection (its handler is dropped, its fd closed, the queue
/// with it) and keeps serving others.
fn peer_reset_with_megabytes_queued<D: Dispatcher + 'static>() {
    let _serial = serial();
    let (queued, closes, drops) = (Arc::default(), Arc::default(), Arc::default());
    let factory = {
        let (queued, closes, drops) = (Arc::clone(&queued), Arc::clone(&closes), Arc::clone(&drops));
        move |_: &Connection<D>| BigOrEcho {
            queued: Arc::clone(&queued),
            closes: Arc::clone(&closes),
            drops: Arc::clone(&drops),
        }
    };
    let server = spawn_server::<D, _>(factory, 1);
    let baseline = open_fds();
    let mut victim = connect(server.addr);
    victim.write_all(b"BIG\n").unwrap();
    let mut first = vec![0u8; 64 * 1024];
    victim.read_exact(&mut first).unwrap();
    assert!(first.iter().all(|&b| b == b'x'));
    // The handler stores the queue length right after its send (racing our read).
    wait_until(Duration::from_secs(5), || queued.load(Ordering::SeqCst) > 0);
    let queued_at_send = queued.load(Ordering::SeqCst);
    assert!(queued_at_send >= 16 << 20, "{}: only {queued_at_send} bytes were queued", D::NAME);
    sys::set_linger(victim.as_fd(), Some(Duration::ZERO)).unwrap();
    drop(victim); // RST with megabytes still queued on the server
    let closed = wait_until(Duration::from_secs(10), || {
        closes.load(Ordering::SeqCst) == 1 && drops.load(Ordering::SeqCst) == 1
    });
    assert!(
        closed,
        "{}: after the reset: {} closes, {} handlers dropped",
        D::NAME,
        closes.load(Ordering::SeqCst),
        drops.load(Ordering::SeqCst)
    );
    assert_fds_back_to(baseline, &format!("{}: after the reset", D::NAME));
    for i in 0..5u8 {
        assert!(echo_round_trip(server.addr, &[b'a' + i; 1000]), "{}: serves after the reset", D::NAME);
    }
    assert!(wait_until(Duration::from_secs(10), || drops.load(Ordering::SeqCst) == 6));
    assert_eq!(closes.load(Ordering::SeqCst), 6, "{}: one close per connection", D::NAME);
}

// ---------------------------------------------------------------------------
// (d) run_in_loop from 4 threads during echo traffic
// ---------------------------------------------------------------------------

const TASKS: usize = 100_000;

/// 4 threads queue 25,000 tasks each on the server's loop while 2 clients
/// do echo round trips on it: every task runs exactly once, every echoed
/// byte comes back intact.
fn run_in_loop_storm_during_echo<D: Dispatcher + 'static>() {
    let _serial = serial();
    let server = spawn_server::<D, _>(echo_callbacks::<D>(), 0);
    let runs: Arc<Vec<AtomicU8>> = Arc::new((0..TASKS).map(|_| AtomicU8::new(0)).collect());
    let total = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let echoers: Vec<_> = (0..2u64)
        .map(|seed| {
            let (addr, stop) = (server.addr, Arc::clone(&stop));
            thread::spawn(move || {
                let mut stream = connect(addr);
                let mut rng = Rng::new(seed + 10);
                let mut trips = 0;
                while !stop.load(Ordering::Relaxed) || trips == 0 {
                    let n = rng.range(1, 32 * 1024);
                    timed_round_trip(&mut stream, &rng.bytes(n));
                    trips += 1;
                }
                trips
            })
        })
        .collect();
    let posters: Vec<_> = (0..4)
        .map(|t| {
            let (handle, runs, total) = (server.main_loop.clone(), Arc::clone(&runs), Arc::clone(&total));
            thread::spawn(move || {
                for i in (t..TASKS).step_by(4) {
                    let (runs, total) = (Arc::clone(&runs), Arc::clone(&total));
                    handle
                        .run_in_loop(move |_| {
                            runs[i].fetch_add(1, Ordering::Relaxed);
                            total.fetch_add(1, Ordering::Release);
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for p in posters {
        p.join().unwrap();
    }
    let all_ran = wait_until(Duration::from_secs(30), || total.load(Ordering::Acquire) >= TASKS);
    stop.store(true, Ordering::Relaxed);
    let trips: usize = echoers.into_iter().map(|e| e.join().unwrap()).sum();
    assert!(all_ran, "{}: {} of {TASKS} tasks ran", D::NAME, total.load(Ordering::Acquire));
    thread::sleep(Duration::from_millis(50)); // a task run twice would show now
    assert_eq!(total.load(Ordering::Acquire), TASKS, "{}: tasks ran more than once", D::NAME);
    let wrong: Vec<usize> = (0..TASKS).filter(|&i| runs[i].load(Ordering::Relaxed) != 1).take(5).collect();
    assert!(wrong.is_empty(), "{}: tasks not run exactly once, e.g. {wrong:?}", D::NAME);
    assert!(trips > 0, "{}: echo traffic flowed", D::NAME);
    eprintln!("{}: {TASKS} tasks, {trips} echo round trips meanwhile", D::NAME);
}

// ---------------------------------------------------------------------------
// (f) EINTR storm
// ---------------------------------------------------------------------------

/// SIGUSR1 goes to the loop thread every millisecond for 1 s (a self-pipe
/// handler, so every wait is interrupted with EINTR) while 4 clients echo
/// random payloads: no error (the loop keeps running and stops cleanly),
/// every byte intact, and the signals really were delivered.
fn eintr_storm_during_echo<D: Dispatcher + 'static>() {
    let _serial = serial();
    // A no-op handler underneath the loop's: whatever happens to the loop
    // (a failing run drops it, which puts back the previous action), a late
    // SIGUSR1 must not take the default action and kill the whole test binary.
    // SAFETY: `ignore_signal` does nothing, which is async-signal-safe.
    let saved = unsafe { sys::set_signal_handler(libc::SIGUSR1, ignore_signal) }.unwrap();
    let mut server = spawn_server::<D, _>(echo_callbacks::<D>(), 0);
    let seen = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel();
    let counted = Arc::clone(&seen);
    server
        .main_loop
        .run_in_loop(move |ev| {
            let result = ev.set_signal_source(SignalSource::SelfPipe).and_then(|()| {
                ev.on_signal(libc::SIGUSR1, move |_, info| {
                    counted.fetch_add(info.count, Ordering::Relaxed);
                })
            });
            if let Ok(id) = result {
                *ev.context::<Option<SignalId>>() = Some(id);
            }
            tx.send(result.map(|_| sys::current_thread())).unwrap();
        })
        .unwrap();
    let target = rx.recv_timeout(IO_TIMEOUT).unwrap().expect("SIGUSR1 handler installed");
    let stop = Arc::new(AtomicBool::new(false));
    let sender_stop = Arc::clone(&stop);
    let sender = thread::spawn(move || {
        let (start, mut sent) = (Instant::now(), 0u64);
        // Bounded even if the test fails before setting `stop`. The loop
        // thread is not joined before this thread is, so its id stays valid.
        while !sender_stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(3) {
            // SAFETY: the loop thread is joined only after this thread (see above).
            if unsafe { sys::signal_thread(target, libc::SIGUSR1) }.is_ok() {
                sent += 1;
            }
            thread::sleep(Duration::from_millis(1));
        }
        sent
    });
    let clients: Vec<_> = (0..4u64)
        .map(|seed| {
            let addr = server.addr;
            thread::spawn(move || {
                let mut stream = connect(addr);
                let mut rng = Rng::new(seed + 100);
                let (start, mut bytes) = (Instant::now(), 0);
                while start.elapsed() < Duration::from_secs(1) {
                    let n = rng.range(1, 64 * 1024);
                    timed_round_trip(&mut stream, &rng.bytes(n));
                    bytes += n;
                }
                bytes
            })
        })
        .collect();
    let bytes: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    // Every signal sent has been handled (the handler counts runs) before
    // the disposition goes back to the default, which would kill us.
    assert!(
        wait_until(Duration::from_secs(5), || seen.load(Ordering::Relaxed) >= sent / 2),
        "{}: {} of {sent} signals seen",
        D::NAME,
        seen.load(Ordering::Relaxed)
    );
    let (tx, rx) = mpsc::channel();
    server
        .main_loop
        .run_in_loop(move |ev| {
            let id = ev.context::<Option<SignalId>>().take().unwrap();
            tx.send(ev.remove_signal(id)).unwrap();
        })
        .unwrap();
    assert!(rx.recv_timeout(IO_TIMEOUT).unwrap().unwrap(), "{}: handler removed", D::NAME);
    let handled = seen.load(Ordering::Relaxed);
    eprintln!("{}: {sent} SIGUSR1 sent, {handled} handled, {bytes} bytes echoed", D::NAME);
    assert!(sent >= 100, "{}: only {sent} signals were sent in 1 s", D::NAME);
    assert!(bytes > 0);
    server.stop(); // panics if the loop's run() returned an error
    sys::restore_signal_action(libc::SIGUSR1, &saved).unwrap();
}

extern "C" fn ignore_signal(_: libc::c_int) {}

for_each_dispatcher!(
    flood_does_not_starve_a_neighbour,
    rst_before_accept_with_a_slow_acceptor,
    peer_reset_with_megabytes_queued,
    run_in_loop_storm_during_echo,
    eintr_storm_during_echo,
);
