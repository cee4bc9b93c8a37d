//! Heartbeats over the framed protocol ([`muxloop::framing`]): the client
//! sends PING every interval, the server answers PONG, and either side closes
//! a peer that has been silent for `--misses` intervals. Silence is each
//! connection's own timer
//! ([`Connection::set_timeout`](muxloop::Connection::set_timeout)),
//! re-armed by every frame; the client pings from a loop timer.
//!
//! ```text
//! cargo run --example heartbeat -- server [ADDR | --unix PATH] [--interval SECS] [--misses K] [--threads N] [--processes N] [--dispatcher NAME] [--reuse-port]   # default 127.0.0.1:9005
//! cargo run --example heartbeat -- client [ADDR | --unix PATH] [--interval SECS] [--misses K] [--pings N] [--dispatcher NAME]
//! ```
//! `--unix PATH` listens on (or connects to) a Unix domain socket instead of
//! ADDR (`@name`: a Linux abstract name; the server removes its socket file on
//! exit). `server --processes N` (N > 1) binds once and forks N workers
//! sharing the listener ([`muxloop::process`]); SIGTERM or Ctrl-C to the
//! master stops them all gracefully.
//! `--pings N` makes the client go quiet after N pings, to watch the server
//! notice the silence and close the connection (`RUST_LOG=debug` shows it).

#[path = "common/cli.rs"]
mod cli;
#[path = "common/launch.rs"]
mod launch;

use std::cell::Cell;
use std::error::Error;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use cli::ServerArgs;
use log::{info, warn};
use muxloop::framing::{self, Decoded, MSG_PING, MSG_PONG};
use muxloop::{
    AnyDispatcher, Buffer, Client, Connection, EventLoop, Handler, Listener, Server, StreamAddr, TimerId,
};

/// How long open connections get to finish once asked to stop.
const GRACE: Duration = Duration::from_secs(5);

/// Heartbeats: PING every interval, PONG back, a silent peer is closed.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Answer PINGs; close clients silent for K intervals
    #[command(mut_arg("addr", |a| a.default_value("127.0.0.1:9005")))]
    Server {
        // [ADDR | --unix PATH] [--threads N] [--processes N] [--dispatcher NAME] [--reuse-port]
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        beat: Beat,
    },
    /// Send a PING every interval; close a server silent for K intervals
    Client {
        /// Server address: HOST:PORT, :PORT or PORT
        #[arg(value_name = "ADDR", default_value = "127.0.0.1:9005", value_parser = cli::parse_addr)]
        addr: SocketAddr,
        /// Connect to this Unix domain socket instead (`@name`: an abstract name)
        #[arg(long, value_name = "PATH", conflicts_with = "addr")]
        unix: Option<String>,
        #[command(flatten)]
        beat: Beat,
        /// The I/O multiplexer
        #[arg(long, value_name = "NAME", default_value = muxloop::default_dispatcher_name(),
              value_parser = clap::builder::PossibleValuesParser::new(AnyDispatcher::names()), ignore_case = true)]
        dispatcher: String,
        /// Go quiet after N pings (default: never)
        #[arg(long, value_name = "N")]
        pings: Option<u64>,
    },
}

/// The heartbeat flags both sides take.
#[derive(Args)]
struct Beat {
    /// Seconds between heartbeats (fractions allowed)
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = parse_interval)]
    interval: Duration,
    /// Missed heartbeats after which a silent peer is closed
    #[arg(long, value_name = "K", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    misses: u32,
}

/// A positive number of seconds.
fn parse_interval(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 {
        return Err("expected a number of seconds above 0 and at most 86400".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[derive(Clone, Copy)]
struct Settings {
    interval: Duration,
    misses: u32,
    /// Client only: stop pinging after this many.
    max_pings: u64,
}

impl Settings {
    /// How long a peer may stay silent.
    fn patience(&self) -> Duration {
        self.interval * self.misses
    }
}

/// One side of a heartbeat connection. Silence is the connection's timer:
/// every frame re-arms it, and `on_timeout` fires when the peer missed
/// `misses` intervals.
struct Heartbeat {
    settings: Settings,
    /// The client's ping timer (the server only answers).
    pinger: Option<TimerId>,
    is_client: bool,
}

impl Handler for Heartbeat {
    fn on_connect(&mut self, ev: &mut EventLoop, conn: &Connection) {
        info!("{} up ({})", conn.peer_addr(), ev.dispatcher_name());
        conn.set_timeout(ev, Some(self.settings.patience()));
        if self.is_client {
            let (pinger, settings, mut sent) = (conn.clone(), self.settings, 0);
            self.pinger = Some(ev.run_every(settings.interval, move |ev| {
                if sent < settings.max_pings {
                    sent += 1;
                    let _ = pinger.send(ev, &framing::header(MSG_PING, 0));
                }
            }));
        }
    }

    /// Reads frames, re-arms the silence timer, and answers PING with PONG.
    fn on_message(&mut self, ev: &mut EventLoop, conn: &Connection, input: &mut Buffer) {
        loop {
            match framing::decode(input, 1024) {
                Decoded::Frame { kind, .. } => {
                    conn.set_timeout(ev, Some(self.settings.patience()));
                    match kind {
                        MSG_PING => {
                            let _ = conn.send(ev, &framing::header(MSG_PONG, 0));
                        }
                        MSG_PONG => info!("PONG from {}", conn.peer_addr()),
                        other => warn!("{}: unexpected message type {other}", conn.peer_addr()),
                    }
                }
                Decoded::Incomplete => return,
                Decoded::TooLong(len) => {
                    warn!("{}: {len}-byte frame is not a heartbeat, closing", conn.peer_addr());
                    return conn.force_close(ev);
                }
            }
        }
    }

    fn wants_write_complete(&self) -> bool {
        false
    }

    fn on_timeout(&mut self, ev: &mut EventLoop, conn: &Connection) {
        warn!(
            "{}: silent for {:.1?} ({} missed heartbeats), closing",
            conn.peer_addr(),
            self.settings.patience(),
            self.settings.misses
        );
        conn.force_close(ev);
    }

    fn on_close(&mut self, ev: &mut EventLoop, conn: &Connection) {
        info!("{} down", conn.peer_addr());
        if let Some(timer) = self.pinger.take() {
            ev.cancel(timer);
        }
        if self.is_client {
            ev.quit();
        }
    }
}

/// Serves `listener` until `wait` returns, then stops gracefully: run as is,
/// or by each `--processes` worker.
fn serve(
    args: &ServerArgs,
    settings: Settings,
    listener: Listener,
    wait: impl FnOnce(&mut EventLoop) -> io::Result<()>,
) -> io::Result<()> {
    let mut ev = EventLoop::with_backend(&args.dispatcher)?;
    let factory = move |_: &Connection| Heartbeat { settings, pinger: None, is_client: false };
    let server = Server::builder(listener.local_addr().clone(), factory)
        .listener(listener)
        .threads(args.threads)
        .reuse_port(args.reuse_port)
        .name("heartbeat")
        .start(&mut ev)?;
    wait(&mut ev)?;
    let summary = server.stop(&mut ev, GRACE)?;
    println!("stopped: {summary}");
    Ok(())
}

fn server(args: ServerArgs, beat: Beat) -> Result<(), Box<dyn Error>> {
    let settings = Settings { interval: beat.interval, misses: beat.misses, max_pings: 0 };
    launch::announce_and_serve(&args, 2 * GRACE, |listener, wait| serve(&args, settings, listener, wait))?;
    Ok(())
}

fn client(addr: StreamAddr, beat: Beat, dispatcher: &str, pings: Option<u64>) -> Result<(), Box<dyn Error>> {
    let settings =
        Settings { interval: beat.interval, misses: beat.misses, max_pings: pings.unwrap_or(u64::MAX) };
    let mut ev = EventLoop::with_backend(dispatcher)?;
    let factory = move |_: &Connection| Heartbeat { settings, pinger: None, is_client: true };
    let failure = Rc::new(Cell::new(None));
    let failed = Rc::clone(&failure);
    Client::new(addr.clone(), factory)
        .on_connect_error(move |ev, e| {
            failed.set(Some(format!("cannot connect to {addr}: {e}")));
            ev.quit();
        })
        .connect(&mut ev);
    ev.run()?;
    match failure.take() {
        Some(why) => Err(why.into()),
        None => Ok(()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::main(|| match cli.mode {
        Mode::Server { server: args, beat } => server(args, beat),
        Mode::Client { addr, unix, beat, dispatcher, pings } => {
            let addr = match unix {
                Some(path) => StreamAddr::Unix(path.as_str().into()),
                None => StreamAddr::Inet(addr),
            };
            client(addr, beat, &dispatcher, pings)
        }
    })
}
