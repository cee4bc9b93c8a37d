//! UDP echo: every datagram goes back to its sender, whole.
//!
//! ```text
//! udp_echo [ADDR] [--dispatcher NAME]                                         server (default 127.0.0.1:9005)
//! udp_echo client ADDR [--count N] [--size B] [--inflight K] [--dispatcher NAME]   send N datagrams, count the answers
//! udp_echo flood ADDR [--seconds S] [--size B] [--inflight K] [--dispatcher NAME]  keep K in flight for S seconds
//! ```
//! (No `--unix`/`--processes`, unlike the stream servers: `process::Master`
//! shares a listening stream socket, and a UDP socket is none; Unix datagrams
//! are `muxloop::UnixDatagram`'s, tested in `tests/net/unix_datagram.rs`.)
//!
//! The client keeps at most K datagrams in flight (UDP has no flow control:
//! a client that does not pace itself just fills the server's receive buffer
//! and loses datagrams). A datagram unanswered for 500 ms counts as lost and
//! frees its window slot. Both modes print one line:
//! `sent=.. answered=.. lost=.. bad=.. secs=.. datagrams/s=..`.

#[path = "common/cli.rs"]
mod cli;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::error::Error;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand};
use muxloop::{AnyDispatcher, DatagramOptions, EventLoop, UdpSocket};

type Result<T = ()> = std::result::Result<T, Box<dyn Error>>;

/// UDP echo server (no subcommand), or a client that measures it.
#[derive(Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Address to listen on: HOST:PORT, :PORT or PORT
    #[arg(value_name = "ADDR", default_value = "127.0.0.1:9005", value_parser = cli::parse_addr)]
    addr: SocketAddr,
    /// The I/O multiplexer
    #[arg(long, value_name = "NAME", default_value = muxloop::default_dispatcher_name(),
          value_parser = clap::builder::PossibleValuesParser::new(AnyDispatcher::names()), ignore_case = true)]
    dispatcher: String,
}

#[derive(Subcommand)]
enum Mode {
    /// Send N datagrams, count the answers
    Client {
        #[command(flatten)]
        load: Load,
        /// Datagrams to send
        #[arg(long, value_name = "N", default_value_t = 100_000)]
        count: u64,
    },
    /// Keep K datagrams in flight for S seconds
    Flood {
        #[command(flatten)]
        load: Load,
        /// How long to send, in seconds (fractions allowed)
        #[arg(long, value_name = "S", default_value = "5", value_parser = parse_seconds)]
        seconds: Duration,
    },
}

/// What both client modes take.
#[derive(Args)]
struct Load {
    /// The echo server: HOST:PORT, :PORT or PORT
    #[arg(value_name = "ADDR", value_parser = cli::parse_addr)]
    addr: SocketAddr,
    /// Bytes per datagram (a UDP datagram holds 1..=65507)
    #[arg(long, value_name = "B", default_value_t = 64, value_parser = RangedU64ValueParser::<usize>::new().range(1..=65_507))]
    size: usize,
    /// Datagrams in flight at most (0 counts as 1)
    #[arg(long, value_name = "K", default_value_t = 64)]
    inflight: usize,
    /// The I/O multiplexer
    #[arg(long, value_name = "NAME", default_value = muxloop::default_dispatcher_name(),
          value_parser = clap::builder::PossibleValuesParser::new(AnyDispatcher::names()), ignore_case = true)]
    dispatcher: String,
}

/// A positive number of seconds.
fn parse_seconds(s: &str) -> std::result::Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 {
        return Err("expected a number of seconds above 0 and at most 86400".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Kernel buffers for both sides: room for bursts of large datagrams.
const KERNEL_BUFFER: usize = 4 << 20;
/// An answer later than this is counted as lost.
const LOST_AFTER: Duration = Duration::from_millis(500);

fn server(addr: SocketAddr, dispatcher: &str) -> Result {
    let mut ev = EventLoop::with_backend(dispatcher)?;
    let options = DatagramOptions::new().buffers(Some(KERNEL_BUFFER), Some(KERNEL_BUFFER));
    let sock = UdpSocket::bind_with(&mut ev, addr, options, |ev, sock, d| {
        if let Some(real) = d.truncated_from {
            log::warn!("{}: datagram of {real} bytes truncated", d.peer);
            return;
        }
        // A full send queue drops the reply: the client sees it as lost.
        let _ = sock.send_to(ev, d.data, &d.peer);
    })
    .map_err(|e| format!("cannot bind {addr}: {e}"))?;
    let stats_sock = sock.clone();
    ev.run_every(Duration::from_secs(10), move |_| log::debug!("{:?}", stats_sock.stats()));
    println!("listening on {} (dispatcher: {})", sock.local_addr(), ev.dispatcher_name());
    std::io::stdout().flush()?;
    ev.run()?;
    Ok(())
}

struct Client {
    size: usize,
    inflight: usize,
    /// How many to send (`None`: until `until`).
    count: Option<u64>,
    until: Option<Instant>,
    started: Instant,
    sent: u64,
    answered: u64,
    lost: u64,
    bad: u64,
    /// Send time of each datagram in flight, oldest first, by sequence number.
    pending: VecDeque<(u64, Instant)>,
    payload: Vec<u8>,
}

impl Client {
    fn may_send(&self) -> bool {
        let more = self.count.is_none_or(|n| self.sent < n) && self.until.is_none_or(|t| Instant::now() < t);
        more && self.pending.len() < self.inflight
    }
    fn done(&self) -> bool {
        !self.may_send() && self.pending.is_empty()
    }
    fn next_payload(&mut self) -> &[u8] {
        let seq = self.sent;
        self.sent += 1;
        self.pending.push_back((seq, Instant::now()));
        let n = self.size.min(8);
        self.payload[..n].copy_from_slice(&seq.to_le_bytes()[..n]);
        &self.payload
    }
    /// Matches a reply to the oldest datagram in flight it can be (replies on
    /// loopback come back in order; anything skipped over was lost).
    fn on_reply(&mut self, data: &[u8]) {
        if data.len() != self.size {
            self.bad += 1;
            return;
        }
        let n = self.size.min(8);
        let mut seq = [0u8; 8];
        seq[..n].copy_from_slice(&data[..n]);
        let seq = u64::from_le_bytes(seq);
        let mask = if n == 8 { u64::MAX } else { (1u64 << (8 * n)) - 1 };
        while let Some((s, _)) = self.pending.pop_front() {
            if s & mask == seq {
                self.answered += 1;
                return;
            }
            self.lost += 1;
        }
        self.bad += 1; // an answer to nothing we sent (late, after being counted lost)
    }
    fn expire(&mut self) {
        while self.pending.front().is_some_and(|(_, at)| at.elapsed() > LOST_AFTER) {
            self.pending.pop_front();
            self.lost += 1;
        }
    }
}

fn client(load: Load, count: Option<u64>, seconds: Option<Duration>) -> Result {
    let Load { addr, size, inflight, dispatcher } = load;
    let state = Rc::new(RefCell::new(Client {
        size,
        inflight: inflight.max(1),
        count,
        until: seconds.map(|s| Instant::now() + s),
        started: Instant::now(),
        sent: 0,
        answered: 0,
        lost: 0,
        bad: 0,
        pending: VecDeque::new(),
        payload: vec![0x5a; size],
    }));
    let mut ev = EventLoop::with_backend(&dispatcher)?;
    let local: SocketAddr = if addr.is_ipv6() { "[::]:0".parse()? } else { "0.0.0.0:0".parse()? };
    let options = DatagramOptions::new().buffers(Some(KERNEL_BUFFER), Some(KERNEL_BUFFER));
    let st = Rc::clone(&state);
    let sock = UdpSocket::bind_with(&mut ev, local, options, move |ev, sock, d| {
        let mut c = st.borrow_mut();
        c.on_reply(d.data);
        while c.may_send() {
            let _ = sock.send(ev, c.next_payload());
        }
        if c.done() {
            ev.quit();
        }
    })?;
    sock.connect(&addr)?;
    {
        let mut c = state.borrow_mut();
        while c.may_send() {
            sock.send(&mut ev, c.next_payload()).map_err(|e| format!("sending to {addr}: {e}"))?;
        }
    }
    // Frees the window slots of lost datagrams, and stops when all is done.
    let (st, s2) = (Rc::clone(&state), sock.clone());
    ev.run_every(Duration::from_millis(50), move |ev| {
        let mut c = st.borrow_mut();
        c.expire();
        while c.may_send() {
            let _ = s2.send(ev, c.next_payload());
        }
        if c.done() {
            ev.quit();
        }
    });
    ev.run()?;
    let c = state.borrow();
    let secs = c.started.elapsed().as_secs_f64();
    println!(
        "sent={} answered={} lost={} bad={} secs={secs:.3} datagrams/s={:.0} (size {} B, inflight {}, dispatcher {})",
        c.sent,
        c.answered,
        c.lost,
        c.bad,
        c.answered as f64 / secs,
        c.size,
        c.inflight,
        ev.dispatcher_name()
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::main(|| match cli.mode {
        None => server(cli.addr, &cli.dispatcher),
        Some(Mode::Client { load, count }) => client(load, Some(count), None),
        Some(Mode::Flood { load, seconds }) => client(load, None, Some(seconds)),
    })
}
