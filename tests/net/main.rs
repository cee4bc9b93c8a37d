//! Sockets and pipes on the loop, every dispatcher, one test crate:
//!
//! * `tcp`, `api` — echo integrity, half-close, resets, the high-water mark,
//!   the connector; the connection API (output limit, timers, sends, interest);
//! * `edge_trigger` — connections on the edge-triggered path;
//! * `unix_stream`, `fd_passing` — the same machinery over Unix stream
//!   sockets; fds passed with `SCM_RIGHTS`;
//! * `udp`, `unix_datagram` — datagram sockets, UDP and Unix;
//! * `pipe_reader` — pipes and stdin on the loop;
//! * `bounded_send` — `try_send` refusing a full connection, `Server::loops`.
//!
//! Each module ends with its exact cases (tests written to kill mutants that
//! survived the rest; `docs/mutants.md` lists each).

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod api;
mod bounded_send;
mod edge_trigger;
mod fd_passing;
mod pipe_reader;
mod tcp;
mod udp;
mod unix_datagram;
mod unix_stream;
