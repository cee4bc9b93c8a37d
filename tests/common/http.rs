//! An HTTP server on its own loop thread, for the HTTP suites.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use muxloop::http::{HttpConfig, HttpServer, HttpServerBuilder, Request, Response};
use muxloop::net::StopSummary;
use muxloop::{Dispatcher, EventLoop, LoopHandle};

use super::IO_TIMEOUT;

/// A running server; dropping it stops it gracefully and joins its thread.
pub struct TestHttpServer<D: Dispatcher + 'static> {
    pub addr: SocketAddr,
    pub main_loop: LoopHandle<D>,
    thread: Option<JoinHandle<()>>,
    stopped: mpsc::Receiver<StopSummary>,
}

/// Starts `route` on 127.0.0.1 (an ephemeral port) with `threads` sub-loops.
pub fn spawn_http_server<D, F>(route: F, config: HttpConfig, threads: usize) -> TestHttpServer<D>
where
    D: Dispatcher + 'static,
    F: Fn(&Request<'_>) -> Response + Send + Sync + 'static,
{
    spawn_built(Duration::from_secs(1), move || {
        HttpServer::<D>::builder("127.0.0.1:0", route).config(config).threads(threads)
    })
}

/// Starts the server `build` configures (it binds 127.0.0.1:0 or gives a
/// listener) on its own loop thread; its graceful stop waits up to `grace`.
pub fn spawn_built<D, B>(grace: Duration, build: B) -> TestHttpServer<D>
where
    D: Dispatcher + 'static,
    B: FnOnce() -> HttpServerBuilder<D> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let (stop_tx, stopped) = mpsc::channel();
    let thread = thread::spawn(move || {
        let mut ev = EventLoop::<D>::new().unwrap();
        let server = build().start(&mut ev).unwrap();
        tx.send((server.local_addr().as_inet().unwrap(), ev.handle())).unwrap();
        ev.run().unwrap();
        let _ = stop_tx.send(server.stop(&mut ev, grace).unwrap());
    });
    let (addr, main_loop) = rx.recv_timeout(IO_TIMEOUT).unwrap();
    TestHttpServer { addr, main_loop, thread: Some(thread), stopped }
}

impl<D: Dispatcher + 'static> TestHttpServer<D> {
    /// Asks the server to stop (its loop quits, then a graceful stop runs)
    /// and returns what the stop did, once it is done.
    pub fn stop(mut self) -> StopSummary {
        self.main_loop.quit();
        let summary = self.stopped.recv_timeout(Duration::from_secs(30)).expect("the stop finishes");
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        summary
    }
}

impl<D: Dispatcher + 'static> Drop for TestHttpServer<D> {
    fn drop(&mut self) {
        self.main_loop.quit();
        if let Some(thread) = self.thread.take()
            && !thread::panicking()
        {
            thread.join().unwrap();
        }
    }
}

/// A parsed response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The trailer fields of a chunked body (empty otherwise).
    pub trailers: Vec<(String, String)>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn closes(&self) -> bool {
        self.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
    pub fn length(&self) -> usize {
        self.header("content-length").expect("Content-Length is always set").parse().unwrap()
    }
}

/// Reads one response: status line, headers, then the body framed as
/// RFC 9112 §6.3 says: none after a HEAD request (`head_only`) or for a
/// 1xx, 204 or 304; `Transfer-Encoding: chunked` is decoded (trailers go to
/// [`Reply::trailers`]); else `Content-Length` bytes; else everything up to
/// EOF (close-delimited). `None` at EOF or on a malformed reply.
pub fn read_reply<R: BufRead>(reader: &mut R, head_only: bool) -> Option<Reply> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let status = line.split_whitespace().nth(1)?.parse().ok()?;
    let headers = read_fields(reader)?;
    let mut reply = Reply { status, headers, body: Vec::new(), trailers: Vec::new() };
    let bodiless = head_only || (100..200).contains(&status) || status == 204 || status == 304;
    if bodiless {
        return Some(reply);
    }
    if let Some(codings) = reply.header("transfer-encoding") {
        let last = codings.rsplit(',').next().unwrap_or("").trim();
        if last.eq_ignore_ascii_case("chunked") {
            reply.trailers = read_chunked(reader, &mut reply.body)?;
        } else {
            reader.read_to_end(&mut reply.body).ok()?; // not chunked last: close-delimited
        }
    } else if reply.header("content-length").is_some() {
        reply.body = vec![0; reply.length()];
        reader.read_exact(&mut reply.body).ok()?;
    } else {
        reader.read_to_end(&mut reply.body).ok()?;
    }
    Some(reply)
}

/// Field lines up to the blank line (or EOF) that ends them (a header
/// section or a trailer section); `None` on a line without a colon.
fn read_fields<R: BufRead>(reader: &mut R) -> Option<Vec<(String, String)>> {
    let mut fields = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            return Some(fields);
        }
        let (name, value) = trimmed.split_once(':')?;
        fields.push((name.to_owned(), value.trim().to_owned()));
    }
}

/// Decodes a chunked body into `body` (strictly: hex sizes, CRLF line
/// ends, CRLF after each chunk's data) and returns its trailer fields.
fn read_chunked<R: BufRead>(reader: &mut R, body: &mut Vec<u8>) -> Option<Vec<(String, String)>> {
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let size_line = line.strip_suffix("\r\n")?;
        let digits = size_line.split(';').next().unwrap_or("");
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let size = usize::from_str_radix(digits, 16).ok()?;
        if size == 0 {
            return read_trailers(reader);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).ok()?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).ok()?;
        if &crlf != b"\r\n" {
            return None;
        }
    }
}

/// The trailer section after the last chunk, up to its blank line; every
/// line must end with CRLF and hold a colon.
fn read_trailers<R: BufRead>(reader: &mut R) -> Option<Vec<(String, String)>> {
    let mut trailers = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let field = line.strip_suffix("\r\n")?;
        if field.is_empty() {
            return Some(trailers);
        }
        let (name, value) = field.split_once(':')?;
        trailers.push((name.to_owned(), value.trim().to_owned()));
    }
}

/// What the server sent on one connection ([`exchange_raw`]).
#[derive(Debug)]
pub struct Wire {
    /// Every byte received, as sent.
    pub bytes: Vec<u8>,
    /// Whether the server closed the connection (EOF or reset) in time.
    pub closed: bool,
}

/// Sends `request` (raw bytes, in one write) on a fresh connection and
/// collects everything the server sends until it closes the connection or
/// `timeout` passes. A write the server refuses (it answered and closed
/// first) is not an error: what it sent is still collected.
pub fn exchange_raw(addr: SocketAddr, request: &[u8], timeout: Duration) -> Wire {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let _ = stream.write_all(request);
    let deadline = Instant::now() + timeout;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Wire { bytes, closed: false };
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => return Wire { bytes, closed: true },
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => {
                return Wire { bytes, closed: true };
            }
            Err(e) => panic!("reading the raw exchange: {e}"),
        }
    }
}

/// A keep-alive client with a 10 s read timeout.
pub struct Client {
    pub writer: TcpStream,
    pub reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let writer = super::connect(addr);
        writer.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client { reader: BufReader::new(writer.try_clone().unwrap()), writer }
    }
    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }
    /// The next response, body included.
    pub fn reply(&mut self) -> Reply {
        read_reply(&mut self.reader, false).expect("a response")
    }
    /// The next response's head (after a HEAD request).
    pub fn reply_head(&mut self) -> Reply {
        read_reply(&mut self.reader, true).expect("a response head")
    }
    pub fn get(&mut self, path: &str) -> Reply {
        self.send(&get(path));
        self.reply()
    }
    /// True if the server closed the connection (EOF, or reset after it).
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.reader.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() == ErrorKind::ConnectionReset,
        }
    }
}

/// A minimal HTTP/1.1 GET.
pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}
