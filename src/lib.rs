//! # muxloop
//!
//! A Reactor-style network framework whose I/O multiplexer is pluggable: one
//! [`Dispatcher`] trait with three implementations, [`SelectDispatcher`],
//! [`PollDispatcher`] and [`EpollDispatcher`], under one [`EventLoop`].
//!
//! The default backend is picked at compile time by `build.rs` from the
//! features `epoll` (default), `poll` and `select`; all three are always
//! compiled on Linux, so one program can compare them.
//! [`default_dispatcher_name`] says which one a build got.
//!
//! Layers, bottom to top: [`sys`] (every libc call), [`dispatcher`] (the
//! multiplexers), [`event_loop`] (the reactor: channels, timers, tasks),
//! [`buffer`] (per-connection byte queues), [`thread_pool`] (one loop per
//! thread), [`net`] (TCP server, connection, client) and, with the `http`
//! feature (on by default), `http` (an HTTP/1.1 server).
//!
//! **Learning?** Start with the [tour]: the course this crate descends from,
//! chapter by chapter, with the ladder of examples from a blocking server to
//! the multi-reactor. The [concept index](tour::concepts) maps every concept
//! to its code, example and test.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod buffer;
pub mod dispatcher;
pub mod event_loop;
#[cfg(feature = "http")]
pub mod http;
pub mod net;
pub mod process;
pub mod sys;
pub mod thread_pool;
pub mod tour;

pub use buffer::Buffer;
#[cfg(muxloop_has_epoll)]
pub use dispatcher::EpollDispatcher;
#[cfg(target_os = "linux")]
pub use dispatcher::UringDispatcher;
pub use dispatcher::{
    AnyDispatcher, DefaultDispatcher, Dispatcher, Event, Events, Interest, Mode, PollDispatcher, Ready,
    SelectDispatcher, default_dispatcher_name,
};
pub use event_loop::{EventLoop, LoopHandle, Stats, TimerId};
pub use net::{
    Callbacks, ConnectOptions, ConnectionHandle, ConnectionOptions, Handler, HandlerFactory, TcpClient,
    TcpConnection, TcpServer, TcpServerBuilder,
};
pub use net::{
    Datagram, DatagramOptions, DatagramSocket, DatagramStats, PipeReader, UdpSocket, UnixAddr, UnixDatagram,
};
pub use thread_pool::{EventLoopThread, EventLoopThreadPool};
