//! Unix domain stream sockets through the same server, connection and
//! client as TCP, on every dispatcher: echo integrity, stale and live socket
//! files, abstract names, removal on stop, the connector, adopted sockets and
//! HTTP over a path.

use crate::common;

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as StdUnixAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use common::*;
#[cfg(feature = "http")]
use muxloop::http::{HttpServer, Response};
use muxloop::{
    Callbacks, Client, Connection, Dispatcher, EventLoop, HandlerFactory, LoopHandle, Server, ServerBuilder,
    StreamAddr, UnixAddr,
};

/// A fresh socket path in the temp dir (nothing there yet).
fn socket_path(tag: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("muxloop-{tag}-{}-{n}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// A server on its own loop thread, stopped gracefully on drop.
struct UnixTestServer<D: Dispatcher + 'static> {
    addr: StreamAddr,
    main_loop: LoopHandle<D>,
    thread: Option<thread::JoinHandle<()>>,
}

impl<D: Dispatcher + 'static> Drop for UnixTestServer<D> {
    fn drop(&mut self) {
        self.main_loop.quit();
        if let Some(thread) = self.thread.take() {
            thread.join().expect("server thread");
        }
    }
}

fn spawn_unix<D, F>(
    addr: UnixAddr,
    factory: F,
    configure: fn(ServerBuilder<D>) -> ServerBuilder<D>,
) -> UnixTestServer<D>
where
    D: Dispatcher + 'static,
    F: HandlerFactory<D> + Send + Sync,
{
    let (tx, rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        let mut ev = EventLoop::<D>::new().expect("event loop");
        let server = configure(Server::unix_builder(addr, factory)).start(&mut ev).expect("server starts");
        tx.send((server.local_addr(), ev.handle())).unwrap();
        ev.run().expect("main loop runs");
        server.stop(&mut ev, Duration::from_secs(2)).expect("graceful stop");
    });
    let (addr, main_loop) = rx.recv_timeout(IO_TIMEOUT).expect("server reports its address");
    UnixTestServer { addr, main_loop, thread: Some(thread) }
}

fn connect_path(path: &Path) -> UnixStream {
    let stream = UnixStream::connect(path).expect("connect to the unix server");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

fn round_trip(mut stream: UnixStream, payload: &[u8]) -> Vec<u8> {
    stream.write_all(payload).unwrap();
    let mut got = vec![0; payload.len()];
    stream.read_exact(&mut got).unwrap();
    got
}

/// 20 clients each send 1-2 MiB of random bytes in random-size writes over a
/// Unix path while reading slowly; every byte comes back in order.
fn unix_echo_integrity<D: Dispatcher + 'static>(threads: usize) {
    let path = socket_path("echo");
    let configure: fn(ServerBuilder<D>) -> ServerBuilder<D> = match threads {
        0 => |b| b.output_limit(Some(256 * 1024)),
        _ => |b| b.threads(2).output_limit(Some(256 * 1024)),
    };
    let server = spawn_unix::<D, _>(UnixAddr::from(path.as_path()), echo_callbacks(), configure);
    assert_eq!(server.addr, StreamAddr::Unix(UnixAddr::Path(path.clone())));
    let clients: Vec<_> = (0..20u64)
        .map(|i| {
            let path = path.clone();
            thread::spawn(move || {
                let mut rng = Rng::new(i + 1);
                let len = rng.range(1 << 20, 2 << 20);
                let data = rng.bytes(len);
                let stream = connect_path(&path);
                let mut writer = stream.try_clone().unwrap();
                let sent = data.clone();
                let writing = thread::spawn(move || {
                    let mut rng = Rng::new(i + 1000);
                    let mut off = 0;
                    while off < sent.len() {
                        let n = rng.range(1, 64 * 1024).min(sent.len() - off);
                        writer.write_all(&sent[off..off + n]).unwrap();
                        off += n;
                    }
                });
                let mut reader = stream;
                let mut got = Vec::with_capacity(data.len());
                let mut chunk = vec![0; 16 * 1024];
                while got.len() < data.len() {
                    let n = reader.read(&mut chunk).expect("echo read");
                    assert!(n > 0, "server closed early after {} of {} bytes", got.len(), data.len());
                    got.extend_from_slice(&chunk[..n]);
                    if rng.range(0, 7) == 0 {
                        thread::sleep(Duration::from_millis(1)); // a slow reader
                    }
                }
                writing.join().unwrap();
                assert_eq!(fnv1a(&got), fnv1a(&data), "client {i}: bytes differ");
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client thread");
    }
    drop(server);
    assert!(!path.exists(), "the socket file is removed when the server stops");
}

fn unix_echo_integrity_main_loop<D: Dispatcher + 'static>() {
    unix_echo_integrity::<D>(0);
}

fn unix_echo_integrity_two_threads<D: Dispatcher + 'static>() {
    unix_echo_integrity::<D>(2);
}

/// A socket file left by a listener that is gone is replaced.
fn stale_socket_file_is_replaced<D: Dispatcher + 'static>() {
    let path = socket_path("stale");
    drop(UnixListener::bind(&path).unwrap()); // std leaves the file behind
    assert!(path.exists());
    let server = spawn_unix::<D, _>(UnixAddr::from(path.as_path()), echo_callbacks(), |b| b);
    assert_eq!(round_trip(connect_path(&path), b"over a replaced file"), b"over a replaced file");
    drop(server);
    assert!(!path.exists());
}

/// A live listener's path is `AddrInUse` and stays its owner's; so is a
/// file that is not a socket.
fn live_socket_file_is_addr_in_use<D: Dispatcher + 'static>() {
    let path = socket_path("live");
    let owner = UnixListener::bind(&path).unwrap();
    let mut ev = EventLoop::<D>::new().unwrap();
    let err = Server::unix_builder(path.as_path(), echo_callbacks::<D>()).start(&mut ev).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    assert!(err.to_string().contains(path.to_str().unwrap()), "the error names the path: {err}");
    // The owner still serves on its file (our probe was accepted and closed).
    let client = thread::spawn({
        let path = path.clone();
        move || connect_path(&path).write_all(b"x").unwrap()
    });
    let (mut probe_or_client, _) = owner.accept().unwrap();
    let mut byte = [0u8; 1];
    if probe_or_client.read(&mut byte).unwrap() == 0 {
        (probe_or_client, _) = owner.accept().unwrap(); // the first was the probe
        probe_or_client.read_exact(&mut byte).unwrap();
    }
    assert_eq!(&byte, b"x");
    client.join().unwrap();
    drop(owner);
    std::fs::remove_file(&path).unwrap();

    std::fs::write(&path, b"not a socket").unwrap();
    let err = Server::unix_builder(path.as_path(), echo_callbacks::<D>()).start(&mut ev).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket", "a regular file is never removed");
    std::fs::remove_file(&path).unwrap();
}

/// The file is removed at stop only if it is still the one the server
/// bound: a successor's file is left alone.
fn successor_socket_file_is_kept<D: Dispatcher + 'static>() {
    let path = socket_path("successor");
    let server = spawn_unix::<D, _>(UnixAddr::from(path.as_path()), echo_callbacks(), |b| b);
    std::fs::remove_file(&path).unwrap();
    let successor = UnixListener::bind(&path).unwrap();
    drop(server);
    assert!(path.exists(), "the successor's socket file must survive our stop");
    drop(successor);
    std::fs::remove_file(&path).unwrap();
}

/// A Linux abstract name: no file, and it serves like a path.
fn abstract_name_serves<D: Dispatcher + 'static>() {
    let name = format!("muxloop-test-{}-{}", std::process::id(), D::NAME);
    let server = spawn_unix::<D, _>(UnixAddr::from(format!("@{name}").as_str()), echo_callbacks(), |b| b);
    assert_eq!(server.addr.to_string(), format!("unix:@{name}"));
    let addr = StdUnixAddr::from_abstract_name(name.as_bytes()).unwrap();
    let stream = UnixStream::connect_addr(&addr).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    assert_eq!(round_trip(stream, b"abstract"), b"abstract");
}

/// A connection's local and peer address, and what it received.
type Exchange = (StreamAddr, StreamAddr, Vec<u8>);

/// muxloop's own connector reaches a Unix server; both ends report their
/// addresses; a refused path is reported through `on_connect_error`.
fn client_connects_over_unix<D: Dispatcher + 'static>() {
    let path = socket_path("client");
    let server = spawn_unix::<D, _>(UnixAddr::from(path.as_path()), echo_callbacks(), |b| b);
    let mut ev = EventLoop::<D>::new().unwrap();
    let seen: Arc<Mutex<Vec<Exchange>>> = Arc::default();
    let record = Arc::clone(&seen);
    let callbacks = Callbacks::<D>::new()
        .on_connection(|ev, conn| {
            if conn.is_connected() {
                conn.send(ev, b"ping over unix").unwrap();
            }
        })
        .on_message(move |ev, conn, input| {
            if input.len() >= 14 {
                record.lock().unwrap().push((conn.local_addr(), conn.peer_addr(), input.peek().to_vec()));
                input.consume_all();
                conn.force_close(ev);
            }
        });
    Client::new(UnixAddr::from(path.as_path()), callbacks).connect(&mut ev);
    assert!(run_until(&mut ev, || !seen.lock().unwrap().is_empty()));
    let (local, peer, echoed) = seen.lock().unwrap()[0].clone();
    assert_eq!(echoed, b"ping over unix");
    assert_eq!(peer, StreamAddr::Unix(UnixAddr::Path(path.clone())));
    assert_eq!(local, StreamAddr::Unix(UnixAddr::Unnamed));
    assert!(local.as_inet().is_none() && local.port().is_none());

    let refused: Arc<Mutex<Option<std::io::ErrorKind>>> = Arc::default();
    let sink = Arc::clone(&refused);
    Client::new(UnixAddr::from(socket_path("nobody").as_path()), Callbacks::<D>::new())
        .on_connect_error(move |_, e| *sink.lock().unwrap() = Some(e.kind()))
        .connect(&mut ev);
    assert!(run_until(&mut ev, || refused.lock().unwrap().is_some()));
    assert_eq!(*refused.lock().unwrap(), Some(std::io::ErrorKind::NotFound));
    drop(server);
}

/// One end of a `socketpair` adopted with `Connection::from_std` echoes.
fn adopted_socketpair_echoes<D: Dispatcher + 'static>() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let mut ev = EventLoop::<D>::new().unwrap();
    let conn: Connection<D> =
        Connection::from_std(&mut ev, ours, echo_callbacks::<D>(), Default::default()).unwrap();
    assert_eq!(conn.peer_addr(), StreamAddr::Unix(UnixAddr::Unnamed));
    assert_eq!(conn.set_nodelay(true).unwrap_err().kind(), std::io::ErrorKind::Unsupported);
    theirs.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let peer = thread::spawn(move || round_trip(theirs, b"through a pair"));
    assert!(run_until(&mut ev, || peer.is_finished()));
    assert_eq!(peer.join().unwrap(), b"through a pair");
}

/// `SO_REUSEPORT` is TCP's: a Unix server with it and threads is refused,
/// and leaves no socket file behind.
fn reuse_port_on_unix_is_unsupported<D: Dispatcher + 'static>() {
    let path = socket_path("reuseport");
    let mut ev = EventLoop::<D>::new().unwrap();
    let err = Server::unix_builder(path.as_path(), echo_callbacks::<D>())
        .threads(2)
        .reuse_port(true)
        .start(&mut ev)
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported, "{err}");
    assert!(!path.exists());
}

/// HTTP over a Unix path, as `curl --unix-socket PATH http://x/hello` does.
#[cfg(feature = "http")]
fn http_over_unix<D: Dispatcher + 'static>() {
    let path = socket_path("http");
    let (tx, rx) = mpsc::channel();
    let server_path = path.clone();
    let thread = thread::spawn(move || {
        let mut ev = EventLoop::<D>::new().unwrap();
        let server =
            HttpServer::<D>::unix_builder(server_path.as_path(), |_req: &muxloop::http::Request<'_>| {
                Response::text(200, "hello, world\n")
            })
            .start(&mut ev)
            .unwrap();
        tx.send(ev.handle()).unwrap();
        ev.run().unwrap();
        server.stop(&mut ev, Duration::from_secs(1)).unwrap();
    });
    let main_loop = rx.recv_timeout(IO_TIMEOUT).unwrap();
    let mut stream = connect_path(&path);
    stream.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("hello, world\n"), "{answer}");
    main_loop.quit();
    thread.join().unwrap();
    assert!(!path.exists());
}

for_each_dispatcher!(
    unix_echo_integrity_main_loop,
    unix_echo_integrity_two_threads,
    stale_socket_file_is_replaced,
    live_socket_file_is_addr_in_use,
    successor_socket_file_is_kept,
    abstract_name_serves,
    client_connects_over_unix,
    adopted_socketpair_echoes,
    reuse_port_on_unix_is_unsupported,
    #[cfg(feature = "http")]
    http_over_unix,
);
