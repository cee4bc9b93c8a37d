//! A small HTTP/1.1 server on muxloop.
//!
//! ```text
//! cargo run --release --example http_server -- [ADDR] [--threads N] [--dispatcher NAME] [--reuse-port]   # default 127.0.0.1:8080
//! curl -i http://127.0.0.1:8080/hello
//! curl --data-binary @Cargo.toml http://127.0.0.1:8080/echo
//! wrk -t2 -c100 -d10s http://127.0.0.1:8080/hello
//! ```
//! `/` is a small HTML page, `/hello` is `hello, world` (text/plain, for load
//! tests), `/echo` returns the request body, anything else is 404.

mod common;

use common::{Args, Result};
use muxloop::Dispatcher;
use muxloop::EventLoop;
use muxloop::http::{HttpServer, Request, Response};

const INDEX: &str = "<!DOCTYPE html>\n<html><head><title>muxloop</title></head>\
<body><h1>muxloop</h1><p>An HTTP/1.1 server on a pluggable select/poll/epoll reactor.</p>\
<p>Try <a href=\"/hello\">/hello</a> or POST to /echo.</p></body></html>\n";

fn route(req: &Request<'_>) -> Response {
    match req.path() {
        "/" => Response::html(200, INDEX),
        "/hello" => Response::text(200, "hello, world"),
        "/echo" => Response::new(200)
            .header(
                "Content-Type",
                req.header("content-type").unwrap_or("application/octet-stream").to_owned(),
            )
            .body(req.body()),
        _ => Response::text(404, format!("no such page: {}\n", req.path())),
    }
}

fn run<D: Dispatcher + 'static>(args: Args) -> Result {
    let mut ev = EventLoop::<D>::new()?;
    let server = HttpServer::<D>::builder(args.addr, route)
        .threads(args.threads)
        .reuse_port(args.reuse_port)
        .start(&mut ev)?;
    common::serve(&mut ev, server.local_addr())
}

example_main!(8080, run);
