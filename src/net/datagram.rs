//! [`DatagramSocket`]: one datagram socket (UDP or Unix `SOCK_DGRAM`) on one
//! event loop. [`UdpSocket`](super::UdpSocket) and
//! [`UnixDatagram`](super::UnixDatagram) are this type with a different
//! address type; the receive, send-queue and close logic exists once.
//!
//! It teaches what changes when there is no byte stream:
//!
//! * **Message boundaries**: one receive returns one whole datagram, never a
//!   part or two glued together, so there is no input buffer to parse, only a
//!   callback per datagram. A datagram larger than the receive slot is cut by
//!   the kernel; the callback is told ([`Datagram::truncated_from`]), it never
//!   gets a silently shortened message.
//! * **Batching**: a readable socket is drained with `recvmmsg(2)` (many
//!   datagrams per system call on Linux) up to a per-wake-up budget, so a flood
//!   on one socket cannot hold the loop; level-triggered readiness brings the
//!   rest on the next iteration. A batch that comes back short ends the drain
//!   (the queue was empty), saving the system call that would only fail with
//!   `EAGAIN`. Replies sent from the callback are gathered
//!   and leave with one `sendmmsg(2)` per received batch.
//! * **No backpressure**: a sender is never slowed by its receiver (UDP drops
//!   on the floor when the receiver's buffer is full). A send that would block
//!   (own buffer full, or a full Unix peer) is queued, up to a bound; past it
//!   the datagram is dropped and counted, as the network itself would.
//! * **No connection**: `connect` on a datagram socket only fixes a default
//!   destination and filters what is received.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::rc::{Rc, Weak};

use log::{debug, trace};

use crate::dispatcher::{AnyDispatcher, Dispatcher, Event, Interest, Mode};
use crate::event_loop::{EventLoop, LoopHandle};
use crate::sys::{self, RawAddr, RecvBatch};

/// An address type a [`DatagramSocket`] can send to and receive from.
pub trait DatagramAddr: Clone + fmt::Debug + 'static {
    /// The kernel's form of this address.
    fn to_raw(&self) -> io::Result<RawAddr>;
    /// This address from the kernel's form; `InvalidInput` for another family.
    fn from_raw(raw: &RawAddr) -> io::Result<Self>;
}

/// One received datagram, as handed to the callback.
#[derive(Debug)]
pub struct Datagram<'a, A> {
    /// The bytes (all of them, unless [`truncated_from`](Self::truncated_from) is set).
    pub data: &'a [u8],
    /// The sender.
    pub peer: A,
    /// `Some(real length)` if the datagram did not fit the receive slot
    /// ([`DatagramOptions::max_datagram`]) and `data` holds only its start.
    /// The real length comes from Linux (`MSG_TRUNC` on receive); without
    /// the `muxloop_linux` cfg the kernel only says the datagram was cut, and
    /// this is the slot size.
    pub truncated_from: Option<usize>,
}

/// Limits and buffer sizes of a datagram socket.
///
/// Memory: each socket reserves `recv_batch x max_datagram` bytes of receive
/// slots (2 MiB by default, touched only as large datagrams arrive) plus at
/// most `send_queue_bytes` of queued output.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DatagramOptions {
    /// Largest datagram received whole (bytes per receive slot). Default
    /// 65,536: any UDP datagram (65,507 bytes of payload over IPv4).
    pub max_datagram: usize,
    /// Datagrams per `recvmmsg` call. Default 32.
    pub recv_batch: usize,
    /// Datagrams handled per wake-up before the loop moves on. Default 256.
    pub recv_budget: usize,
    /// Most datagrams waiting in the send queue. Default 1,024.
    pub send_queue_datagrams: usize,
    /// Most bytes waiting in the send queue. Default 4 MiB.
    pub send_queue_bytes: usize,
    /// `SO_RCVBUF` to ask for (`None`: the system default).
    pub recv_buffer: Option<usize>,
    /// `SO_SNDBUF` to ask for (`None`: the system default).
    pub send_buffer: Option<usize>,
}

impl Default for DatagramOptions {
    fn default() -> Self {
        DatagramOptions {
            max_datagram: 65_536,
            recv_batch: 32,
            recv_budget: 256,
            send_queue_datagrams: 1024,
            send_queue_bytes: 4 << 20,
            recv_buffer: None,
            send_buffer: None,
        }
    }
}

impl DatagramOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets [`max_datagram`](Self::max_datagram) (at least 1).
    pub fn max_datagram(mut self, bytes: usize) -> Self {
        self.max_datagram = bytes.max(1);
        self
    }
    /// Sets [`recv_batch`](Self::recv_batch) (at least 1).
    pub fn recv_batch(mut self, datagrams: usize) -> Self {
        self.recv_batch = datagrams.max(1);
        self
    }
    /// Sets [`recv_budget`](Self::recv_budget) (at least 1).
    pub fn recv_budget(mut self, datagrams: usize) -> Self {
        self.recv_budget = datagrams.max(1);
        self
    }
    /// Sets the send-queue bounds (each at least 1).
    pub fn send_queue(mut self, datagrams: usize, bytes: usize) -> Self {
        self.send_queue_datagrams = datagrams.max(1);
        self.send_queue_bytes = bytes.max(1);
        self
    }
    /// Sets the kernel buffer sizes to ask for.
    pub fn buffers(mut self, recv: Option<usize>, send: Option<usize>) -> Self {
        self.recv_buffer = recv;
        self.send_buffer = send;
        self
    }
}

/// Counters of one datagram socket.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct DatagramStats {
    /// Datagrams the kernel accepted for sending.
    pub sent: u64,
    /// Datagrams received (truncated ones included).
    pub received: u64,
    /// Datagrams received cut short (larger than the receive slot).
    pub truncated: u64,
    /// Datagrams dropped because the send queue was full, or still queued at close.
    pub dropped: u64,
    /// Queued datagrams the kernel refused (for example `EMSGSIZE`, `ECONNREFUSED`).
    pub send_errors: u64,
    /// Receive errors (for example `ECONNREFUSED` on a connected UDP socket
    /// after an ICMP port unreachable) and datagrams from unreadable addresses.
    pub recv_errors: u64,
    /// Datagrams waiting in the send queue now.
    pub queued: usize,
}

type DatagramCallback<D, A> = Box<dyn FnMut(&mut EventLoop<D>, &DatagramSocket<D, A>, &Datagram<'_, A>)>;

struct Queued {
    to: Option<RawAddr>,
    data: Box<[u8]>,
}

#[derive(Default)]
struct SendQueue {
    items: VecDeque<Queued>,
    bytes: usize,
}

struct Inner<D: Dispatcher + 'static, A: DatagramAddr> {
    fd: RawFd,
    /// `None` once closed; the raw `fd` must not be used after that.
    socket: RefCell<Option<OwnedFd>>,
    local: A,
    peer: RefCell<Option<A>>,
    options: DatagramOptions,
    batch: RefCell<RecvBatch>,
    queue: RefCell<SendQueue>,
    /// Write interest is on (the queue is waiting for room).
    writing: Cell<bool>,
    /// The callback is running inside a receive batch: sends are gathered.
    in_batch: Cell<bool>,
    stats: Cell<DatagramStats>,
    callback: RefCell<Option<DatagramCallback<D, A>>>,
    loop_handle: LoopHandle<D>,
    /// Runs once at close (the Unix socket's bound file is removed here).
    on_close: RefCell<Option<Box<dyn FnOnce()>>>,
}

/// A datagram socket registered on one event loop. Cheap to clone (`Rc`), not
/// `Send`. It closes on [`close`](Self::close), or when the last clone is
/// dropped (the loop then deregisters and closes the fd after the current batch).
///
/// ```
/// use muxloop::{EventLoop, UdpSocket};
/// let mut ev: EventLoop = EventLoop::new()?;
/// let echo = UdpSocket::bind(&mut ev, "127.0.0.1:0", |ev, sock, dgram| {
///     let _ = sock.send_to(ev, dgram.data, &dgram.peer);
/// })?;
/// let client = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// client.send_to(b"ping", echo.local_addr())?;
/// ev.run_once(Some(std::time::Duration::from_secs(5)))?;
/// let mut buf = [0; 8];
/// assert_eq!(client.recv(&mut buf)?, 4);
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "the socket closes when the last handle is dropped"]
pub struct DatagramSocket<D: Dispatcher + 'static = AnyDispatcher, A: DatagramAddr = std::net::SocketAddr> {
    inner: Rc<Inner<D, A>>,
}

impl<D: Dispatcher + 'static, A: DatagramAddr> Clone for DatagramSocket<D, A> {
    fn clone(&self) -> Self {
        DatagramSocket { inner: Rc::clone(&self.inner) }
    }
}

impl<D: Dispatcher + 'static, A: DatagramAddr> fmt::Debug for DatagramSocket<D, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramSocket")
            .field("fd", &self.inner.fd)
            .field("local", &self.inner.local)
            .field("peer", &self.inner.peer.borrow())
            .field("closed", &self.is_closed())
            .finish()
    }
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

impl<D: Dispatcher + 'static, A: DatagramAddr> DatagramSocket<D, A> {
    /// Wraps a bound (or unnamed) datagram socket, applies `options` and
    /// registers it for reading on `ev`.
    pub(crate) fn open<F>(
        ev: &mut EventLoop<D>,
        socket: OwnedFd,
        options: DatagramOptions,
        on_datagram: F,
    ) -> io::Result<Self>
    where
        F: FnMut(&mut EventLoop<D>, &DatagramSocket<D, A>, &Datagram<'_, A>) + 'static,
    {
        let fd = socket.as_raw_fd();
        sys::set_buffer_sizes(socket.as_fd(), options.send_buffer, options.recv_buffer)?;
        let local = A::from_raw(&sys::local_addr(socket.as_fd())?)?;
        let peer = match sys::peer_addr(socket.as_fd()) {
            Ok(raw) => Some(A::from_raw(&raw)?),
            Err(_) => None, // not connected
        };
        let sock = DatagramSocket {
            inner: Rc::new(Inner {
                fd,
                socket: RefCell::new(Some(socket)),
                local,
                peer: RefCell::new(peer),
                options,
                batch: RefCell::new(RecvBatch::new(options.recv_batch, options.max_datagram)),
                queue: RefCell::new(SendQueue::default()),
                writing: Cell::new(false),
                in_batch: Cell::new(false),
                stats: Cell::new(DatagramStats::default()),
                callback: RefCell::new(Some(Box::new(on_datagram))),
                loop_handle: ev.handle(),
                on_close: RefCell::new(None),
            }),
        };
        let weak: Weak<Inner<D, A>> = Rc::downgrade(&sock.inner);
        let registered = ev.register(fd, Interest::READABLE, Mode::Level, move |ev, event| {
            if let Some(inner) = weak.upgrade() {
                DatagramSocket { inner }.handle_event(ev, event);
            }
        });
        if let Err(e) = registered {
            // Never registered: close the fd here and now, not through the loop.
            drop(sock.inner.socket.borrow_mut().take());
            return Err(e);
        }
        debug!("datagram socket fd {fd} open on {:?} ({})", sock.inner.local, D::NAME);
        Ok(sock)
    }

    /// Sets what runs once when the socket closes.
    pub(crate) fn set_on_close(&self, f: Box<dyn FnOnce()>) {
        *self.inner.on_close.borrow_mut() = Some(f);
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> A {
        self.inner.local.clone()
    }

    /// The address given to [`connect`](Self::connect), if any.
    pub fn peer_addr(&self) -> Option<A> {
        self.inner.peer.borrow().clone()
    }

    /// The socket's fd number (valid until closed).
    pub fn fd(&self) -> RawFd {
        self.inner.fd
    }

    /// The options it was opened with.
    pub fn options(&self) -> DatagramOptions {
        self.inner.options
    }

    /// The counters.
    pub fn stats(&self) -> DatagramStats {
        let mut stats = self.inner.stats.get();
        stats.queued = self.inner.queue.borrow().items.len();
        stats
    }

    /// Whether [`close`](Self::close) has run.
    pub fn is_closed(&self) -> bool {
        self.inner.socket.borrow().is_none()
    }

    fn count(&self, f: impl FnOnce(&mut DatagramStats)) {
        let mut stats = self.inner.stats.get();
        f(&mut stats);
        self.inner.stats.set(stats);
    }

    fn closed_error(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::NotConnected,
            format!("datagram socket {:?} is closed", self.inner.local),
        )
    }

    /// Runs `f` with the socket borrowed, so it stays open for the call;
    /// `NotConnected` once closed. `f` must not close the socket.
    pub(super) fn with_socket<T>(&self, f: impl FnOnce(BorrowedFd<'_>) -> io::Result<T>) -> io::Result<T> {
        match self.inner.socket.borrow().as_ref() {
            Some(socket) => f(socket.as_fd()),
            None => Err(self.closed_error()),
        }
    }

    /// Fixes the default destination ([`send`](Self::send)) and makes the
    /// kernel deliver only datagrams from `peer`. Errors: what `connect(2)`
    /// says (e.g. `ConnectionRefused` for a Unix path nobody is bound to).
    pub fn connect(&self, peer: &A) -> io::Result<()> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let raw = peer.to_raw()?;
        self.with_socket(|fd| sys::connect_raw(fd, &raw))?;
        debug!("datagram socket fd {} connected to {peer:?}", self.inner.fd);
        *self.inner.peer.borrow_mut() = Some(peer.clone());
        Ok(())
    }

    /// Sends one datagram to `to`. Sent at once when nothing is queued (inside
    /// the datagram callback: gathered and sent after the current batch),
    /// queued when the kernel would block. Errors: `WouldBlock` when the send
    /// queue is full (the datagram is dropped and counted), `NotConnected`
    /// after close, and what the kernel says about a direct send
    /// (`EMSGSIZE`: larger than the protocol allows, ...). Errors of a queued
    /// send are counted in [`DatagramStats::send_errors`].
    pub fn send_to(&self, ev: &mut EventLoop<D>, data: &[u8], to: &A) -> io::Result<()> {
        self.send_raw(ev, data, Some(to.to_raw()?))
    }

    /// Sends one datagram to the connected peer (see [`send_to`](Self::send_to)).
    /// `NotConnected` if [`connect`](Self::connect) was not called.
    pub fn send(&self, ev: &mut EventLoop<D>, data: &[u8]) -> io::Result<()> {
        if self.inner.peer.borrow().is_none() {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "send on an unconnected datagram socket",
            ));
        }
        self.send_raw(ev, data, None)
    }

    fn send_raw(&self, ev: &mut EventLoop<D>, data: &[u8], to: Option<RawAddr>) -> io::Result<()> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let queue_empty = self.inner.queue.borrow().items.is_empty();
        if queue_empty && !self.inner.in_batch.get() {
            match self.with_socket(|fd| sys::send_to(fd, data, to.as_ref())) {
                Ok(_) => {
                    self.count(|s| s.sent += 1);
                    return Ok(());
                }
                Err(e) if would_block(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.enqueue(data, to)?;
        if !self.inner.in_batch.get() {
            self.update_interest(ev);
        }
        Ok(())
    }

    fn enqueue(&self, data: &[u8], to: Option<RawAddr>) -> io::Result<()> {
        let opts = &self.inner.options;
        let mut queue = self.inner.queue.borrow_mut();
        if queue.items.len() >= opts.send_queue_datagrams || queue.bytes + data.len() > opts.send_queue_bytes
        {
            drop(queue);
            self.count(|s| s.dropped += 1);
            trace!("datagram socket fd {}: send queue full, dropped {} bytes", self.inner.fd, data.len());
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "send queue full ({} datagrams / {} bytes max): datagram dropped",
                    opts.send_queue_datagrams, opts.send_queue_bytes
                ),
            ));
        }
        queue.bytes += data.len();
        queue.items.push_back(Queued { to, data: data.into() });
        Ok(())
    }

    /// Hands queued datagrams to the kernel until it would block.
    fn flush(&self) {
        let mut queue = self.inner.queue.borrow_mut();
        while !queue.items.is_empty() {
            let batch: Vec<sys::OutDatagram<'_>> =
                queue.items.iter().take(64).map(|q| (&q.data[..], q.to.as_ref())).collect();
            match self.with_socket(|fd| sys::send_batch(fd, &batch)) {
                Ok(n) => {
                    drop(batch);
                    let freed: usize = queue.items.drain(..n).map(|q| q.data.len()).sum();
                    queue.bytes -= freed;
                    self.count(|s| s.sent += n as u64);
                }
                Err(e) if would_block(&e) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    drop(batch);
                    let bad = queue.items.pop_front().expect("not empty");
                    queue.bytes -= bad.data.len();
                    debug!("datagram socket fd {}: queued send to {:?} failed: {e}", self.inner.fd, bad.to);
                    self.count(|s| s.send_errors += 1);
                }
            }
        }
    }

    /// Write interest on while datagrams wait, off as soon as they are gone
    /// (level-triggered "writable" would otherwise wake the loop for nothing).
    fn update_interest(&self, ev: &mut EventLoop<D>) {
        if self.is_closed() {
            return;
        }
        let want = !self.inner.queue.borrow().items.is_empty();
        if want != self.inner.writing.get() {
            self.inner.writing.set(want);
            let interest = if want { Interest::BOTH } else { Interest::READABLE };
            if let Err(e) = ev.set_interest(self.inner.fd, interest) {
                debug!("datagram socket fd {}: could not change interest: {e}", self.inner.fd);
            }
        }
    }

    fn handle_event(&self, ev: &mut EventLoop<D>, event: Event) {
        trace!("datagram socket fd {}: {:?}", self.inner.fd, event.ready());
        if event.is_invalid() {
            debug!("datagram socket fd {}: fd closed behind our back", self.inner.fd);
            self.close(ev);
            return;
        }
        if event.is_error()
            && let Ok(Some(e)) = self.with_socket(sys::take_socket_error)
        {
            debug!("datagram socket fd {}: {e}", self.inner.fd);
            self.count(|s| s.recv_errors += 1);
        }
        if event.is_writable() && self.inner.writing.get() {
            self.flush();
            self.update_interest(ev);
        }
        if event.is_readable() {
            self.drain(ev);
        }
    }

    /// Receives batches until the kernel has nothing more or the budget is spent.
    fn drain(&self, ev: &mut EventLoop<D>) {
        let Some(mut callback) = self.inner.callback.borrow_mut().take() else { return };
        let mut budget = self.inner.options.recv_budget;
        while budget > 0 && !self.is_closed() {
            let mut batch = self.inner.batch.borrow_mut();
            let asked = budget.min(batch.slots());
            let n = match self.with_socket(|fd| batch.recv(fd, asked)) {
                Ok(n) => n,
                Err(e) if would_block(&e) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // A pending asynchronous error (ICMP unreachable); reading it clears it.
                    debug!("datagram socket fd {}: receive failed: {e}", self.inner.fd);
                    self.count(|s| s.recv_errors += 1);
                    budget -= 1;
                    continue;
                }
            };
            if n == 0 {
                break;
            }
            budget = budget.saturating_sub(n);
            self.inner.in_batch.set(true);
            for i in 0..n {
                let (data, got) = batch.get(i);
                let peer = match A::from_raw(&got.from) {
                    Ok(peer) => peer,
                    Err(e) => {
                        debug!("datagram socket fd {}: sender address: {e}", self.inner.fd);
                        self.count(|s| s.recv_errors += 1);
                        continue;
                    }
                };
                let truncated_from = got.truncated.then_some(got.len);
                self.count(|s| {
                    s.received += 1;
                    s.truncated += u64::from(got.truncated);
                });
                callback(ev, self, &Datagram { data, peer, truncated_from });
                if self.is_closed() {
                    break;
                }
            }
            self.inner.in_batch.set(false);
            drop(batch);
            if !self.is_closed() && !self.inner.writing.get() {
                self.flush();
            }
            self.update_interest(ev);
            // A short batch means the queue was empty a moment ago: skip the
            // receive that would only say `WouldBlock` (level-triggered
            // readiness reports anything that arrived since).
            if n < asked {
                break;
            }
        }
        let mut slot = self.inner.callback.borrow_mut();
        if slot.is_none() {
            *slot = Some(callback);
        }
    }

    /// Replaces the datagram callback.
    pub fn set_on_datagram<F>(&self, on_datagram: F)
    where
        F: FnMut(&mut EventLoop<D>, &DatagramSocket<D, A>, &Datagram<'_, A>) + 'static,
    {
        *self.inner.callback.borrow_mut() = Some(Box::new(on_datagram));
    }

    /// Deregisters and closes the socket now; queued datagrams are dropped
    /// (and counted). Idempotent.
    pub fn close(&self, ev: &mut EventLoop<D>) {
        let Some(socket) = self.inner.socket.borrow_mut().take() else { return };
        if let Err(e) = ev.deregister(self.inner.fd) {
            debug!("datagram socket fd {}: deregister: {e}", self.inner.fd);
        }
        drop(socket);
        self.inner.finish();
        debug!("datagram socket fd {} on {:?} closed", self.inner.fd, self.inner.local);
    }
}

impl<D: Dispatcher + 'static, A: DatagramAddr> Inner<D, A> {
    /// What close does besides the fd: drop the queue, run the close hook.
    fn finish(&self) {
        let dropped = {
            let mut queue = self.queue.borrow_mut();
            let n = queue.items.len();
            *queue = SendQueue::default();
            n
        };
        let mut stats = self.stats.get();
        stats.dropped += dropped as u64;
        self.stats.set(stats);
        if let Some(f) = self.on_close.borrow_mut().take() {
            f();
        }
    }
}

impl<D: Dispatcher + 'static, A: DatagramAddr> Drop for Inner<D, A> {
    fn drop(&mut self) {
        let Some(socket) = self.socket.get_mut().take() else { return };
        self.finish();
        // Dropped without `close`: the loop must deregister before the fd
        // closes, so the fd travels to the loop and closes there.
        let fd = self.fd;
        let handed = self.loop_handle.run_in_loop(move |ev| {
            let _ = ev.deregister(fd);
            drop(socket);
        });
        if handed.is_err() {
            trace!("datagram socket fd {fd}: loop gone, fd closed with it");
        }
        debug!("datagram socket fd {fd} dropped");
    }
}
