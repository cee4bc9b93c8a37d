//! UDP echo: every datagram goes back to its sender, whole.
//!
//! ```text
//! udp_echo [ADDR] [--dispatcher select|poll|epoll]              server (default 127.0.0.1:9005)
//! udp_echo client ADDR [--count N] [--size B] [--inflight K]   send N datagrams, count the answers
//! udp_echo flood ADDR [--seconds S] [--size B] [--inflight K]  keep K in flight for S seconds
//! ```
//!
//! The client keeps at most K datagrams in flight (UDP has no flow control:
//! a client that does not pace itself just fills the server's receive buffer
//! and loses datagrams). A datagram unanswered for 500 ms counts as lost and
//! frees its window slot. Both modes print one line:
//! `sent=.. answered=.. lost=.. bad=.. secs=.. datagrams/s=..`.

mod common;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{Args, Result};
use muxloop::{DatagramOptions, Dispatcher, EventLoop, UdpSocket};

const USAGE: &str = "\
usage: udp_echo [ADDR] [--dispatcher select|poll|epoll]
       udp_echo client ADDR [--count N] [--size B] [--inflight K] [--dispatcher D]
       udp_echo flood ADDR [--seconds S] [--size B] [--inflight K] [--dispatcher D]
Server on ADDR (default 127.0.0.1:9005); the client modes print
sent=.. answered=.. lost=.. bad=.. secs=.. datagrams/s=..";

/// Kernel buffers for both sides: room for bursts of large datagrams.
const KERNEL_BUFFER: usize = 4 << 20;
/// An answer later than this is counted as lost.
const LOST_AFTER: Duration = Duration::from_millis(500);

fn server<D: Dispatcher + 'static>(args: Args) -> Result {
    let mut ev = EventLoop::<D>::new()?;
    let options = DatagramOptions::new().buffers(Some(KERNEL_BUFFER), Some(KERNEL_BUFFER));
    let sock = UdpSocket::bind_with(&mut ev, args.addr, options, |ev, sock, d| {
        if let Some(real) = d.truncated_from {
            log::warn!("{}: datagram of {real} bytes truncated", d.peer);
            return;
        }
        // A full send queue drops the reply: the client sees it as lost.
        let _ = sock.send_to(ev, d.data, &d.peer);
    })?;
    let stats_sock = sock.clone();
    ev.run_every(Duration::from_secs(10), move |_| log::debug!("{:?}", stats_sock.stats()));
    common::serve(&mut ev, sock.local_addr())
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

fn client<D: Dispatcher + 'static>(args: Args, flood: bool) -> Result {
    let size: usize = args.flag_or("--size", 64)?;
    if !(1..=65_507).contains(&size) {
        return Err(format!("--size {size}: a UDP datagram holds 1..=65507 bytes").into());
    }
    let inflight: usize = args.flag_or("--inflight", 64)?;
    let seconds: f64 = args.flag_or("--seconds", 5.0)?;
    let count: u64 = args.flag_or("--count", 100_000)?;
    let state = Rc::new(RefCell::new(Client {
        size,
        inflight: inflight.max(1),
        count: (!flood).then_some(count),
        until: flood.then(|| Instant::now() + Duration::from_secs_f64(seconds.clamp(0.0, 86_400.0))),
        started: Instant::now(),
        sent: 0,
        answered: 0,
        lost: 0,
        bad: 0,
        pending: VecDeque::new(),
        payload: vec![0x5a; size],
    }));
    let mut ev = EventLoop::<D>::new()?;
    let local: SocketAddr = if args.addr.is_ipv6() { "[::]:0".parse()? } else { "0.0.0.0:0".parse()? };
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
    sock.connect(&args.addr)?;
    {
        let mut c = state.borrow_mut();
        while c.may_send() {
            sock.send(&mut ev, c.next_payload()).map_err(|e| format!("sending to {}: {e}", args.addr))?;
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
        D::NAME
    );
    Ok(())
}

fn main() -> Result {
    common::init_logging();
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let mode = match argv.first().map(String::as_str) {
        Some(m @ ("client" | "flood")) => {
            let m = m.to_owned();
            argv.remove(0);
            if argv.first().is_none_or(|a| a.starts_with('-')) {
                return Err(format!("udp_echo {m} needs an ADDR\n{USAGE}").into());
            }
            m
        }
        _ => "server".to_owned(),
    };
    let args = Args::parse_from(argv.into_iter(), 9005)?;
    let name = args.dispatcher.clone();
    match mode.as_str() {
        "client" => with_dispatcher!(name.as_str(), client(args, false)),
        "flood" => with_dispatcher!(name.as_str(), client(args, true)),
        _ => with_dispatcher!(name.as_str(), server(args)),
    }
}
