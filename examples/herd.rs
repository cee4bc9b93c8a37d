//! The thundering herd, measured: N waiters, K connections, five ways to accept.
//!
//! ```text
//! cargo run --release --example herd -- [--connections K] [--loops N] [--strategy S] [--dispatcher NAME]
//! ```
//! (No `--unix`/`--processes`, unlike the servers: a measurement lab that
//! builds its own listeners, threads and processes for each strategy.)
//!
//! * `shared`: N threads, each with its own `EventLoop`, all watching ONE
//!   listening socket (level-triggered). A new connection makes the listener
//!   readable in every loop's dispatcher, so all N wake up; one `accept` wins
//!   and the others get `EAGAIN`: the herd.
//! * `exclusive`: the same with `EPOLLEXCLUSIVE`, which `EpollDispatcher`
//!   does not expose (it has no such `Mode`), so this one uses a bare epoll fd
//!   per thread through `sys::epoll_*` (epoll only, whatever `--dispatcher` says).
//!   The kernel wakes one (or a few) of the waiters.
//! * `mutex`: nginx's accept mutex. N threads, each with its own `EventLoop`
//!   (on `--dispatcher`, any backend), one shared listener, and one lock.
//!   Before each pass of its loop (`run_once` with a timeout of
//!   [`ACCEPT_MUTEX_DELAY`], nginx's `accept_mutex_delay`) a waiter tries the
//!   lock: the holder keeps the listener registered (readable) in its loop,
//!   accepts what is ready and releases the lock after its pass; the others
//!   make sure the listener is not in theirs. Only one waiter watches the
//!   listener at a time, so a connection wakes one. nginx's workers are
//!   processes, so its lock lives in shared memory (an atomic in an `mmap`ed
//!   region); these waiters are threads of one process, so an `AtomicBool`
//!   try-lock shows the same idea: the lock only decides who registers the
//!   listener, and nobody ever blocks on it.
//! * `reuseport`: one `SO_REUSEPORT` listener per loop; the kernel hashes each
//!   connection to one listener, so only its loop wakes. No herd, but the
//!   spread depends on the hash (min/max per loop).
//! * `processes`: N child processes blocked in `accept(2)` on one inherited
//!   listener. Blocking accept has woken a single waiter since Linux 2.6, so
//!   wake-ups equal accepts by construction (a blocking accept only returns
//!   with a connection, so they are not counted separately).
//!
//! Each wake-up does exactly one `accept`, so "EAGAIN" counts wasted
//! wake-ups *that reached user space* (`wake/acc`). Most of the herd does
//! not: a level-triggered `epoll_wait`/`poll` that is woken re-checks the
//! listener, finds the queue already emptied by the winner, and goes back to
//! sleep without returning. Those wake-ups still cost a context switch, so
//! `ctxs/acc` counts the waiters' voluntary context switches (from
//! `/proc/thread-self/status`) per accepted connection: that column shows the
//! herd. (For `processes` it also includes the child's one-byte read.) Latency: from the client's `connect` returning (the connection
//! is then in the accept queue) to `accept` returning, wall clock.

#[path = "common/cli.rs"]
mod cli;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use clap::builder::RangedU64ValueParser;
use muxloop::{AnyDispatcher, Dispatcher, EventLoop, Interest, Mode, sys};

/// What the waiters saw, and (client port, connected at µs) per connection.
type Outcome = (Vec<Waiter>, Vec<(u16, u64)>);

/// What one waiter (loop, thread or process) saw.
#[derive(Default, Debug, Clone)]
struct Waiter {
    /// Voluntary context switches of the waiting thread/process: how often it
    /// went to sleep, i.e. was woken, including wake-ups the kernel hides from
    /// user space (see the module docs).
    switches: u64,
    wakeups: u64,
    eagain: u64,
    /// `mutex` only: the most loops (this one included) that had the
    /// listener registered while waiting, seen when this one began a pass.
    most_watching: usize,
    /// (peer port, accept time in µs since the epoch) per connection.
    accepts: Vec<(u16, u64)>,
}

/// `voluntary_ctxt_switches` of the calling thread (Linux `/proc`).
fn voluntary_switches() -> u64 {
    std::fs::read_to_string("/proc/thread-self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("voluntary_ctxt_switches:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// One accept per wake-up; `Ok(false)` on EAGAIN (a wasted wake-up).
fn accept_one(listener: BorrowedFd<'_>, w: &mut Waiter) -> io::Result<bool> {
    w.wakeups += 1;
    match sys::accept(listener) {
        Ok((conn, peer)) => {
            w.accepts.push((peer.to_inet()?.port(), now_us()));
            drop(conn);
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            w.eagain += 1;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Client threads: connect `k` times in total, recording (local port, connected at).
/// Each connection writes one byte, `b's'` for the stop connections of `processes`.
fn drive(addr: SocketAddr, k: usize, byte: u8) -> Vec<(u16, u64)> {
    const CLIENTS: usize = 4;
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            thread::spawn(move || {
                let mut out = Vec::new();
                for _ in (i..k).step_by(CLIENTS) {
                    let Ok(mut s) = TcpStream::connect(addr) else { continue };
                    out.push((s.local_addr().map_or(0, |a| a.port()), now_us()));
                    let _ = s.write_all(&[byte]);
                    // Spread arrivals so waiters fall asleep between them.
                    thread::sleep(Duration::from_millis(1));
                }
                out
            })
        })
        .collect();
    threads.into_iter().flat_map(|t| t.join().unwrap_or_default()).collect()
}

/// Runs `n` loops, each watching `listeners[i % listeners.len()]`, until `k`
/// accepts; `make` gives each loop its dispatcher.
fn loops<D: Dispatcher + 'static>(
    listeners: &[OwnedFd],
    n: usize,
    k: usize,
    addr: SocketAddr,
    make: &dyn Fn() -> io::Result<D>,
) -> io::Result<Outcome> {
    let mut handles = Vec::new();
    let mut threads = Vec::new();
    for i in 0..n {
        // A second fd for the same listening socket, owned by the thread.
        let listener = listeners[i % listeners.len()].try_clone()?;
        let fd = listener.as_raw_fd();
        let (tx, rx) = std::sync::mpsc::channel();
        let dispatcher = make()?;
        threads.push(thread::spawn(move || {
            let mut ev = EventLoop::with_dispatcher(dispatcher).expect("loop");
            let w = std::rc::Rc::new(std::cell::RefCell::new(Waiter::default()));
            let w2 = std::rc::Rc::clone(&w);
            ev.register(fd, Interest::READABLE, Mode::Level, move |_, _| {
                if let Err(e) = accept_one(listener.as_fd(), &mut w2.borrow_mut()) {
                    eprintln!("accept: {e}");
                }
            })
            .expect("register listener");
            tx.send(ev.handle()).unwrap();
            let before = voluntary_switches();
            ev.run().expect("run");
            let mut waiter = w.borrow().clone();
            waiter.switches = voluntary_switches() - before;
            let _ = ev.deregister(fd);
            waiter
        }));
        handles.push(rx.recv().unwrap());
    }
    let connects = drive(addr, k, b'c');
    settle();
    handles.iter().for_each(|h| h.quit());
    Ok((threads.into_iter().map(|t| t.join().unwrap()).collect(), connects))
}

/// The drivers have returned, so every connection sits in an accept queue;
/// give the waiters a bounded moment to take them (and the herd behind the
/// last one to land).
fn settle() {
    thread::sleep(Duration::from_millis(300));
}

#[cfg(muxloop_has_epoll)]
fn exclusive(listener: &OwnedFd, n: usize, k: usize, addr: SocketAddr) -> io::Result<Outcome> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for _ in 0..n {
        // A second fd for the same listening socket, owned by the thread.
        let listener = listener.try_clone()?;
        let epfd = sys::teaching::epoll_create()?;
        sys::teaching::epoll_add_readable(epfd.as_fd(), listener.as_fd(), true)?;
        let stop = Arc::clone(&stop);
        threads.push(thread::spawn(move || {
            let mut w = Waiter::default();
            let before = voluntary_switches();
            while !stop.load(Ordering::Acquire) {
                match sys::teaching::epoll_wait_ready(epfd.as_fd(), 200) {
                    Ok(0) => {}
                    Ok(_) => {
                        if let Err(e) = accept_one(listener.as_fd(), &mut w) {
                            eprintln!("accept: {e}");
                        }
                    }
                    Err(e) => {
                        eprintln!("epoll_wait: {e}");
                        break;
                    }
                }
            }
            w.switches = voluntary_switches() - before;
            w
        }));
    }
    let connects = drive(addr, k, b'c');
    settle();
    stop.store(true, Ordering::Release);
    Ok((threads.into_iter().map(|t| t.join().unwrap()).collect(), connects))
}

/// How long a waiter's pass lasts at most under the `mutex` strategy (nginx's
/// `accept_mutex_delay`, 500 ms by default there): a waiter without the lock
/// sleeps this long before trying again, and the holder releases the lock at
/// least this often.
pub const ACCEPT_MUTEX_DELAY: Duration = Duration::from_millis(20);

/// The accept mutex: a try-lock, never waited for.
struct AcceptMutex(AtomicBool);

impl AcceptMutex {
    fn try_lock(&self) -> bool {
        self.0.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    fn unlock(&self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The `mutex` strategy: only the waiter holding the lock has the listener
/// in its loop (nginx's `ngx_trylock_accept_mutex`, `ngx_enable_accept_events`
/// and `ngx_disable_accept_events`).
fn mutex<D: Dispatcher + 'static>(
    listener: &OwnedFd,
    n: usize,
    k: usize,
    addr: SocketAddr,
    make: &dyn Fn() -> io::Result<D>,
) -> io::Result<Outcome> {
    let stop = Arc::new(AtomicBool::new(false));
    let lock = Arc::new(AcceptMutex(AtomicBool::new(false)));
    let watching = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for _ in 0..n {
        // A second fd for the same listening socket, owned by the thread.
        let listener = listener.try_clone()?;
        let dispatcher = make()?;
        let (stop, lock, watching) = (Arc::clone(&stop), Arc::clone(&lock), Arc::clone(&watching));
        threads.push(thread::spawn(move || {
            let listener = Rc::new(listener);
            let mut ev = EventLoop::with_dispatcher(dispatcher).expect("loop");
            let fd = listener.as_raw_fd();
            let w = Rc::new(std::cell::RefCell::new(Waiter::default()));
            let before = voluntary_switches();
            while !stop.load(Ordering::Acquire) {
                let held = lock.try_lock();
                if held && !ev.is_registered(fd) {
                    let (listener, w) = (Rc::clone(&listener), Rc::clone(&w));
                    ev.register(fd, Interest::READABLE, Mode::Level, move |_, _| {
                        if let Err(e) = accept_one(listener.as_fd(), &mut w.borrow_mut()) {
                            eprintln!("accept: {e}");
                        }
                    })
                    .expect("register listener");
                } else if !held && ev.is_registered(fd) {
                    ev.deregister(fd).expect("deregister listener");
                }
                let watches = ev.is_registered(fd);
                if watches {
                    let now = watching.fetch_add(1, Ordering::AcqRel) + 1;
                    let mut w = w.borrow_mut();
                    w.most_watching = w.most_watching.max(now);
                }
                let pass = ev.run_once(Some(ACCEPT_MUTEX_DELAY));
                if watches {
                    watching.fetch_sub(1, Ordering::AcqRel);
                }
                if held {
                    lock.unlock();
                }
                pass.expect("run_once");
            }
            let mut waiter = w.borrow().clone();
            waiter.switches = voluntary_switches() - before;
            waiter
        }));
    }
    let connects = drive(addr, k, b'c');
    settle();
    stop.store(true, Ordering::Release);
    Ok((threads.into_iter().map(|t| t.join().unwrap()).collect(), connects))
}

/// The child side of `processes`: blocking accepts on the inherited fd until a
/// stop connection; prints "port time_us" per accept.
fn accept_child(listener: OwnedFd) -> io::Result<()> {
    let mut out = String::new();
    let before = voluntary_switches();
    loop {
        let (conn, peer) = sys::accept(listener.as_fd())?;
        let at = now_us();
        let mut stream = TcpStream::from(conn);
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut byte = [0u8; 1];
        let _ = stream.read(&mut byte);
        if byte[0] == b's' {
            break;
        }
        out.push_str(&format!("{} {at}\n", peer.to_inet()?.port()));
    }
    out.push_str(&format!("switches {}\n", voluntary_switches() - before));
    io::stdout().write_all(out.as_bytes())
}

fn processes(n: usize, k: usize) -> io::Result<Outcome> {
    let listener = sys::tcp_listener(&"127.0.0.1:0".parse().unwrap(), false, 1024)?;
    let addr = sys::local_addr(listener.as_fd())?.to_inet()?;
    sys::set_nonblocking(listener.as_fd(), false)?; // blocking accept in the children
    let inherit = sys::dup_inheritable(listener.as_fd())?;
    let exe = std::env::current_exe()?;
    let children: Vec<_> = (0..n)
        .map(|_| {
            Command::new(&exe)
                .args(["--accept-child", &inherit.as_raw_fd().to_string()])
                .stdout(Stdio::piped())
                .spawn()
        })
        .collect::<io::Result<_>>()?;
    drop(inherit);
    thread::sleep(Duration::from_millis(200)); // all children blocked in accept
    let connects = drive(addr, k, b'c');
    // One stop connection per child: each is accepted by a child still waiting.
    drive(addr, n, b's');
    let mut waiters = Vec::new();
    for child in children {
        let out = child.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let switches = text.lines().find_map(|l| l.strip_prefix("switches ")?.parse().ok()).unwrap_or(0);
        let accepts: Vec<(u16, u64)> = text
            .lines()
            .filter_map(|l| {
                let (p, t) = l.split_once(' ')?;
                Some((p.parse().ok()?, t.parse().ok()?))
            })
            .collect();
        waiters.push(Waiter { switches, wakeups: accepts.len() as u64, accepts, ..Waiter::default() });
    }
    Ok((waiters, connects))
}

/// One row of the table.
#[derive(Debug)]
pub struct Summary {
    /// Connections accepted, all waiters together.
    pub accepted: usize,
    /// Accepted connections whose port a client reported (consistency check).
    pub matched: usize,
    /// Wake-ups that reached user space.
    pub wakeups: u64,
    /// Of those, accepts that failed with EAGAIN.
    pub eagain: u64,
    /// Voluntary context switches of the waiters.
    pub switches: u64,
    /// Accept latency percentiles, µs.
    pub p50: u64,
    /// See `p50`.
    pub p99: u64,
    /// Accepts per waiter.
    pub per_waiter: Vec<usize>,
    /// `mutex` only (0 otherwise): the most loops that had the listener
    /// registered during their pass at the same time.
    pub watchers: usize,
}

fn summarize(waiters: &[Waiter], connects: &[(u16, u64)]) -> Summary {
    let connected: std::collections::HashMap<u16, u64> = connects.iter().copied().collect();
    let mut lat: Vec<u64> = waiters
        .iter()
        .flat_map(|w| w.accepts.iter())
        .filter_map(|(port, at)| connected.get(port).map(|c| at.saturating_sub(*c)))
        .collect();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or(0)
    };
    Summary {
        accepted: waiters.iter().map(|w| w.accepts.len()).sum(),
        matched: lat.len(),
        wakeups: waiters.iter().map(|w| w.wakeups).sum(),
        eagain: waiters.iter().map(|w| w.eagain).sum(),
        switches: waiters.iter().map(|w| w.switches).sum(),
        p50: pct(0.50),
        p99: pct(0.99),
        per_waiter: waiters.iter().map(|w| w.accepts.len()).collect(),
        watchers: waiters.iter().map(|w| w.most_watching).max().unwrap_or(0),
    }
}

/// Runs one strategy ("shared", "exclusive", "mutex", "reuseport", "processes") with
/// `n` waiters and `k` connections. "processes" re-executes this program, so
/// it only works from the herd binary itself.
pub fn measure<D: Dispatcher + 'static>(strategy: &str, n: usize, k: usize) -> io::Result<Summary> {
    measure_with(strategy, n, k, &D::new)
}

/// Like [`measure`], with each loop's dispatcher made by `make` (a backend
/// chosen at run time).
pub fn measure_with<D: Dispatcher + 'static>(
    strategy: &str,
    n: usize,
    k: usize,
    make: &dyn Fn() -> io::Result<D>,
) -> io::Result<Summary> {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (waiters, connects) = match strategy {
        "shared" => {
            let listener = sys::tcp_listener(&any, false, 1024)?;
            let addr = sys::local_addr(listener.as_fd())?.to_inet()?;
            loops(std::slice::from_ref(&listener), n, k, addr, make)?
        }
        #[cfg(muxloop_has_epoll)]
        "exclusive" => {
            let listener = sys::tcp_listener(&any, false, 1024)?;
            let addr = sys::local_addr(listener.as_fd())?.to_inet()?;
            exclusive(&listener, n, k, addr)?
        }
        #[cfg(not(muxloop_has_epoll))]
        "exclusive" => {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "EPOLLEXCLUSIVE needs epoll"));
        }
        "mutex" => {
            let listener = sys::tcp_listener(&any, false, 1024)?;
            let addr = sys::local_addr(listener.as_fd())?.to_inet()?;
            mutex(&listener, n, k, addr, make)?
        }
        "reuseport" => {
            let first = sys::tcp_listener(&any, true, 1024)?;
            let addr = sys::local_addr(first.as_fd())?.to_inet()?;
            let mut listeners = vec![first];
            for _ in 1..n {
                listeners.push(sys::tcp_listener(&addr, true, 1024)?);
            }
            loops(&listeners, n, k, addr, make)?
        }
        "processes" => processes(n, k)?,
        other => {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("unknown strategy {other:?}")));
        }
    };
    Ok(summarize(&waiters, &connects))
}

fn run(n: usize, k: usize, only: &str, dispatcher: &str) -> io::Result<()> {
    println!("herd: {k} connections, {n} waiters, loops on {dispatcher}");
    println!(
        "| strategy   | wait | accepted    | wake/acc | ctxs/acc | EAGAIN | p50 µs  | p99 µs  | per waiter  |"
    );
    println!(
        "|------------|------|-------------|----------|----------|--------|---------|---------|-------------|"
    );
    for name in ["shared", "exclusive", "mutex", "reuseport", "processes"] {
        if only != "all" && only != name {
            continue;
        }
        let s = measure_with(name, n, k, &|| AnyDispatcher::by_name(dispatcher))?;
        let per_acc = |x: u64| x as f64 / s.accepted.max(1) as f64;
        println!(
            "| {name:<10} | {n:>4} | {:>5}/{k:<5} | {:>8.2} | {:>8.2} | {:>6} | {:>7} | {:>7} | {:>4} / {:<4} |",
            s.accepted,
            per_acc(s.wakeups),
            per_acc(s.switches),
            s.eagain,
            s.p50,
            s.p99,
            s.per_waiter.iter().min().unwrap_or(&0),
            s.per_waiter.iter().max().unwrap_or(&0),
        );
    }
    Ok(())
}

/// The thundering herd, measured: N waiters, K connections, five ways to accept.
#[derive(Parser)]
#[command(name = "herd", version)]
struct Cli {
    /// Connections to make
    #[arg(long, value_name = "K", default_value_t = 2000, value_parser = RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    connections: usize,
    /// Waiters (loops, threads or processes)
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = RangedU64ValueParser::<usize>::new().range(1..=1024))]
    loops: usize,
    /// Which way to accept
    #[arg(long, value_name = "S", default_value = "all",
          value_parser = ["all", "shared", "exclusive", "mutex", "reuseport", "processes"])]
    strategy: String,
    /// The I/O multiplexer of the loops
    #[arg(long, value_name = "NAME", default_value = muxloop::default_dispatcher_name(),
          value_parser = clap::builder::PossibleValuesParser::new(AnyDispatcher::names()), ignore_case = true)]
    dispatcher: String,
    /// Internal: run as a `processes` child accepting on this inherited fd
    #[arg(long, value_name = "FD", hide = true)]
    accept_child: Option<RawFd>,
}

#[allow(dead_code)] // tests/learn/herd.rs includes this file for `measure` alone
fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    cli::main(|| match cli.accept_child {
        // SAFETY: the parent passed this fd, open and inheritable, for this
        // child alone; nothing else in this process owns it.
        Some(fd) => accept_child(unsafe { OwnedFd::from_raw_fd(fd) }),
        None => run(cli.loops, cli.connections, &cli.strategy, &cli.dispatcher),
    })
}
