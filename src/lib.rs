//! # muxloop
//!
//! A Reactor-style network framework whose I/O multiplexer is pluggable: one
//! [`Dispatcher`] trait with four implementations ([`SelectDispatcher`],
//! [`PollDispatcher`], [`EpollDispatcher`] and [`UringDispatcher`] for
//! io_uring) under one [`EventLoop`], with TCP and Unix stream servers and
//! clients, a thread pool of loops, UDP and Unix datagrams, signals as loop
//! events and an HTTP/1.1 server.
//!
//! # Quick start
//!
//! An echo server with a typed handler per connection, on four loop threads,
//! on a backend chosen by name:
//!
//! ```no_run
//! use muxloop::{Buffer, Connection, EventLoop, Handler, Server};
//!
//! /// One per connection, owned by its loop: plain fields, no locks.
//! struct Echo {
//!     bytes: u64,
//! }
//!
//! impl Handler for Echo {
//!     fn on_message(&mut self, ev: &mut EventLoop, conn: &Connection, input: &mut Buffer) {
//!         self.bytes += input.len() as u64;
//!         let _ = conn.send(ev, input.peek());
//!         input.consume_all();
//!     }
//! }
//!
//! // The backend by name: "select", "poll", "epoll" or "uring".
//! let mut ev = EventLoop::with_backend("poll")?;
//! let server = Server::builder("127.0.0.1:9000", |_: &Connection| Echo { bytes: 0 }).threads(4).start(&mut ev)?;
//! println!("listening on {}", server.local_addr());
//! ev.run()?; // the server lives as long as its loop (or until `server.stop(..)`)
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! An HTTP service (the `http` feature, on by default) on two loop threads:
//!
//! ```no_run
//! # #[cfg(feature = "http")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use muxloop::EventLoop;
//! use muxloop::http::{HttpServer, Request, Response, Router};
//!
//! let router = Router::new()
//!     .get("/hello", |_: &Request| Response::text(200, "hello\n"))
//!     .post("/echo", |req: &Request| Response::new(200).body(req.body()));
//! let mut ev = EventLoop::with_backend("epoll")?;
//! let server =
//!     HttpServer::builder("127.0.0.1:8080", move |req: &Request| router.respond(req)).threads(2).start(&mut ev)?;
//! println!("try: curl http://{}/hello", server.local_addr());
//! ev.run()?;
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "http"))]
//! # fn main() {}
//! ```
//!
//! A client that sends a line to the echo server and keeps the answer:
//!
//! ```no_run
//! use muxloop::{Buffer, Client, Connection, EventLoop, Handler};
//! use std::{cell::RefCell, net::SocketAddr, rc::Rc};
//!
//! /// Sends a line and keeps the line that comes back.
//! struct Ask {
//!     reply: Rc<RefCell<String>>,
//! }
//!
//! impl Handler for Ask {
//!     fn on_connect(&mut self, ev: &mut EventLoop, conn: &Connection) {
//!         let _ = conn.send(ev, b"hello\n");
//!     }
//!
//!     fn on_message(&mut self, ev: &mut EventLoop, _conn: &Connection, input: &mut Buffer) {
//!         if let Some(end) = input.find_byte(b'\n') {
//!             *self.reply.borrow_mut() = String::from_utf8_lossy(&input.take(end + 1)).into_owned();
//!             ev.quit(); // one answer is all this client wanted
//!         }
//!     }
//! }
//!
//! let reply = Rc::new(RefCell::new(String::new()));
//! let mut ev = EventLoop::with_backend("epoll")?;
//! let for_handler = Rc::clone(&reply);
//! Client::new("127.0.0.1:9000".parse::<SocketAddr>()?, move |_: &Connection| Ask { reply: Rc::clone(&for_handler) })
//!     .on_connect_error(|ev, e| {
//!         eprintln!("cannot connect: {e}");
//!         ev.quit();
//!     })
//!     .connect(&mut ev);
//! ev.run()?;
//! print!("{}", reply.borrow());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Application code names no backend type: [`EventLoop`], [`Connection`],
//! [`Handler`], [`Server`] and the rest default to [`AnyDispatcher`], whose
//! backend is a value: [`EventLoop::new`] gives the compile-time default
//! ([`DefaultDispatcher`], picked by `build.rs` from the features `epoll`
//! (default), `uring`, `poll` and `select`, as yolanda's CMake check picks
//! `EPOLL_ENABLE`), [`EventLoop::with_backend`] any other by name. Naming a
//! backend, `EventLoop<EpollDispatcher>`, removes the `match` per dispatcher
//! call that the run-time choice costs; the teaching examples do, to show one
//! system call at a time.
//!
//! All four backends are compiled on Linux. Without epoll (another Unix, or
//! Linux built with `RUSTFLAGS="--cfg muxloop_portable"`) select and poll are
//! compiled, poll is the default, and the library takes only POSIX paths
//! (see [`sys`]). Linux is what is tested; the portable cfg exercises those
//! paths on Linux; a real non-Linux target is not tested.
//!
//! # Layers
//!
//! What the crate root re-exports, bottom to top ([`sys`] is the only other
//! layer that calls `libc`):
//!
//! - **Multiplexers** ([`dispatcher`]): [`Dispatcher`], [`Interest`],
//!   [`Mode`], [`Ready`], [`Event`], [`Events`]; the backends above,
//!   [`AnyDispatcher`], [`DefaultDispatcher`], [`default_dispatcher_name`].
//! - **The reactor** ([`event_loop`]): [`EventLoop`] (fds, timers, tasks),
//!   [`LoopHandle`] (other threads), [`TimerId`], [`Stats`]; [`signal`]
//!   ([`SignalInfo`], [`SignalSource`], the signal numbers).
//! - **Bytes** ([`buffer`], [`framing`]): [`Buffer`].
//! - **Streams** ([`net`]): [`Server`], [`ServerBuilder`], [`Listener`],
//!   [`Client`], [`ConnectOptions`], [`Connection`], [`ConnectionHandle`],
//!   [`ConnectionOptions`], [`Trigger`], [`Handler`], [`HandlerFactory`],
//!   [`Callbacks`], [`StreamAddr`], [`UnixAddr`], [`StopSummary`].
//! - **Datagrams and pipes** ([`net`]): [`UdpSocket`], [`UnixDatagram`],
//!   [`DatagramSocket`], [`Datagram`], [`DatagramOptions`], [`DatagramStats`],
//!   [`PipeReader`].
//! - **Threads and processes** ([`thread_pool`], [`process`]):
//!   [`EventLoopThread`], [`EventLoopThreadPool`].
//! - **HTTP/1.1** (`http`, with the `http` feature): `HttpServer`, `Router`,
//!   `Request`, `Response`.
//! - **A simulated kernel for tests** ([`sim`]): [`SimDispatcher`], the fifth
//!   backend, over simulated sockets, on a virtual clock, with seeded faults;
//!   any program above runs on it unchanged and a failing seed replays.
//!
//! What is bounded: each connection's input by its handler, its output by
//! [`ConnectionOptions::output_limit`] (reading pauses above it) and, for
//! pushes, by [`Connection::try_send`] / [`ConnectionHandle::try_send`], which
//! refuse a full connection; a plain `send` always queues (see
//! [`net::connection`]).
//!
//! # Learning path
//!
//! Start with the [tour]: the course this crate descends from, chapter by
//! chapter, with the ladder of examples from a blocking server to the
//! multi-reactor (`examples/ladder/`). The [concept index](tour::concepts)
//! maps every concept to its code, example and test. Each backend file
//! ([`dispatcher::select`], [`dispatcher::poll`], [`dispatcher::epoll`],
//! [`dispatcher::uring`]) explains its system call.
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
pub mod sim;
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
    SelectDispatcher, SimDispatcher, default_dispatcher_name,
};
pub use event_loop::signal;
pub use event_loop::{EventLoop, LoopHandle, SignalInfo, SignalSource, Stats, TimerId};
pub use net::{
    Callbacks, Client, ConnectOptions, Connection, ConnectionHandle, ConnectionOptions, Handler,
    HandlerFactory, Listener, Server, ServerBuilder, StopSummary, StreamAddr, Trigger,
};
pub use net::{
    Datagram, DatagramOptions, DatagramSocket, DatagramStats, PipeReader, UdpSocket, UnixAddr, UnixDatagram,
};
pub use thread_pool::{BlockingQueue, EventLoopThread, EventLoopThreadPool};
