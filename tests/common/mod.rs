//! Fixtures shared by the integration suites: a server on its own loop
//! thread, blocking std clients with timeouts, a tiny PRNG and a hash.
#![allow(dead_code)] // each suite uses a different part

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use muxloop::{Callbacks, Dispatcher, EventLoop, LoopHandle, TcpServer};

/// Generous bound for any single blocking client operation.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A `TcpServer` running on a loop thread; stopped (gracefully) on drop.
pub struct TestServer<D: Dispatcher + 'static> {
    pub addr: SocketAddr,
    pub main_loop: LoopHandle<D>,
    thread: Option<JoinHandle<()>>,
}

pub fn spawn_server<D: Dispatcher + 'static>(callbacks: Callbacks<D>, threads: usize) -> TestServer<D> {
    let (tx, rx) = mpsc::channel();
    let thread = thread::Builder::new()
        .name(format!("test-server-{}", D::NAME))
        .spawn(move || {
            let mut ev = EventLoop::<D>::new().expect("event loop");
            let addr = "127.0.0.1:0".parse().unwrap();
            let server =
                TcpServer::builder(addr, callbacks).threads(threads).start(&mut ev).expect("server starts");
            tx.send((server.local_addr(), ev.handle())).unwrap();
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

/// Echo with backpressure: stop reading a client whose queued output crosses
/// `mark`, resume once it drains.
pub fn echo_callbacks<D: Dispatcher + 'static>(mark: usize) -> Callbacks<D> {
    Callbacks::new()
        .on_message(|ev, conn, input| {
            let _ = conn.send(ev, input.peek());
            input.consume_all();
        })
        .on_high_water_mark(mark, |ev, conn, _| conn.stop_reading(ev))
        .on_write_complete(|ev, conn| conn.start_reading(ev))
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
pub fn uring_unavailable() -> bool {
    static REASON: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    #[cfg(target_os = "linux")]
    let probe = || <muxloop::UringDispatcher as Dispatcher>::new().err().map(|e| e.to_string());
    #[cfg(not(target_os = "linux"))]
    let probe = || Some("not Linux".to_owned());
    match REASON.get_or_init(probe) {
        None => false,
        Some(reason) => {
            eprintln!("skipped: io_uring unavailable ({reason})");
            true
        }
    }
}

/// Instantiates `$body` (a generic `fn name<D: Dispatcher>()` list) once per
/// backend: `mod select`, `mod poll`, `mod epoll`, `mod uring` and `mod any`,
/// each with `#[test]`s (the io_uring ones skip where io_uring is refused).
#[macro_export]
macro_rules! for_each_dispatcher {
    ($($test:ident),* $(,)?) => {
        mod select {
            $( #[test] fn $test() { super::$test::<muxloop::SelectDispatcher>() } )*
        }
        mod poll {
            $( #[test] fn $test() { super::$test::<muxloop::PollDispatcher>() } )*
        }
        mod epoll {
            $( #[test] fn $test() { super::$test::<muxloop::EpollDispatcher>() } )*
        }
        /// The run-time choice, through the whole stack (`AnyDispatcher::new()`
        /// is `DefaultDispatcher`'s kind, and so is every sub-loop's).
        mod any {
            $( #[test] fn $test() { super::$test::<muxloop::AnyDispatcher>() } )*
        }
        #[cfg(target_os = "linux")]
        mod uring {
            $( #[test] fn $test() {
                if !$crate::common::uring_unavailable() {
                    super::$test::<muxloop::UringDispatcher>()
                }
            } )*
        }
    };
}
