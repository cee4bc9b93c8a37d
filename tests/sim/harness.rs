//! Seeds, replay, the determinism check and the progress watch, shared
//! by the scenarios.

use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use muxloop::sim::{Faults, Rng};
use muxloop::{EventLoop, SimDispatcher};

/// Steps in a row without progress before a run counts as hung.
const STALL_STEPS: u64 = 20_000;

/// Watches a scenario for the two ways a loop fails without damaging a
/// byte: a busy loop (events that move nothing) and a hang (steps in which
/// nothing moves).
#[derive(Debug)]
pub struct Progress {
    /// Events in a row that may move nothing before it is a busy loop.
    busy_limit: u64,
    moved: u64,
    quiet_steps: u64,
    busy_events: u64,
}

impl Progress {
    pub fn new(busy_limit: u64) -> Progress {
        Progress { busy_limit, moved: 0, quiet_steps: 0, busy_events: 0 }
    }

    /// One pass of the loop, waiting at most `timeout`; its events count.
    pub fn run_pass(&mut self, ev: &mut EventLoop<SimDispatcher>, timeout: Duration) {
        let before = ev.stats().events_reported;
        ev.run_once(Some(timeout)).unwrap();
        self.busy_events += ev.stats().events_reported - before;
    }

    /// After each step: `moved` is the scenario's count of what has moved
    /// so far (bytes, ends); `state` describes the peers for a failure.
    pub fn check(&mut self, moved: u64, ev: &EventLoop<SimDispatcher>, state: impl FnOnce() -> String) {
        if moved != self.moved {
            (self.moved, self.quiet_steps, self.busy_events) = (moved, 0, 0);
        } else {
            self.quiet_steps += 1;
        }
        assert!(
            self.busy_events < self.busy_limit,
            "busy loop: {} events moved no byte ({:?})",
            self.busy_events,
            ev.stats()
        );
        assert!(
            self.quiet_steps < STALL_STEPS,
            "hung: nothing moved in {} steps; peers: {}",
            self.quiet_steps,
            state()
        );
    }
}

/// What one seed's run produced: the application-level transcript (what
/// each peer received and how each connection ended), hashed, plus figures.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub transcript: u64,
    pub bytes: u64,
    pub steps: u64,
}

/// FNV-1a, to fold a transcript into one number.
#[derive(Debug)]
pub struct Fnv(u64);

impl Fnv {
    pub fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub fn add(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// The faults for `seed`: a swarm-chosen subset (seed 0..: the first of
/// every 8 seeds runs fault-free, so the plain paths are covered too).
pub fn faults_for(seed: u64) -> Faults {
    if seed.is_multiple_of(8) { Faults::none() } else { Faults::swarm(&mut Rng::new(seed ^ 0x5eed_f417)) }
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.parse().unwrap_or_else(|_| panic!("{name}={value:?} is not a number")))
}

/// Runs `scenario` for `MUXLOOP_SIM_SEED` alone, or for seeds
/// `0..MUXLOOP_SIM_SEEDS` (default `default_seeds`); a failing seed panics
/// with its replay command. Returns the outcomes.
pub fn run_seeds(name: &str, default_seeds: u64, scenario: impl Fn(u64) -> Outcome) -> Vec<Outcome> {
    let seeds: Vec<u64> = match env_u64("MUXLOOP_SIM_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("MUXLOOP_SIM_SEEDS").unwrap_or(default_seeds)).collect(),
    };
    let started = Instant::now();
    let mut outcomes = Vec::with_capacity(seeds.len());
    for &seed in &seeds {
        match panic::catch_unwind(AssertUnwindSafe(|| scenario(seed))) {
            Ok(outcome) => outcomes.push(outcome),
            Err(cause) => {
                let why = cause
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| cause.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!(
                    "{name}: seed {seed} failed ({:?}): {why}\n\
                     replay: MUXLOOP_SIM_SEED={seed} RUST_LOG=trace cargo test --test sim {name} -- --nocapture",
                    faults_for(seed)
                );
            }
        }
    }
    let took = started.elapsed();
    eprintln!(
        "{name}: {} seeds in {:.2?} ({:.0} seeds/s), {} bytes through, {} steps",
        seeds.len(),
        took,
        seeds.len() as f64 / took.as_secs_f64(),
        outcomes.iter().map(|o| o.bytes).sum::<u64>(),
        outcomes.iter().map(|o| o.steps).sum::<u64>(),
    );
    outcomes
}

/// Runs each of `seeds` twice and requires the same outcome (transcript,
/// faults, figures), and two seeds to differ: what makes a failure
/// replayable.
pub fn assert_deterministic(scenario: impl Fn(u64) -> Outcome) {
    for seed in [1, 2, 3, 9, 77, 1234] {
        assert_eq!(scenario(seed), scenario(seed), "seed {seed} ran twice");
    }
    assert_ne!(scenario(1).transcript, scenario(2).transcript, "different seeds differ");
}

/// Installs `env_logger` once, so `RUST_LOG=trace` narrates a replay.
pub fn init_logging() {
    let _ = env_logger::builder().is_test(true).try_init();
}
