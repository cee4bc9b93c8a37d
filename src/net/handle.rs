//! `ConnectionHandle`: how any thread reaches a connection.
//!
//! A [`Connection`] is not `Send`; a handle is (`Send + Sync + Clone`) and
//! names the connection by id and loop. Work sent through it is queued on the
//! connection's loop and finds the connection there in the loop's table,
//! unless it has closed in the meantime.

use std::fmt;
use std::io;

use log::debug;

use super::addr::StreamAddr;
use super::{Connection, ConnectionTable};
use crate::dispatcher::{AnyDispatcher, Dispatcher};
use crate::event_loop::{EventLoop, LoopHandle};

/// A `Send + Sync + Clone` handle to a [`Connection`]: any thread can send
/// through it; the work is queued to the connection's loop.
pub struct ConnectionHandle<D: Dispatcher + 'static = AnyDispatcher> {
    id: u64,
    peer: StreamAddr,
    loop_id: u64,
    loop_handle: LoopHandle<D>,
}

impl<D: Dispatcher + 'static> Clone for ConnectionHandle<D> {
    fn clone(&self) -> Self {
        ConnectionHandle {
            id: self.id,
            peer: self.peer.clone(),
            loop_id: self.loop_id,
            loop_handle: self.loop_handle.clone(),
        }
    }
}

impl<D: Dispatcher + 'static> fmt::Debug for ConnectionHandle<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionHandle").field("id", &self.id).field("peer", &self.peer).finish()
    }
}

impl<D: Dispatcher + 'static> ConnectionHandle<D> {
    pub(crate) fn new(id: u64, peer: StreamAddr, loop_id: u64, loop_handle: LoopHandle<D>) -> Self {
        ConnectionHandle { id, peer, loop_id, loop_handle }
    }

    /// The connection's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The connection's remote address.
    pub fn peer_addr(&self) -> StreamAddr {
        self.peer.clone()
    }

    /// Runs `f` on the connection's loop if the connection still exists there.
    /// Fails only if the loop is gone.
    pub fn run<F>(&self, f: F) -> io::Result<()>
    where
        F: FnOnce(&mut EventLoop<D>, &Connection<D>) + Send + 'static,
    {
        let id = self.id;
        self.loop_handle.run_in_loop(move |ev| {
            if let Some(conn) = ConnectionTable::find(ev, id) {
                f(ev, &conn);
            }
        })
    }

    /// Queues `data` to be sent on the connection's loop (dropped if the
    /// connection has closed by then). Fails only if the loop is gone.
    pub fn send(&self, data: impl Into<Vec<u8>>) -> io::Result<()> {
        let data = data.into();
        self.run(move |ev, conn| {
            if let Err(e) = conn.send_owned(ev, data) {
                debug!("connection {}: cross-thread send dropped: {e}", conn.id());
            }
        })
    }

    /// Sends `data` from code running on some loop `ev`: directly, with no
    /// allocation or lock, when `ev` is the connection's own loop; queued
    /// (like [`send`](Self::send)) otherwise. A connection that has closed
    /// is not an error.
    pub fn send_from(&self, ev: &mut EventLoop<D>, data: &[u8]) -> io::Result<()> {
        if ev.id() != self.loop_id {
            return self.send(data);
        }
        match ConnectionTable::find(ev, self.id) {
            Some(conn) => conn.send(ev, data).or_else(|e| if conn.is_connected() { Err(e) } else { Ok(()) }),
            None => Ok(()),
        }
    }

    /// Queues a [`Connection::shutdown`].
    pub fn shutdown(&self) -> io::Result<()> {
        self.run(|ev, conn| conn.shutdown(ev))
    }

    /// Queues a [`Connection::close_after_flush`].
    pub fn close_after_flush(&self) -> io::Result<()> {
        self.run(|ev, conn| conn.close_after_flush(ev))
    }

    /// Queues a [`Connection::force_close`].
    pub fn force_close(&self) -> io::Result<()> {
        self.run(|ev, conn| conn.force_close(ev))
    }
}
