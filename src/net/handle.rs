//! `ConnectionHandle`: how any thread reaches a connection.
//!
//! A [`Connection`] is not `Send`; a handle is (`Send + Sync + Clone`) and
//! names the connection by id and loop. Work sent through it is queued on the
//! connection's loop and finds the connection there in the loop's table,
//! unless it has closed in the meantime.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use log::debug;

use super::addr::StreamAddr;
use super::output::OutputGauge;
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
    output: Arc<OutputGauge>,
    output_limit: Option<usize>,
}

impl<D: Dispatcher + 'static> Clone for ConnectionHandle<D> {
    fn clone(&self) -> Self {
        ConnectionHandle {
            id: self.id,
            peer: self.peer.clone(),
            loop_id: self.loop_id,
            loop_handle: self.loop_handle.clone(),
            output: Arc::clone(&self.output),
            output_limit: self.output_limit,
        }
    }
}

impl<D: Dispatcher + 'static> fmt::Debug for ConnectionHandle<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionHandle").field("id", &self.id).field("peer", &self.peer).finish()
    }
}

impl<D: Dispatcher + 'static> ConnectionHandle<D> {
    pub(crate) fn new(
        id: u64,
        peer: StreamAddr,
        loop_id: u64,
        loop_handle: LoopHandle<D>,
        output: Arc<OutputGauge>,
        output_limit: Option<usize>,
    ) -> Self {
        ConnectionHandle { id, peer, loop_id, loop_handle, output, output_limit }
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

    /// Bytes waiting to go out: queued on the connection (as of its loop's
    /// last change) plus those sent through handles that its loop has not
    /// queued yet. What [`try_send`](Self::try_send) compares with the limit.
    pub fn queued_output(&self) -> usize {
        self.output.total()
    }

    /// [`send`](Self::send) unless the connection's output is full: with
    /// [`queued_output`](Self::queued_output) at or above
    /// [`ConnectionOptions::output_limit`](crate::ConnectionOptions::output_limit),
    /// nothing is sent and the error is `WouldBlock`. What one connection
    /// holds is thereby bounded by the limit plus one message per thread
    /// sending at that moment. With no output limit it never refuses.
    pub fn try_send(&self, data: impl Into<Vec<u8>>) -> io::Result<()> {
        let data = data.into();
        let in_flight = InFlight::add(&self.output, data.len());
        if let Some(limit) = self.output_limit {
            let before = self.output.total().saturating_sub(data.len());
            if before >= limit {
                return Err(output_full(self.id, before, limit));
            }
        }
        self.run(move |ev, conn| {
            drop(in_flight);
            if let Err(e) = conn.send_owned(ev, data) {
                debug!("connection {}: cross-thread send dropped: {e}", conn.id());
            }
        })
    }

    /// Queues `data` to be sent on the connection's loop (dropped if the
    /// connection has closed by then), however much is queued already:
    /// [`try_send`](Self::try_send) is the bounded one. Fails only if the
    /// loop is gone.
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

/// Bytes counted in a connection's `in_flight` until the task that carries
/// them runs or is dropped (the connection closed, the loop went away).
struct InFlight {
    gauge: Arc<OutputGauge>,
    len: usize,
}

impl InFlight {
    fn add(gauge: &Arc<OutputGauge>, len: usize) -> InFlight {
        gauge.in_flight.fetch_add(len, Relaxed);
        InFlight { gauge: Arc::clone(gauge), len }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.in_flight.fetch_sub(self.len, Relaxed);
    }
}

/// The `WouldBlock` a bounded send gives when the output is full.
pub(crate) fn output_full(id: u64, queued: usize, limit: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::WouldBlock,
        format!("connection {id}: output full ({queued} bytes queued, limit {limit}); nothing sent"),
    )
}
