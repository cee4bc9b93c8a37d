//! An HTTP server on its own loop thread, for the HTTP suites.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use muxloop::http::{HttpConfig, HttpServer, Request, Response};
use muxloop::{Dispatcher, EventLoop, LoopHandle};

use super::IO_TIMEOUT;

/// A running server; dropping it stops it gracefully and joins its thread.
pub struct TestHttpServer<D: Dispatcher + 'static> {
    pub addr: SocketAddr,
    main_loop: LoopHandle<D>,
    thread: Option<JoinHandle<()>>,
}

/// Starts `route` on 127.0.0.1 (an ephemeral port) with `threads` sub-loops.
pub fn spawn_http_server<D, F>(route: F, config: HttpConfig, threads: usize) -> TestHttpServer<D>
where
    D: Dispatcher + 'static,
    F: Fn(&Request<'_>) -> Response + Send + Sync + 'static,
{
    let (tx, rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        let mut ev = EventLoop::<D>::new().unwrap();
        let server = HttpServer::<D>::builder("127.0.0.1:0", route)
            .config(config)
            .threads(threads)
            .start(&mut ev)
            .unwrap();
        tx.send((server.local_addr().as_inet().unwrap(), ev.handle())).unwrap();
        ev.run().unwrap();
        server.stop(&mut ev, Duration::from_secs(1)).unwrap();
    });
    let (addr, main_loop) = rx.recv_timeout(IO_TIMEOUT).unwrap();
    TestHttpServer { addr, main_loop, thread: Some(thread) }
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

/// Reads one response (status line, headers, and the Content-Length body
/// unless `head_only`); `None` at EOF or on a malformed reply.
pub fn read_reply(reader: &mut BufReader<TcpStream>, head_only: bool) -> Option<Reply> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let status = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':')?;
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let mut reply = Reply { status, headers, body: Vec::new() };
    if !head_only {
        reply.body = vec![0; reply.length()];
        reader.read_exact(&mut reply.body).ok()?;
    }
    Some(reply)
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
