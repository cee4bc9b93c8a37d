//! The learning material kept honest, one test crate: the examples as black
//! boxes (`examples_cli`, `example_flags`, `kv`, `chat`, `chat_processes`, `proxy`, `herd`,
//! `handoff`, `uring_echo`), the README's snippet (`readme_snippet`), the
//! tour's concept index and the small tests its rows point to
//! (`concept_index`), the links and figures of README and `docs/` (`links`),
//! the tour chapters' 本章要点 and exercises with the flags their commands
//! use (`exercises`), the course's corrected claims (`course_claims`), and
//! the `pubsub` broker a new user wrote on the public API. Most need the example binaries that `cargo test`
//! builds (`cargo test --test learn` alone does not build them).
//!
//! The tests that need process-wide state (a SIGCHLD handler) run it in a
//! child process: this binary re-executed for one ignored test
//! (`common::test_name`).

// `herd` and `proxy` each include their example's source (`#[path]`), and
// both examples include `examples/common/cli.rs`: two copies, on purpose.
#![allow(clippy::duplicate_mod)]

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod chat;
mod chat_processes;
mod concept_index;
mod course_claims;
mod example_flags;
mod examples_cli;
mod exercises;
mod handoff;
mod herd;
mod kernel_and_sockets;
mod kv;
mod links;
mod plots;
mod proxy;
mod pubsub;
mod readme_snippet;
mod uring_echo;
