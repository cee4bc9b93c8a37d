//! Chat fan-out: peers join at random moments; every line a peer sends
//! goes to every other member; a
//! member whose queued output passes a limit is kicked by the handler of
//! whoever is sending (one connection's handler closing another, in the
//! middle of a batch whose order is shuffled: the fd-reuse path). Some
//! peers read rarely, so they get kicked; partway through, the server is
//! stopped gracefully with lines still in flight.
//!
//! Invariants, after every step: each line a peer received is intact, from
//! another peer, and for each sender the sequence numbers it received are
//! consecutive (nothing lost, repeated or reordered while it was a
//! member); no busy loop, no hang. At the end: `Server::stop` accounts for
//! every connection, every peer's connection ends, and no simulated fd is
//! left open.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::time::Duration;

use muxloop::sim::{Peer, Rng, Sim, SimConfig};
use muxloop::{Buffer, Connection, EventLoop, Handler, Server, SimDispatcher, Trigger};

use crate::harness::{Fnv, Outcome, Progress, assert_deterministic, faults_for, init_logging, run_seeds};

type Ev = EventLoop<SimDispatcher>;
type Conn = Connection<SimDispatcher>;

/// A member queueing more than this is kicked.
const KICK_LIMIT: usize = 16 << 10;

/// The loop's members, in the loop's context.
#[derive(Default)]
struct Members(Vec<Conn>);

struct Chat;

impl Handler<SimDispatcher> for Chat {
    fn on_connect(&mut self, ev: &mut Ev, conn: &Conn) {
        ev.context::<Members>().0.push(conn.clone());
    }

    fn on_message(&mut self, ev: &mut Ev, conn: &Conn, input: &mut Buffer) {
        while let Some(eol) = input.find_byte(b'\n') {
            let line = input.take(eol + 1);
            let others: Vec<Conn> =
                ev.context::<Members>().0.iter().filter(|m| m.id() != conn.id()).cloned().collect();
            for member in others {
                if member.queued_output() + line.len() > KICK_LIMIT {
                    member.force_close(ev);
                } else {
                    let _ = member.send(ev, &line);
                }
            }
        }
    }

    fn on_close(&mut self, ev: &mut Ev, conn: &Conn) {
        ev.context::<Members>().0.retain(|m| m.id() != conn.id());
    }
}

struct ChatPeer {
    /// Connected when first picked: members join at random moments.
    peer: Option<Peer>,
    /// Lines to send, and how many are sent.
    lines: u64,
    sent_bytes: usize,
    next_line: Vec<u8>,
    /// Bytes received and not yet a whole line.
    partial: Vec<u8>,
    /// Per sender: the last sequence number received.
    last_from: BTreeMap<u64, u64>,
    received: u64,
    /// How often it reads (slow readers get kicked).
    read_odds: f64,
    ended: Option<ErrorKind>,
}

impl ChatPeer {
    fn line(me: usize, seq: u64) -> Vec<u8> {
        format!("s{me}:{seq}:{}\n", "x".repeat((seq % 97) as usize)).into_bytes()
    }

    /// Takes in what arrived; checks every whole line.
    fn take_in(&mut self, me: usize, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
        while let Some(eol) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=eol).collect();
            let text = String::from_utf8(line).expect("a line is text");
            let mut fields = text.trim_end().splitn(3, ':');
            let sender: u64 =
                fields.next().and_then(|s| s.strip_prefix('s')).and_then(|s| s.parse().ok()).expect("sender");
            let seq: u64 = fields.next().and_then(|s| s.parse().ok()).expect("sequence");
            assert_eq!(
                text.as_bytes(),
                &ChatPeer::line(sender as usize, seq)[..],
                "peer {me}: a line arrived damaged"
            );
            assert_ne!(sender, me as u64, "peer {me} got its own line back");
            if let Some(&last) = self.last_from.get(&sender) {
                assert_eq!(seq, last + 1, "peer {me}: from peer {sender}, line {seq} came after line {last}");
            }
            self.last_from.insert(sender, seq);
            self.received += 1;
        }
    }
}

pub fn chat_scenario(seed: u64) -> Outcome {
    let faults = faults_for(seed);
    let mut rng = Rng::new(seed);
    let sim = Sim::start(SimConfig::new(seed).faults(faults)).expect("no other Sim on this thread");
    let mut ev: Ev = EventLoop::new().unwrap();
    let trigger = if rng.chance(0.5) { Trigger::Edge } else { Trigger::Level };
    let server = Server::builder("127.0.0.1:6667", |_: &Conn| Chat)
        .threads(0)
        .trigger(trigger)
        .start(&mut ev)
        .unwrap();
    let addr = server.local_addr().as_inet().unwrap();
    let mut peers: Vec<ChatPeer> = (0..rng.between(2, 6))
        .map(|_| ChatPeer {
            peer: None,
            lines: rng.between(0, 200),
            sent_bytes: 0,
            next_line: Vec::new(),
            partial: Vec::new(),
            last_from: BTreeMap::new(),
            received: 0,
            read_odds: if rng.chance(0.3) { 0.01 } else { 0.5 },
            ended: None,
        })
        .collect();
    let stop_at = rng.between(50, 3000);

    let (mut steps, mut progress) = (0u64, Progress::new(5_000));
    while steps < stop_at && peers.iter().any(|p| p.ended.is_none()) {
        steps += 1;
        let me = rng.below(peers.len());
        let p = &mut peers[me];
        match rng.below(4) {
            _ if p.peer.is_none() => p.peer = Some(sim.connect(addr).unwrap()),
            0 if p.ended.is_none() && p.lines > 0 => {
                if p.next_line.is_empty() {
                    p.next_line = ChatPeer::line(me, 200 - p.lines);
                }
                match p.peer.as_ref().unwrap().write(&p.next_line) {
                    Ok(n) => {
                        p.sent_bytes += n;
                        p.next_line.drain(..n);
                        if p.next_line.is_empty() {
                            p.lines -= 1;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => p.ended = Some(e.kind()), // kicked, or a fault
                }
            }
            1 if p.ended.is_none() && rng.chance(p.read_odds) => {
                match p.peer.as_ref().unwrap().read_available() {
                    Ok(bytes) => p.take_in(me, &bytes),
                    Err(e) => p.ended = Some(e.kind()),
                }
            }
            _ => {
                progress.run_pass(&mut ev, Duration::from_millis(rng.between(0, 10)));
            }
        }
        let moved: u64 = peers.iter().map(|p| p.received + p.sent_bytes as u64).sum();
        progress.check(moved, &ev, || format!("{} peers", peers.len()));
    }

    // Stop with lines in flight: every connection is accounted for.
    let live = server.live_connections();
    let summary = server.stop(&mut ev, Duration::from_secs(5)).unwrap();
    assert_eq!(summary.closed_cleanly + summary.forced, live, "{summary}");
    // Every peer's connection has ended: it reads what was left, then the end.
    for (me, p) in peers.iter_mut().enumerate() {
        let Some(peer) = p.peer.take() else { continue };
        for _ in 0..1_000 {
            if p.ended.is_some() {
                break;
            }
            match peer.read_available() {
                Ok(bytes) => p.take_in(me, &bytes),
                Err(e) => p.ended = Some(e.kind()),
            }
        }
        assert!(p.ended.is_some(), "peer {me}: its connection never ended after the server stopped");
    }
    drop(ev);
    assert_eq!(
        sim.open_fds(),
        0,
        "simulated fds left open after the server stopped and the loop was dropped"
    );

    let mut hash = Fnv::new();
    for p in &peers {
        hash.add(format!("{} {:?} {:?}", p.received, p.last_from, p.ended).as_bytes());
    }
    hash.add(format!("{:?}", sim.injected()).as_bytes());
    Outcome { transcript: hash.finish(), bytes: peers.iter().map(|p| p.sent_bytes as u64).sum(), steps }
}

#[test]
fn chat() {
    init_logging();
    run_seeds("chat", 3_000, chat_scenario);
}

#[test]
fn chat_is_deterministic() {
    assert_deterministic(chat_scenario);
}
