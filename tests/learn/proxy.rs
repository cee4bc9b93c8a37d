//! `examples/proxy.rs` on every dispatcher, copy and splice: 50 clients x
//! 1 MiB through the relay to an echo server, byte-exact, with half-close
//! passing through in both directions.

use crate::common;

#[allow(dead_code)]
#[path = "../../examples/proxy.rs"]
mod example;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{IO_TIMEOUT, Rng, fnv1a};
use example::{Config, Relay, Totals};
use muxloop::{Dispatcher, EventLoop, LoopHandle, sys};

/// What the echo server sends after the client's EOF, before closing: bytes
/// that must still reach the client through the proxy's other direction.
const TRAILER: &[u8] = b"-- upstream saw EOF --";

/// Echo with std threads: echoes until EOF, then sends `TRAILER` and closes.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            thread::spawn(move || {
                stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                let mut buf = vec![0; 64 * 1024];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                        Err(_) => return,
                    }
                }
                let _ = stream.write_all(TRAILER);
                let _ = stream.shutdown(Shutdown::Write);
            });
        }
    });
    addr
}

/// The proxy on its own loop thread; quit and joined on drop.
struct Running<D: Dispatcher + 'static> {
    addr: SocketAddr,
    handle: LoopHandle<D>,
    thread: Option<thread::JoinHandle<Totals>>,
}

fn start_proxy<D: Dispatcher + 'static>(upstream: SocketAddr, relay: Relay) -> Running<D> {
    let (tx, rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        let mut ev = EventLoop::<D>::new().unwrap();
        let config = Config::new("127.0.0.1:0".parse().unwrap(), upstream, relay);
        let (addr, totals) = example::start(&mut ev, config).unwrap();
        tx.send((addr, ev.handle())).unwrap();
        ev.run().unwrap();
        *totals.borrow()
    });
    let (addr, handle) = rx.recv_timeout(IO_TIMEOUT).unwrap();
    Running { addr, handle, thread: Some(thread) }
}

impl<D: Dispatcher + 'static> Running<D> {
    fn stop(&mut self) -> Totals {
        self.handle.quit();
        self.thread.take().unwrap().join().unwrap()
    }
}

impl<D: Dispatcher + 'static> Drop for Running<D> {
    fn drop(&mut self) {
        if self.thread.is_some() && !thread::panicking() {
            self.stop();
        }
    }
}

/// Sends `payload` then shuts down its write side; reads everything until EOF.
fn client(addr: SocketAddr, payload: Vec<u8>) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect to proxy");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = thread::spawn(move || {
        writer.write_all(&payload).expect("send through proxy");
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    stream.read_to_end(&mut got).expect("read until the proxy passes EOF on");
    sender.join().unwrap();
    got
}

fn many_clients<D: Dispatcher + 'static>(relay: Relay) {
    const CLIENTS: usize = 50;
    const SIZE: usize = 1024 * 1024;
    let upstream = echo_server();
    let mut proxy = start_proxy::<D>(upstream, relay);
    let addr = proxy.addr;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            thread::spawn(move || {
                let payload = Rng::new(i as u64 + 1).bytes(SIZE);
                let mut expected = payload.clone();
                expected.extend_from_slice(TRAILER);
                let got = client(addr, payload);
                assert_eq!(got.len(), expected.len(), "client {i}: length");
                assert_eq!(fnv1a(&got), fnv1a(&expected), "client {i}: bytes differ");
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client thread");
    }
    // A client sees EOF only once both directions of its session are over,
    // and the session is counted closed in that same callback.
    let totals = proxy.stop();
    assert_eq!(totals.accepted, CLIENTS as u64);
    assert_eq!(totals.closed, CLIENTS as u64, "{totals:?}");
    assert_eq!(totals.failed, 0, "{totals:?}");
    assert_eq!(totals.upstream_bytes, (CLIENTS * SIZE) as u64);
    assert_eq!(totals.client_bytes, (CLIENTS * (SIZE + TRAILER.len())) as u64);
}

/// The client half-closes first and still receives what upstream sends
/// afterwards; then upstream's EOF reaches the client.
fn half_close<D: Dispatcher + 'static>(relay: Relay) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = listener.local_addr().unwrap();
    let proxy = start_proxy::<D>(upstream, relay);
    let mut c = TcpStream::connect(proxy.addr).unwrap();
    c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let (mut u, _) = listener.accept().unwrap();
    u.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    c.write_all(b"request").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    u.read_to_end(&mut got).expect("upstream sees the client's EOF");
    assert_eq!(got, b"request");
    // The other direction is still open.
    u.write_all(b"answer after your FIN").unwrap();
    let mut answer = [0u8; 21];
    c.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"answer after your FIN");
    u.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).expect("client sees upstream's EOF");
    assert!(rest.is_empty());
}

/// A refused upstream closes the client instead of leaving it hanging.
fn upstream_refused<D: Dispatcher + 'static>(relay: Relay) {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = closed.local_addr().unwrap();
    drop(closed);
    let mut proxy = start_proxy::<D>(upstream, relay);
    let mut c = TcpStream::connect(proxy.addr).unwrap();
    c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut buf = [0u8; 1];
    assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)), "closed, not hung");
    thread::sleep(Duration::from_millis(50));
    let totals = proxy.stop();
    assert_eq!((totals.accepted, totals.closed, totals.failed), (1, 1, 1), "{totals:?}");
}

/// Upstream does not read: the proxy stops reading the client once its
/// queue towards upstream is full, so the client's writes stall at a
/// bounded total (socket buffers + the proxy's bound), not at 64 MiB of
/// proxy memory. When upstream reads, every byte arrives.
fn backpressure<D: Dispatcher + 'static>(relay: Relay) {
    const LIMIT: usize = 64 * 1024 * 1024;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = start_proxy::<D>(listener.local_addr().unwrap(), relay);
    let mut c = TcpStream::connect(proxy.addr).unwrap();
    let (mut u, _) = listener.accept().unwrap();
    // Fixed small buffers on both ends: loopback autotuning can otherwise
    // hold ~32 MiB in the kernel (tcp_rmem), whatever the proxy does.
    sys::set_buffer_sizes(u.as_fd(), None, Some(64 * 1024)).unwrap();
    sys::set_buffer_sizes(c.as_fd(), Some(64 * 1024), None).unwrap();
    u.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    c.set_nonblocking(true).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    let (mut sent, mut idle_rounds) = (0usize, 0);
    while sent < LIMIT && idle_rounds < 5 {
        match c.write(&chunk) {
            Ok(n) => {
                sent += n;
                idle_rounds = 0;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                idle_rounds += 1;
                thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    // The proxy's own sockets may still autotune up to ~32 MiB of receive
    // buffer plus 4 MiB of send buffer (tcp_rmem/tcp_wmem): ~37 MiB the
    // kernel holds. An unbounded relay takes all 64 MiB.
    assert!(sent < LIMIT * 3 / 4, "the client could push {sent} bytes into a stalled relay");
    c.set_nonblocking(false).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    u.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), sent, "every accepted byte is delivered once upstream reads");
    assert!(got.iter().all(|&b| b == 7));
}

fn backpressure_copy<D: Dispatcher + 'static>() {
    backpressure::<D>(Relay::Copy)
}
fn backpressure_splice<D: Dispatcher + 'static>() {
    backpressure::<D>(Relay::Splice)
}
fn many_copy<D: Dispatcher + 'static>() {
    many_clients::<D>(Relay::Copy)
}
fn many_splice<D: Dispatcher + 'static>() {
    many_clients::<D>(Relay::Splice)
}
fn half_close_copy<D: Dispatcher + 'static>() {
    half_close::<D>(Relay::Copy)
}
fn half_close_splice<D: Dispatcher + 'static>() {
    half_close::<D>(Relay::Splice)
}
fn refused_copy<D: Dispatcher + 'static>() {
    upstream_refused::<D>(Relay::Copy)
}
fn refused_splice<D: Dispatcher + 'static>() {
    upstream_refused::<D>(Relay::Splice)
}

for_each_dispatcher!(
    many_copy,
    many_splice,
    half_close_copy,
    half_close_splice,
    refused_copy,
    refused_splice,
    backpressure_copy,
    backpressure_splice,
);

#[test]
fn parses_the_command_line() {
    let args = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    let (config, dispatcher) =
        example::parse_args(&args("127.0.0.1:1 127.0.0.1:2 --splice --dispatcher poll")).unwrap();
    assert_eq!(config.relay, Relay::Splice);
    assert_eq!((config.listen.port(), config.upstream.port()), (1, 2));
    assert_eq!(dispatcher, "poll");
    assert!(example::parse_args(&args("127.0.0.1:1")).is_err());
    assert!(example::parse_args(&args("127.0.0.1:1 nonsense")).is_err());
    assert!(example::parse_args(&args("127.0.0.1:1 127.0.0.1:2 --bogus")).is_err());
}
