//! io_uring in one place: the ring itself (`ring.rs`: setting it up,
//! entering the kernel to submit and wait, a full submission queue), the
//! readiness backend built on its polls ([`readiness`], the
//! [`UringDispatcher`](crate::UringDispatcher)), and the proactor that lets
//! the kernel do the I/O ([`proactor`]).
//!
//! It teaches the two ways to use a completion interface. As a *reactor*
//! backend, io_uring answers "which fds are ready?" with polls, and the
//! program still makes its own `recv`/`send` calls; the other backends'
//! contract holds. As a *proactor*, the program hands the kernel whole
//! operations (accept, receive into a buffer the kernel picks, send) and
//! learns when they are done: one `io_uring_enter` per loop pass can carry
//! hundreds of them, which is where its system-call savings come from.
//!
//! Under `dispatcher::` the same modules are reachable as
//! `dispatcher::uring` and `dispatcher::proactor`, where the backends are.

pub mod proactor;
pub mod readiness;
pub(crate) mod ring;
