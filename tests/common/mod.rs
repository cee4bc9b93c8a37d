//! Fixtures shared by the integration suites: a server on its own loop
//! thread, blocking std clients with timeouts, a tiny PRNG and a hash.
#![allow(dead_code)] // each suite uses a different part

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use muxloop::{Callbacks, Dispatcher, EventLoop, HandlerFactory, LoopHandle, Server, ServerBuilder};

pub mod counting_alloc;
#[cfg(feature = "http")]
pub mod http;

/// Generous bound for any single blocking client operation.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A `Server` running on a loop thread; stopped (gracefully) on drop.
pub struct TestServer<D: Dispatcher + 'static> {
    pub addr: SocketAddr,
    pub main_loop: LoopHandle<D>,
    thread: Option<JoinHandle<()>>,
}

pub fn spawn_server<D, F>(factory: F, threads: usize) -> TestServer<D>
where
    D: Dispatcher + 'static,
    F: HandlerFactory<D> + Send + Sync,
{
    spawn_server_with(factory, move |builder| builder.threads(threads))
}

/// Like [`spawn_server`], with the builder configured by `configure`.
pub fn spawn_server_with<D, F, C>(factory: F, configure: C) -> TestServer<D>
where
    D: Dispatcher + 'static,
    F: HandlerFactory<D> + Send + Sync,
    C: FnOnce(ServerBuilder<D>) -> ServerBuilder<D> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let thread = thread::Builder::new()
        .name(format!("test-server-{}", D::NAME))
        .spawn(move || {
            let mut ev = EventLoop::<D>::new().expect("event loop");
            let server =
                configure(Server::builder("127.0.0.1:0", factory)).start(&mut ev).expect("server starts");
            tx.send((server.local_addr().as_inet().expect("a TCP server"), ev.handle())).unwrap();
            ev.run().expect("main loop runs");
            server.stop(&mut ev, Duration::from_secs(2)).expect("graceful stop");
        })
        .unwrap();
    let (addr, main_loop) = rx.recv_timeout(IO_TIMEOUT).expect("server thread reports its address");
    TestServer { addr, main_loop, thread: Some(thread) }
}

impl<D: Dispatcher + 'static> TestServer<D> {
    pub fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.main_loop.quit();
            thread.join().expect("server thread exits cleanly");
        }
    }
}

impl<D: Dispatcher + 'static> Drop for TestServer<D> {
    fn drop(&mut self) {
        if !thread::panicking() {
            self.stop();
        }
    }
}

/// Echo; backpressure is the connection's built-in output limit.
pub fn echo_callbacks<D: Dispatcher + 'static>() -> Callbacks<D> {
    Callbacks::new().on_message(|ev, conn, input| {
        let _ = conn.send(ev, input.peek());
        input.consume_all();
    })
}

/// A blocking client with read/write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// Reads until `n` bytes or EOF/error; returns what arrived.
pub fn read_up_to(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut out = vec![0; n];
    let mut got = 0;
    while got < n {
        match stream.read(&mut out[got..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => got += k,
        }
    }
    out.truncate(got);
    out
}

/// Reads until EOF (or error); returns everything.
pub fn read_to_eof(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    stream.read_to_end(&mut out)?;
    Ok(out)
}

/// One echo round trip; true if the bytes came back.
pub fn echo_round_trip(addr: SocketAddr, payload: &[u8]) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else { return false };
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(payload).is_ok() && read_up_to(&mut stream, payload.len()) == payload
}

/// Polls `cond` every 5 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// xorshift64*: deterministic random sizes and bytes, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

/// FNV-1a, 64-bit: enough to compare streams byte for byte.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// Whether io_uring cannot be used here (old kernel, `io_uring_disabled`, a
/// seccomp sandbox); if so, says "skipped: io_uring unavailable (reason)".
/// Every io_uring test starts with it, so the rest of the suite still runs.
///
/// The kernel is asked directly (a ring made with the `io-uring` crate, and
/// the 5.13 features the backend needs), not through `UringDispatcher`: a
/// backend that refuses a kernel able to run it is a failure, not a skip.
pub fn uring_unavailable() -> bool {
    static REASON: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    // The probe runs on a thread of its own: a dropped ring's teardown can
    // queue kernel task work to the thread that made it, which interrupts
    // that thread's blocking socket reads that have a timeout (EINTR).
    let reason = REASON.get_or_init(|| {
        std::thread::spawn(|| {
            let kernel_refuses = kernel_refuses_uring();
            #[cfg(muxloop_has_uring)]
            if kernel_refuses.is_none()
                && let Err(e) = <muxloop::UringDispatcher as Dispatcher>::new()
            {
                panic!("the kernel runs io_uring with multishot polls, but UringDispatcher::new failed: {e}");
            }
            kernel_refuses
        })
        .join()
        .expect("the io_uring probe")
    });
    match reason {
        None => false,
        Some(reason) => {
            eprintln!("skipped: io_uring unavailable ({reason})");
            true
        }
    }
}

/// Why the kernel cannot run the io_uring backend, if it cannot.
fn kernel_refuses_uring() -> Option<String> {
    #[cfg(muxloop_has_uring)]
    {
        match io_uring::IoUring::new(8) {
            Err(e) => Some(format!("io_uring_setup: {e}")),
            Ok(ring) => {
                let p = ring.params();
                let new_enough =
                    p.is_feature_ext_arg() && p.is_feature_nodrop() && p.is_feature_resource_tagging();
                (!new_enough).then(|| "kernel older than 5.13".to_owned())
            }
        }
    }
    #[cfg(not(muxloop_has_uring))]
    Some("not Linux, or built with --cfg muxloop_portable".to_owned())
}

/// The one instantiation macro: `for_each_dispatcher!(a, b, ...)` turns each
/// generic `fn a<D: Dispatcher>()` into one `#[test]` per dispatcher, in
/// `mod select`, `mod poll`, `mod epoll`, `mod uring` and `mod any`. Every
/// behavioural suite uses it, so each runs on every backend.
///
/// The io_uring tests start with [`uring_unavailable`]: where the kernel
/// refuses io_uring they pass after printing why ("skipped: io_uring
/// unavailable (reason)"), so the rest of the suite still runs. A name may
/// carry attributes, e.g. `#[cfg(feature = "http")] http_over_unix`.
#[macro_export]
macro_rules! for_each_dispatcher {
    ($( $(#[$attr:meta])* $test:ident ),* $(,)?) => {
        mod select {
            $( $(#[$attr])* #[test] fn $test() { super::$test::<muxloop::SelectDispatcher>() } )*
        }
        mod poll {
            $( $(#[$attr])* #[test] fn $test() { super::$test::<muxloop::PollDispatcher>() } )*
        }
        #[cfg(muxloop_has_epoll)]
        mod epoll {
            $( $(#[$attr])* #[test] fn $test() { super::$test::<muxloop::EpollDispatcher>() } )*
        }
        #[cfg(muxloop_has_uring)]
        mod uring {
            $( $(#[$attr])* #[test] fn $test() {
                if !$crate::common::uring_unavailable() {
                    super::$test::<muxloop::UringDispatcher>()
                }
            } )*
        }
        /// The run-time choice, through the whole stack (`AnyDispatcher::new()`
        /// is `DefaultDispatcher`'s kind, and so is every sub-loop's).
        mod any {
            $( $(#[$attr])* #[test] fn $test() { super::$test::<muxloop::AnyDispatcher>() } )*
        }
    };
}

/// The seed of the simulated kernel the contract suites run on (any fixed
/// value: without faults it only picks the sockets' buffer sizes).
pub const SIM_SEED: u64 = 0x5EED_C0DE;

/// The simulated kernel the contract suites run on: a well-behaved one (no
/// faults; the contract is about the kernel Linux is) on the real clock,
/// since the suites measure time with `Instant` and sleep for real.
pub fn contract_sim() -> muxloop::sim::Sim {
    muxloop::sim::Sim::start(muxloop::sim::SimConfig::new(SIM_SEED).virtual_time(false))
        .expect("a simulated kernel on this test's thread")
}

/// `for_each_dispatcher!`'s sibling for the fifth backend: turns each generic
/// `fn a<D: Dispatcher>()` into a `#[test]` in `mod sim` that starts a
/// simulated kernel on its thread ([`contract_sim`]) and runs the case on
/// `SimDispatcher`. Only cases that a single-threaded simulated kernel can
/// serve are listed (each suite says which it leaves out, and why): the
/// kernel lives as long as the test, and only the test's thread reaches it.
#[macro_export]
macro_rules! for_sim_dispatcher {
    ($( $(#[$attr:meta])* $test:ident ),* $(,)?) => {
        mod sim {
            $( $(#[$attr])* #[test] fn $test() {
                let _sim = $crate::common::contract_sim();
                super::$test::<muxloop::SimDispatcher>()
            } )*
        }
    };
}

/// The libtest name of test `name` in module `module` (its `module_path!()`),
/// for re-running that one test of this binary in a child process with
/// `--exact` (a name that matches nothing would run no test and pass).
pub fn test_name(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_crate, path)) => format!("{path}::{name}"),
        None => name.to_owned(),
    }
}

/// The state letter of `pid` from `/proc/PID/stat` (`R`, `S`, `Z`...),
/// `None` once it is gone. The name field may hold spaces and parentheses,
/// so the state is read after the last `)`.
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    proc_state(pid).is_some_and(|state| state != 'Z')
}

/// Live (not zombie) children of `parent`, from /proc/*/stat.
pub fn live_children(parent: u32) -> std::collections::HashSet<u32> {
    let mut out = std::collections::HashSet::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // "pid (comm) state ppid ...": comm may hold spaces, so parse after the last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
        let mut fields = rest.split_whitespace();
        let (state, ppid) = (fields.next(), fields.next().and_then(|p| p.parse::<u32>().ok()));
        if ppid == Some(parent) && state != Some("Z") {
            out.insert(pid);
        }
    }
    out
}

/// Waits for `child` to exit, at most `limit`; past it, kills and reaps it
/// and returns `None`.
pub fn exit_within(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The path of an example binary that `cargo test` built next to the test
/// binaries (`target/<profile>/examples/NAME`).
pub fn example_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds the examples (or run `cargo build --examples`)",
        path.display()
    );
    path
}

/// A running example binary, killed on drop.
pub struct ExampleProcess {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    /// Its log (stderr) and later stdout lines so far, collected by threads.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ExampleProcess {
    /// Starts `examples/NAME ARGS...` and waits for its
    /// `listening on ADDR (dispatcher: NAME)` line.
    pub fn start(name: &str, args: &[&str]) -> ExampleProcess {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let mut child = Command::new(example_binary(name))
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start examples/{name}: {e}"));
        let log = std::sync::Arc::<std::sync::Mutex<Vec<String>>>::default();
        let (stderr, lines_to) = (child.stderr.take().unwrap(), std::sync::Arc::clone(&log));
        thread::spawn(move || {
            for line in io::BufReader::new(stderr).lines().map_while(Result::ok) {
                lines_to.lock().unwrap().push(line);
            }
        });
        let mut line = String::new();
        let mut stdout = io::BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        // Keep reading, so a later `println!` (e.g. the stop summary) has a reader.
        let lines_to = std::sync::Arc::clone(&log);
        thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                lines_to.lock().unwrap().push(line);
            }
        });
        let addr = line
            .split_whitespace()
            .nth(2)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("examples/{name} did not announce its address: {line:?}"));
        ExampleProcess { child, addr, log }
    }

    /// Whether a log line containing `text` has appeared within `timeout`.
    pub fn logged(&self, text: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log.lock().unwrap().iter().any(|l| l.contains(text)))
    }

    /// Peak resident memory so far (VmHWM), in bytes.
    pub fn peak_rss(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<usize>().unwrap() * 1024
    }
}

impl Drop for ExampleProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `ev` for `period`, whatever happens.
pub fn run_for<D: Dispatcher>(ev: &mut EventLoop<D>, period: Duration) {
    let until = Instant::now() + period;
    while Instant::now() < until {
        ev.run_once(Some(Duration::from_millis(10))).unwrap();
    }
}

/// Runs `ev` until `cond` holds or [`IO_TIMEOUT`] passes; whether it held.
pub fn run_until<D: Dispatcher>(ev: &mut EventLoop<D>, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + IO_TIMEOUT;
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        ev.run_once(Some(Duration::from_millis(10))).unwrap();
    }
    true
}
