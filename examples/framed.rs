//! Length-prefixed messages: `| length u32 BE | type u32 BE | body |`, with
//! the library's [`muxloop::framing`] codec.
//!
//! ```text
//! cargo run --example framed -- [ADDR | --unix PATH] [--threads N] [--processes N] [--dispatcher NAME] [--reuse-port] [--max-body BYTES]   # default 127.0.0.1:9004
//! ```
//! `--unix PATH` listens on a Unix domain socket instead of ADDR (`@name`:
//! a Linux abstract name; the socket file is removed on exit).
//! `--processes N` (N > 1) binds once and forks N workers sharing the
//! listener ([`muxloop::process`]); SIGTERM or Ctrl-C to the master stops
//! them all gracefully.
//! The server answers each message as it completes: TYPE1 (11) with
//! "Hi, " + body, TYPE2 (21) with "Hello, " + body, PING (1) with PONG (2).
//! A frame that declares a body over `--max-body` (default 64 KiB), or an
//! unknown type, gets an ERROR (99) frame saying why, and the connection is
//! half-closed after it is sent; nothing of the oversized body is buffered.

#[path = "common/launch.rs"]
mod launch;

use std::error::Error;
use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use log::warn;
use muxloop::framing::{self, Decoded, MSG_ERROR, MSG_PING, MSG_PONG, MSG_TYPE1, MSG_TYPE2};
use muxloop::net::listener::DEFAULT_BACKLOG;
use muxloop::{AnyDispatcher, Callbacks, Connection, EventLoop, Listener, Server};

/// How long open connections get to finish once asked to stop.
const GRACE: Duration = Duration::from_secs(5);

/// Length-prefixed message server: `| length u32 BE | type u32 BE | body |`.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on: HOST:PORT, :PORT or PORT
    #[arg(value_name = "ADDR", default_value = "127.0.0.1:9004", value_parser = parse_addr)]
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
    /// Largest frame body accepted; a longer one gets an ERROR frame and a close
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    max_body: usize,
}

/// `HOST:PORT`, `:PORT` or `PORT` (host 127.0.0.1).
fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.strip_prefix(':').unwrap_or(s).parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let mut addrs = s.to_socket_addrs().map_err(|e| format!("expected HOST:PORT, :PORT or PORT ({e})"))?;
    addrs.next().ok_or_else(|| format!("{s} resolves to no address"))
}

fn reject(ev: &mut EventLoop<AnyDispatcher>, conn: &Connection<AnyDispatcher>, why: String) {
    warn!("{}: {why}; closing", conn.peer_addr());
    let _ = conn.send_owned(ev, framing::encode(MSG_ERROR, why.as_bytes()));
    // Half-close rather than close: closing with unread input would send RST
    // and could destroy the error frame in flight.
    conn.shutdown(ev);
}

/// Serves `listener` until `wait` returns, then stops gracefully: run as is,
/// or by each `--processes` worker.
fn serve(
    cli: &Cli,
    listener: Listener,
    wait: impl FnOnce(&mut EventLoop<AnyDispatcher>) -> io::Result<()>,
) -> io::Result<()> {
    let max_body = cli.max_body;
    let mut ev = EventLoop::<AnyDispatcher>::with_backend(&cli.dispatcher)?;
    let callbacks = Callbacks::new()
        .on_connection(|_, conn| {
            let state = if conn.is_connected() { "up" } else { "down" };
            log::info!("{} {state} (connection {})", conn.peer_addr(), conn.id());
        })
        .on_message(move |ev, conn, input| {
            if !conn.is_connected() {
                // Rejected: discard whatever else arrives until the peer closes.
                return input.consume_all();
            }
            while conn.is_connected() {
                let (kind, body) = match framing::decode(input, max_body) {
                    Decoded::Frame { kind, body } => (kind, body),
                    Decoded::Incomplete => return,
                    Decoded::TooLong(len) => {
                        input.consume_all();
                        return reject(
                            ev,
                            conn,
                            format!("frame body of {len} bytes exceeds the {max_body}-byte limit"),
                        );
                    }
                };
                let reply = match kind {
                    MSG_PING => framing::encode(MSG_PONG, &[]),
                    MSG_TYPE1 => framing::encode(MSG_TYPE1, &[b"Hi, ".as_slice(), &body].concat()),
                    MSG_TYPE2 => framing::encode(MSG_TYPE2, &[b"Hello, ".as_slice(), &body].concat()),
                    other => {
                        input.consume_all();
                        return reject(ev, conn, format!("unknown message type {other}"));
                    }
                };
                let _ = conn.send_owned(ev, reply);
            }
        });
    let server = Server::builder(listener.local_addr().clone(), callbacks)
        .listener(listener)
        .threads(cli.threads)
        .reuse_port(cli.reuse_port)
        .name("framed")
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
