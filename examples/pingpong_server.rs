//! The server half of muduo's pingpong throughput test: echo everything, as
//! fast as possible.
//!
//! ```text
//! cargo run --release --example pingpong_server -- [ADDR | --unix PATH] [--threads N] [--processes N] [--dispatcher NAME] [--reuse-port]   # default 127.0.0.1:9003
//! cargo run --release --example pingpong_client -- 127.0.0.1:9003 --sessions 100 --block 16384 --seconds 10
//! ```
//! `--unix PATH` listens on a Unix domain socket instead of ADDR (`@name`:
//! a Linux abstract name; the socket file is removed on exit).
//! `--processes N` (N > 1) binds once and forks N workers sharing the
//! listener ([`muxloop::process`]); SIGTERM or Ctrl-C to the master stops
//! them all gracefully.
//! Unlike `echo` there is no output limit: pingpong clients keep exactly one
//! block in flight, so output can never pile up.

#[path = "common/launch.rs"]
mod launch;

use std::error::Error;
use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use muxloop::net::listener::DEFAULT_BACKLOG;
use muxloop::{AnyDispatcher, Callbacks, EventLoop, Listener, Server};

/// How long open connections get to finish once asked to stop.
const GRACE: Duration = Duration::from_secs(5);

/// The server half of muduo's pingpong throughput test: echoes everything.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on: HOST:PORT, :PORT or PORT
    #[arg(value_name = "ADDR", default_value = "127.0.0.1:9003", value_parser = parse_addr)]
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
}

/// `HOST:PORT`, `:PORT` or `PORT` (host 127.0.0.1).
fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.strip_prefix(':').unwrap_or(s).parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let mut addrs = s.to_socket_addrs().map_err(|e| format!("expected HOST:PORT, :PORT or PORT ({e})"))?;
    addrs.next().ok_or_else(|| format!("{s} resolves to no address"))
}

/// Serves `listener` until `wait` returns, then stops gracefully: run as is,
/// or by each `--processes` worker.
fn serve(
    cli: &Cli,
    listener: Listener,
    wait: impl FnOnce(&mut EventLoop<AnyDispatcher>) -> io::Result<()>,
) -> io::Result<()> {
    let mut ev = EventLoop::<AnyDispatcher>::with_backend(&cli.dispatcher)?;
    let callbacks = Callbacks::new().on_message(|ev, conn, input| {
        let _ = conn.send(ev, input.peek());
        input.consume_all();
    });
    let server = Server::builder(listener.local_addr().clone(), callbacks)
        .listener(listener)
        .output_limit(None)
        .threads(cli.threads)
        .reuse_port(cli.reuse_port)
        .name("pingpong")
        .start(&mut ev)?;
    wait(&mut ev)?;
    let summary = server.stop(&mut ev, GRACE)?;
    println!("stopped: {summary}");
    Ok(())
}

fn run(cli: Cli) -> Result<(), Box<dyn Error>> {
    // Checked once, before any fork; the loop is dropped at once.
    let dispatcher = EventLoop::<AnyDispatcher>::with_backend(&cli.dispatcher)?.dispatcher_name().to_owned();
    let listener = match &cli.unix {
        Some(path) => Listener::bind_unix(path, DEFAULT_BACKLOG)?,
        None => Listener::bind_tcp(&[cli.addr], cli.reuse_port, DEFAULT_BACKLOG)?,
    };
    println!("listening on {} (dispatcher: {dispatcher})", listener.local_addr());
    std::io::stdout().flush()?;
    launch::serve_until_stopped(listener, cli.processes, 2 * GRACE, |listener, wait| {
        serve(&cli, listener, wait)
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
