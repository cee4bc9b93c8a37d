//! Scenarios over the whole stack on the simulated kernel (`muxloop::sim`):
//! many seeds, each with its own buffer sizes, pacing and a random subset
//! of faults, and invariants checked after every step.
//!
//! A failing seed panics with the one command that replays it:
//! `MUXLOOP_SIM_SEED=<seed> cargo test --test sim <scenario>` (add
//! `RUST_LOG=trace` and `-- --nocapture` to watch every fault and
//! dispatch). `MUXLOOP_SIM_SEEDS=<n>` sets how many seeds a scenario runs
//! (`cargo test --release --test sim -- --nocapture` with a large n is
//! the long run; see docs/simulation.md).

mod chat;
mod echo;
/// Held to Linux's epoll, so compiled where epoll is.
#[cfg(muxloop_has_epoll)]
mod fidelity;
mod harness;
#[cfg(feature = "http")]
mod http;
