//! rot13 server (the lecture notes' first non-blocking server): every line a
//! client sends comes back rot13-encoded. Lines end with `\n`; a partial line
//! waits in the input buffer until the rest arrives.
//!
//! ```text
//! cargo run --example rot13 -- [ADDR | --unix PATH] [--threads N] [--processes N] [--dispatcher NAME] [--reuse-port]   # default 127.0.0.1:9001
//! printf 'Hello\n' | nc -q1 127.0.0.1 9001                                                # Uryyb
//! ```
//! `--unix PATH` listens on a Unix domain socket instead of ADDR (`@name`:
//! a Linux abstract name; the socket file is removed on exit).
//! `--processes N` (N > 1) binds once and forks N workers sharing the
//! listener ([`muxloop::process`]); SIGTERM or Ctrl-C to the master stops
//! them all gracefully.

#[path = "common/launch.rs"]
mod launch;

use std::error::Error;
use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use log::warn;
use muxloop::net::listener::DEFAULT_BACKLOG;
use muxloop::{AnyDispatcher, Callbacks, EventLoop, Listener, Server};

/// A client that sends more than this without a newline is disconnected.
const MAX_LINE: usize = 16 * 1024;

/// How long open connections get to finish once asked to stop.
const GRACE: Duration = Duration::from_secs(5);

/// rot13 server: every line a client sends comes back rot13-encoded.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on: HOST:PORT, :PORT or PORT
    #[arg(value_name = "ADDR", default_value = "127.0.0.1:9001", value_parser = parse_addr)]
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

fn rot13(byte: u8) -> u8 {
    match byte {
        b'a'..=b'z' => (byte - b'a' + 13) % 26 + b'a',
        b'A'..=b'Z' => (byte - b'A' + 13) % 26 + b'A',
        other => other,
    }
}

/// Serves `listener` until `wait` returns, then stops gracefully: run as is,
/// or by each `--processes` worker.
fn serve(
    cli: &Cli,
    listener: Listener,
    wait: impl FnOnce(&mut EventLoop<AnyDispatcher>) -> io::Result<()>,
) -> io::Result<()> {
    let mut ev = EventLoop::<AnyDispatcher>::with_backend(&cli.dispatcher)?;
    let callbacks = Callbacks::new()
        .on_connection(|_, conn| {
            let state = if conn.is_connected() { "up" } else { "down" };
            log::info!("{} {state} (connection {})", conn.peer_addr(), conn.id());
        })
        .on_message(|ev, conn, input| {
            while let Some(eol) = input.find_eol() {
                let line: Vec<u8> = input.peek()[..=eol].iter().copied().map(rot13).collect();
                input.consume(eol + 1);
                let _ = conn.send_owned(ev, line);
            }
            if input.len() > MAX_LINE {
                warn!("{}: line longer than {MAX_LINE} bytes, closing", conn.peer_addr());
                conn.force_close(ev);
            }
        });
    let server = Server::builder(listener.local_addr().clone(), callbacks)
        .listener(listener)
        .threads(cli.threads)
        .reuse_port(cli.reuse_port)
        .name("rot13")
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
