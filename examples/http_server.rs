//! A small HTTP/1.1 server on muxloop.
//!
//! ```text
//! cargo run --release --example http_server -- [ADDR | --unix PATH] [--threads N] [--processes N] [--dispatcher NAME] [--reuse-port] [--trigger auto|level|edge] [--root DIR]   # default 127.0.0.1:8080
//! curl -i http://127.0.0.1:8080/hello
//! curl -o copy http://127.0.0.1:8080/files/big.bin    # with --root DIR: DIR/big.bin, sent by sendfile(2)
//! curl --data-binary @Cargo.toml http://127.0.0.1:8080/echo
//! curl -H 'Transfer-Encoding: chunked' --data-binary @Cargo.toml http://127.0.0.1:8080/echo
//! curl -s http://127.0.0.1:8080/stream?bytes=100000000 | wc -c     # a body of unknown length, sent chunked
//! curl -i 'http://127.0.0.1:8080/later?ms=500'                     # answered by a worker thread
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
//! Routes ([`Router`]: other methods get 405 with `Allow`, HEAD works
//! wherever GET does):
//!
//! * `GET /`: a small HTML page; `GET /hello`: `hello, world` (text/plain,
//!   for load tests).
//! * `POST /echo` (or PUT): the request body back, `Content-Length` or
//!   chunked alike.
//! * `GET /stream?bytes=N`: N bytes (default 1 MiB, at most 16 GiB) of a
//!   repeating pattern, streamed: produced only as fast as the client reads,
//!   so any size costs the server about one output limit of memory.
//! * `GET /later?ms=N`: answered after N ms (at most 10 s) by one of four
//!   worker threads, not the loop ([`Response::later`]): meanwhile the loop
//!   serves everyone else, and pipelined requests keep their order. The
//!   workers' queue is bounded: past 1,024 waiting answers, 503.
//! * `GET /files/PATH`: the file PATH below `--root DIR` (with `--root`).

#[path = "common/cli.rs"]
mod cli;
#[path = "common/launch.rs"]
mod launch;

use std::error::Error;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use clap::Parser;
use cli::ServerArgs;
use muxloop::http::{BodyWriter, FileService, Fill, HttpServer, Request, Responder, Response, Router};
use muxloop::{EventLoop, Listener, Trigger};

const INDEX: &str = "<!DOCTYPE html>\n<html><head><title>muxloop</title></head>\
<body><h1>muxloop</h1><p>An HTTP/1.1 server on a pluggable select/poll/epoll reactor.</p>\
<p>Try <a href=\"/hello\">/hello</a> or POST to /echo.</p></body></html>\n";

/// How long open connections get to finish once asked to stop.
const GRACE: Duration = Duration::from_secs(5);

/// A small HTTP/1.1 server: `/`, `/hello`, `/echo`, `/stream`, `/later`, `/files/`, else 404.
#[derive(Parser)]
#[command(version, mut_arg("addr", |a| a.default_value("127.0.0.1:8080")))]
struct Cli {
    // [ADDR | --unix PATH] [--threads N] [--processes N] [--dispatcher NAME] [--reuse-port]
    #[command(flatten)]
    server: ServerArgs,
    /// Connections edge- or level-triggered: auto (edge on epoll and uring), level, edge
    #[arg(long, value_name = "MODE", default_value = "auto")]
    trigger: Trigger,
    /// Serve the files below DIR at /files/ (with sendfile(2))
    #[arg(long, value_name = "DIR")]
    root: Option<std::path::PathBuf>,
}

/// Largest `/stream` body (16 GiB) and `/later` delay (10 s).
const MAX_STREAM: u64 = 16 << 30;
const MAX_LATER_MS: u64 = 10_000;
/// Worker threads for `/later`, and how many answers may wait for them.
const WORKERS: usize = 4;
const WORK_QUEUE: usize = 1024;

/// The request body back, with its type.
fn echo(req: &Request<'_>) -> Response {
    let content_type = req.header("content-type").unwrap_or("application/octet-stream").to_owned();
    Response::new(200).header("Content-Type", content_type).body(req.body())
}

/// `bytes` of a repeating pattern, pulled piece by piece as the output drains.
fn stream(req: &Request<'_>) -> Response {
    let Some(total) = query_number(req, "bytes", 1 << 20, MAX_STREAM) else {
        return Response::text(400, format!("bytes must be a number up to {MAX_STREAM}\n"));
    };
    let pattern: Vec<u8> = (0..=255u8).cycle().take(64 * 1024).collect();
    let mut sent = 0u64;
    Response::stream(200, move |body: &mut BodyWriter<'_>| {
        let n = (body.room() as u64).min(total - sent).min(pattern.len() as u64) as usize;
        body.write(&pattern[..n]);
        sent += n as u64;
        if sent == total { Fill::End } else { Fill::More }
    })
    .header("Content-Type", "application/octet-stream")
}

/// A job for the `/later` workers: how long to work, and who to answer.
type Job = (Duration, Responder);

/// Four threads that answer `/later` requests (a blocking queue feeding a
/// pool: the loop hands work off and goes on serving).
fn start_workers() -> io::Result<SyncSender<Job>> {
    let (jobs, queue) = mpsc::sync_channel::<Job>(WORK_QUEUE);
    let queue = Arc::new(Mutex::new(queue));
    for i in 0..WORKERS {
        let queue = Arc::clone(&queue);
        thread::Builder::new().name(format!("worker-{i}")).spawn(move || {
            loop {
                // The lock is held only to take a job, not while working.
                let job = queue.lock().map_err(drop).and_then(|q| q.recv().map_err(drop));
                let Ok((delay, responder)) = job else { return }; // the server is gone
                thread::sleep(delay);
                let _ =
                    responder.send(Response::text(200, format!("answered after {} ms\n", delay.as_millis())));
            }
        })?;
    }
    Ok(jobs)
}

/// Answered later, by a worker; 503 if the workers' queue is full.
fn later(req: &Request<'_>, jobs: &SyncSender<Job>) -> Response {
    let Some(ms) = query_number(req, "ms", 100, MAX_LATER_MS) else {
        return Response::text(400, format!("ms must be a number up to {MAX_LATER_MS}\n"));
    };
    let jobs = jobs.clone();
    Response::later(move |responder| match jobs.try_send((Duration::from_millis(ms), responder)) {
        Ok(()) => {}
        Err(TrySendError::Full((_, responder)) | TrySendError::Disconnected((_, responder))) => {
            let _ = responder.send(Response::text(503, "the workers are busy; try again\n"));
        }
    })
}

/// The query value `name` as a number up to `max` (`default` if absent).
fn query_number(req: &Request<'_>, name: &str, default: u64, max: u64) -> Option<u64> {
    match req.query_value(name) {
        None => Some(default),
        Some(v) => v.parse().ok().filter(|&n| n <= max),
    }
}

fn router(files: Option<FileService>) -> io::Result<Router> {
    let jobs = start_workers()?;
    let router = Router::new()
        .get("/", |_: &Request<'_>| Response::html(200, INDEX))
        .get("/hello", |_: &Request<'_>| Response::text(200, "hello, world"))
        .post("/echo", echo)
        .put("/echo", echo)
        .get("/stream", stream)
        .get("/later", move |req: &Request<'_>| later(req, &jobs));
    Ok(match files {
        Some(files) => {
            let prefix = files.prefix().to_owned();
            router.get_prefix(&prefix, move |req: &Request<'_>| {
                files.respond(req).unwrap_or_else(|| Response::text(404, "not found\n"))
            })
        }
        None => router,
    })
}

/// Serves `listener` until `wait` returns, then stops gracefully: run as is,
/// or by each `--processes` worker.
fn serve(
    cli: &Cli,
    listener: Listener,
    files: Option<FileService>,
    wait: impl FnOnce(&mut EventLoop) -> io::Result<()>,
) -> io::Result<()> {
    let mut ev = EventLoop::with_backend(&cli.server.dispatcher)?;
    let router = router(files)?;
    let server = HttpServer::builder(listener.local_addr().clone(), move |req| router.respond(req))
        .listener(listener)
        .threads(cli.server.threads)
        .reuse_port(cli.server.reuse_port)
        .trigger(cli.trigger)
        .start(&mut ev)?;
    wait(&mut ev)?;
    let summary = server.stop(&mut ev, GRACE)?;
    println!("stopped: {summary}");
    Ok(())
}

fn run(cli: Cli) -> Result<(), Box<dyn Error>> {
    // Checked once, before any fork; the loop is dropped at once.
    let dispatcher = EventLoop::with_backend(&cli.server.dispatcher)?.dispatcher_name().to_owned();
    let files = cli.root.as_ref().map(|root| FileService::new("/files/", root)).transpose()?;
    // One line: tests read the first line of stdout for the address.
    let serving = files
        .as_ref()
        .map_or(String::new(), |f| format!(", serving {} at {}", f.root().display(), f.prefix()));
    let listener = cli.server.bind()?;
    println!("listening on {} (dispatcher: {dispatcher}){serving}", listener.local_addr());
    std::io::stdout().flush()?;
    launch::serve_until_stopped(listener, cli.server.processes, 2 * GRACE, |listener, wait| {
        serve(&cli, listener, files.clone(), wait)
    })?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::main(|| run(cli))
}
