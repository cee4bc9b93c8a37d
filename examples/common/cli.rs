//! The examples' shared command-line pieces: [`parse_addr`] for every
//! address argument, [`ServerArgs`] for the flags the stream servers have
//! in common, and [`main`], the ending every example's `main` has.
//! Included with `#[path = "common/cli.rs"] mod cli;`.
#![allow(dead_code)] // each example uses a different part

use std::fmt::Display;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use clap::Args;
use clap::builder::PossibleValuesParser;
use muxloop::net::listener::DEFAULT_BACKLOG;
use muxloop::{AnyDispatcher, Listener};

/// `HOST:PORT`, `:PORT` or `PORT` (host 127.0.0.1).
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.strip_prefix(':').unwrap_or(s).parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let mut addrs = s.to_socket_addrs().map_err(|e| format!("expected HOST:PORT, :PORT or PORT ({e})"))?;
    addrs.next().ok_or_else(|| format!("{s} resolves to no address"))
}

/// The flags the stream servers share (echo, rot13, pingpong_server, framed,
/// chat, kv, http_server, heartbeat's server), flattened into each one's
/// `Cli` with `#[command(flatten)]`. ADDR has no default here: each server
/// names its own on its `Cli`, with
/// `#[command(mut_arg("addr", |a| a.default_value("127.0.0.1:9000")))]`
/// (`mut_arg` also rewords a flag a server only accepts to refuse, as
/// chat's and kv's `--processes`).
#[derive(Args)]
pub struct ServerArgs {
    /// Address to listen on: HOST:PORT, :PORT or PORT
    #[arg(value_name = "ADDR", required = false, value_parser = parse_addr)]
    pub addr: SocketAddr,
    /// Listen on this Unix domain socket instead (`@name`: an abstract name)
    #[arg(long, value_name = "PATH", conflicts_with_all = ["addr", "reuse_port"])]
    pub unix: Option<String>,
    /// Sub-loop threads (0: everything on one loop)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    /// Worker processes sharing the listener (0 or 1: serve in this process)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub processes: usize,
    /// The I/O multiplexer
    #[arg(long, value_name = "NAME", default_value = muxloop::default_dispatcher_name(),
          value_parser = PossibleValuesParser::new(AnyDispatcher::names()), ignore_case = true)]
    pub dispatcher: String,
    /// Set SO_REUSEPORT, so several servers can share the port
    #[arg(long)]
    pub reuse_port: bool,
}

impl ServerArgs {
    /// Binds `--unix PATH` if given, else ADDR (with SO_REUSEPORT under
    /// `--reuse-port`).
    pub fn bind(&self) -> io::Result<Listener> {
        match &self.unix {
            Some(path) => Listener::bind_unix(path, DEFAULT_BACKLOG),
            None => Listener::bind_tcp(&[self.addr], self.reuse_port, DEFAULT_BACKLOG),
        }
    }
}

/// The end of every example's `main`, once its command line is parsed (a
/// bad one has already exited 2 with clap's message): logs to stderr at
/// `info` unless `RUST_LOG` says otherwise (`debug` or `trace` narrate the
/// loop at work, `off` silences it), calls `run`, and turns its error into
/// `error: ...` on stderr and exit status 1.
pub fn main<E: Display>(run: impl FnOnce() -> Result<(), E>) -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
