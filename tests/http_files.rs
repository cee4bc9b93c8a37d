//! File bodies sent by `sendfile(2)`, once per dispatcher: the connection's
//! output queue keeps bytes and file regions in order and bounds them; the
//! HTTP `FileService` serves large files byte-exact, answers HEAD, refuses
//! traversal (`..`, `%2e%2e`, symlinks out of the root, NUL), keeps
//! pipelining in order after a file, and closes (never hangs) on a file that
//! shrinks; a client leaving mid-file leaves no file open.
#![cfg(feature = "http")]

mod common;

use std::fs;
use std::io::{BufRead, ErrorKind, Read, Write};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::http::{Client, TestHttpServer, get, spawn_http_server};
use common::{IO_TIMEOUT, Rng, fnv1a, wait_until};
use muxloop::http::{FileService, HttpConfig, Request, Response};
use muxloop::net::MAX_QUEUED_FILES;
use muxloop::{Buffer, Connection, Dispatcher, EventLoop, Handler};

/// A fresh directory tree for one test:
/// `root/{small.txt, page.html, big.bin?, sub/, inlink -> small.txt, outlink -> ../outside/secret.txt, fifo}`
/// and `outside/secret.txt`. Removed on drop.
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
        let reply = client.get(path);
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

for_each_dispatcher!(
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
/// missing root is a clear error. (`cargo test --test http_files` does not
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
