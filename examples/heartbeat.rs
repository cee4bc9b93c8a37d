//! Heartbeats over the framed protocol: the client sends PING every interval,
//! the server answers PONG, and either side closes a peer that has been silent
//! for `--misses` intervals. Silence is each connection's own timer
//! ([`TcpConnection::set_timeout`](muxloop::TcpConnection::set_timeout)),
//! re-armed by every frame; the client pings from a loop timer.
//!
//! ```text
//! cargo run --example heartbeat -- server [ADDR] [--interval SECS] [--misses K] [--threads N]   # default 127.0.0.1:9005
//! cargo run --example heartbeat -- client [ADDR] [--interval SECS] [--misses K] [--pings N]
//! ```
//! `--pings N` makes the client go quiet after N pings, to watch the server
//! notice the silence and close the connection (`RUST_LOG=debug` shows it).

mod common;

use std::time::Duration;

use common::framing::{self, Decoded, MSG_PING, MSG_PONG};
use common::{Args, Result};
use log::{info, warn};
use muxloop::{Buffer, Dispatcher, EventLoop, Handler, TcpClient, TcpConnection, TcpServer, TimerId};

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
    quit_on_close: bool,
}

impl<D: Dispatcher + 'static> Handler<D> for Heartbeat {
    fn on_connect(&mut self, ev: &mut EventLoop<D>, conn: &TcpConnection<D>) {
        info!("{} up ({})", conn.peer_addr(), D::NAME);
        conn.set_timeout(ev, Some(self.settings.patience()));
        if self.quit_on_close {
            let (pinger, settings, mut sent) = (conn.clone(), self.settings, 0);
            self.pinger = Some(ev.run_every(settings.interval, move |ev| {
                if sent < settings.max_pings {
                    sent += 1;
                    let _ = pinger.send(ev, &framing::encode(MSG_PING, &[]));
                }
            }));
        }
    }

    /// Reads frames, re-arms the silence timer, and answers PING with PONG.
    fn on_message(&mut self, ev: &mut EventLoop<D>, conn: &TcpConnection<D>, input: &mut Buffer) {
        loop {
            match framing::decode(input, 1024) {
                Decoded::Frame { kind, .. } => {
                    conn.set_timeout(ev, Some(self.settings.patience()));
                    match kind {
                        MSG_PING => {
                            let _ = conn.send(ev, &framing::encode(MSG_PONG, &[]));
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

    fn on_timeout(&mut self, ev: &mut EventLoop<D>, conn: &TcpConnection<D>) {
        warn!(
            "{}: silent for {:.1?} ({} missed heartbeats), closing",
            conn.peer_addr(),
            self.settings.patience(),
            self.settings.misses
        );
        conn.force_close(ev);
    }

    fn on_close(&mut self, ev: &mut EventLoop<D>, conn: &TcpConnection<D>) {
        info!("{} down", conn.peer_addr());
        if let Some(timer) = self.pinger.take() {
            ev.cancel(timer);
        }
        if self.quit_on_close {
            ev.quit();
        }
    }
}

fn server<D: Dispatcher + 'static>(args: Args, settings: Settings) -> Result {
    let mut ev = EventLoop::<D>::new()?;
    let factory = move |_: &TcpConnection<D>| Heartbeat { settings, pinger: None, quit_on_close: false };
    let server =
        TcpServer::builder(args.addr, factory).threads(args.threads).name("heartbeat").start(&mut ev)?;
    common::serve(&mut ev, server.local_addr())
}

fn client<D: Dispatcher + 'static>(args: Args, settings: Settings) -> Result {
    let mut ev = EventLoop::<D>::new()?;
    let factory = move |_: &TcpConnection<D>| Heartbeat { settings, pinger: None, quit_on_close: true };
    TcpClient::new(args.addr, factory)
        .on_connect_error(|ev, e| {
            warn!("cannot connect: {e}");
            ev.quit();
        })
        .connect(&mut ev);
    ev.run()?;
    Ok(())
}

fn main() -> Result {
    common::init_logging();
    let mut argv = std::env::args().skip(1);
    let mode = argv.next().unwrap_or_default();
    let args = Args::parse_from(argv, 9005)?;
    let interval: f64 = args.flag_or("--interval", 1.0)?;
    if !interval.is_finite() || interval <= 0.0 {
        return Err("--interval must be a positive number of seconds".into());
    }
    let settings = Settings {
        interval: Duration::from_secs_f64(interval),
        misses: args.flag_or("--misses", 3)?,
        max_pings: args.flag_or("--pings", u64::MAX)?,
    };
    let name = args.dispatcher.clone();
    match mode.as_str() {
        "server" => with_dispatcher!(name.as_str(), server(args, settings)),
        "client" => with_dispatcher!(name.as_str(), client(args, settings)),
        _ => Err("usage: heartbeat server|client [ADDR] [--interval SECS] [--misses K] [--pings N]".into()),
    }
}
