//! File bodies sent by `sendfile(2)`, once per dispatcher: the connection's
//! output queue keeps bytes and file regions in order and bounds them; the
//! HTTP `FileService` serves large files byte-exact, answers HEAD, refuses
//! traversal (`..`, `%2e%2e`, symlinks out of the root, NUL), keeps
//! pipelining in order after a file, and closes (never hangs) on a file that
//! shrinks; a client leaving mid-file leaves no file open. It answers like a
//! static file server (RFC 9110 §8.8, §13, §14): validators on every answer,
//! 304 for a current copy, 412 for a failed precondition, 206 for one range,
//! 416 for a range past the end, the whole file for what it ignores.
#![cfg(feature = "http")]

use crate::common;

use std::fs;
use std::io::{BufRead, ErrorKind, Read, Write};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime};

use common::http::{Client, Reply, TestHttpServer, get, read_reply, spawn_http_server};
use common::{IO_TIMEOUT, Rng, fnv1a, wait_until};
use muxloop::http::response::http_date;
use muxloop::http::{FileService, HttpConfig, Request, Response};
use muxloop::net::MAX_QUEUED_FILES;
use muxloop::{Buffer, Connection, Dispatcher, EventLoop, Handler};

/// A fresh directory tree for one test:
/// `root/{small.txt, page.html, hundred.bin, empty.txt, big.bin?, sub/, inlink -> small.txt,
/// outlink -> ../outside/secret.txt, fifo}` and `outside/secret.txt`. Removed on drop.
/// `hundred.bin` holds [`hundred`] and was last modified at [`hundred_mtime`].
struct Tree {
    base: PathBuf,
}

impl Tree {
    fn new(test: &str, big: usize) -> Tree {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::temp_dir().join(format!(
            "muxloop-files-{}-{test}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let root = base.join("root");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::create_dir_all(base.join("outside")).unwrap();
        fs::write(base.join("outside/secret.txt"), "secret\n").unwrap();
        fs::write(root.join("small.txt"), "small file\n").unwrap();
        fs::write(root.join("page.html"), "<p>hi</p>\n").unwrap();
        fs::write(root.join("sub/inner.txt"), "inner\n").unwrap();
        fs::write(root.join("hundred.bin"), hundred()).unwrap();
        fs::File::options()
            .write(true)
            .open(root.join("hundred.bin"))
            .unwrap()
            .set_modified(hundred_mtime())
            .unwrap();
        fs::write(root.join("empty.txt"), "").unwrap();
        std::os::unix::fs::symlink("small.txt", root.join("inlink")).unwrap();
        std::os::unix::fs::symlink("../outside/secret.txt", root.join("outlink")).unwrap();
        // A FIFO: opening it without O_NONBLOCK would wait for a writer.
        let made = std::process::Command::new("mkfifo").arg(root.join("fifo")).status().unwrap();
        assert!(made.success(), "mkfifo");
        if big > 0 {
            fs::write(root.join("big.bin"), Rng::new(big as u64).bytes(big)).unwrap();
        }
        Tree { base }
    }

    fn root(&self) -> PathBuf {
        self.base.join("root")
    }

    fn big(&self) -> Vec<u8> {
        fs::read(self.root().join("big.bin")).unwrap()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// An HTTP server with `/files/` mounted on `root` and `/hello`.
fn serve_files<D: Dispatcher + 'static>(root: &Path) -> TestHttpServer<D> {
    serve_files_with(root, HttpConfig::default())
}

fn serve_files_with<D: Dispatcher + 'static>(root: &Path, config: HttpConfig) -> TestHttpServer<D> {
    let files = FileService::new("/files/", root).unwrap();
    let app = move |req: &Request<'_>| {
        files.respond(req).unwrap_or_else(|| match req.path() {
            "/hello" => Response::text(200, "hello, world"),
            p => Response::text(404, format!("no such page: {p}\n")),
        })
    };
    spawn_http_server(app, config, 0)
}

/// Whether this process has an fd open on `path` (read from /proc/self/fd).
fn has_open(path: &Path) -> bool {
    let path = path.canonicalize().unwrap();
    fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| fs::read_link(entry.ok()?.path()).ok())
        .any(|target| target == path)
}

fn large_file_byte_exact<D: Dispatcher + 'static>() {
    let tree = Tree::new("large", 16 * 1024 * 1024 + 12_345);
    let server = serve_files::<D>(&tree.root());
    let mut client = Client::connect(server.addr);
    let reply = client.get("/files/big.bin");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/octet-stream"));
    let expected = tree.big();
    assert_eq!(reply.body.len(), expected.len());
    assert!(fnv1a(&reply.body) == fnv1a(&expected) && reply.body == expected, "{}: bytes differ", D::NAME);
    // Keep-alive after the file.
    assert_eq!(client.get("/hello").body, b"hello, world");
}

fn head_gives_length_and_no_body<D: Dispatcher + 'static>() {
    let tree = Tree::new("head", 3 * 1024 * 1024);
    let server = serve_files::<D>(&tree.root());
    let mut client = Client::connect(server.addr);
    client.send(b"HEAD /files/big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = client.reply_head();
    assert_eq!((head.status, head.length()), (200, 3 * 1024 * 1024));
    client.send(b"HEAD /files/page.html HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = client.reply_head();
    assert_eq!((head.status, head.length()), (200, 10));
    assert_eq!(head.header("content-type"), Some("text/html; charset=utf-8"));
    // No body bytes came: the next thing on the wire is the next response.
    let hello = client.get("/hello");
    assert_eq!((hello.status, hello.body.as_slice()), (200, b"hello, world".as_slice()));
}

fn missing_and_traversal_refused<D: Dispatcher + 'static>() {
    let tree = Tree::new("traversal", 0);
    let server = serve_files::<D>(&tree.root());
    let mut client = Client::connect(server.addr);
    let cases: &[(&str, u16)] = &[
        ("/files/small.txt", 200),
        ("/files/sub/inner.txt", 200),
        ("/files/sub/../small.txt", 404),
        ("/files/./sub//inner.txt", 200),
        ("/files/inlink", 200),
        ("/files/nope.txt", 404),
        ("/files/../outside/secret.txt", 404),
        ("/files/%2e%2e/outside/secret.txt", 404),
        ("/files/%2E%2E%2foutside%2Fsecret.txt", 404),
        ("/files/sub/%2e%2e/%2e%2e/outside/secret.txt", 404),
        ("/files/../../../../etc/passwd", 404),
        ("/files/outlink", 404),
        ("/files/small.txt%00.html", 400),
        ("/files/%00", 400),
        ("/files/%zz", 400),
        ("/files/%2", 400),
        ("/files/sub", 404),
        ("/files/fifo", 404),
        ("/files/sub/", 404),
        ("/files/", 404),
    ];
    for &(path, status) in cases {
        // A bad escape or an encoded NUL may be refused by the request
        // parser already, with 400 and a close: ask those on a connection of their own.
        let reply = if status == 400 { Client::connect(server.addr).get(path) } else { client.get(path) };
        assert_eq!(
            reply.status,
            status,
            "{}: GET {path}: {:?}",
            D::NAME,
            String::from_utf8_lossy(&reply.body)
        );
        if status == 200 {
            assert!(!String::from_utf8_lossy(&reply.body).contains("secret"));
        }
    }
    assert_eq!(client.get("/files/small.txt").body, b"small file\n");
    assert_eq!(client.get("/files/inlink").body, b"small file\n");
    client.send(b"DELETE /files/small.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    let reply = client.reply();
    assert_eq!((reply.status, reply.header("allow")), (405, Some("GET, HEAD")));
}

fn pipelined_file_then_hello_in_order<D: Dispatcher + 'static>() {
    let tree = Tree::new("pipeline", 4 * 1024 * 1024 + 7);
    let server = serve_files::<D>(&tree.root());
    let mut client = Client::connect(server.addr);
    // Larger than the 1 MiB output limit: parsing pauses while the file drains.
    let mut batch = get("/files/big.bin");
    batch.extend(get("/hello"));
    batch.extend(get("/files/small.txt"));
    batch.extend(get("/files/big.bin"));
    batch.extend(get("/files/nope"));
    batch.extend(get("/hello"));
    client.send(&batch);
    let big = tree.big();
    assert!(client.reply().body == big, "{}: first file", D::NAME);
    assert_eq!(client.reply().body, b"hello, world");
    assert_eq!(client.reply().body, b"small file\n");
    assert!(client.reply().body == big, "{}: second file", D::NAME);
    assert_eq!(client.reply().status, 404);
    assert_eq!(client.reply().body, b"hello, world");
}

fn close_after_file_delivers_it_whole<D: Dispatcher + 'static>() {
    // HTTP/1.0 and `Connection: close`: the FIN waits for the whole file.
    let tree = Tree::new("close", 5 * 1024 * 1024 + 3);
    let server = serve_files::<D>(&tree.root());
    for request in [
        "GET /files/big.bin HTTP/1.0\r\n\r\n",
        "GET /files/big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ] {
        let mut stream = common::connect(server.addr);
        stream.write_all(request.as_bytes()).unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).unwrap();
        let start = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(got[start..] == tree.big(), "{}: {request:?}: {} body bytes", D::NAME, got.len() - start);
    }
}

fn small_replies_after_a_file_are_not_held<D: Dispatcher + 'static>() {
    // A file streams out corked (full segments only); the cork must come off
    // when it is done, or every small reply after it waits 200 ms.
    let tree = Tree::new("cork", 0);
    let server = serve_files::<D>(&tree.root());
    let mut client = Client::connect(server.addr);
    let started = std::time::Instant::now();
    for _ in 0..10 {
        assert_eq!(client.get("/files/small.txt").body, b"small file\n");
        assert_eq!(client.get("/hello").body, b"hello, world");
    }
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "{}: 20 small round trips took {took:?}", D::NAME);
}

fn many_small_files_pipelined<D: Dispatcher + 'static>() {
    // More file responses in one read than a connection may queue files:
    // the server must pause at the bound and carry on, in order.
    let tree = Tree::new("many", 0);
    let server = serve_files::<D>(&tree.root());
    let mut client = Client::connect(server.addr);
    let count = MAX_QUEUED_FILES * 4;
    let batch: Vec<u8> = (0..count)
        .flat_map(|i| get(if i % 2 == 0 { "/files/small.txt" } else { "/files/page.html" }))
        .collect();
    client.send(&batch);
    for i in 0..count {
        let body = client.reply().body;
        let want: &[u8] = if i % 2 == 0 { b"small file\n" } else { b"<p>hi</p>\n" };
        assert_eq!(body, want, "{}: response {i}", D::NAME);
    }
}

fn disconnect_mid_file_leaks_no_fd<D: Dispatcher + 'static>() {
    let tree = Tree::new("disconnect", 8 * 1024 * 1024);
    let server = serve_files::<D>(&tree.root());
    let file = tree.root().join("big.bin");
    let mut stream = common::connect(server.addr);
    stream.write_all(&get("/files/big.bin")).unwrap();
    let mut first = vec![0; 64 * 1024];
    stream.read_exact(&mut first).unwrap();
    // The file is still being sent (the client does not read): it is open.
    assert!(has_open(&file), "{}: the file should be open while it is sent", D::NAME);
    drop(stream);
    assert!(
        wait_until(Duration::from_secs(10), || !has_open(&file)),
        "{}: the file stays open after the client left",
        D::NAME
    );
    // The server is fine.
    assert_eq!(Client::connect(server.addr).get("/hello").body, b"hello, world");
}

fn file_that_shrinks_closes_the_connection<D: Dispatcher + 'static>() {
    let tree = Tree::new("shrink", 8 * 1024 * 1024);
    let server = serve_files::<D>(&tree.root());
    let mut client = Client::connect(server.addr);
    client.send(&get("/files/big.bin"));
    let mut line = String::new();
    client.reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    // The head promised 8 MiB; cut the file to 1 MiB while it is in flight.
    fs::OpenOptions::new()
        .write(true)
        .open(tree.root().join("big.bin"))
        .unwrap()
        .set_len(1024 * 1024)
        .unwrap();
    let mut rest = Vec::new();
    match client.reader.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("{}: no EOF after the file shrank (hang?): {e}", D::NAME),
    }
    assert!(rest.len() < 8 * 1024 * 1024, "{}: more bytes than the file has", D::NAME);
}

fn slow_reader_gets_the_whole_file_stalled_one_is_cut<D: Dispatcher + 'static>() {
    // The idle timer runs out several times while the file goes out; a
    // reader that keeps taking bytes keeps the connection (progress is seen
    // once the kernel's socket buffers, a few MiB, let more of the file in),
    // one that stops does not.
    const SIZE: usize = 16 * 1024 * 1024;
    let tree = Tree::new("slow", SIZE);
    let idle = Duration::from_millis(300);
    let config = HttpConfig { idle_timeout: idle, ..HttpConfig::default() };
    let server = serve_files_with::<D>(&tree.root(), config);
    let mut slow = common::connect(server.addr);
    slow.write_all(&get("/files/big.bin")).unwrap();
    let mut stalled = common::connect(server.addr);
    stalled.write_all(&get("/files/big.bin")).unwrap();
    // At most ~12 MiB/s: the file takes over 1.2 s, several idle periods.
    let started = std::time::Instant::now();
    let mut got = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    let body_start = |got: &[u8]| got.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    while body_start(&got).is_none_or(|start| got.len() < start + SIZE) {
        let n = slow.read(&mut chunk).unwrap();
        assert!(n > 0, "{}: the slow reader was cut off after {} bytes", D::NAME, got.len());
        got.extend_from_slice(&chunk[..n]);
        thread::sleep(Duration::from_millis(5));
    }
    assert!(started.elapsed() > idle * 2, "{}: read too fast to test", D::NAME);
    let start = body_start(&got).unwrap();
    assert!(got[start..] == tree.big(), "{}: slow reader got {} body bytes", D::NAME, got.len() - start);
    // The stalled one (never read) was closed: reading its buffered bytes ends.
    stalled.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut sink = Vec::new();
    match stalled.read_to_end(&mut sink) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("{}: the stalled reader was never cut off: {e}", D::NAME),
    }
    assert!(sink.len() < SIZE, "{}", D::NAME);
}

/// On "go": 4 MiB of `x` (so what follows is queued, not written at once),
/// `head`, 1000 bytes of the file from offset 10, `mid`, 5 bytes from
/// 0, `tail`; on "quota": 8 MiB of bytes, then files until refused.
struct Sender {
    file: PathBuf,
    refused_at: Arc<Mutex<Option<(usize, ErrorKind)>>>,
}

impl<D: Dispatcher + 'static> Handler<D> for Sender {
    fn on_message(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>, input: &mut Buffer) {
        let open = || fs::File::open(&self.file).unwrap();
        if input.peek().starts_with(b"go") {
            conn.send_owned(ev, vec![b'x'; 4 * 1024 * 1024]).unwrap();
            conn.send(ev, b"head|").unwrap();
            conn.send_file(ev, open(), 10, 1000).unwrap();
            conn.send(ev, b"|mid|").unwrap();
            conn.send_file(ev, open(), 0, 5).unwrap();
            conn.send_owned(ev, b"|tail".to_vec()).unwrap();
        } else if input.peek().starts_with(b"quota") {
            conn.send_owned(ev, vec![b'x'; 8 * 1024 * 1024]).unwrap();
            for i in 0.. {
                if let Err(e) = conn.send_file(ev, open(), 0, 100) {
                    *self.refused_at.lock().unwrap() = Some((i, e.kind()));
                    break;
                }
                assert!(conn.queued_files() == i + 1);
            }
            assert!(conn.is_output_full());
        }
        input.consume_all();
    }
}

fn connection_keeps_bytes_and_files_in_order<D: Dispatcher + 'static>() {
    let tree = Tree::new("order", 4096);
    let file = tree.root().join("big.bin");
    let refused_at = Arc::new(Mutex::new(None));
    let (file2, refused2) = (file.clone(), Arc::clone(&refused_at));
    let server = common::spawn_server::<D, _>(
        move |_: &Connection<D>| Sender { file: file2.clone(), refused_at: Arc::clone(&refused2) },
        0,
    );
    let content = tree.big();
    let mut want = vec![b'x'; 4 * 1024 * 1024];
    want.extend_from_slice(b"head|");
    want.extend_from_slice(&content[10..1010]);
    want.extend_from_slice(b"|mid|");
    want.extend_from_slice(&content[..5]);
    want.extend_from_slice(b"|tail");
    let mut stream = common::connect(server.addr);
    stream.write_all(b"go").unwrap();
    assert!(common::read_up_to(&mut stream, want.len()) == want, "{}: out of order", D::NAME);

    // The bound on queued files, and everything queued still arrives in order.
    let mut stream = common::connect(server.addr);
    stream.write_all(b"quota").unwrap();
    assert!(wait_until(IO_TIMEOUT, || refused_at.lock().unwrap().is_some()));
    let (at, kind) = refused_at.lock().unwrap().unwrap();
    assert_eq!((at, kind), (MAX_QUEUED_FILES, ErrorKind::QuotaExceeded));
    let total = 8 * 1024 * 1024 + MAX_QUEUED_FILES * 100;
    let got = common::read_up_to(&mut stream, total);
    assert_eq!(got.len(), total);
    assert!(got[..8 * 1024 * 1024].iter().all(|&b| b == b'x'));
    assert!(got[8 * 1024 * 1024..].chunks(100).all(|c| c == &content[..100]));
}

/// What the receiving end of a Unix pair saw: the bytes, and for each
/// `on_fds` the bytes delivered before it.
#[derive(Default)]
struct Received {
    bytes: Vec<u8>,
    fds_at: Vec<usize>,
}

struct Receiver(std::rc::Rc<std::cell::RefCell<Received>>);

impl<D: Dispatcher + 'static> Handler<D> for Receiver {
    fn on_message(&mut self, _: &mut EventLoop<D>, _: &Connection<D>, input: &mut Buffer) {
        self.0.borrow_mut().bytes.extend_from_slice(input.peek());
        input.consume_all();
    }
    fn on_fds(&mut self, _: &mut EventLoop<D>, _: &Connection<D>, fds: Vec<std::os::fd::OwnedFd>) {
        let mut seen = self.0.borrow_mut();
        let at = seen.bytes.len();
        seen.fds_at.push(at);
        drop(fds);
    }
}

fn fds_passed_after_a_file_keep_their_place<D: Dispatcher + 'static>() {
    // Over a Unix socket: 1 MiB of bytes, a file region, bytes carrying fds,
    // more bytes. The fds arrive with their own byte, after the whole file.
    use muxloop::{Callbacks, ConnectionOptions};
    use std::os::fd::AsFd;
    const AHEAD: usize = 1024 * 1024;
    let tree = Tree::new("fds", 300 * 1024);
    let content = tree.big();
    let mut ev = EventLoop::<D>::new().unwrap();
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let sender =
        Connection::from_std(&mut ev, a, Callbacks::<D>::new(), ConnectionOptions::default()).unwrap();
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Received::default()));
    let for_receiver = std::rc::Rc::clone(&seen);
    let options = ConnectionOptions { output_limit: None, ..ConnectionOptions::default() };
    let _receiver = Connection::from_std(
        &mut ev,
        b,
        move |_: &Connection<D>| Receiver(std::rc::Rc::clone(&for_receiver)),
        options,
    )
    .unwrap();
    sender.send_owned(&mut ev, vec![b'a'; AHEAD]).unwrap();
    sender
        .send_file(&mut ev, fs::File::open(tree.root().join("big.bin")).unwrap(), 0, content.len() as u64)
        .unwrap();
    assert_eq!(sender.queued_files(), 1, "the file waits behind the bytes");
    let passed = fs::File::open(tree.root().join("small.txt")).unwrap();
    sender.send_fds(&mut ev, b"F", &[passed.as_fd()]).unwrap();
    sender.send(&mut ev, b"tail").unwrap();
    let total = AHEAD + content.len() + 1 + 4;
    assert!(common::run_until(&mut ev, || seen.borrow().bytes.len() == total), "{}", D::NAME);
    let seen = seen.borrow();
    // `on_fds` runs before the `on_message` of the read that carries the fds'
    // byte (the read may start earlier in the stream).
    assert_eq!(seen.fds_at.len(), 1, "{}", D::NAME);
    assert!(seen.fds_at[0] <= AHEAD + content.len(), "{}: fds at {:?}", D::NAME, seen.fds_at);
    assert!(seen.bytes[..AHEAD].iter().all(|&b| b == b'a'));
    assert!(seen.bytes[AHEAD..AHEAD + content.len()] == content[..], "{}: file bytes", D::NAME);
    assert_eq!(&seen.bytes[AHEAD + content.len()..], b"Ftail");
}

// ---- Validators, conditional requests and ranges (RFC 9110 §8.8, §13, §14) ----

/// The mtime of `hundred.bin`: whole seconds (for Last-Modified) plus nanoseconds.
fn hundred_mtime() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::new(1_600_000_000, 123_456_789)
}
/// `hundred.bin`'s Last-Modified, one second before and one after.
const HUNDRED_DATE: &str = "Sun, 13 Sep 2020 12:26:40 GMT";
const BEFORE_DATE: &str = "Sun, 13 Sep 2020 12:26:39 GMT";
const AFTER_DATE: &str = "Sun, 13 Sep 2020 12:26:41 GMT";

/// The 100 bytes of `hundred.bin`: no two neighbours alike, so an
/// off-by-one shows.
fn hundred() -> Vec<u8> {
    (0..100u32).map(|i| (i * 7 + 3) as u8).collect()
}

/// `request` (a method, a path and extra header lines) followed in the same
/// write by `GET /hello`; returns the first reply (a head only for HEAD) and
/// checks that the second is hello's: the first answer's framing held, no
/// body byte too many or too few.
fn ask(client: &mut Client, method: &str, path: &str, fields: &[(&str, &str)]) -> Reply {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: t\r\n");
    for (name, value) in fields {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut batch = request.into_bytes();
    batch.extend(get("/hello"));
    client.send(&batch);
    let reply = read_reply(&mut client.reader, method == "HEAD").expect("a response");
    let hello = client.reply();
    assert_eq!(
        (hello.status, hello.body.as_slice()),
        (200, b"hello, world".as_slice()),
        "{method} {path} {fields:?}: the next response is out of step (got {reply:?})"
    );
    reply
}

/// `ask` for GET.
fn ask_get(client: &mut Client, path: &str, fields: &[(&str, &str)]) -> Reply {
    ask(client, "GET", path, fields)
}

/// A 200 with the whole of `hundred.bin` and no `Content-Range`.
fn assert_whole(reply: &Reply, context: &str) {
    assert_eq!(reply.status, 200, "{context}: {reply:?}");
    assert_eq!(reply.body, hundred(), "{context}");
    assert_eq!((reply.length(), reply.header("content-range")), (100, None), "{context}");
}

/// A 206 with bytes `first..=last` of `hundred.bin`.
fn assert_part(reply: &Reply, first: usize, last: usize, context: &str) {
    assert_eq!(reply.status, 206, "{context}: {reply:?}");
    let range = format!("bytes {first}-{last}/100");
    assert_eq!(reply.header("content-range"), Some(range.as_str()), "{context}");
    assert_eq!(reply.length(), last - first + 1, "{context}");
    assert_eq!(reply.body, hundred()[first..=last], "{context}");
}

/// A 304: no body and no Content-Length (§15.4.5), the validators a 200 would carry.
fn assert_not_modified(reply: &Reply, etag: &str, context: &str) {
    assert_eq!(reply.status, 304, "{context}: {reply:?}");
    assert_eq!(reply.header("content-length"), None, "{context}");
    assert_eq!(reply.header("etag"), Some(etag), "{context}");
    assert_eq!(reply.header("last-modified"), Some(HUNDRED_DATE), "{context}");
}

/// RFC 9110 §8.8.2, §8.8.3, §14.3: a 200 carries `Last-Modified` (the
/// file's mtime), a strong `ETag` that stays put while the file does and
/// moves when it changes (even to the same size within the same second),
/// and `Accept-Ranges: bytes`.
fn validators_on_every_answer<D: Dispatcher + 'static>() {
    let tree = Tree::new("validators", 0);
    let server = serve_files::<D>(&tree.root());
    let mut client = Client::connect(server.addr);
    let reply = ask_get(&mut client, "/files/hundred.bin", &[]);
    assert_whole(&reply, D::NAME);
    let etag = reply.header("etag").expect("an ETag").to_owned();
    assert!(etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'), "{}: strong: {etag}", D::NAME);
    assert_eq!(etag[1..etag.len() - 1].find('"'), None, "{etag}");
    assert_eq!(reply.header("last-modified"), Some(HUNDRED_DATE), "{}", D::NAME);
    assert_eq!(reply.header("accept-ranges"), Some("bytes"), "{}", D::NAME);
    assert_eq!(reply.header("content-type"), Some("application/octet-stream"));
    // The same on HEAD, on a 206, and again later.
    let head = ask(&mut client, "HEAD", "/files/hundred.bin", &[]);
    assert_eq!((head.status, head.length(), head.header("etag")), (200, 100, Some(etag.as_str())));
    assert_eq!(head.header("last-modified"), Some(HUNDRED_DATE));
    assert_eq!(head.header("accept-ranges"), Some("bytes"));
    let part = ask_get(&mut client, "/files/hundred.bin", &[("Range", "bytes=0-0")]);
    assert_eq!((part.status, part.header("etag")), (206, Some(etag.as_str())));
    assert_eq!(
        (part.header("last-modified"), part.header("accept-ranges")),
        (Some(HUNDRED_DATE), Some("bytes"))
    );
    // Last-Modified is the real mtime of another file too.
    let small = ask_get(&mut client, "/files/small.txt", &[]);
    let mtime = fs::metadata(tree.root().join("small.txt")).unwrap().modified().unwrap();
    let secs = mtime.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(small.header("last-modified"), Some(http_date(secs).as_str()), "{}", D::NAME);
    assert_ne!(small.header("etag"), Some(etag.as_str()));
    // Same bytes, same size, same second (the mtime is set back to it): only
    // the nanoseconds differ, and the tag moves.
    let file = tree.root().join("hundred.bin");
    fs::write(&file, hundred()).unwrap();
    let open = || fs::File::options().write(true).open(&file).unwrap();
    open().set_modified(hundred_mtime() + Duration::from_nanos(1)).unwrap();
    let touched = ask_get(&mut client, "/files/hundred.bin", &[]);
    assert_eq!(touched.header("last-modified"), Some(HUNDRED_DATE));
    assert_ne!(touched.header("etag"), Some(etag.as_str()), "{}: the tag must see nanoseconds", D::NAME);
    // Another size in the same nanosecond: the tag moves too.
    let mut longer = hundred();
    longer.push(0);
    fs::write(&file, &longer).unwrap();
    open().set_modified(hundred_mtime()).unwrap();
    let grown = ask_get(&mut client, "/files/hundred.bin", &[("If-None-Match", &etag)]);
    assert_eq!((grown.status, &grown.body), (200, &longer), "{}: a stale tag is not current", D::NAME);
    assert_ne!(grown.header("etag"), Some(etag.as_str()));
    // Back as it was: the old tag again (it is made of size and mtime only).
    fs::write(&file, hundred()).unwrap();
    open().set_modified(hundred_mtime()).unwrap();
    assert_eq!(ask_get(&mut client, "/files/hundred.bin", &[]).header("etag"), Some(etag.as_str()));
}

/// The current ETag of `hundred.bin`.
fn etag_of(client: &mut Client) -> String {
    ask(client, "HEAD", "/files/hundred.bin", &[]).header("etag").expect("an ETag").to_owned()
}

/// RFC 9110 §13.1.2, §15.4.5: an `If-None-Match` that matches (the tag,
/// the tag in a list, `*`, the weak form of the tag: weak comparison) is a
/// 304 with the validators and no body, for GET and HEAD; the request
/// pipelined behind it is answered next (no body byte leaked). One that
/// does not match is a 200.
fn if_none_match_304<D: Dispatcher + 'static>() {
    let tree = Tree::new("inm", 0);
    let server = serve_files::<D>(&tree.root());
    let mut client = Client::connect(server.addr);
    let etag = etag_of(&mut client);
    let list = format!(r#""nope", "x,y" , {etag}"#);
    let weak = format!("W/{etag}");
    let weak_list = format!(r#"W/"other", {weak}"#);
    for value in [etag.as_str(), &list, "*", &weak, &weak_list] {
        for method in ["GET", "HEAD"] {
            let reply = ask(&mut client, method, "/files/hundred.bin", &[("If-None-Match", value)]);
            assert_not_modified(&reply, &etag, &format!("{}: {method} If-None-Match: {value}", D::NAME));
        }
    }
    // Several lines make one list.
    let reply =
        ask_get(&mut client, "/files/hundred.bin", &[("If-None-Match", r#""a""#), ("If-None-Match", &etag)]);
    assert_not_modified(&reply, &etag, D::NAME);
    // No match: the file.
    let unquoted = etag.trim_matches('"').to_owned();
    let prefix = format!("{}\"", &etag[..etag.len() - 2]);
    for value in [r#""nope""#, r#"W/"nope", "x""#, &unquoted, &prefix, "junk"] {
        let reply = ask_get(&mut client, "/files/hundred.bin", &[("If-None-Match", value)]);
        assert_whole(&reply, &format!("{}: If-None-Match: {value}", D::NAME));
        assert_eq!(reply.header("etag"), Some(etag.as_str()));
    }
    // A missing file is 404 whatever the condition.
    assert_eq!(ask_get(&mut client, "/files/nope", &[("If-None-Match", "*")]).status, 404);
}

/// RFC 9110 §13.1.3, §5.6.7: `If-Modified-Since` equal to or later than
/// `Last-Modified` is a 304, in any of the three date forms; earlier is a
/// 200; a date that does not parse is ignored (200, not an error).
fn if_modified_since_304<D: Dispatcher + 'static>() {
    let tree = Tree::new("ims", 0);
    let server = serve_files::<D>(&tree.root());
    let mut client = Client::connect(server.addr);
    let etag = etag_of(&mut client);
    let same = [HUNDRED_DATE, "Sunday, 13-Sep-20 12:26:40 GMT", "Sun Sep 13 12:26:40 2020", AFTER_DATE];
    for date in same {
        for method in ["GET", "HEAD"] {
            let reply = ask(&mut client, method, "/files/hundred.bin", &[("If-Modified-Since", date)]);
            assert_not_modified(&reply, &etag, &format!("{}: {method} If-Modified-Since: {date}", D::NAME));
        }
    }
    for date in
        [BEFORE_DATE, "Thu, 01 Jan 1970 00:00:00 GMT", "garbage", "", "1600000000", "Sun, 13 Sep 2020"]
    {
        assert_whole(
            &ask_get(&mut client, "/files/hundred.bin", &[("If-Modified-Since", date)]),
            &format!("{}: If-Modified-Since: {date:?}", D::NAME),
        );
    }
    // Sent twice: not one valid date, ignored.
    let twice = [("If-Modified-Since", HUNDRED_DATE), ("If-Modified-Since", HUNDRED_DATE)];
    assert_whole(&ask_get(&mut client, "/files/hundred.bin", &twice), D::NAME);
}

/// RFC 9110 §13.1.3, §13.2.2: when `If-None-Match` is present,
/// `If-Modified-Since` is not evaluated: a non-matching tag with a current
/// date is a 200, a matching tag with an old date is a 304.
fn if_none_match_takes_precedence<D: Dispatcher + 'static>() {
    let tree = Tree::new("precedence", 0);
    let server = serve_files::<D>(&tree.root());
    let mut client = Client::connect(server.addr);
    let etag = etag_of(&mut client);
    let stale = [("If-None-Match", r#""stale""#), ("If-Modified-Since", AFTER_DATE)];
    assert_whole(&ask_get(&mut client, "/files/hundred.bin", &stale), D::NAME);
    let current = [("If-Modified-Since", BEFORE_DATE), ("If-None-Match", etag.as_str())];
    assert_not_modified(&ask_get(&mut client, "/files/hundred.bin", &current), &etag, D::NAME);
}

/// RFC 9110 §13.1.1, §13.1.4, §13.2.2: `If-Match` with the current tag (or
/// `*`) lets the request through; with another tag, or the weak form of
/// ours (strong comparison), it is 412, before `If-None-Match` is looked
/// at. `If-Unmodified-Since` earlier than Last-Modified is 412, unless
/// `If-Match` is there.
fn if_match_and_if_unmodified_since_412<D: Dispatcher + 'static>() {
    let tree = Tree::new("if-match", 0);
    let server = serve_files::<D>(&tree.root());
    let mut client = Client::connect(server.addr);
    let etag = etag_of(&mut client);
    let weak = format!("W/{etag}");
    let path = "/files/hundred.bin";
    assert_whole(&ask_get(&mut client, path, &[("If-Match", &etag)]), D::NAME);
    assert_whole(&ask_get(&mut client, path, &[("If-Match", "*")]), D::NAME);
    for fields in [
        &[("If-Match", r#""stale""#)][..],
        &[("If-Match", weak.as_str())],
        &[("If-Match", r#""stale""#), ("If-None-Match", etag.as_str())],
        &[("If-Unmodified-Since", BEFORE_DATE)],
        &[("If-Unmodified-Since", BEFORE_DATE), ("Range", "bytes=0-9")],
    ] {
        let reply = ask_get(&mut client, path, fields);
        assert_eq!(reply.status, 412, "{}: {fields:?}", D::NAME);
        assert_ne!(reply.body, hundred());
    }
    assert_whole(&ask_get(&mut client, path, &[("If-Unmodified-Since", HUNDRED_DATE)]), D::NAME);
    assert_whole(&ask_get(&mut client, path, &[("If-Unmodified-Since", "junk")]), D::NAME);
    let both = [("If-Match", etag.as_str()), ("If-Unmodified-Since", BEFORE_DATE)];
    assert_whole(&ask_get(&mut client, path, &both), D::NAME);
    let not_modified = [("If-Match", etag.as_str()), ("If-None-Match", etag.as_str())];
    assert_not_modified(&ask_get(&mut client, path, &not_modified), &etag, D::NAME);
}

/// RFC 9110 §14.1.2, §14.4, §15.3.7: one range, `a-b`, `a-` or the suffix
/// `-n`, is a 206 with exactly those bytes, `Content-Range: bytes
/// a-b/size` and the part's `Content-Length`; an end past the end of the
/// file is clipped to the last byte, a suffix longer than the file is all of it.
fn single_ranges_206<D: Dispatcher + 'static>() {
    let tree = Tree::new("ranges", 0);
    let server = serve_files::<D>(&tree.root());
    let mut client = Client::connect(server.addr);
    let cases = [
        ("bytes=0-9", 0, 9),
        ("bytes=10-", 10, 99),
        ("bytes=-5", 95, 99),
        ("bytes=90-1000", 90, 99),
        ("bytes=42-42", 42, 42),
        ("bytes=99-", 99, 99),
        ("bytes=0-99", 0, 99),
        ("bytes=-1000", 0, 99),
        ("bytes=0-99999999999999999999999999", 0, 99),
        ("BYTES=3-4", 3, 4),
        ("bytes=7-8,", 7, 8),
    ];
    for (range, first, last) in cases {
        let reply = ask_get(&mut client, "/files/hundred.bin", &[("Range", range)]);
        assert_part(&reply, first, last, &format!("{}: Range: {range}", D::NAME));
    }
    // Several in one write, in order.
    let mut batch = Vec::new();
    for range in ["bytes=1-2", "bytes=-3", "bytes=50-"] {
        batch.extend(format!("GET /files/hundred.bin HTTP/1.1\r\nHost: t\r\nRange: {range}\r\n\r\n").bytes());
    }
    client.send(&batch);
    assert_part(&client.reply(), 1, 2, D::NAME);
    assert_part(&client.reply(), 97, 99, D::NAME);
    assert_part(&client.reply(), 50, 99, D::NAME);
}

/// RFC 9110 §14.1.1, §15.5.17: a range no byte of the file is in (a first
/// byte at or past the end, or the empty suffix `-0`) is 416 with
/// `Content-Range: bytes */size` and no file body. A zero-length file: any
/// `a-` range is 416 `bytes */0`; without Range it is a 200 with an empty
/// body, and so with a suffix range (satisfiable, §14.1.1, but no 206 can
/// describe zero bytes).
fn unsatisfiable_range_416<D: Dispatcher + 'static>() {
    let tree = Tree::new("416", 0);
    let server = serve_files::<D>(&tree.root());
    let mut client = Client::connect(server.addr);
    for range in ["bytes=1000-", "bytes=100-", "bytes=100-200", "bytes=-0", "bytes=99999999999999999999999-"]
    {
        let reply = ask_get(&mut client, "/files/hundred.bin", &[("Range", range)]);
        assert_eq!(reply.status, 416, "{}: Range: {range}: {reply:?}", D::NAME);
        assert_eq!(reply.header("content-range"), Some("bytes */100"), "{}: Range: {range}", D::NAME);
        assert_eq!((reply.length(), reply.body.len()), (0, 0), "{}: Range: {range}", D::NAME);
    }
    for range in ["bytes=0-", "bytes=0-0", "bytes=-0"] {
        let reply = ask_get(&mut client, "/files/empty.txt", &[("Range", range)]);
        assert_eq!(
            (reply.status, reply.header("content-range")),
            (416, Some("bytes */0")),
            "{}: {range}",
            D::NAME
        );
    }
    for fields in [&[][..], &[("Range", "bytes=-5")]] {
        let reply = ask_get(&mut client, "/files/empty.txt", fields);
        assert_eq!(
            (reply.status, reply.length(), reply.header("content-range")),
            (200, 0, None),
            "{fields:?}"
        );
        assert!(reply.header("etag").is_some());
    }
}

/// RFC 9110 §14.2: a server MAY ignore Range, and MUST ignore an unknown
/// unit: several ranges (no multipart/byteranges here) and invalid
/// specifiers (junk, `a > b`, no `bytes=`, Range sent twice) get the whole
/// file with 200 and no Content-Range.
fn ignored_ranges_are_200<D: Dispatcher + 'static>() {
    let tree = Tree::new("ignored", 0);
    let server = serve_files::<D>(&tree.root());
    let mut client = Client::connect(server.addr);
    let ignored = [
        "bytes=0-1,5-6",
        "bytes=0-1, -1",
        "bytes=500-600,700-",
        "bytes=9-5",
        "bytes=a-b",
        "bytes=-",
        "bytes=",
        "bytes=5",
        "bytes=1-2-3",
        "bytes 0-9",
        "items=0-9",
        "0-9",
        "junk",
    ];
    for range in ignored {
        let reply = ask_get(&mut client, "/files/hundred.bin", &[("Range", range)]);
        assert_whole(&reply, &format!("{}: Range: {range}", D::NAME));
    }
    let twice = [("Range", "bytes=0-9"), ("Range", "bytes=0-9")];
    assert_whole(&ask_get(&mut client, "/files/hundred.bin", &twice), D::NAME);
}

/// RFC 9110 §13.1.5, §13.2.2: `If-Range` with the current ETag (or the
/// exact Last-Modified of a file older than a second) applies the Range:
/// 206; with a stale tag, a weak tag, another date or junk, the Range is
/// ignored: the whole file with 200. Without Range, If-Range is ignored.
fn if_range_206_or_200<D: Dispatcher + 'static>() {
    let tree = Tree::new("if-range", 0);
    let server = serve_files::<D>(&tree.root());
    let mut client = Client::connect(server.addr);
    let etag = etag_of(&mut client);
    let path = "/files/hundred.bin";
    for validator in [etag.as_str(), HUNDRED_DATE] {
        let reply = ask_get(&mut client, path, &[("Range", "bytes=10-19"), ("If-Range", validator)]);
        assert_part(&reply, 10, 19, &format!("{}: If-Range: {validator}", D::NAME));
    }
    let weak = format!("W/{etag}");
    for validator in [r#""stale""#, &weak, BEFORE_DATE, AFTER_DATE, "junk"] {
        let reply = ask_get(&mut client, path, &[("Range", "bytes=10-19"), ("If-Range", validator)]);
        assert_whole(&reply, &format!("{}: If-Range: {validator}", D::NAME));
    }
    assert_whole(&ask_get(&mut client, path, &[("If-Range", r#""stale""#)]), D::NAME);
    // A stale If-Range with a range past the end: the whole file, not 416.
    assert_whole(
        &ask_get(&mut client, path, &[("Range", "bytes=500-"), ("If-Range", r#""stale""#)]),
        D::NAME,
    );
    // A file written just now: its date cannot be strong, the tag still is.
    let small = ask_get(&mut client, "/files/small.txt", &[]);
    let (small_tag, small_date) = (small.header("etag").unwrap(), small.header("last-modified").unwrap());
    let by_tag = ask_get(&mut client, "/files/small.txt", &[("Range", "bytes=0-4"), ("If-Range", small_tag)]);
    assert_eq!((by_tag.status, by_tag.body.as_slice()), (206, b"small".as_slice()), "{}", D::NAME);
    let modified = fs::metadata(tree.root().join("small.txt")).unwrap().modified().unwrap();
    if modified.elapsed().unwrap_or_default() < Duration::from_millis(900) {
        let by_date =
            ask_get(&mut client, "/files/small.txt", &[("Range", "bytes=0-4"), ("If-Range", small_date)]);
        assert_eq!(
            (by_date.status, by_date.body.as_slice()),
            (200, b"small file\n".as_slice()),
            "{}",
            D::NAME
        );
    }
}

/// RFC 9110 §14.2, §9.3.2: GET is the only method range handling is
/// defined for, so a HEAD with a Range gets the 200's head (whole length,
/// no Content-Range) and no body; conditions still apply to HEAD.
fn head_ignores_range<D: Dispatcher + 'static>() {
    let tree = Tree::new("head-range", 0);
    let server = serve_files::<D>(&tree.root());
    let mut client = Client::connect(server.addr);
    for range in ["bytes=0-9", "bytes=1000-"] {
        let reply = ask(&mut client, "HEAD", "/files/hundred.bin", &[("Range", range)]);
        assert_eq!(
            (reply.status, reply.length(), reply.header("content-range")),
            (200, 100, None),
            "{range}"
        );
        assert_eq!(reply.header("accept-ranges"), Some("bytes"));
    }
    let etag = etag_of(&mut client);
    let reply =
        ask(&mut client, "HEAD", "/files/hundred.bin", &[("Range", "bytes=0-9"), ("If-None-Match", &etag)]);
    assert_not_modified(&reply, &etag, D::NAME);
}

/// RFC 9110 §14.1.2: ranges of a large file, from odd offsets in the
/// middle and at the end, come byte-exact: `sendfile` really starts at
/// the offset.
fn large_file_ranges_from_the_middle<D: Dispatcher + 'static>() {
    const SIZE: usize = 8 * 1024 * 1024;
    let tree = Tree::new("big-range", SIZE);
    let server = serve_files::<D>(&tree.root());
    let mut client = Client::connect(server.addr);
    let big = tree.big();
    for (range, first, last) in [
        ("bytes=3000001-7654320".to_owned(), 3_000_001, 7_654_320),
        ("bytes=4194303-".to_owned(), 4_194_303, SIZE - 1),
        ("bytes=-1000003".to_owned(), SIZE - 1_000_003, SIZE - 1),
        (format!("bytes={}-{}", SIZE - 1, SIZE + 5), SIZE - 1, SIZE - 1),
    ] {
        let reply = ask_get(&mut client, "/files/big.bin", &[("Range", &range)]);
        assert_eq!(reply.status, 206, "{}: {range}", D::NAME);
        let content_range = format!("bytes {first}-{last}/{SIZE}");
        assert_eq!(reply.header("content-range"), Some(content_range.as_str()));
        assert_eq!(reply.body.len(), last - first + 1, "{}: {range}", D::NAME);
        assert!(reply.body == big[first..=last], "{}: {range}: bytes differ", D::NAME);
    }
}

/// RFC 9110 §14 and §13.1.3 with a real client: `curl -r 10-19` gets a 206
/// with those bytes, `curl -C -` resumes a partial download, `curl -z FILE`
/// sends the file's mtime as If-Modified-Since and gets a 304 when it is
/// not older than the served file, the file when it is.
fn curl_ranges_and_conditions<D: Dispatcher + 'static>() {
    if std::process::Command::new("curl").arg("--version").output().is_err() {
        println!("skipped: curl is not installed");
        return;
    }
    let tree = Tree::new("curl", 0);
    let server = serve_files::<D>(&tree.root());
    let url = format!("http://{}/files/hundred.bin", server.addr);
    let out = tree.base.join("out.bin");
    let curl = |args: &[&str]| -> String {
        let _ = fs::remove_file(&out);
        let run = std::process::Command::new("curl")
            .args(["-s", "-S", "--max-time", "10", "-o", out.to_str().unwrap(), "-w", "%{http_code}"])
            .args(args)
            .arg(&url)
            .output()
            .unwrap();
        assert!(run.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&run.stderr));
        String::from_utf8(run.stdout).unwrap()
    };
    let read_out = || fs::read(&out).unwrap_or_default();
    assert_eq!(curl(&["-r", "10-19"]), "206", "{}", D::NAME);
    assert_eq!(read_out(), hundred()[10..20], "{}", D::NAME);
    // -z with the served file itself: same mtime, not modified.
    let served = tree.root().join("hundred.bin");
    assert_eq!(curl(&["-z", served.to_str().unwrap()]), "304", "{}", D::NAME);
    assert_eq!(read_out(), b"", "{}", D::NAME);
    // -z with an older file: modified since, the whole file.
    let older = tree.base.join("older");
    fs::write(&older, "").unwrap();
    fs::File::options()
        .write(true)
        .open(&older)
        .unwrap()
        .set_modified(hundred_mtime() - Duration::from_secs(60))
        .unwrap();
    assert_eq!(curl(&["-z", older.to_str().unwrap()]), "200", "{}", D::NAME);
    assert_eq!(read_out(), hundred(), "{}", D::NAME);
    // -C -: resume after the 40 bytes already there.
    let resumed = tree.base.join("resumed.bin");
    fs::write(&resumed, &hundred()[..40]).unwrap();
    let run = std::process::Command::new("curl")
        .args([
            "-s",
            "-S",
            "--max-time",
            "10",
            "-C",
            "-",
            "-o",
            resumed.to_str().unwrap(),
            "-w",
            "%{http_code}",
        ])
        .arg(&url)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "206", "{}", D::NAME);
    assert_eq!(fs::read(&resumed).unwrap(), hundred(), "{}: resumed download", D::NAME);
}

for_each_dispatcher!(
    validators_on_every_answer,
    if_none_match_304,
    if_modified_since_304,
    if_none_match_takes_precedence,
    if_match_and_if_unmodified_since_412,
    single_ranges_206,
    unsatisfiable_range_416,
    ignored_ranges_are_200,
    if_range_206_or_200,
    head_ignores_range,
    large_file_ranges_from_the_middle,
    curl_ranges_and_conditions,
    fds_passed_after_a_file_keep_their_place,
    large_file_byte_exact,
    head_gives_length_and_no_body,
    missing_and_traversal_refused,
    pipelined_file_then_hello_in_order,
    many_small_files_pipelined,
    small_replies_after_a_file_are_not_held,
    close_after_file_delivers_it_whole,
    disconnect_mid_file_leaks_no_fd,
    file_that_shrinks_closes_the_connection,
    slow_reader_gets_the_whole_file_stalled_one_is_cut,
    connection_keeps_bytes_and_files_in_order,
);

/// The example serves `--root` at `/files/` next to its own routes; a
/// missing root is a clear error. (`cargo test --test http` does not
/// rebuild the example: run `cargo build --examples` first.)
#[test]
fn http_server_example_serves_root() {
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/http_server.rs");
    let modified = |p: &Path| fs::metadata(p).unwrap().modified().unwrap();
    let binary = common::example_binary("http_server");
    assert!(modified(&binary) >= modified(Path::new(source)), "stale example: run `cargo build --examples`");
    let missing = std::process::Command::new(&binary)
        .args(["127.0.0.1:0", "--root", "/nonexistent/muxloop-root"])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.starts_with("error: file root /nonexistent/muxloop-root: "), "{stderr}");
    let tree = Tree::new("example", 2 * 1024 * 1024);
    let root = tree.root();
    let server =
        common::ExampleProcess::start("http_server", &["127.0.0.1:0", "--root", root.to_str().unwrap()]);
    let mut client = Client::connect(server.addr);
    assert!(client.get("/files/big.bin").body == tree.big());
    assert_eq!(client.get("/hello").body, b"hello, world");
    assert_eq!(client.get("/files/outlink").status, 404);
}
