//! Echo server: every byte comes back, in order.
//!
//! ```text
//! cargo run --release --example echo -- [ADDR | --unix PATH] [--threads N] [--processes N] [--dispatcher NAME] [--reuse-port] [--nofile N] [--trigger auto|level|edge]
//! cargo run --release --example echo -- --unix /tmp/muxloop-echo.sock      # or --unix @muxloop-echo (abstract)
//! ```
//! Default address 127.0.0.1:9000; `--unix PATH` listens on a Unix domain
//! socket instead (`@name`: a Linux abstract name), whose file is removed on
//! exit. `--processes N` (N > 1) binds once and forks N worker processes
//! that share the listener ([`muxloop::process`]), each serving it with its
//! own loop (and `--threads` sub-loops); SIGTERM or Ctrl-C to the master
//! stops them all gracefully.
//!
//! Backpressure: when a client sends faster than it reads, its queued output
//! crosses the output limit and the server stops reading from it until the
//! queue drains. `--nofile N` lowers the fd limit, to watch the acceptor
//! survive `EMFILE`.

#[path = "common/launch.rs"]
mod launch;

use std::error::Error;
use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use muxloop::net::listener::DEFAULT_BACKLOG;
use muxloop::{AnyDispatcher, Callbacks, EventLoop, Listener, Server, Trigger};

/// Queued output per connection above which we stop reading from it.
const OUTPUT_LIMIT: usize = 4 * 1024 * 1024;
/// How long open connections get to finish once asked to stop.
const GRACE: Duration = Duration::from_secs(5);

/// Echo server: every byte a client sends comes back, in order.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on: HOST:PORT, :PORT or PORT
    #[arg(value_name = "ADDR", default_value = "127.0.0.1:9000", value_parser = parse_addr)]
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
    /// Lower the open-file limit to N, to watch the acceptor survive EMFILE
    #[arg(long, value_name = "N")]
    nofile: Option<u64>,
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
    let echo = Callbacks::new()
        .on_connection(|_, conn| {
            let state = if conn.is_connected() { "up" } else { "down" };
            log::info!("{} {state} (connection {})", conn.peer_addr(), conn.id());
        })
        .on_message(|ev, conn, input| {
            let _ = conn.send(ev, input.peek());
            input.consume_all();
        });
    let server = Server::builder(listener.local_addr().clone(), echo)
        .listener(listener)
        .output_limit(Some(OUTPUT_LIMIT))
        .threads(cli.threads)
        .reuse_port(cli.reuse_port)
        .trigger(cli.trigger)
        .name("echo")
        .start(&mut ev)?;
    wait(&mut ev)?;
    let summary = server.stop(&mut ev, GRACE)?;
    println!("stopped: {summary}");
    Ok(())
}

fn run(cli: Cli) -> Result<(), Box<dyn Error>> {
    if let Some(limit) = cli.nofile {
        muxloop::sys::set_nofile_limit(limit).map_err(|e| format!("--nofile {limit}: {e}"))?;
    }
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
