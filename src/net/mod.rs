//! The stream layer, TCP and Unix domain alike: the acceptor + [`Server`],
//! [`Connection`], and [`Client`] (a connector with timeout and retry); plus
//! datagram sockets (UDP, Unix) and pipes on the same loop.
//!
//! It teaches how a Reactor turns "fd readable/writable" into "a connection
//! came up / a message arrived / the output drained / it closed": the
//! methods of a [`Handler`], which every server and client is built from.
//! Each connection gets its own handler (typed state, `&mut self`), built by
//! a factory on the connection's loop; [`Callbacks`] is muduo's closure
//! style of the same thing.
//!
//! ```no_run
//! use muxloop::{Buffer, EventLoop, Handler, Connection, Server};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     fn on_message(&mut self, ev: &mut EventLoop, conn: &Connection, input: &mut Buffer) {
//!         let _ = conn.send(ev, input.peek());
//!         input.consume_all();
//!     }
//! }
//!
//! let mut ev: EventLoop = EventLoop::new()?;
//! let server = Server::builder("127.0.0.1:9000", |_: &Connection| Echo).threads(4).start(&mut ev)?;
//! println!("listening on {}", server.local_addr());
//! ev.run()?; // the server lives as long as the loop (or until `server.stop`)
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::AtomicUsize;

use crate::dispatcher::Dispatcher;
use crate::event_loop::EventLoop;

pub mod acceptor;
pub mod addr;
pub mod client;
pub mod connection;
pub mod datagram;
pub mod deadline;
pub mod handle;
pub mod handler;
pub mod listener;
mod output;
pub mod pipe;
pub mod server;
pub mod udp;
pub mod unix_datagram;

pub use client::{Client, ConnectOptions};
pub use connection::{Connection, State};
pub use handle::ConnectionHandle;
pub use handler::{
    Callbacks, ConnectionOptions, DEFAULT_HIGH_WATER_MARK, DEFAULT_OUTPUT_LIMIT, DEFAULT_PASS_BUDGET,
    Handler, HandlerFactory, Trigger,
};
pub use listener::Listener;
pub use output::{MAX_QUEUED_FDS, MAX_QUEUED_FILES};
pub use server::{Server, ServerBuilder, StopSummary};

pub use addr::{StreamAddr, UnixAddr};
pub use datagram::{Datagram, DatagramAddr, DatagramOptions, DatagramSocket, DatagramStats};
pub use pipe::PipeReader;
pub use udp::UdpSocket;
pub use unix_datagram::UnixDatagram;

/// The connections of one server (so stopping it touches only its own).
#[derive(Debug, Default)]
pub(crate) struct ConnectionGroup {
    pub(crate) live: AtomicUsize,
}

/// The live connections of one loop, kept in the loop's context: the one
/// table handles, servers and the timer sweep look connections up in. A
/// `BTreeMap`: walks (graceful stop, the sweep) go in creation order, the
/// same on every run, which a simulation replayed from its seed relies on.
pub(crate) struct ConnectionTable<D: Dispatcher + 'static> {
    by_id: BTreeMap<u64, Connection<D>>,
}

impl<D: Dispatcher + 'static> Default for ConnectionTable<D> {
    fn default() -> Self {
        ConnectionTable { by_id: BTreeMap::new() }
    }
}

impl<D: Dispatcher + 'static> ConnectionTable<D> {
    pub(crate) fn insert(ev: &mut EventLoop<D>, conn: &Connection<D>) {
        ev.context::<Self>().by_id.insert(conn.id(), conn.clone());
    }

    pub(crate) fn remove(ev: &mut EventLoop<D>, id: u64) {
        ev.context::<Self>().by_id.remove(&id);
    }

    pub(crate) fn find(ev: &mut EventLoop<D>, id: u64) -> Option<Connection<D>> {
        ev.context::<Self>().by_id.get(&id).cloned()
    }

    /// Every connection of this loop.
    pub(crate) fn all(ev: &mut EventLoop<D>) -> Vec<Connection<D>> {
        ev.context::<Self>().by_id.values().cloned().collect()
    }
}
