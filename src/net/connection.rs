//! `TcpConnection`: one established TCP socket on one event loop, with an
//! input and an output [`Buffer`].
//!
//! It teaches the rules that make a non-blocking connection correct:
//!
//! * **Reads** take whatever arrived (one `readv`) and hand the input buffer
//!   to the message callback, which consumes what forms complete messages and
//!   leaves the rest for the next read.
//! * **Writes** go straight to the socket when nothing is queued; what the
//!   kernel does not take is queued in the output buffer and write interest
//!   is turned on, and turned off again as soon as the queue drains. Leaving
//!   it on would make a level-triggered backend report "writable" forever: a
//!   busy loop.
//! * **Backpressure**: the high-water-mark callback fires when the queue
//!   crosses a limit; [`stop_reading`](TcpConnection::stop_reading) stops
//!   taking input until it drains.
//! * **Closing**: `shutdown` half-closes after the queue drains, `force_close`
//!   closes now; the fd is always deregistered before it is closed, and
//!   user callbacks for the close run after the current batch, never inside
//!   another callback.
//! * All of this happens on the connection's own loop thread: methods that
//!   touch the socket take `&mut EventLoop`, which only that thread has. Other
//!   threads use a [`ConnectionHandle`].

use std::any::Any;
use std::cell::{Cell, RefCell, RefMut};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use log::{debug, trace, warn};

use super::{Callbacks, ConnectionGroup};
use crate::buffer::Buffer;
use crate::dispatcher::{DefaultDispatcher, Dispatcher, Event, Interest, Mode};
use crate::event_loop::{EventLoop, LoopHandle};
use crate::sys;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Where a connection is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Connect in progress. `TcpClient` keeps the socket outside a connection
    /// until the handshake ends, so a `TcpConnection` never reports it; it names
    /// the phase the connector covers.
    Connecting,
    /// Reading and writing.
    Connected,
    /// Closing: no new sends; queued output is still written, then the
    /// connection half-closes (after `shutdown`) or closes (after the peer's EOF).
    Disconnecting,
    /// Closed: the fd is deregistered and closed.
    Disconnected,
}

struct Inner<D: Dispatcher + 'static> {
    id: u64,
    fd: RawFd,
    /// `None` once closed; the raw `fd` must not be used after that.
    socket: RefCell<Option<OwnedFd>>,
    local: SocketAddr,
    peer: SocketAddr,
    state: Cell<State>,
    input: RefCell<Buffer>,
    output: RefCell<Buffer>,
    reading: Cell<bool>,
    writing: Cell<bool>,
    peer_closed: Cell<bool>,
    callbacks: Callbacks<D>,
    loop_handle: LoopHandle<D>,
    context: RefCell<Option<Box<dyn Any>>>,
}

/// A TCP connection living on one event loop. Cheap to clone (`Rc`); not `Send`.
pub struct TcpConnection<D: Dispatcher + 'static = DefaultDispatcher> {
    inner: Rc<Inner<D>>,
}

impl<D: Dispatcher + 'static> Clone for TcpConnection<D> {
    fn clone(&self) -> Self {
        TcpConnection { inner: Rc::clone(&self.inner) }
    }
}

impl<D: Dispatcher + 'static> fmt::Debug for TcpConnection<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpConnection")
            .field("id", &self.inner.id)
            .field("fd", &self.inner.fd)
            .field("peer", &self.inner.peer)
            .field("state", &self.inner.state.get())
            .finish()
    }
}

/// The live connections of one loop, kept in the loop's context so a
/// [`ConnectionHandle`] can find its connection from any thread's task.
pub(crate) struct ConnectionTable<D: Dispatcher + 'static> {
    by_id: HashMap<u64, TcpConnection<D>>,
}

impl<D: Dispatcher + 'static> Default for ConnectionTable<D> {
    fn default() -> Self {
        ConnectionTable { by_id: HashMap::new() }
    }
}

impl<D: Dispatcher + 'static> ConnectionTable<D> {
    fn find(ev: &mut EventLoop<D>, id: u64) -> Option<TcpConnection<D>> {
        ev.context::<Self>().by_id.get(&id).cloned()
    }

    /// The connections of `group` on this loop.
    pub(crate) fn members(ev: &mut EventLoop<D>, group: &Arc<ConnectionGroup>) -> Vec<TcpConnection<D>> {
        let table = ev.context::<Self>();
        table.by_id.values().filter(|c| c.inner.callbacks.in_group(group)).cloned().collect()
    }
}

fn interrupted_or_would_block(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted)
}

impl<D: Dispatcher + 'static> TcpConnection<D> {
    /// Wraps a connected socket, registers it for reading on `ev` and calls
    /// the connection callback. The socket must be non-blocking.
    pub(crate) fn establish(
        ev: &mut EventLoop<D>,
        socket: OwnedFd,
        peer: SocketAddr,
        callbacks: Callbacks<D>,
    ) -> io::Result<TcpConnection<D>> {
        let fd = socket.as_raw_fd();
        if callbacks.nodelay {
            sys::set_nodelay(fd, true)?;
        }
        let local = sys::local_addr(fd)?;
        let conn = TcpConnection {
            inner: Rc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                fd,
                socket: RefCell::new(Some(socket)),
                local,
                peer,
                state: Cell::new(State::Connected),
                input: RefCell::new(Buffer::new()),
                output: RefCell::new(Buffer::new()),
                reading: Cell::new(true),
                writing: Cell::new(false),
                peer_closed: Cell::new(false),
                callbacks,
                loop_handle: ev.handle(),
                context: RefCell::new(None),
            }),
        };
        let for_handler = conn.clone();
        ev.register(fd, Interest::READABLE, Mode::Level, move |ev, event| {
            for_handler.handle_event(ev, event)
        })?;
        ev.context::<ConnectionTable<D>>().by_id.insert(conn.id(), conn.clone());
        if let Some(group) = &conn.inner.callbacks.group {
            group.live.fetch_add(1, Ordering::AcqRel);
        }
        debug!("connection {} up: {} -> {} (fd {fd}, {})", conn.id(), peer, local, ev.dispatcher_name());
        if let Some(cb) = conn.inner.callbacks.on_connection.clone() {
            cb(ev, &conn);
        }
        Ok(conn)
    }

    /// A process-wide unique id.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The socket's fd number (valid only while not [`State::Disconnected`]).
    pub fn fd(&self) -> RawFd {
        self.inner.fd
    }

    /// The remote address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.peer
    }

    /// The local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.inner.state.get()
    }

    /// Whether the connection is [`State::Connected`] (sends are accepted).
    pub fn is_connected(&self) -> bool {
        self.state() == State::Connected
    }

    /// Bytes queued in the output buffer, not yet taken by the kernel.
    pub fn queued_output(&self) -> usize {
        self.inner.output.borrow().len()
    }

    /// Whether input is being read (see [`stop_reading`](Self::stop_reading)).
    pub fn is_reading(&self) -> bool {
        self.inner.reading.get()
    }

    /// A `Send + Sync` handle other threads can send through.
    pub fn handle(&self) -> ConnectionHandle<D> {
        ConnectionHandle {
            id: self.inner.id,
            peer: self.inner.peer,
            loop_handle: self.inner.loop_handle.clone(),
        }
    }

    /// Attaches user state of any type to this connection (replacing any).
    pub fn set_context<T: 'static>(&self, value: T) {
        *self.inner.context.borrow_mut() = Some(Box::new(value));
    }

    /// The attached state, if there is one of type `T`.
    pub fn context<T: 'static>(&self) -> Option<RefMut<'_, T>> {
        RefMut::filter_map(self.inner.context.borrow_mut(), |c| c.as_mut()?.downcast_mut::<T>()).ok()
    }

    /// Removes and returns the attached state, if it is of type `T`.
    pub fn take_context<T: 'static>(&self) -> Option<T> {
        let mut slot = self.inner.context.borrow_mut();
        if !slot.as_ref().is_some_and(|c| c.is::<T>()) {
            return None;
        }
        slot.take()?.downcast::<T>().ok().map(|b| *b)
    }

    /// Turns `TCP_NODELAY` on or off (on by default, see [`Callbacks::nodelay`]).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.with_open_fd(|fd| sys::set_nodelay(fd, on))
    }

    /// Turns `SO_KEEPALIVE` on or off.
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        self.with_open_fd(|fd| sys::set_keepalive(fd, on))
    }

    fn with_open_fd<T>(&self, f: impl FnOnce(RawFd) -> io::Result<T>) -> io::Result<T> {
        match self.state() {
            State::Disconnected => Err(not_connected(self.id())),
            _ => f(self.inner.fd),
        }
    }

    /// Sends `data`: written at once if nothing is queued, the rest queued and
    /// written when the socket has room. Fails with `NotConnected` after
    /// `shutdown`/close; a socket error closes the connection at once (its
    /// close callback runs after the current batch) and is returned.
    pub fn send(&self, ev: &mut EventLoop<D>, data: &[u8]) -> io::Result<()> {
        if self.state() != State::Connected {
            return Err(not_connected(self.id()));
        }
        let mut written = 0;
        if !self.inner.writing.get() && !data.is_empty() {
            match sys::send(self.inner.fd, data) {
                Ok(n) => written = n,
                Err(e) if interrupted_or_would_block(&e) => {}
                Err(e) => {
                    debug!("connection {}: send failed: {e}", self.id());
                    self.close(ev);
                    return Err(e);
                }
            }
        }
        let rest = &data[written..];
        if rest.is_empty() {
            if let Some(cb) = self.inner.callbacks.on_write_complete.clone() {
                let conn = self.clone();
                ev.defer(move |ev| cb(ev, &conn));
            }
            return Ok(());
        }
        let (before, after) = {
            let mut output = self.inner.output.borrow_mut();
            let before = output.len();
            output.append(rest);
            (before, output.len())
        };
        trace!("connection {}: wrote {written}, queued {} ({after} pending)", self.id(), rest.len());
        let mark = self.inner.callbacks.high_water_mark;
        if before < mark
            && after >= mark
            && let Some(cb) = self.inner.callbacks.on_high_water_mark.clone()
        {
            let conn = self.clone();
            ev.defer(move |ev| cb(ev, &conn, after));
        }
        if !self.inner.writing.get() {
            self.inner.writing.set(true);
            self.update_interest(ev);
        }
        Ok(())
    }

    /// Stops reading input (backpressure): the peer's sends then fill the
    /// kernel buffers and block it. Queued output is still written.
    pub fn stop_reading(&self, ev: &mut EventLoop<D>) {
        if self.inner.reading.replace(false) && self.state() != State::Disconnected {
            self.update_interest(ev);
        }
    }

    /// Resumes reading after [`stop_reading`](Self::stop_reading).
    pub fn start_reading(&self, ev: &mut EventLoop<D>) {
        let open = matches!(self.state(), State::Connected | State::Disconnecting);
        if open && !self.inner.peer_closed.get() && !self.inner.reading.replace(true) {
            self.update_interest(ev);
        }
    }

    /// Half-closes: no more sends; once the queued output is written, a FIN is
    /// sent. The connection closes when the peer closes its side.
    pub fn shutdown(&self, ev: &mut EventLoop<D>) {
        if self.state() != State::Connected {
            return;
        }
        self.inner.state.set(State::Disconnecting);
        if !self.inner.writing.get() {
            self.finish_output(ev);
        }
    }

    /// Closes now, dropping queued output. The close callback runs after the
    /// current batch.
    pub fn force_close(&self, ev: &mut EventLoop<D>) {
        self.close(ev);
    }

    fn update_interest(&self, ev: &mut EventLoop<D>) {
        let mut interest = Interest::NONE;
        if self.inner.reading.get() && !self.inner.peer_closed.get() {
            interest = interest | Interest::READABLE;
        }
        if self.inner.writing.get() {
            interest = interest | Interest::WRITABLE;
        }
        if let Err(e) = ev.set_interest(self.inner.fd, interest) {
            warn!("connection {}: cannot change interest to {interest:?}: {e}", self.id());
            self.close(ev);
        }
    }

    fn handle_event(&self, ev: &mut EventLoop<D>, event: Event) {
        if event.is_readable() && self.inner.reading.get() && !self.inner.peer_closed.get() {
            self.handle_read(ev);
        }
        if event.is_writable() && self.inner.writing.get() && self.state() != State::Disconnected {
            self.handle_write(ev);
        }
    }

    fn handle_read(&self, ev: &mut EventLoop<D>) {
        let result = self.inner.input.borrow_mut().recv_fd(self.inner.fd);
        match result {
            Ok(0) => self.handle_peer_eof(ev),
            Ok(n) => {
                trace!("connection {}: read {n} bytes", self.id());
                // Take the buffer out so the callback can do anything with the
                // connection (even close it) without a RefCell conflict.
                let mut input = self.inner.input.take();
                match self.inner.callbacks.on_message.clone() {
                    Some(cb) => cb(ev, self, &mut input),
                    None => input.consume_all(),
                }
                if self.state() != State::Disconnected {
                    input.settle(); // a partial message should not pin a large block
                    *self.inner.input.borrow_mut() = input;
                }
            }
            Err(e) if interrupted_or_would_block(&e) => {}
            Err(e) => {
                debug!("connection {}: read failed: {e}", self.id());
                self.close(ev);
            }
        }
    }

    /// The peer sent FIN: stop reading; close once our queued output is out.
    fn handle_peer_eof(&self, ev: &mut EventLoop<D>) {
        debug!(
            "connection {}: peer closed its side ({} bytes still queued)",
            self.id(),
            self.queued_output()
        );
        self.inner.peer_closed.set(true);
        if !self.inner.writing.get() {
            self.close(ev);
            return;
        }
        self.inner.state.set(State::Disconnecting);
        self.update_interest(ev);
    }

    fn handle_write(&self, ev: &mut EventLoop<D>) {
        let result = self.inner.output.borrow_mut().send_fd(self.inner.fd);
        match result {
            Ok(_) if self.inner.output.borrow().is_empty() => {
                self.inner.writing.set(false);
                self.update_interest(ev);
                if let Some(cb) = self.inner.callbacks.on_write_complete.clone() {
                    cb(ev, self);
                }
                if self.state() == State::Disconnecting {
                    self.finish_output(ev);
                }
            }
            Ok(_) => {}
            Err(e) if interrupted_or_would_block(&e) => {}
            Err(e) => {
                debug!("connection {}: write failed: {e}", self.id());
                self.close(ev);
            }
        }
    }

    /// Output has drained while disconnecting: close if the peer is gone,
    /// otherwise send our FIN and wait for theirs.
    fn finish_output(&self, ev: &mut EventLoop<D>) {
        if self.inner.peer_closed.get() {
            self.close(ev);
        } else if let Err(e) = sys::shutdown(self.inner.fd, Shutdown::Write) {
            debug!("connection {}: shutdown failed: {e}", self.id());
            self.close(ev);
        }
    }

    /// Tears the connection down now (idempotent): deregister, then close the
    /// fd; user callbacks run after the current batch.
    fn close(&self, ev: &mut EventLoop<D>) {
        if self.inner.state.replace(State::Disconnected) == State::Disconnected {
            return;
        }
        if let Err(e) = ev.deregister(self.inner.fd) {
            warn!("connection {}: deregister failed: {e}", self.id());
        }
        drop(self.inner.socket.borrow_mut().take());
        ev.context::<ConnectionTable<D>>().by_id.remove(&self.id());
        let dropped = self.inner.output.take().len();
        self.inner.input.take();
        debug!(
            "connection {} down: {} (fd {} closed, {dropped} queued bytes dropped)",
            self.id(),
            self.inner.peer,
            self.inner.fd
        );
        let conn = self.clone();
        ev.defer(move |ev| {
            if let Some(cb) = conn.inner.callbacks.on_connection.clone() {
                cb(ev, &conn);
            }
            if let Some(group) = &conn.inner.callbacks.group {
                group.live.fetch_sub(1, Ordering::AcqRel);
            }
        });
    }
}

fn not_connected(id: u64) -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, format!("connection {id} is closing or closed"))
}

/// A `Send + Sync + Clone` handle to a [`TcpConnection`]: any thread can send
/// through it; the work is queued to the connection's loop.
pub struct ConnectionHandle<D: Dispatcher + 'static = DefaultDispatcher> {
    id: u64,
    peer: SocketAddr,
    loop_handle: LoopHandle<D>,
}

impl<D: Dispatcher + 'static> Clone for ConnectionHandle<D> {
    fn clone(&self) -> Self {
        ConnectionHandle { id: self.id, peer: self.peer, loop_handle: self.loop_handle.clone() }
    }
}

impl<D: Dispatcher + 'static> fmt::Debug for ConnectionHandle<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionHandle").field("id", &self.id).field("peer", &self.peer).finish()
    }
}

impl<D: Dispatcher + 'static> ConnectionHandle<D> {
    /// The connection's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The connection's remote address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Runs `f` on the connection's loop if the connection still exists there.
    /// Fails only if the loop is gone.
    pub fn run<F>(&self, f: F) -> io::Result<()>
    where
        F: FnOnce(&mut EventLoop<D>, &TcpConnection<D>) + Send + 'static,
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
            if let Err(e) = conn.send(ev, &data) {
                debug!("connection {}: cross-thread send of {} bytes dropped: {e}", conn.id(), data.len());
            }
        })
    }

    /// Queues a [`TcpConnection::shutdown`].
    pub fn shutdown(&self) -> io::Result<()> {
        self.run(|ev, conn| conn.shutdown(ev))
    }

    /// Queues a [`TcpConnection::force_close`].
    pub fn force_close(&self) -> io::Result<()> {
        self.run(|ev, conn| conn.force_close(ev))
    }
}
