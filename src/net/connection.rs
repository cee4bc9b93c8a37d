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
//! * **Backpressure is built in**: above [`ConnectionOptions::output_limit`]
//!   of queued output the connection stops reading, so a peer that sends
//!   requests but never reads the answers fills its own socket buffers and
//!   blocks, instead of our memory. Below half the limit, reading resumes and
//!   input the handler left unprocessed is offered to it again, so a
//!   protocol handler can stop at a byte budget and carry on later.
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

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
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
use crate::buffer::{Buffer, SPILL_SIZE};
use crate::dispatcher::{DefaultDispatcher, Dispatcher, Event, Interest, Mode};
use crate::event_loop::{EventLoop, LoopHandle};
use crate::sys;

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

struct Inner<D: Dispatcher + 'static> {
    id: u64,
    fd: RawFd,
    /// `None` once closed; the raw `fd` must not be used after that.
    socket: RefCell<Option<OwnedFd>>,
    local: StreamAddr,
    peer: StreamAddr,
    life: Cell<Life>,
    /// `stop_reading` was called.
    paused_by_user: Cell<bool>,
    /// The peer's FIN was read: nothing more to read.
    peer_eof: Cell<bool>,
    /// Queued output is above the limit.
    throttled: Cell<bool>,
    input: RefCell<Buffer>,
    /// What the kernel has not taken yet, in stream order (see `output`).
    output: RefCell<OutputQueue>,
    /// `None` only while one of its methods runs.
    handler: RefCell<Option<Box<dyn Handler<D>>>>,
    wants_write_complete: Cell<bool>,
    /// An `offer_input` task is queued.
    offer_queued: Cell<bool>,
    /// Registered edge-triggered: drain, and keep the interest fixed.
    edge: bool,
    /// Edge: a read continuation task is queued (budget hit, or reading resumed).
    read_queued: Cell<bool>,
    /// Edge: a write continuation task is queued (budget hit).
    write_queued: Cell<bool>,
    options: ConnectionOptions,
    group: Option<Arc<ConnectionGroup>>,
    loop_id: u64,
    loop_handle: LoopHandle<D>,
    /// When the connection's timer runs out (see `deadline`).
    deadline: Cell<Option<Instant>>,
}

/// A stream connection (TCP or Unix) living on one event loop. Cheap to
/// clone (`Rc`); not `Send`.
pub struct Connection<D: Dispatcher + 'static = DefaultDispatcher> {
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
/// while borrowed, and a connection may be closed by its loop at any time.
impl<D: Dispatcher + 'static> AsRawFd for Connection<D> {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.fd
    }
}

fn interrupted_or_would_block(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted)
}

thread_local! {
    /// The reusable reply buffer of [`Connection::send_with`].
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Reply buffers larger than this are not kept for reuse.
const SCRATCH_KEEP: usize = 64 * 1024;

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
            sys::set_nodelay(fd, true)?;
        }
        let local = StreamAddr::of_socket(fd, false)?;
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
                paused_by_user: Cell::new(false),
                peer_eof: Cell::new(false),
                throttled: Cell::new(false),
                input: RefCell::new(Buffer::new()),
                output: RefCell::new(OutputQueue::default()),
                handler: RefCell::new(None),
                wants_write_complete: Cell::new(false),
                offer_queued: Cell::new(false),
                edge,
                read_queued: Cell::new(false),
                write_queued: Cell::new(false),
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
        sys::set_nonblocking(socket.as_raw_fd(), true)?;
        let peer = StreamAddr::of_socket(socket.as_raw_fd(), true)?;
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

    /// Whether a throttled connection may read again: queued output at or
    /// below half the limit and room for another file region.
    fn below_resume_mark(&self, left: usize) -> bool {
        self.queued_files() < MAX_QUEUED_FILES
            && self.inner.options.output_limit.is_none_or(|limit| left <= limit / 2)
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
        )
    }

    /// Turns `TCP_NODELAY` on or off (on by default, see [`ConnectionOptions::nodelay`];
    /// a Unix socket has no such option and says `Unsupported`).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        if self.inner.peer.is_unix() {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "a unix socket has no TCP_NODELAY"));
        }
        self.with_open_fd(|fd| sys::set_nodelay(fd, on))
    }

    /// Turns `SO_KEEPALIVE` on or off.
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        self.with_open_fd(|fd| sys::set_keepalive(fd, on))
    }

    fn with_open_fd<T>(&self, f: impl FnOnce(RawFd) -> io::Result<T>) -> io::Result<T> {
        match self.inner.life.get() {
            Life::Closed => Err(not_connected(self.id())),
            _ => f(self.inner.fd),
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

    /// Sends `data`: written at once if nothing is queued, the rest copied to
    /// the output queue and written when the socket has room. Fails with
    /// `NotConnected` after `shutdown`/close, `InvalidInput` on another loop;
    /// a socket error closes the connection at once (its `on_close` runs
    /// after the current batch) and is returned.
    pub fn send(&self, ev: &mut EventLoop<D>, data: &[u8]) -> io::Result<()> {
        self.send_slices(ev, &[IoSlice::new(data)])
    }

    /// Sends several slices with one `sendmsg` (a `writev`) when nothing is
    /// queued; like [`send`](Self::send) otherwise.
    pub fn send_vectored(&self, ev: &mut EventLoop<D>, slices: &[IoSlice<'_>]) -> io::Result<()> {
        self.send_slices(ev, slices)
    }

    /// Sends `data`, taking ownership: what the kernel does not take at once
    /// is queued without a copy when the queue was empty.
    pub fn send_owned(&self, ev: &mut EventLoop<D>, data: Vec<u8>) -> io::Result<()> {
        let (len, written) = (data.len(), self.write_now(ev, &[IoSlice::new(&data)])?);
        if written < len {
            self.inner.output.borrow_mut().push_vec(data, written);
        }
        self.after_send(ev, written, len - written);
        Ok(())
    }

    /// Builds a reply in a reusable per-thread buffer and sends it with one
    /// system call: the way to answer a batch of pipelined requests (append
    /// every reply, send once). Returns what `build` returns.
    ///
    /// ```no_run
    /// # use muxloop::{EventLoop, Connection, Buffer};
    /// # fn on_message(ev: &mut EventLoop, conn: &Connection, input: &mut Buffer) -> std::io::Result<()> {
    /// conn.send_with(ev, |out| {
    ///     while let Some(eol) = input.find_eol() {
    ///         out.extend_from_slice(b"+OK\r\n");
    ///         input.consume(eol + 1);
    ///     }
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn send_with<R>(
        &self,
        ev: &mut EventLoop<D>,
        build: impl FnOnce(&mut Vec<u8>) -> R,
    ) -> io::Result<R> {
        let mut out = SCRATCH.take();
        out.clear();
        let result = build(&mut out);
        let sent = if out.is_empty() { Ok(()) } else { self.send(ev, &out) };
        if out.capacity() <= SCRATCH_KEEP {
            out.clear();
            SCRATCH.set(out);
        }
        sent.map(|()| result)
    }

    /// Passes file descriptors to the peer of a Unix socket connection
    /// (`SCM_RIGHTS`) together with `data`, which must not be empty: the fds
    /// travel with its first byte, and the peer's
    /// [`Handler::on_fds`] receives them before the `on_message` that sees
    /// that byte. The peer gets its own duplicates; `fds` stay open here.
    /// Order with other sends is kept (queued fds wait for their byte).
    /// `Unsupported` on TCP; `InvalidInput` for empty `data` or more than 253
    /// fds; `WouldBlock` if 1,024 passed fds are already queued.
    pub fn send_fds(&self, ev: &mut EventLoop<D>, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        self.check_loop(ev)?;
        if !self.inner.peer.is_unix() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "fds can only be passed over a unix socket",
            ));
        }
        if data.is_empty() || fds.len() > sys::MAX_FDS_PER_MESSAGE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} fd(s) with {} byte(s): 1-253 fds go with at least one byte",
                    fds.len(),
                    data.len()
                ),
            ));
        }
        if self.inner.life.get() != Life::Open {
            return Err(not_connected(self.id()));
        }
        if self.queued_output() == 0 {
            let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
            match sys::send_with_fds(self.inner.fd, &[IoSlice::new(data)], &raw) {
                Ok(n) => {
                    let mut output = self.inner.output.borrow_mut();
                    output.wrote_directly(n);
                    output.push_slices(&[IoSlice::new(data)], n);
                    drop(output);
                    self.after_send(ev, n, data.len() - n);
                    return Ok(());
                }
                Err(e) if interrupted_or_would_block(&e) => {}
                Err(e) => {
                    debug!("connection {}: sending fds failed: {e}", self.id());
                    self.close(ev, "send failed");
                    return Err(e);
                }
            }
        }
        let queued = self.inner.output.borrow().queued_fds();
        if queued + fds.len() > MAX_QUEUED_FDS {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{queued} passed fds already wait for the peer to read"),
            ));
        }
        let fds = fds.iter().map(|fd| fd.try_clone_to_owned()).collect::<io::Result<Vec<_>>>()?;
        self.inner.output.borrow_mut().push_fds(fds, data);
        self.after_send(ev, 0, data.len());
        Ok(())
    }

    fn send_slices(&self, ev: &mut EventLoop<D>, slices: &[IoSlice<'_>]) -> io::Result<()> {
        let total: usize = slices.iter().map(|s| s.len()).sum();
        let written = self.write_now(ev, slices)?;
        if written < total {
            self.inner.output.borrow_mut().push_slices(slices, written);
        }
        self.after_send(ev, written, total - written);
        Ok(())
    }

    /// Checks the connection can send and writes what the socket takes now
    /// (nothing if output is already queued: order must be kept).
    fn write_now(&self, ev: &mut EventLoop<D>, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        self.check_loop(ev)?;
        if self.inner.life.get() != Life::Open {
            return Err(not_connected(self.id()));
        }
        if !self.inner.output.borrow().is_empty() || slices.iter().all(|s| s.is_empty()) {
            return Ok(0);
        }
        match sys::send_vectored(self.inner.fd, slices) {
            Ok(n) => {
                self.inner.output.borrow_mut().wrote_directly(n);
                Ok(n)
            }
            Err(e) if interrupted_or_would_block(&e) => Ok(0),
            Err(e) => {
                debug!("connection {}: send failed: {e}", self.id());
                self.close(ev, "send failed");
                Err(e)
            }
        }
    }

    /// Bookkeeping after a send wrote `written` bytes and queued `queued`.
    fn after_send(&self, ev: &mut EventLoop<D>, written: usize, queued: usize) {
        if written > 0 {
            self.touch(ev);
        }
        if queued == 0 {
            trace!("[{}] connection {}: sent {written}/{written}", ev.name(), self.id());
            if written > 0 {
                self.write_completed(ev);
            }
            return;
        }
        let after = self.queued_output();
        let before = after - queued;
        trace!(
            "[{}] connection {}: sent {written}/{}, {after} bytes queued",
            ev.name(),
            self.id(),
            written + queued
        );
        let mark = self.inner.options.high_water_mark;
        if before < mark && after >= mark {
            let conn = self.clone();
            ev.defer(move |ev| conn.with_handler(|h| h.on_high_water_mark(ev, &conn, after)));
        }
        if self.is_output_full() && !self.inner.throttled.replace(true) {
            debug!("connection {}: {after} bytes queued, pausing reads until they drain", self.id());
        }
        self.update_interest(ev);
        // Edge: a write that stopped short without `WouldBlock` is not
        // promised a new edge (TCP gives one, other sockets need not), so go
        // on writing until the socket says `WouldBlock` or the queue is empty.
        if self.inner.edge && written > 0 {
            self.handle_write(ev);
        }
    }

    fn write_completed(&self, ev: &mut EventLoop<D>) {
        if self.inner.wants_write_complete.get() {
            let conn = self.clone();
            ev.defer(move |ev| {
                if conn.inner.life.get() != Life::Closed {
                    conn.with_handler(|h| h.on_write_complete(ev, &conn));
                }
            });
        }
    }

    /// Stops reading input (backpressure): the peer's sends then fill the
    /// kernel buffers and block it. Queued output is still written.
    pub fn stop_reading(&self, ev: &mut EventLoop<D>) {
        if self.on_own_loop(ev) && !self.inner.paused_by_user.replace(true) {
            self.update_interest(ev);
        }
    }

    /// Resumes reading after [`stop_reading`](Self::stop_reading), and offers
    /// input left in the buffer again.
    pub fn start_reading(&self, ev: &mut EventLoop<D>) {
        if self.on_own_loop(ev) && self.inner.paused_by_user.replace(false) {
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
    pub fn offer_input(&self, ev: &mut EventLoop<D>) {
        if !self.on_own_loop(ev) || self.inner.offer_queued.replace(true) {
            return;
        }
        let conn = self.clone();
        ev.defer(move |ev| {
            conn.inner.offer_queued.set(false);
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
        self.inner.deadline.set(timeout.map(|t| Instant::now() + t));
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

    fn reads_wanted(&self) -> bool {
        matches!(self.inner.life.get(), Life::Open | Life::HalfClosing { .. })
            && !self.inner.peer_eof.get()
            && !self.inner.paused_by_user.get()
            && !self.inner.throttled.get()
    }

    /// Puts the interest the state calls for into the loop, if it changed.
    /// Edge-triggered, the interest stays readable + writable: "writable"
    /// is then reported once per change, not forever, and a paused
    /// connection just ignores reports (resuming schedules a read), so no
    /// pause, resume or write burst costs an `epoll_ctl`.
    fn update_interest(&self, ev: &mut EventLoop<D>) {
        if self.inner.life.get() == Life::Closed || self.inner.edge {
            return;
        }
        let mut interest = Interest::NONE;
        if self.reads_wanted() {
            interest = interest | Interest::READABLE;
        }
        let queued = self.queued_output();
        if queued > 0 {
            interest = interest | Interest::WRITABLE;
        }
        let Some(current) = ev.interest(self.inner.fd) else { return };
        if current == interest {
            return;
        }
        let why = if queued > 0 { format!("{queued} bytes queued") } else { "drained".to_owned() };
        trace!(
            "[{}] connection {}: fd {} {current:?} -> {interest:?} ({why})",
            ev.name(),
            self.id(),
            self.inner.fd
        );
        if let Err(e) = ev.set_interest(self.inner.fd, interest) {
            warn!("connection {}: cannot change interest to {interest:?}: {e}", self.id());
            self.close(ev, "interest change failed");
        }
    }

    fn handle_event(&self, ev: &mut EventLoop<D>, event: Event) {
        // A queued continuation (edge) will read or write anyway: doing it
        // here as well would give this connection two budgets in one pass.
        if event.is_readable() && self.reads_wanted() && !self.inner.read_queued.get() {
            // Edge: a short read proves the socket drained only if no
            // end-of-file, hang-up or error was pending when the event was
            // taken (those raise no further edge once read past), and only
            // on TCP: a Unix socket's read also stops short where passed fds
            // begin, with more data queued behind them.
            let clean = !(event.is_read_closed()
                || event.is_hangup()
                || event.is_error()
                || event.is_invalid()
                || self.inner.peer.is_unix());
            self.handle_read(ev, clean);
        }
        if event.is_writable()
            && self.queued_output() > 0
            && self.inner.life.get() != Life::Closed
            && !self.inner.write_queued.get()
        {
            self.handle_write(ev);
        }
    }

    /// One read of at most `max` bytes into the input buffer; on a Unix
    /// socket, fds passed with the data go to the handler's `on_fds` at once.
    fn read_once(&self, ev: &mut EventLoop<D>, max: usize) -> io::Result<usize> {
        if !self.inner.peer.is_unix() {
            return self.inner.input.borrow_mut().recv_fd_max(self.inner.fd, max);
        }
        let mut fds = Vec::new();
        let result = self.inner.input.borrow_mut().recv_fd_with_fds(self.inner.fd, max, &mut fds);
        if !fds.is_empty() {
            trace!("[{}] connection {}: received {} fd(s)", ev.name(), self.id(), fds.len());
            self.with_handler(|h| h.on_fds(ev, self, fds));
        }
        result
    }

    /// Reads what arrived and hands it to the handler after each read.
    /// Level: one read of at most the pass budget (the backend reports again
    /// while data is left). Edge: reads until `WouldBlock`, EOF or a pause
    /// (reading paused, output over the limit, closing: whatever resumes
    /// reading schedules a read), or until the pass budget is spent, when
    /// the rest waits for a continuation after the current batch.
    ///
    /// `short_read_drains` (edge, from a clean event): a read that returned
    /// less than the space offered found the receive queue empty, and any
    /// byte queued after that raises a new edge, so it ends the drain
    /// without the extra read that would say `WouldBlock` (one system call
    /// per request saved). Not when end of file may be pending: the FIN
    /// raised its edge already, and reading up to it leaves nothing to say
    /// so; nor for continuations, which have no event to go by.
    fn handle_read(&self, ev: &mut EventLoop<D>, short_read_drains: bool) {
        let budget = self.inner.options.pass_budget.max(1);
        let mut taken = 0;
        loop {
            // At least this much space is offered (a spill block, or the rest
            // of the budget): fewer bytes back means a short read.
            let surely_offered = (budget - taken).min(SPILL_SIZE);
            let result = self.read_once(ev, budget - taken);
            match result {
                Ok(0) => return self.handle_peer_eof(ev),
                Ok(n) => {
                    taken += n;
                    trace!("[{}] connection {}: read {n} bytes", ev.name(), self.id());
                    self.touch(ev);
                    self.deliver_input(ev);
                    if !self.inner.edge || !self.reads_wanted() {
                        return;
                    }
                    if taken >= budget {
                        trace!(
                            "[{}] connection {}: read budget spent, continuing later",
                            ev.name(),
                            self.id()
                        );
                        self.schedule_read(ev);
                        return;
                    }
                    if short_read_drains && n < surely_offered {
                        return;
                    }
                }
                // Edge: an interrupted read proves nothing, try again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted && self.inner.edge => {}
                Err(e) if interrupted_or_would_block(&e) => return,
                Err(e) => {
                    debug!("connection {}: read failed: {e}", self.id());
                    self.close(ev, "read failed");
                    return;
                }
            }
        }
    }

    /// Edge: data already waiting raises no new edge, so a read that stopped
    /// at the budget, or reading that resumes after a pause, goes on in a
    /// task after the current batch (once, however often it is asked).
    fn schedule_read(&self, ev: &mut EventLoop<D>) {
        if !self.inner.edge || self.inner.read_queued.replace(true) {
            return;
        }
        let conn = self.clone();
        ev.defer(move |ev| {
            conn.inner.read_queued.set(false);
            if conn.reads_wanted() {
                conn.handle_read(ev, false);
            }
        });
    }

    /// Edge: the write side of [`schedule_read`](Self::schedule_read), for a
    /// write that stopped at the budget with room still in the socket.
    fn schedule_write(&self, ev: &mut EventLoop<D>) {
        if self.inner.write_queued.replace(true) {
            return;
        }
        let conn = self.clone();
        ev.defer(move |ev| {
            conn.inner.write_queued.set(false);
            if conn.queued_output() > 0 && conn.inner.life.get() != Life::Closed {
                conn.handle_write(ev);
            }
        });
    }

    /// Hands the input buffer to the handler.
    fn deliver_input(&self, ev: &mut EventLoop<D>) {
        // Take the buffer out so the handler can do anything with the
        // connection (even close it) without a RefCell conflict.
        let mut input = self.inner.input.take();
        self.with_handler(|h| h.on_message(ev, self, &mut input));
        if self.inner.life.get() == Life::Draining {
            input.consume_all(); // nothing more will be delivered
        }
        if self.inner.life.get() != Life::Closed {
            input.settle(); // a partial message should not pin a large block
            *self.inner.input.borrow_mut() = input;
        }
    }

    /// The peer sent FIN: stop reading, and let the handler decide when to
    /// close (by default once our queued output is out).
    fn handle_peer_eof(&self, ev: &mut EventLoop<D>) {
        debug!(
            "connection {}: peer closed its side ({} bytes still queued)",
            self.id(),
            self.queued_output()
        );
        self.inner.peer_eof.set(true);
        let mut asked = false;
        self.with_handler(|h| {
            asked = true;
            h.on_peer_closed(ev, self);
        });
        if !asked {
            self.close_after_flush(ev);
        }
        self.update_interest(ev);
    }

    /// One write of at most `max` bytes from the output queue (the kernel
    /// may take less; a file region at least [`FILE_PASS_MIN`]), uncorking
    /// the socket once the last queued file is out.
    fn send_queued(&self, max: usize) -> io::Result<usize> {
        let mut output = self.inner.output.borrow_mut();
        let had_files = output.files() > 0;
        let n = output.write_to(&mut SocketSink(self.inner.fd), max, FILE_PASS_MIN)?;
        let uncork = had_files && output.files() == 0;
        drop(output);
        if uncork {
            self.cork(false);
        }
        Ok(n)
    }

    /// Writes queued output, at most the pass budget. Level: one write per
    /// report (the backend reports again while there is room and interest).
    /// Edge: writes until `WouldBlock` or the queue is empty; at the budget,
    /// with the socket not known to be full, a continuation after the
    /// current batch (TCP would raise a new edge after a short write, but
    /// not after a full one that merely spent the budget).
    fn handle_write(&self, ev: &mut EventLoop<D>) {
        let budget = self.inner.options.pass_budget.max(1);
        let mut written = 0;
        let mut blocked = false;
        loop {
            match self.send_queued(budget - written) {
                Ok(n) => {
                    written += n;
                    if !self.inner.edge || self.queued_output() == 0 || written >= budget {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted && self.inner.edge => {}
                Err(e) if interrupted_or_would_block(&e) => {
                    blocked = true;
                    break;
                }
                Err(e) => {
                    debug!("connection {}: write failed: {e}", self.id());
                    self.close(ev, "write failed");
                    return;
                }
            }
        }
        if written == 0 {
            return;
        }
        trace!(
            "[{}] connection {}: wrote {written} queued bytes, {} left",
            ev.name(),
            self.id(),
            self.queued_output()
        );
        self.touch(ev);
        let left = self.queued_output();
        let below_half = self.below_resume_mark(left);
        if self.inner.throttled.get() && below_half {
            self.inner.throttled.set(false);
            debug!("connection {}: output down to {left} bytes, reading again", self.id());
            self.offer_input(ev);
            // Edge: input that waited in the socket raised its edge long ago.
            self.schedule_read(ev);
        }
        if left == 0 {
            self.write_completed(ev);
            self.output_drained(ev);
        } else {
            self.update_interest(ev);
            if self.inner.edge && !blocked {
                self.schedule_write(ev);
            }
        }
    }

    /// The output queue is empty: finish a half-close or a flush-then-close.
    fn output_drained(&self, ev: &mut EventLoop<D>) {
        match self.inner.life.get() {
            Life::Draining => self.close(ev, "output flushed"),
            Life::HalfClosing { fin_sent: false } => match sys::shutdown(self.inner.fd, Shutdown::Write) {
                Ok(()) => {
                    trace!("[{}] connection {}: output flushed, FIN sent", ev.name(), self.id());
                    self.inner.life.set(Life::HalfClosing { fin_sent: true });
                    self.update_interest(ev);
                }
                Err(e) => {
                    debug!("connection {}: shutdown failed: {e}", self.id());
                    self.close(ev, "shutdown failed");
                }
            },
            _ => self.update_interest(ev),
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

fn not_connected(id: u64) -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, format!("connection {id} is closing or closed"))
}

// ---- file regions (sendfile) ----

/// A file region may take this much per loop pass even when the pass budget
/// is smaller (nginx's `sendfile_max_chunk` default): `sendfile` copies in
/// the kernel only, and refilling a 4 MiB socket buffer in 256 KiB steps
/// left the reader waiting.
const FILE_PASS_MIN: usize = 2 * 1024 * 1024;
impl<D: Dispatcher + 'static> Connection<D> {
    /// Queues `len` bytes of `file`, from `offset`, after everything already
    /// queued; later sends go out after it. The region is sent with
    /// `sendfile(2)`: the kernel copies from the page cache to the socket and
    /// the file is never read into memory. Written at once as far as the
    /// socket takes it when nothing else is queued.
    ///
    /// The region's unsent bytes count toward [`queued_output`](Self::queued_output)
    /// (so toward [`ConnectionOptions::output_limit`]: a large file pauses
    /// reading until it has mostly gone out). Each queued region holds the
    /// file open; a connection takes at most
    /// [`MAX_QUEUED_FILES`] and fails with
    /// `QuotaExceeded` beyond that (check [`is_output_full`](Self::is_output_full)
    /// first). If the file turns out shorter than `offset + len` when its
    /// turn comes, the connection is closed (the peer was promised bytes that
    /// do not exist). Errors as for [`send`](Self::send); `file` is dropped
    /// (closed, unless shared) once sent or when the connection closes. On
    /// TCP the socket is corked (`TCP_CORK`) while files are queued, like
    /// nginx's `tcp_nopush`: a transfer the peer's window throttles then goes
    /// out in full segments, not in many small ones.
    pub fn send_file(
        &self,
        ev: &mut EventLoop<D>,
        file: impl Into<Arc<std::fs::File>>,
        offset: u64,
        len: u64,
    ) -> io::Result<()> {
        self.check_loop(ev)?;
        if self.inner.life.get() != Life::Open {
            return Err(not_connected(self.id()));
        }
        let total = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file region larger than usize"))?;
        if total == 0 {
            return Ok(());
        }
        if self.queued_files() >= MAX_QUEUED_FILES {
            return Err(io::Error::new(
                io::ErrorKind::QuotaExceeded,
                format!("connection {}: {MAX_QUEUED_FILES} files already queued", self.id()),
            ));
        }
        let first = self.inner.output.borrow().is_empty();
        if self.queued_files() == 0 {
            self.cork(true);
        }
        self.inner.output.borrow_mut().push_file(file.into(), offset, len);
        let mut written = 0;
        if first {
            match self.send_queued(self.inner.options.pass_budget) {
                Ok(n) => written = n,
                Err(e) if interrupted_or_would_block(&e) => {}
                Err(e) => {
                    debug!("connection {}: sendfile failed: {e}", self.id());
                    self.close(ev, "sendfile failed");
                    return Err(e);
                }
            }
        }
        self.after_send(ev, written, total - written);
        Ok(())
    }

    /// TCP only: corked while files stream out, so a flow limited by the
    /// peer's window goes out in full segments, not in the slivers each
    /// window update allows (fewer packets for the peer to process); uncorking
    /// sends the last partial segment at once. A failure only costs that.
    fn cork(&self, on: bool) {
        if !self.inner.peer.is_unix()
            && let Err(e) = sys::set_cork(self.inner.fd, on)
        {
            trace!("connection {}: TCP_CORK {on}: {e}", self.id());
        }
    }
}
