//! The `Dispatcher` contract and the `EventLoop` built on it, one test crate:
//!
//! * `suite` — the contract on every dispatcher (readiness, level, oneshot and
//!   edge, hang-ups and errors, fd reuse, timers, cross-thread tasks, fds above
//!   `FD_SETSIZE`, 5,000 fds, a model-checked random walk), then exact cases;
//! * `event_loop` — loop identity and names, `stats()`, `Debug`, handles,
//!   the context map, registered-fd bookkeeping, timers at the edges;
//! * `timers` — timers with finite upper bounds;
//! * `counter_examples` — the course's mistakes made on purpose (writable
//!   interest left on spins, edge-triggered without draining stalls, ...),
//!   each next to the right way; the one at the fd limit runs in a child;
//! * `uring` — what only the io_uring backend has to get right.
//!
//! They share one process, so they share its fd rules (see `suite`): fd-number
//! reuse happens in private ranges of high numbers, the fd limit is only
//! raised, and tests that open thousands of fds take turns.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod counter_examples;
mod event_loop;
mod suite;
mod timers;
#[cfg(target_os = "linux")]
mod uring;
