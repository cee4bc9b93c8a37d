//! The HTTP/1.1 server on every dispatcher, one test crate (built only with
//! the `http` feature: `required-features` in Cargo.toml):
//!
//! * `suite` — keep-alive, pipelining, limits and timeouts, graceful stop,
//!   real clients; then exact cases on a loop the test drives;
//! * `conformance` — one test per RFC 9110/9112 rule;
//! * `answers` — streamed bodies and answers that come later;
//! * `files` — `http_server --root`: files by `sendfile`, traversal refused.
//!
//! `tests/http_memory.rs` stays a crate of its own: its counting global
//! allocator counts the whole process.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod answers;
mod conformance;
mod files;
mod suite;
