//! Rung 10 — HTTP on the multi-reactor.
//!
//! **Teaches.** A protocol on top of the byte stream: HTTP/1.1 requests are
//! framed by CRLF lines and `Content-Length`, parsed from the connection's
//! input buffer (whatever a read brought: half a request or three),
//! answered in order (pipelining), and the connection is kept alive or
//! closed as the request says. Bad input gets a 400 and a close, oversized
//! headers a 431: the peer cannot make the server hold unbounded memory.
//!
//! **Run.** `cargo run --release --example ladder_10_http -- [ADDR] [--threads N]`
//! (default `127.0.0.1:9200`, 2 sub-reactors).
//!
//! **Try.** `curl -i http://127.0.0.1:9200/hello`; two requests in one
//! packet: `printf 'GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n' | nc 127.0.0.1 9200`.
//!
//! **Watch** (`RUST_LOG=debug`): each connection's life; `trace` adds every
//! dispatch and send.

mod common;

use muxloop::EventLoop;
use muxloop::http::{HttpServer, Request, Response};

const USAGE: &str = "ladder_10_http [ADDR] [--threads N]   (default 127.0.0.1:9200, N = 2)
An HTTP/1.1 server: GET /hello answers `hello, world`.";

fn main() {
    common::main(10, USAGE, &["--threads="], run);
}

fn route(req: &Request<'_>) -> Response {
    match req.path() {
        "/hello" => Response::text(200, "hello, world\n"),
        path => Response::text(404, format!("no such page: {path}\n")),
    }
}

fn run(args: common::Args) -> common::Result {
    let threads: usize = args.value("--threads", 2)?;
    let mut ev: EventLoop = EventLoop::new()?;
    let server = HttpServer::builder(args.addr, route).threads(threads).start(&mut ev)?;
    common::announce(server.local_addr(), &format!("HTTP, {} sub-reactors", threads));
    ev.run()?;
    Ok(())
}
