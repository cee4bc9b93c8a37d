//! Heartbeats over the framed protocol: the client sends PING every interval,
//! the server answers PONG, and either side closes a peer that has been silent
//! for `--misses` intervals. Everything is done with loop timers.
//!
//! ```text
//! cargo run --example heartbeat -- server [ADDR] [--interval SECS] [--misses K] [--threads N]   # default 127.0.0.1:9005
//! cargo run --example heartbeat -- client [ADDR] [--interval SECS] [--misses K] [--pings N]
//! ```
//! `--pings N` makes the client go quiet after N pings, to watch the server
//! notice the silence and close the connection (`RUST_LOG=debug` shows it).

mod common;

use std::time::{Duration, Instant};

use common::framing::{self, Decoded, MSG_PING, MSG_PONG};
use common::{Args, Result};
use log::{info, warn};
use muxloop::{Callbacks, Dispatcher, EventLoop, TcpClient, TcpConnection, TcpServer, TimerId};

/// Per-connection state: when the peer was last heard from, and the timer
/// that checks it.
struct Liveness {
    last_seen: Instant,
    timer: TimerId,
    pings_sent: u64,
}

#[derive(Clone, Copy)]
struct Settings {
    interval: Duration,
    misses: u32,
    /// Client only: stop pinging after this many.
    max_pings: u64,
}

/// Arms the per-connection timer: every interval, close the connection if the
/// peer has been silent too long, else call `tick` (the client pings there).
fn watch<D: Dispatcher + 'static>(
    ev: &mut EventLoop<D>,
    conn: &TcpConnection<D>,
    settings: Settings,
    tick: fn(&mut EventLoop<D>, &TcpConnection<D>, Settings),
) {
    let watched = conn.clone();
    let timer = ev.run_every(settings.interval, move |ev| {
        let silent = watched.context::<Liveness>().map(|l| l.last_seen.elapsed());
        match silent {
            Some(silent) if silent > settings.interval * settings.misses => {
                warn!(
                    "{}: silent for {silent:.1?} ({} missed heartbeats), closing",
                    watched.peer_addr(),
                    settings.misses
                );
                watched.force_close(ev);
            }
            Some(_) => tick(ev, &watched, settings),
            None => {}
        }
    });
    conn.set_context(Liveness { last_seen: Instant::now(), timer, pings_sent: 0 });
}

/// Cancels the timer when the connection goes down.
fn unwatch<D: Dispatcher + 'static>(ev: &mut EventLoop<D>, conn: &TcpConnection<D>) {
    if let Some(liveness) = conn.take_context::<Liveness>() {
        ev.cancel(liveness.timer);
    }
}

/// Reads frames, records that the peer is alive, and answers PING with PONG.
fn on_frames<D: Dispatcher + 'static>(
    ev: &mut EventLoop<D>,
    conn: &TcpConnection<D>,
    input: &mut muxloop::buffer::Buffer,
) {
    loop {
        match framing::decode(input, 1024) {
            Decoded::Frame { kind, .. } => {
                if let Some(mut liveness) = conn.context::<Liveness>() {
                    liveness.last_seen = Instant::now();
                }
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

fn server<D: Dispatcher + 'static>(args: Args, settings: Settings) -> Result {
    let mut ev = EventLoop::<D>::new()?;
    let callbacks = Callbacks::<D>::new()
        .on_connection(move |ev, conn| {
            common::log_connection(ev, conn);
            if conn.is_connected() {
                watch(ev, conn, settings, |_, _, _| {});
            } else {
                unwatch(ev, conn);
            }
        })
        .on_message(on_frames);
    let server =
        TcpServer::builder(args.addr, callbacks).threads(args.threads).name("heartbeat").start(&mut ev)?;
    common::serve(&mut ev, server.local_addr())
}

fn ping<D: Dispatcher + 'static>(ev: &mut EventLoop<D>, conn: &TcpConnection<D>, settings: Settings) {
    let Some(mut liveness) = conn.context::<Liveness>() else { return };
    if liveness.pings_sent < settings.max_pings {
        liveness.pings_sent += 1;
        drop(liveness);
        let _ = conn.send(ev, &framing::encode(MSG_PING, &[]));
    }
}

fn client<D: Dispatcher + 'static>(args: Args, settings: Settings) -> Result {
    let mut ev = EventLoop::<D>::new()?;
    let callbacks = Callbacks::<D>::new()
        .on_connection(move |ev, conn| {
            if conn.is_connected() {
                info!("connected to {} ({})", conn.peer_addr(), D::NAME);
                watch(ev, conn, settings, ping);
            } else {
                info!("disconnected from {}", conn.peer_addr());
                unwatch(ev, conn);
                ev.quit();
            }
        })
        .on_message(on_frames);
    TcpClient::new(args.addr, callbacks)
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
