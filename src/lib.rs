//! # muxloop
//!
//! A Reactor-style network framework whose I/O multiplexer is pluggable: one
//! [`Dispatcher`] trait with four implementations, [`SelectDispatcher`],
//! [`PollDispatcher`], [`EpollDispatcher`] and `UringDispatcher` (io_uring),
//! under one [`EventLoop`].
//!
//! The default backend is picked at compile time by `build.rs` from the
//! features `epoll` (default), `uring`, `poll` and `select`; all four are
//! always compiled on Linux, so one program can compare them. Without epoll
//! (another Unix, or Linux built with `RUSTFLAGS="--cfg muxloop_portable"`)
//! select and poll are compiled, poll is the default, and the library takes
//! only POSIX paths (see [`sys`]); Linux is what is tested, the portable cfg
//! exercises those paths on Linux, a real non-Linux target is not tested.
//! [`default_dispatcher_name`] says which one a build got, and
//! [`AnyDispatcher`] chooses one by name at run time instead.
//!
//! Layers, bottom to top: [`sys`] (the libc layer for sockets and fds; the
//! dispatchers make their own system calls through the same macro),
//! [`dispatcher`] (the multiplexers: [`dispatcher::select`],
//! [`dispatcher::poll`], [`dispatcher::epoll`], [`dispatcher::uring`] explain
//! each system call), [`event_loop`] (the reactor: channels, timers, tasks),
//! [`buffer`] (per-connection byte queues), [`thread_pool`] (one loop per
//! thread), [`net`] (TCP: [`net::acceptor`], [`net::connection`],
//! [`net::client`]; datagrams; pipes), [`framing`]
//! (length-prefixed messages) and, with the `http`
//! feature (on by default), `http` (an HTTP/1.1 server).
//!
//! **Learning?** Start with the [tour]: the course this crate descends from,
//! chapter by chapter, with the ladder of examples from a blocking server to
//! the multi-reactor. The [concept index](tour::concepts) maps every concept
//! to its code, example and test.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
// Unsafe code lives in the system-call layer and the backends only, and
// every block says why it is sound.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod buffer;
#[allow(unsafe_code)]
pub mod dispatcher;
pub mod event_loop;
pub mod framing;
#[cfg(feature = "http")]
pub mod http;
pub mod net;
pub mod process;
#[allow(unsafe_code)]
pub mod sys;
pub mod thread_pool;
pub mod tour;
#[cfg(muxloop_has_uring)]
#[allow(unsafe_code)]
pub mod uring;

pub use buffer::Buffer;
#[cfg(muxloop_has_epoll)]
pub use dispatcher::EpollDispatcher;
#[cfg(muxloop_has_uring)]
pub use dispatcher::UringDispatcher;
pub use dispatcher::{
    AnyDispatcher, DefaultDispatcher, Dispatcher, Event, Events, Interest, Mode, PollDispatcher, Ready,
    SelectDispatcher, default_dispatcher_name,
};
pub use event_loop::{EventLoop, LoopHandle, SignalInfo, SignalSource, Stats, TimerId};
pub use net::{
    Callbacks, Client, ConnectOptions, Connection, ConnectionHandle, ConnectionOptions, Handler,
    HandlerFactory, Listener, Server, ServerBuilder, StopSummary, StreamAddr, Trigger,
};
pub use net::{
    Datagram, DatagramOptions, DatagramSocket, DatagramStats, PipeReader, UdpSocket, UnixAddr, UnixDatagram,
};
pub use thread_pool::{EventLoopThread, EventLoopThreadPool};
