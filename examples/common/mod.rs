//! Shared by the examples: command line, logging, backend choice.
#![allow(dead_code)] // each example uses a different part

use std::error::Error;
use std::io::Write;
use std::net::SocketAddr;

pub mod framing;
pub mod ring;

/// Result type of the examples' `main`.
pub type Result<T = ()> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

/// Command line shared by the server examples:
/// `[ADDR] [--threads N] [--dispatcher select|poll|epoll|uring] [--reuse-port] [other flags...]`.
pub struct Args {
    pub addr: SocketAddr,
    pub threads: usize,
    pub dispatcher: String,
    pub reuse_port: bool,
    /// Flags this parser does not know, in order, for the example to read.
    pub rest: Vec<String>,
}

impl Args {
    pub fn parse(default_port: u16) -> Result<Args> {
        Self::parse_from(std::env::args().skip(1), default_port)
    }

    pub fn parse_from(argv: impl Iterator<Item = String>, default_port: u16) -> Result<Args> {
        let mut args = Args {
            addr: SocketAddr::from(([127, 0, 0, 1], default_port)),
            threads: 0,
            dispatcher: muxloop::default_dispatcher_name().to_owned(),
            reuse_port: false,
            rest: Vec::new(),
        };
        let mut it = argv.peekable();
        if let Some(first) = it.peek()
            && !first.starts_with('-')
        {
            args.addr = parse_addr(&it.next().unwrap_or_default())?;
        }
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--threads" => args.threads = value(&mut it, &arg)?.parse()?,
                "--dispatcher" => args.dispatcher = value(&mut it, &arg)?,
                "--reuse-port" => args.reuse_port = true,
                _ => args.rest.push(arg),
            }
        }
        Ok(args)
    }

    /// The value of `--flag VALUE` among the unparsed flags, if present.
    pub fn flag(&self, name: &str) -> Option<&str> {
        let i = self.rest.iter().position(|a| a == name)?;
        self.rest.get(i + 1).map(String::as_str)
    }

    /// Like [`flag`](Self::flag), parsed, with a default.
    pub fn flag_or<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T>
    where
        T::Err: Error + Send + Sync + 'static,
    {
        match self.flag(name) {
            Some(v) => Ok(v.parse().map_err(|e| format!("{name} {v}: {e}"))?),
            None => Ok(default),
        }
    }
}

fn value(it: &mut impl Iterator<Item = String>, flag: &str) -> Result<String> {
    it.next().ok_or_else(|| format!("{flag} needs a value").into())
}

/// Accepts `HOST:PORT`, `:PORT` or `PORT` (host defaults to 127.0.0.1).
pub fn parse_addr(s: &str) -> Result<SocketAddr> {
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    let port = s.trim_start_matches(':').parse::<u16>().map_err(|_| format!("bad address {s:?}"))?;
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// `RUST_LOG` decides (default: info).
pub fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
}

/// The line scripts and tests wait for before connecting.
pub fn announce(addr: SocketAddr, dispatcher: &str) {
    println!("listening on {addr} (dispatcher: {dispatcher})");
    let _ = std::io::stdout().flush();
}

/// The connection callback the servers share: one log line per up/down.
pub fn log_connection<D: muxloop::Dispatcher>(
    _: &mut muxloop::EventLoop<D>,
    conn: &muxloop::TcpConnection<D>,
) {
    let state = if conn.is_connected() { "up" } else { "down" };
    log::info!("{} {state} (connection {})", conn.peer_addr(), conn.id());
}

/// Announces a started server and runs its main loop.
pub fn serve<D: muxloop::Dispatcher>(ev: &mut muxloop::EventLoop<D>, addr: SocketAddr) -> Result {
    announce(addr, D::NAME);
    ev.run()?;
    Ok(())
}

/// `fn main` of an example: logging, the shared command line (with
/// `$port` as the default port), then `$run::<D>(args)` for the chosen backend.
#[macro_export]
macro_rules! example_main {
    ($port:expr, $run:ident) => {
        fn main() -> common::Result {
            common::init_logging();
            let args = common::Args::parse($port)?;
            let name = args.dispatcher.clone();
            with_dispatcher!(name.as_str(), $run(args))
        }
    };
}

/// Calls the generic function `$run::<D>($args...)` with the backend named
/// by `$name` ("select", "poll", "epoll" or "uring").
#[macro_export]
macro_rules! with_dispatcher {
    ($name:expr, $run:ident ( $($arg:expr),* )) => {
        match $name {
            "select" => $run::<muxloop::SelectDispatcher>($($arg),*),
            "poll" => $run::<muxloop::PollDispatcher>($($arg),*),
            "epoll" => $run::<muxloop::EpollDispatcher>($($arg),*),
            "uring" => $run::<muxloop::UringDispatcher>($($arg),*),
            other => Err(format!("unknown dispatcher {other:?} (select, poll, epoll or uring)").into()),
        }
    };
}
