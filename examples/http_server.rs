//! A small HTTP/1.1 server on muxloop.
//!
//! ```text
//! cargo run --release --example http_server -- [ADDR | --unix PATH] [--threads N] [--processes N] [--dispatcher NAME] [--reuse-port] [--trigger auto|level|edge] [--root DIR]   # default 127.0.0.1:8080
//! curl -i http://127.0.0.1:8080/hello
//! curl -o copy http://127.0.0.1:8080/files/big.bin    # with --root DIR: DIR/big.bin, sent by sendfile(2)
//! curl --data-binary @Cargo.toml http://127.0.0.1:8080/echo
//! wrk -t2 -c100 -d10s http://127.0.0.1:8080/hello
//! cargo run --example http_server -- --unix /tmp/muxloop-http.sock &
//! curl --unix-socket /tmp/muxloop-http.sock http://x/hello
//! ```
//! `--unix PATH` listens on a Unix domain socket instead of ADDR (`@name`:
//! a Linux abstract name; the socket file is removed on exit).
//! `--processes N` (N > 1) binds once and forks N workers sharing the
//! listener ([`muxloop::process`]); SIGTERM or Ctrl-C to the master stops
//! them all gracefully.
//!
//! `/` is a small HTML page, `/hello` is `hello, world` (text/plain, for load
//! tests), `/echo` returns the request body, `/files/PATH` is the file PATH
//! below `--root DIR` (GET and HEAD; only with `--root`), anything else is 404.

#[path = "common/launch.rs"]
mod launch;

use std::error::Error;
use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use muxloop::http::{FileService, HttpServer, Request, Response};
use muxloop::net::listener::DEFAULT_BACKLOG;
use muxloop::{AnyDispatcher, EventLoop, Listener, Trigger};

const INDEX: &str = "<!DOCTYPE html>\n<html><head><title>muxloop</title></head>\
<body><h1>muxloop</h1><p>An HTTP/1.1 server on a pluggable select/poll/epoll reactor.</p>\
<p>Try <a href=\"/hello\">/hello</a> or POST to /echo.</p></body></html>\n";

/// How long open connections get to finish once asked to stop.
const GRACE: Duration = Duration::from_secs(5);

/// A small HTTP/1.1 server: `/`, `/hello`, `/echo`, else 404.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on: HOST:PORT, :PORT or PORT
    #[arg(value_name = "ADDR", default_value = "127.0.0.1:8080", value_parser = parse_addr)]
    addr: SocketAddr,
    /// Listen on this Unix domain socket instead (`@name`: an abstract name)
    #[arg(long, value_name = "PATH", conflicts_with_all = ["addr", "reuse_port"])]
    unix: Option<String>,
    /// Sub-loop threads (0: everything on one loop)
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
    /// Worker processes sharing the listener (0 or 1: serve in this process)
    #[arg(long, value_name = "N", default_value_t = 0)]
    processes: usize,
    /// The I/O multiplexer
    #[arg(long, value_name = "NAME", default_value = muxloop::default_dispatcher_name(),
          value_parser = clap::builder::PossibleValuesParser::new(AnyDispatcher::names()), ignore_case = true)]
    dispatcher: String,
    /// Set SO_REUSEPORT, so several servers can share the port
    #[arg(long)]
    reuse_port: bool,
    /// Connections edge- or level-triggered: auto (edge on epoll and uring), level, edge
    #[arg(long, value_name = "MODE", default_value = "auto")]
    trigger: Trigger,
    /// Serve the files below DIR at /files/ (with sendfile(2))
    #[arg(long, value_name = "DIR")]
    root: Option<std::path::PathBuf>,
}

/// `HOST:PORT`, `:PORT` or `PORT` (host 127.0.0.1).
fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.strip_prefix(':').unwrap_or(s).parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let mut addrs = s.to_socket_addrs().map_err(|e| format!("expected HOST:PORT, :PORT or PORT ({e})"))?;
    addrs.next().ok_or_else(|| format!("{s} resolves to no address"))
}

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

/// Serves `listener` until `wait` returns, then stops gracefully: run as is,
/// or by each `--processes` worker.
fn serve(
    cli: &Cli,
    listener: Listener,
    files: Option<FileService>,
    wait: impl FnOnce(&mut EventLoop<AnyDispatcher>) -> io::Result<()>,
) -> io::Result<()> {
    let mut ev = EventLoop::<AnyDispatcher>::with_backend(&cli.dispatcher)?;
    let app =
        move |req: &Request<'_>| files.as_ref().and_then(|f| f.respond(req)).unwrap_or_else(|| route(req));
    let server = HttpServer::builder(listener.local_addr().clone(), app)
        .listener(listener)
        .threads(cli.threads)
        .reuse_port(cli.reuse_port)
        .trigger(cli.trigger)
        .start(&mut ev)?;
    wait(&mut ev)?;
    let summary = server.stop(&mut ev, GRACE)?;
    println!("stopped: {summary}");
    Ok(())
}

fn run(cli: Cli) -> Result<(), Box<dyn Error>> {
    // Checked once, before any fork; the loop is dropped at once.
    let dispatcher = EventLoop::<AnyDispatcher>::with_backend(&cli.dispatcher)?.dispatcher_name().to_owned();
    let files = cli.root.as_ref().map(|root| FileService::new("/files/", root)).transpose()?;
    // One line: tests read the first line of stdout for the address.
    let serving = files
        .as_ref()
        .map_or(String::new(), |f| format!(", serving {} at {}", f.root().display(), f.prefix()));
    let listener = match &cli.unix {
        Some(path) => Listener::bind_unix(path, DEFAULT_BACKLOG)?,
        None => Listener::bind_tcp(&[cli.addr], cli.reuse_port, DEFAULT_BACKLOG)?,
    };
    println!("listening on {} (dispatcher: {dispatcher}){serving}", listener.local_addr());
    std::io::stdout().flush()?;
    launch::serve_until_stopped(listener, cli.processes, 2 * GRACE, |listener, wait| {
        serve(&cli, listener, files.clone(), wait)
    })?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
