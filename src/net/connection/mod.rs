//! `Connection`: one established stream socket (TCP or Unix) on one event loop, with an
//! input and an output [`Buffer`] and the user's [`Handler`].
//!
//! It teaches the rules that make a non-blocking connection correct:
//!
//! * **Reads** take whatever arrived (one `recvmsg` into the input buffer
//!   and a spill block) and hand the input to the handler, which consumes
//!   complete messages and leaves the rest for the next read.
//! * **Writes** go straight to the socket when nothing is queued; what the
//!   kernel does not take is queued in the output buffer and write interest
//!   is turned on, and turned off again as soon as the queue drains. Leaving
//!   it on would make a level-triggered backend report "writable" forever: a
//!   busy loop.
//! * **Files** join the same queue: [`send_file`](Connection::send_file)
//!   queues a file region after the bytes already queued, and `sendfile(2)`
//!   moves it from the page cache to the socket without a user-space copy.
//! * **Edge or level** ([`ConnectionOptions::trigger`]): edge-triggered, the
//!   backend reports only new readiness, so reads go on until `WouldBlock`
//!   and writes until `WouldBlock` or an empty queue; the interest is then
//!   fixed for the connection's life (readable + writable: no `epoll_ctl`
//!   per write burst or pause). Level-triggered, one read or write per
//!   report is enough and write interest is toggled as above.
//! * **Fairness**: one connection reads, and writes, at most
//!   [`ConnectionOptions::pass_budget`] bytes per loop pass. Level-triggered,
//!   the backend reports what is left next time; edge-triggered, no new edge
//!   would come, so the connection queues a continuation task that runs after
//!   the current batch (the other ready connections go first).
//! * **Backpressure on what a peer asks for**: above
//!   [`ConnectionOptions::output_limit`] of queued output the connection
//!   stops reading, so a peer that sends requests but never reads the
//!   answers fills its own socket buffers and blocks, instead of our memory.
//!   Below half the limit, reading resumes and input the handler left
//!   unprocessed is offered to it again, so a protocol handler can stop at a
//!   byte budget and carry on later.
//! * **What is not bounded, and how to bound it**: [`send`](Connection::send)
//!   always queues: output the server *pushes* (a broadcast, a feed) grows
//!   with whatever the application sends to a reader that does not read.
//!   [`try_send`](Connection::try_send) and [`ConnectionHandle::try_send`]
//!   refuse with `WouldBlock` and send nothing once the queued output
//!   reaches the limit, so a broadcast can drop, skip or close the slow
//!   receiver; [`queued_output`](Connection::queued_output) (on a handle too)
//!   says how far it is, and [`Handler::on_high_water_mark`] fires at a
//!   second, higher mark. A broadcast to every connection of a server is
//!   [`Server::for_each_connection`](crate::Server::for_each_connection) with
//!   `try_send` in the closure; to a subset (a topic's subscribers), keep the
//!   subset per loop (in [`EventLoop::context`]) and queue one task per loop
//!   of [`Server::loops`](crate::Server::loops).
//! * **Closing**: [`shutdown`](Connection::shutdown) half-closes once the
//!   queue drains and waits for the peer; [`close_after_flush`](Connection::close_after_flush)
//!   closes once the queue drains; [`force_close`](Connection::force_close)
//!   closes now. The fd is always deregistered before it is closed, and the
//!   handler's `on_close` runs after the current batch. When the peer's FIN
//!   arrives, reading stops and [`Handler::on_peer_closed`] decides: by
//!   default the connection closes once its output is out; a handler that
//!   still owes an answer closes it later.
//! * All of this happens on the connection's own loop thread: methods that
//!   touch the socket take `&mut EventLoop`, which only that thread has, and
//!   check it is the connection's own loop. Other threads use a
//!   [`ConnectionHandle`].

use crate::event_loop::clock;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use log::{debug, error, trace, warn};

use super::addr::StreamAddr;
use super::deadline;
use super::handle::ConnectionHandle;
use super::handler::{ConnectionOptions, Handler, HandlerFactory};
use super::output::{MAX_QUEUED_FDS, MAX_QUEUED_FILES, OutputQueue, SocketSink};
use super::{ConnectionGroup, ConnectionTable};
use crate::buffer::Buffer;
use crate::dispatcher::{AnyDispatcher, Dispatcher, Interest, Mode};
use crate::event_loop::{EventLoop, LoopHandle};
use crate::sys;

mod readiness;
mod send;

/// A file region may take this much per loop pass even when the pass budget
/// is smaller (nginx's `sendfile_max_chunk` default): `sendfile` copies in
/// the kernel only, and refilling a 4 MiB socket buffer in 256 KiB steps
/// left the reader waiting.
const FILE_PASS_MIN: usize = 2 * 1024 * 1024;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Where a connection is in its life, as users see it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Reading and writing.
    Connected,
    /// Closing: no new sends; queued output is still written, then the
    /// connection half-closes (after [`shutdown`](Connection::shutdown))
    /// or closes (after the peer's EOF or
    /// [`close_after_flush`](Connection::close_after_flush)).
    Disconnecting,
    /// Closed: the fd is deregistered and closed.
    Disconnected,
}

/// The one source of truth for where a connection is; reading and write
/// interest are derived from it (plus the two pause reasons).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Life {
    Open,
    /// `shutdown` was asked: FIN once the output drains, keep reading until
    /// the peer's FIN. `fin_sent` tells whether ours is out.
    HalfClosing {
        fin_sent: bool,
    },
    /// Close once the output drains; no more reading (the peer sent FIN, or
    /// `close_after_flush`).
    Draining,
    Closed,
}

/// Why a connection is not reading (any one is enough), besides its life
/// (a closing connection reads no more either).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct ReadStops {
    /// `stop_reading` was called.
    by_user: bool,
    /// Queued output is above the limit (backpressure).
    output_full: bool,
    /// The peer's FIN was read: nothing more will come.
    peer_eof: bool,
}

/// The continuation tasks a connection has queued on its loop, so each is
/// queued once however often it is asked for.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct Queued {
    /// `offer_input`: the handler gets the input left in the buffer again.
    offer: bool,
    /// Edge: go on reading (the pass budget was spent, or reading resumed).
    read: bool,
    /// Edge: go on writing (the pass budget was spent).
    write: bool,
}

/// Sets one flag of the state in `cell` to `value`; whether it was set before.
fn swap_flag<T: Copy>(cell: &Cell<T>, flag: impl FnOnce(&mut T) -> &mut bool, value: bool) -> bool {
    let mut state = cell.get();
    let was = std::mem::replace(flag(&mut state), value);
    cell.set(state);
    was
}

struct Inner<D: Dispatcher + 'static> {
    id: u64,
    fd: RawFd,
    /// `None` once closed; the raw `fd` must not be used after that.
    socket: RefCell<Option<OwnedFd>>,
    local: StreamAddr,
    peer: StreamAddr,
    life: Cell<Life>,
    /// Why reading is stopped, besides `life`.
    stops: Cell<ReadStops>,
    input: RefCell<Buffer>,
    /// What the kernel has not taken yet, in stream order (see `output`).
    output: RefCell<OutputQueue>,
    /// `None` only while one of its methods runs.
    handler: RefCell<Option<Box<dyn Handler<D>>>>,
    wants_write_complete: Cell<bool>,
    /// Tasks queued on the loop for this connection (at most one of each).
    queued: Cell<Queued>,
    /// Registered edge-triggered: drain, and keep the interest fixed.
    edge: bool,
    options: ConnectionOptions,
    group: Option<Arc<ConnectionGroup>>,
    loop_id: u64,
    loop_handle: LoopHandle<D>,
    /// When the connection's timer runs out (see `deadline`).
    deadline: Cell<Option<Instant>>,
}

/// A stream connection (TCP or Unix) living on one event loop. Cheap to
/// clone (`Rc`); not `Send`.
pub struct Connection<D: Dispatcher + 'static = AnyDispatcher> {
    inner: Rc<Inner<D>>,
}

impl<D: Dispatcher + 'static> Clone for Connection<D> {
    fn clone(&self) -> Self {
        Connection { inner: Rc::clone(&self.inner) }
    }
}

impl<D: Dispatcher + 'static> fmt::Debug for Connection<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.inner.id)
            .field("fd", &self.inner.fd)
            .field("peer", &self.inner.peer)
            .field("state", &self.state())
            .field("queued_output", &self.queued_output())
            .finish()
    }
}

/// The raw fd number; it is closed (and may be reused) once the connection is
/// [`State::Disconnected`]. There is no `AsFd`: a `BorrowedFd` must stay open
/// while borrowed, and a connection may be closed by its loop at any time;
/// [`Connection::with_fd`] lends the socket for one call instead.
impl<D: Dispatcher + 'static> AsRawFd for Connection<D> {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.fd
    }
}

pub(super) fn interrupted_or_would_block(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted)
}

impl<D: Dispatcher + 'static> Connection<D> {
    /// Wraps a connected, non-blocking socket, registers it for reading on
    /// `ev`, builds its handler and calls `on_connect`.
    pub(crate) fn establish<F: HandlerFactory<D> + ?Sized>(
        ev: &mut EventLoop<D>,
        socket: OwnedFd,
        peer: StreamAddr,
        factory: &F,
        options: ConnectionOptions,
        group: Option<Arc<ConnectionGroup>>,
    ) -> io::Result<Connection<D>> {
        let fd = socket.as_raw_fd();
        if options.nodelay && !peer.is_unix() {
            sys::set_nodelay(socket.as_fd(), true)?;
        }
        if options.send_buffer.is_some() {
            sys::set_buffer_sizes(socket.as_fd(), options.send_buffer, None)?;
        }
        let local = StreamAddr::of_socket(socket.as_fd(), false)?;
        let mode = options.trigger.mode(ev.supports(Mode::Edge));
        let edge = mode == Mode::Edge;
        let conn = Connection {
            inner: Rc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                fd,
                socket: RefCell::new(Some(socket)),
                local,
                peer,
                life: Cell::new(Life::Open),
                stops: Cell::new(ReadStops::default()),
                input: RefCell::new(Buffer::new()),
                output: RefCell::new(OutputQueue::default()),
                handler: RefCell::new(None),
                wants_write_complete: Cell::new(false),
                queued: Cell::new(Queued::default()),
                edge,
                options,
                group,
                loop_id: ev.id(),
                loop_handle: ev.handle(),
                deadline: Cell::new(None),
            }),
        };
        let handler = factory.make(&conn);
        conn.inner.wants_write_complete.set(handler.wants_write_complete());
        *conn.inner.handler.borrow_mut() = Some(handler);
        let for_events = conn.clone();
        // Edge: both interests from the start and never changed (see `update_interest`).
        let interest = if edge { Interest::BOTH } else { Interest::READABLE };
        ev.register(fd, interest, mode, move |ev, event| for_events.handle_event(ev, event))?;
        ConnectionTable::insert(ev, &conn);
        if let Some(group) = &conn.inner.group {
            group.live.fetch_add(1, Ordering::AcqRel);
        }
        trace!(
            "[{}] connection {} up: {} -> {} (fd {fd}, {}, {mode:?}-triggered)",
            ev.name(),
            conn.id(),
            conn.inner.peer,
            conn.inner.local,
            ev.dispatcher_name()
        );
        conn.touch(ev);
        conn.with_handler(|h| h.on_connect(ev, &conn));
        Ok(conn)
    }

    /// Takes over a connected stream socket (a std `TcpStream` or
    /// `UnixStream`, or any `OwnedFd` of one), switching it to non-blocking,
    /// and runs a handler from `factory` on it, on `ev`: for sockets made
    /// elsewhere (a blocking connect, a `socketpair`, an inherited or passed fd).
    pub fn from_std(
        ev: &mut EventLoop<D>,
        stream: impl Into<OwnedFd>,
        factory: impl HandlerFactory<D>,
        options: ConnectionOptions,
    ) -> io::Result<Connection<D>> {
        let socket = stream.into();
        sys::set_nonblocking(socket.as_fd(), true)?;
        let peer = StreamAddr::of_socket(socket.as_fd(), true)?;
        Self::establish(ev, socket, peer, &factory, options, None)
    }

    /// A process-wide unique id.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The socket's fd number (valid only while not [`State::Disconnected`]).
    pub fn fd(&self) -> RawFd {
        self.inner.fd
    }

    /// The remote address (for a Unix socket, usually
    /// [`UnixAddr::Unnamed`](super::UnixAddr::Unnamed): clients rarely bind).
    pub fn peer_addr(&self) -> StreamAddr {
        self.inner.peer.clone()
    }

    /// The local address.
    pub fn local_addr(&self) -> StreamAddr {
        self.inner.local.clone()
    }

    /// The [`id`](EventLoop::id) of the loop this connection lives on.
    pub fn loop_id(&self) -> u64 {
        self.inner.loop_id
    }

    /// The current state.
    pub fn state(&self) -> State {
        match self.inner.life.get() {
            Life::Open => State::Connected,
            Life::HalfClosing { .. } | Life::Draining => State::Disconnecting,
            Life::Closed => State::Disconnected,
        }
    }

    /// Whether the connection is [`State::Connected`] (sends are accepted).
    pub fn is_connected(&self) -> bool {
        self.inner.life.get() == Life::Open
    }

    /// Bytes queued for output, not yet taken by the kernel: queued bytes
    /// plus the unsent part of queued file regions ([`send_file`](Self::send_file)).
    pub fn queued_output(&self) -> usize {
        self.inner.output.borrow().len()
    }

    /// File regions queued by [`send_file`](Self::send_file) and not yet sent
    /// (at most [`MAX_QUEUED_FILES`]).
    pub fn queued_files(&self) -> usize {
        self.inner.output.borrow().files()
    }

    /// Whether queued output has reached [`ConnectionOptions::output_limit`]
    /// (or [`MAX_QUEUED_FILES`] file regions are
    /// queued): a handler that answers many requests from one input should
    /// stop here and leave the rest in the input buffer; it is offered again
    /// once the output has drained.
    pub fn is_output_full(&self) -> bool {
        self.queued_files() >= MAX_QUEUED_FILES
            || self.inner.options.output_limit.is_some_and(|limit| self.queued_output() >= limit)
    }

    /// The connection's options.
    pub fn options(&self) -> &ConnectionOptions {
        &self.inner.options
    }

    /// How the socket is registered: [`Mode::Edge`] or [`Mode::Level`], as
    /// [`ConnectionOptions::trigger`] resolved on this loop's backend.
    pub fn trigger_mode(&self) -> Mode {
        if self.inner.edge { Mode::Edge } else { Mode::Level }
    }

    /// Whether input is being read: not paused by
    /// [`stop_reading`](Self::stop_reading), by the output limit, or by closing.
    pub fn is_reading(&self) -> bool {
        self.reads_wanted()
    }

    /// A `Send + Sync` handle other threads can send through.
    pub fn handle(&self) -> ConnectionHandle<D> {
        ConnectionHandle::new(
            self.inner.id,
            self.inner.peer.clone(),
            self.inner.loop_id,
            self.inner.loop_handle.clone(),
            Arc::clone(self.inner.output.borrow().gauge()),
            self.inner.options.output_limit,
        )
    }

    /// Turns `TCP_NODELAY` on or off (on by default, see [`ConnectionOptions::nodelay`];
    /// a Unix socket has no such option and says `Unsupported`).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        if self.inner.peer.is_unix() {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "a unix socket has no TCP_NODELAY"));
        }
        self.with_fd(|fd| sys::set_nodelay(fd, on))
    }

    /// Turns `SO_KEEPALIVE` on or off.
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        self.with_fd(|fd| sys::set_keepalive(fd, on))
    }

    /// Runs `f` with the socket borrowed (so it stays open for the call), for
    /// what the connection does not wrap itself, e.g.
    /// `conn.with_fd(|fd| sys::set_buffer_sizes(fd, Some(1 << 20), None))`;
    /// `NotConnected` once the connection is closed. `f` must not close the
    /// connection (that would panic: the socket is borrowed).
    pub fn with_fd<T>(&self, f: impl FnOnce(BorrowedFd<'_>) -> io::Result<T>) -> io::Result<T> {
        let socket = self.inner.socket.borrow();
        match socket.as_ref() {
            Some(socket) if self.inner.life.get() != Life::Closed => f(socket.as_fd()),
            _ => Err(not_connected(self.id())),
        }
    }

    /// `InvalidInput` if `ev` is not this connection's loop: a connection's
    /// fd is registered with one loop only, and acting on it through another
    /// would deregister or write from the wrong thread's tables.
    fn check_loop(&self, ev: &EventLoop<D>) -> io::Result<()> {
        if ev.id() == self.inner.loop_id {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("connection {} belongs to event loop {}, not {}", self.id(), self.inner.loop_id, ev.id()),
        ))
    }

    /// Like [`check_loop`](Self::check_loop), for methods that return nothing.
    fn on_own_loop(&self, ev: &EventLoop<D>) -> bool {
        match self.check_loop(ev) {
            Ok(()) => true,
            Err(e) => {
                error!("{e}; call ignored");
                false
            }
        }
    }

    /// Stops reading input (backpressure): the peer's sends then fill the
    /// kernel buffers and block it. Queued output is still written.
    pub fn stop_reading(&self, ev: &mut EventLoop<D>) {
        if self.on_own_loop(ev) && !swap_flag(&self.inner.stops, |s| &mut s.by_user, true) {
            self.update_interest(ev);
        }
    }

    /// Resumes reading after [`stop_reading`](Self::stop_reading), and offers
    /// input left in the buffer again.
    pub fn start_reading(&self, ev: &mut EventLoop<D>) {
        if self.on_own_loop(ev) && swap_flag(&self.inner.stops, |s| &mut s.by_user, false) {
            self.update_interest(ev);
            self.offer_input(ev);
            // Edge: what arrived while paused raised its edge then; read it now.
            self.schedule_read(ev);
        }
    }

    /// Calls the handler's `on_message` again, after the current batch, with
    /// the input left in the buffer, even though nothing new arrived; for a
    /// handler that stopped at a budget. Does nothing if no input is left or
    /// reading is paused (the output limit offers it again when it lifts).
    /// The peer's end of file, if it is read before the offer runs, waits
    /// for it: `on_peer_closed` comes after the input it asked for.
    pub fn offer_input(&self, ev: &mut EventLoop<D>) {
        if !self.on_own_loop(ev) || swap_flag(&self.inner.queued, |q| &mut q.offer, true) {
            return;
        }
        let conn = self.clone();
        ev.defer(move |ev| {
            swap_flag(&conn.inner.queued, |q| &mut q.offer, false);
            if conn.reads_wanted() && !conn.inner.input.borrow().is_empty() {
                trace!(
                    "connection {}: offering {} bytes of input again",
                    conn.id(),
                    conn.inner.input.borrow().len()
                );
                conn.deliver_input(ev);
            }
        });
    }

    /// Half-closes: no more sends; once the queued output is written, a FIN is
    /// sent. Input is still read; the connection closes when the peer closes
    /// its side (bound that wait with [`set_timeout`](Self::set_timeout)).
    pub fn shutdown(&self, ev: &mut EventLoop<D>) {
        if !self.on_own_loop(ev) || self.inner.life.get() != Life::Open {
            return;
        }
        self.inner.life.set(Life::HalfClosing { fin_sent: false });
        if self.queued_output() == 0 {
            self.output_drained(ev);
        }
    }

    /// Closes once the queued output is written, without waiting for the
    /// peer (Redis' `QUIT`, HTTP's `Connection: close`). No more input is
    /// read or delivered, and sends fail from now on.
    pub fn close_after_flush(&self, ev: &mut EventLoop<D>) {
        if !self.on_own_loop(ev) || matches!(self.inner.life.get(), Life::Closed | Life::Draining) {
            return;
        }
        self.inner.life.set(Life::Draining);
        if self.queued_output() == 0 {
            self.close(ev, "closed after flush");
        } else {
            self.update_interest(ev);
        }
    }

    /// Closes now, dropping queued output. `on_close` runs after the current batch.
    pub fn force_close(&self, ev: &mut EventLoop<D>) {
        if self.on_own_loop(ev) {
            self.close(ev, "closed by the application");
        }
    }

    /// Arms (or with `None` disarms) the connection's timer: unless re-armed,
    /// the handler's `on_timeout` runs once `timeout` has passed. With
    /// [`ConnectionOptions::idle_timeout`], every read and write re-arms it.
    pub fn set_timeout(&self, ev: &mut EventLoop<D>, timeout: Option<Duration>) {
        if !self.on_own_loop(ev) || self.inner.life.get() == Life::Closed {
            return;
        }
        self.inner.deadline.set(timeout.map(|t| clock::now() + t));
        if let Some(t) = timeout {
            deadline::watch::<D>(ev, t);
        }
    }

    /// Whether the connection's timer has run out at `now`; disarms it if so.
    pub(crate) fn take_expired(&self, now: Instant) -> bool {
        match self.inner.deadline.get() {
            Some(deadline) if deadline <= now => {
                self.inner.deadline.set(None);
                true
            }
            _ => false,
        }
    }

    pub(crate) fn in_group(&self, group: &Arc<ConnectionGroup>) -> bool {
        self.inner.group.as_ref().is_some_and(|g| Arc::ptr_eq(g, group))
    }

    /// Whether the connection's timer is armed.
    pub(crate) fn has_deadline(&self) -> bool {
        self.inner.deadline.get().is_some()
    }

    /// Runs the handler's `on_server_stop`.
    pub(crate) fn server_stopping(&self, ev: &mut EventLoop<D>) {
        if self.inner.life.get() != Life::Closed {
            self.with_handler(|h| h.on_server_stop(ev, self));
        }
    }

    /// Runs the handler's `on_timeout`.
    pub(crate) fn timed_out(&self, ev: &mut EventLoop<D>) {
        debug!("connection {}: timed out", self.id());
        self.with_handler(|h| h.on_timeout(ev, self));
    }

    /// Progress: re-arms the idle timer, if the options ask for one.
    fn touch(&self, ev: &mut EventLoop<D>) {
        if let Some(idle) = self.inner.options.idle_timeout {
            self.set_timeout(ev, Some(idle));
        }
    }

    /// Turns [`Handler::on_write_complete`] notifications on or off for this
    /// connection from now on, whatever
    /// [`Handler::wants_write_complete`] said: for a handler that needs them
    /// only at times (while it streams a body, say).
    pub fn notify_write_complete(&self, on: bool) {
        self.inner.wants_write_complete.set(on);
    }

    /// Runs `f` on the connection's handler if it is an `H` and none of its
    /// methods is running: how a task queued on the loop reaches a
    /// handler's own state (an answer for an HTTP connection, say).
    /// `None` otherwise.
    #[cfg_attr(not(feature = "http"), allow(dead_code))] // only HTTP needs it yet
    pub(crate) fn with_handler_as<H: Handler<D>, R>(&self, f: impl FnOnce(&mut H) -> R) -> Option<R> {
        let mut result = None;
        self.with_handler(|handler| {
            let any: &mut dyn std::any::Any = handler;
            if let Some(handler) = any.downcast_mut::<H>() {
                result = Some(f(handler));
            }
        });
        result
    }

    /// Runs `f` on the handler unless one of its methods is already running.
    fn with_handler(&self, f: impl FnOnce(&mut dyn Handler<D>)) {
        let taken = self.inner.handler.borrow_mut().take();
        if let Some(mut handler) = taken {
            f(handler.as_mut());
            *self.inner.handler.borrow_mut() = Some(handler);
        }
    }

    /// Tears the connection down now (idempotent): deregister, then close the
    /// fd; `on_close` runs after the current batch.
    fn close(&self, ev: &mut EventLoop<D>, reason: &str) {
        if self.inner.life.replace(Life::Closed) == Life::Closed {
            return;
        }
        if let Err(e) = ev.deregister(self.inner.fd) {
            warn!("connection {}: deregister failed: {e}", self.id());
        }
        drop(self.inner.socket.borrow_mut().take());
        ConnectionTable::remove(ev, self.id());
        self.inner.deadline.set(None);
        // Closes the files and the fds that were never passed, too.
        let dropped = self.inner.output.borrow_mut().clear();
        self.inner.input.take();
        trace!(
            "[{}] connection {} down: {} (fd {} closed: {reason}; {dropped} queued bytes dropped)",
            ev.name(),
            self.id(),
            self.inner.peer,
            self.inner.fd
        );
        let conn = self.clone();
        ev.defer(move |ev| {
            conn.with_handler(|h| h.on_close(ev, &conn));
            // The handler (and whatever it holds) goes with the connection.
            drop(conn.inner.handler.borrow_mut().take());
            if let Some(group) = &conn.inner.group {
                group.live.fetch_sub(1, Ordering::AcqRel);
            }
        });
    }
}

pub(super) fn not_connected(id: u64) -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, format!("connection {id} is closing or closed"))
}
