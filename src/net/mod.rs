//! The TCP layer: the acceptor + [`TcpServer`], [`TcpConnection`],
//! and [`TcpClient`] (a connector with timeout and retry).
//!
//! It teaches how a Reactor turns "fd readable/writable" into "a connection
//! came up / a message arrived / the output drained / it closed": the
//! callbacks in [`Callbacks`], which every server and client is built from.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use crate::buffer::Buffer;
use crate::dispatcher::{DefaultDispatcher, Dispatcher};
use crate::event_loop::EventLoop;

mod acceptor;
mod client;
mod connection;
pub mod datagram;
mod pipe;
mod server;
mod udp;
mod unix_datagram;

pub use client::{ConnectOptions, TcpClient};
pub use connection::{ConnectionHandle, State, TcpConnection};
pub use server::{TcpServer, TcpServerBuilder};

pub use datagram::{Datagram, DatagramAddr, DatagramOptions, DatagramSocket, DatagramStats};
pub use pipe::PipeReader;
pub use udp::UdpSocket;
pub use unix_datagram::{UnixAddr, UnixDatagram};

/// Called when a connection comes up and again when it goes down
/// (check [`TcpConnection::is_connected`]).
pub type ConnectionCallback<D> = Arc<dyn Fn(&mut EventLoop<D>, &TcpConnection<D>) + Send + Sync>;
/// Called with the input buffer after each read; consume what you handle and
/// leave partial messages in it.
pub type MessageCallback<D> = Arc<dyn Fn(&mut EventLoop<D>, &TcpConnection<D>, &mut Buffer) + Send + Sync>;
/// Called when the output queue crosses the high-water mark, with its length.
pub type HighWaterMarkCallback<D> = Arc<dyn Fn(&mut EventLoop<D>, &TcpConnection<D>, usize) + Send + Sync>;

/// The default high-water mark: 64 MiB queued for one connection.
pub const DEFAULT_HIGH_WATER_MARK: usize = 64 * 1024 * 1024;

/// The connections of one server (so stopping it touches only its own).
#[derive(Debug, Default)]
pub(crate) struct ConnectionGroup {
    pub(crate) live: AtomicUsize,
}

/// What a server or client does with its connections: the user callbacks
/// plus per-connection socket options. Callbacks run on the connection's loop
/// thread; they are `Send + Sync` because a server shares them with all its
/// loops. Per-connection state goes in [`TcpConnection::set_context`].
///
/// ```
/// use muxloop::net::Callbacks;
/// let echo: Callbacks = Callbacks::new().on_message(|ev, conn, input| {
///     let _ = conn.send(ev, input.peek());
///     input.consume_all();
/// });
/// ```
pub struct Callbacks<D: Dispatcher + 'static = DefaultDispatcher> {
    pub(crate) on_connection: Option<ConnectionCallback<D>>,
    pub(crate) on_message: Option<MessageCallback<D>>,
    pub(crate) on_write_complete: Option<ConnectionCallback<D>>,
    pub(crate) on_high_water_mark: Option<HighWaterMarkCallback<D>>,
    pub(crate) high_water_mark: usize,
    pub(crate) nodelay: bool,
    pub(crate) group: Option<Arc<ConnectionGroup>>,
}

impl<D: Dispatcher + 'static> Clone for Callbacks<D> {
    fn clone(&self) -> Self {
        Callbacks {
            on_connection: self.on_connection.clone(),
            on_message: self.on_message.clone(),
            on_write_complete: self.on_write_complete.clone(),
            on_high_water_mark: self.on_high_water_mark.clone(),
            high_water_mark: self.high_water_mark,
            nodelay: self.nodelay,
            group: self.group.clone(),
        }
    }
}

impl<D: Dispatcher + 'static> Default for Callbacks<D> {
    fn default() -> Self {
        Callbacks {
            on_connection: None,
            on_message: None,
            on_write_complete: None,
            on_high_water_mark: None,
            high_water_mark: DEFAULT_HIGH_WATER_MARK,
            nodelay: true,
            group: None,
        }
    }
}

impl<D: Dispatcher + 'static> fmt::Debug for Callbacks<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callbacks")
            .field("on_connection", &self.on_connection.is_some())
            .field("on_message", &self.on_message.is_some())
            .field("on_write_complete", &self.on_write_complete.is_some())
            .field("on_high_water_mark", &self.on_high_water_mark.is_some())
            .field("high_water_mark", &self.high_water_mark)
            .field("nodelay", &self.nodelay)
            .finish()
    }
}

impl<D: Dispatcher + 'static> Callbacks<D> {
    /// No callbacks: input is discarded, `TCP_NODELAY` is on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the connection up/down callback.
    pub fn on_connection<F>(mut self, f: F) -> Self
    where
        F: Fn(&mut EventLoop<D>, &TcpConnection<D>) + Send + Sync + 'static,
    {
        self.on_connection = Some(Arc::new(f));
        self
    }

    /// Sets the message callback.
    pub fn on_message<F>(mut self, f: F) -> Self
    where
        F: Fn(&mut EventLoop<D>, &TcpConnection<D>, &mut Buffer) + Send + Sync + 'static,
    {
        self.on_message = Some(Arc::new(f));
        self
    }

    /// Sets the callback for "all queued output has been handed to the kernel".
    pub fn on_write_complete<F>(mut self, f: F) -> Self
    where
        F: Fn(&mut EventLoop<D>, &TcpConnection<D>) + Send + Sync + 'static,
    {
        self.on_write_complete = Some(Arc::new(f));
        self
    }

    /// Sets the high-water mark (bytes queued) and its callback; it fires once
    /// each time the queue grows across the mark.
    pub fn on_high_water_mark<F>(mut self, mark: usize, f: F) -> Self
    where
        F: Fn(&mut EventLoop<D>, &TcpConnection<D>, usize) + Send + Sync + 'static,
    {
        self.high_water_mark = mark.max(1);
        self.on_high_water_mark = Some(Arc::new(f));
        self
    }

    /// Whether new connections get `TCP_NODELAY` (default: on, so small
    /// replies are not held back by Nagle's algorithm).
    pub fn nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }

    pub(crate) fn in_group(&self, group: &Arc<ConnectionGroup>) -> bool {
        self.group.as_ref().is_some_and(|g| Arc::ptr_eq(g, group))
    }
}
