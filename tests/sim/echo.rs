//! Echo integrity: many peers, random sizes and pacing, half-close at the
//! end (or early), a bounded server, and the kernel's faults in between.
//!
//! Invariants, after every step:
//! * each peer has received a prefix of what it sent, in order, once;
//! * queued output per connection stays within the output limit plus one read;
//! * the loop makes progress: no long run of passes that move no byte
//!   (a busy loop) and no long stretch of virtual time in which nothing
//!   moves while a peer still waits (a hang);
//!
//! and at the end: every peer got all it sent and then end of file (or,
//! where a fault ended its connection, a prefix and an error or EOF); a
//! peer that talked and fell silent is closed by the idle timeout, not
//! before it and at most one sweep (plus the clock's faults) after, with
//! no event reported in between but the injected spurious ones; the server stops cleanly, and
//! no simulated fd is left open.

use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use muxloop::sim::{Fault, Peer, Rng, Sim, SimConfig};
use muxloop::{Buffer, Connection, Dispatcher, EventLoop, Handler, Server, SimDispatcher, Trigger};

use crate::harness::{Fnv, Outcome, Progress, assert_deterministic, faults_for, init_logging, run_seeds};

type Ev = EventLoop<SimDispatcher>;

/// Sends back what it reads, and stops reading while its output is full.
struct Echo;

impl<D: Dispatcher + 'static> Handler<D> for Echo {
    fn on_message(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>, input: &mut Buffer) {
        if conn.is_output_full() {
            return;
        }
        let _ = conn.send(ev, input.peek());
        input.consume_all();
    }
}

#[derive(Debug, Default)]
struct PeerState {
    peer: Option<Peer>,
    plan: Vec<u8>,
    sent: usize,
    got: Vec<u8>,
    shut: bool,
    ended: Option<ErrorKind>,
    /// How much of `got` has been compared with `plan` already.
    checked: usize,
}

impl PeerState {
    fn live(&self) -> bool {
        self.ended.is_none()
    }
}

/// Events in a row that may move no byte before the run counts as a busy loop.
const BUSY_EVENTS: u64 = 2_000;
const OUTPUT_LIMIT: usize = 64 << 10;
const IDLE: Duration = Duration::from_secs(120);
/// How late an idle close may come: one sweep period, plus 2 s for each
/// clock jump and 50 ms for each late wake-up injected meanwhile.
const SWEEP: Duration = Duration::from_secs(1);

fn payload(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut state = rng.next_u64();
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (state >> 56) as u8
        })
        .collect()
}

/// One seed of the echo scenario.
/// What a seed fixes before the first step: the server's trigger and read
/// budget, each peer's payload, and the dice for the pacing after.
struct Setup {
    trigger: Trigger,
    pass_budget: usize,
    plans: Vec<Vec<u8>>,
    rng: Rng,
}

fn setup(seed: u64) -> Setup {
    let mut rng = Rng::new(seed);
    let trigger = if rng.chance(0.5) { Trigger::Edge } else { Trigger::Level };
    let pass_budget = rng.between(1, 128 << 10) as usize;
    let plans = (0..rng.between(1, 8))
        .map(|_| {
            let len = match rng.below(10) {
                0 => 0,
                1 => rng.between(1, 256 << 10) as usize,
                _ => rng.between(1, 8 << 10) as usize,
            };
            payload(&mut rng, len)
        })
        .collect();
    Setup { trigger, pass_budget, plans, rng }
}

fn echo_server<D: Dispatcher + 'static>(
    ev: &mut EventLoop<D>,
    addr: &str,
    (trigger, budget): (Trigger, usize),
) -> Server<D> {
    Server::builder(addr, |_: &Connection<D>| Echo)
        .threads(0)
        .trigger(trigger)
        .output_limit(OUTPUT_LIMIT)
        .idle_timeout(Some(IDLE))
        .pass_budget(budget)
        .start(ev)
        .unwrap()
}

/// What the application saw, per peer: how many bytes came back, their
/// hash, and how the connection ended (the transcript a run over the real
/// kernel must match).
fn app_transcript<'a>(peers: impl Iterator<Item = (&'a [u8], Option<ErrorKind>)>) -> Vec<String> {
    peers
        .map(|(got, ended)| {
            let mut hash = Fnv::new();
            hash.add(got);
            format!("{} bytes, hash {:016x}, ended {ended:?}", got.len(), hash.finish())
        })
        .collect()
}

/// One seed of the echo scenario.
pub fn echo_scenario(seed: u64) -> Outcome {
    run_echo(seed).0
}

fn run_echo(seed: u64) -> (Outcome, Vec<String>) {
    let faults = faults_for(seed);
    let ends_connections = faults.ends_connections();
    let sim = Sim::start(SimConfig::new(seed).faults(faults)).expect("no other Sim on this thread");
    let mut ev: Ev = EventLoop::new().unwrap();
    let Setup { trigger, pass_budget, plans, mut rng } = setup(seed);
    let server = echo_server(&mut ev, "127.0.0.1:7", (trigger, pass_budget));
    let addr = server.local_addr().as_inet().unwrap();
    let mut peers: Vec<PeerState> =
        plans.into_iter().map(|plan| PeerState { plan, ..Default::default() }).collect();

    let (mut steps, mut progress) = (0u64, Progress::new(BUSY_EVENTS));
    while peers.iter().any(PeerState::live) {
        steps += 1;
        let i = rng.below(peers.len());
        let p = &mut peers[i];
        match rng.below(10) {
            _ if p.peer.is_none() && p.live() => match sim.connect(addr) {
                Ok(peer) => p.peer = Some(peer),
                Err(e) => panic!("peer {i}: connect: {e}"),
            },
            0..=3 if p.live() && !p.shut => {
                let peer = p.peer.as_ref().unwrap();
                if p.sent == p.plan.len() || (ends_connections && rng.chance(0.01)) {
                    // Done (or, rarely, giving up early): half-close.
                    let _ = peer.shutdown_write();
                    p.plan.truncate(p.sent);
                    p.shut = true;
                } else {
                    let most = if rng.chance(0.5) { 512 } else { 64 << 10 };
                    let chunk = rng.between(1, most) as usize;
                    let end = (p.sent + chunk).min(p.plan.len());
                    match peer.write(&p.plan[p.sent..end]) {
                        Ok(n) => p.sent += n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(e) if ends_connections => p.ended = Some(e.kind()),
                        Err(e) => panic!("peer {i}: write: {e}"),
                    }
                }
            }
            4..=6 if p.live() => match p.peer.as_ref().unwrap().read_available() {
                Ok(bytes) => p.got.extend(bytes),
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => p.ended = Some(e.kind()),
                Err(e) if ends_connections => p.ended = Some(e.kind()),
                Err(e) => panic!("peer {i}: read: {e} after {} of {} bytes", p.got.len(), p.sent),
            },
            _ => {
                progress.run_pass(&mut ev, Duration::from_millis(rng.between(0, 20)));
            }
        }
        check_prefixes(&mut peers);
        check_output_bound(&server, &mut ev);
        let moved = peers.iter().map(|p| p.sent + p.got.len() + p.ended.is_some() as usize).sum::<usize>();
        progress.check(moved as u64, &ev, || describe(&peers));
    }

    for (i, p) in peers.iter().enumerate() {
        if ends_connections {
            assert!(p.plan.starts_with(&p.got), "peer {i}");
        } else {
            assert_eq!(p.ended, Some(ErrorKind::UnexpectedEof), "peer {i} ended with end of file");
            assert!(p.got == p.plan, "peer {i}: got {} of {} bytes back", p.got.len(), p.plan.len());
        }
    }
    idle_phase(&sim, &mut ev, addr, ends_connections);
    let summary = server.stop(&mut ev, Duration::from_secs(5)).unwrap();
    assert_eq!(summary.forced, 0, "every connection was closed when its peer's ended");
    drop(ev);
    assert_eq!(sim.open_fds(), 0, "simulated fds left open after the loop and server were dropped");

    let app = app_transcript(peers.iter().map(|p| (&p.got[..], p.ended)));
    let mut hash = Fnv::new();
    for p in &peers {
        hash.add(&(p.got.len() as u64).to_le_bytes());
        hash.add(&p.got);
        hash.add(format!("{:?}", p.ended).as_bytes());
    }
    let injected = sim.injected();
    hash.add(format!("{injected:?}").as_bytes());
    let outcome =
        Outcome { transcript: hash.finish(), bytes: peers.iter().map(|p| p.got.len() as u64).sum(), steps };
    (outcome, app)
}

/// A peer that talks, then falls silent: while it is silent the loop
/// reports nothing for it (a connection whose output once queued must not
/// leave write interest on: a busy loop), and it is closed when the idle
/// timeout is due, not before. Faults that end connections may end it
/// early, with an error.
fn idle_phase(sim: &Sim, ev: &mut Ev, addr: std::net::SocketAddr, ends_connections: bool) {
    let peer = sim.connect(addr).unwrap();
    // More than any buffer holds, so the echo has to queue and wait for room.
    let message = vec![7u8; 128 << 10];
    let (mut sent, mut got, mut passes) = (0, 0, 0);
    loop {
        passes += 1;
        assert!(passes < 100_000, "the 128 KiB exchange stalled at {sent} sent, {got} back");
        match peer.write(&message[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) if ends_connections => return,
            Err(e) => panic!("idle peer: write: {e}"),
        }
        match peer.read_available() {
            Ok(bytes) => got += bytes.len(),
            Err(_) if ends_connections => return,
            Err(e) => panic!("idle peer: read: {e}"),
        }
        if got == message.len() {
            break; // silent from now: the server's last write was in the last pass
        }
        ev.run_once(Some(Duration::ZERO)).unwrap();
    }
    let since = sim.elapsed();
    let (events_before, faults_before) = (ev.stats().events_reported, sim.injected());
    passes = 0;
    while !peer.is_closed() {
        passes += 1;
        assert!(
            passes < 1_000,
            "the idle connection is still open after {passes} passes ({:?})",
            sim.elapsed() - since
        );
        // No timeout of our own: the loop must wake for its timers by itself.
        ev.run_once(None).unwrap();
    }
    let waited = sim.elapsed() - since;
    if ends_connections && waited < IDLE {
        return;
    }
    let injected = |fault| {
        let count = |list: &[(Fault, u64)]| list.iter().find(|(f, _)| *f == fault).map_or(0, |(_, n)| *n);
        (count(&sim.injected()) - count(&faults_before)) as u32
    };
    let (jumps, late) = (injected(Fault::ClockJump), injected(Fault::LateTimer));
    let slack = SWEEP + Duration::from_secs(2) * jumps + Duration::from_millis(50) * late;
    assert!(waited >= IDLE, "closed after {waited:?} of silence, before the idle timeout of {IDLE:?}");
    assert!(
        waited <= IDLE + slack,
        "closed only after {waited:?} of silence ({jumps} clock jumps, {late} late wake-ups)"
    );
    // Events held back at the end of the exchange may come late (up to 3
    // dispatches each); anything more was spurious or a busy loop.
    let events = ev.stats().events_reported - events_before;
    let allowed = 4 + injected(Fault::SpuriousReady) as u64;
    assert!(events <= allowed, "{events} events while one connection sat idle ({allowed} allowed)");
    assert_eq!(peer.read_available().unwrap_err().kind(), ErrorKind::UnexpectedEof);
}

/// Compares only what arrived since the last check.
fn check_prefixes(peers: &mut [PeerState]) {
    for (i, p) in peers.iter_mut().enumerate() {
        assert!(
            p.got.len() <= p.sent && p.got[p.checked..] == p.plan[p.checked..p.got.len()],
            "peer {i}: the {} bytes echoed are not a prefix of the {} sent",
            p.got.len(),
            p.sent
        );
        p.checked = p.got.len();
    }
}

fn check_output_bound(server: &Server<SimDispatcher>, ev: &mut Ev) {
    let most = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&most);
    server.for_each_connection(ev, move |_, conn| {
        seen.fetch_max(conn.queued_output(), Ordering::Relaxed);
    });
    let most = most.load(Ordering::Relaxed);
    // The handler stops sending at the limit; one read's worth may land on top.
    assert!(most <= OUTPUT_LIMIT + (256 << 10), "{most} bytes queued for one connection");
}

fn describe(peers: &[PeerState]) -> String {
    peers
        .iter()
        .map(|p| {
            format!(
                "[sent {}/{} got {} shut {} ended {:?}]",
                p.sent,
                p.plan.len(),
                p.got.len(),
                p.shut,
                p.ended
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn echo() {
    init_logging();
    run_seeds("echo", 10_000, echo_scenario);
}

#[test]
fn echo_is_deterministic() {
    assert_deterministic(echo_scenario);
}

/// Held to Linux: the same seeds over loopback TCP with epoll.
#[cfg(muxloop_has_epoll)]
mod versus_linux {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;

    /// The same seed's server and payloads over loopback TCP on epoll, each
    /// peer a thread that sends its payload, half-closes and reads to the end.
    fn echo_over_loopback(seed: u64) -> Vec<String> {
        let setup = setup(seed);
        let mut ev: EventLoop<muxloop::EpollDispatcher> = EventLoop::new().unwrap();
        let server = echo_server(&mut ev, "127.0.0.1:0", (setup.trigger, setup.pass_budget));
        let addr = server.local_addr().as_inet().unwrap();
        let handle = ev.handle();
        let clients = std::thread::spawn(move || {
            let peers: Vec<_> = setup
                .plans
                .into_iter()
                .map(|plan| {
                    std::thread::spawn(move || {
                        let stream = TcpStream::connect(addr).unwrap();
                        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                        let mut writer = stream.try_clone().unwrap();
                        let sender = std::thread::spawn(move || {
                            writer.write_all(&plan).unwrap();
                            writer.shutdown(std::net::Shutdown::Write).unwrap();
                        });
                        let mut got = Vec::new();
                        let ended = match (&stream).read_to_end(&mut got) {
                            Ok(_) => ErrorKind::UnexpectedEof,
                            Err(e) => e.kind(),
                        };
                        sender.join().unwrap();
                        (got, Some(ended))
                    })
                })
                .collect();
            let results: Vec<_> = peers.into_iter().map(|p| p.join().unwrap()).collect();
            handle.quit();
            results
        });
        let guard = ev.run_after(Duration::from_secs(60), |ev| ev.quit());
        ev.run().unwrap();
        ev.cancel(guard);
        let results = clients.join().unwrap();
        app_transcript(results.iter().map(|(got, ended)| (&got[..], *ended)))
    }

    /// A fault-free seed gives the same application-level transcript over the
    /// simulator and over loopback TCP with epoll: what each peer got back and
    /// how its connection ended.
    #[test]
    fn echo_matches_linux() {
        for seed in [0, 8, 16, 24, 32, 40] {
            assert!(faults_for(seed) == muxloop::sim::Faults::none(), "seed {seed} is fault-free");
            let (sim, linux) = (run_echo(seed).1, echo_over_loopback(seed));
            let ended_cleanly = |p: &String| p.ends_with("ended Some(UnexpectedEof)");
            assert!(!linux.is_empty() && linux.iter().all(ended_cleanly), "{linux:?}");
            assert_eq!(sim, linux, "seed {seed}: the simulator (left) against Linux (right)");
        }
    }
}
