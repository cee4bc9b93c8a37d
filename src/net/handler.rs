//! What a connection does with its events: the [`Handler`] trait (typed,
//! per-connection state with `&mut self` methods), the factories that build
//! one handler per connection, and [`Callbacks`], muduo's closure style,
//! which is one such factory.
//!
//! A handler is created on the connection's own loop thread and never leaves
//! it, so it needs neither `Send` nor `Sync` nor a lock: its fields *are* the
//! connection's state. Only the factory crosses threads, and only when a
//! server has sub-loops ([`Server::builder`](super::Server::builder));
//! a single-loop server takes a factory that is not `Send` at all
//! ([`Server::local_builder`](super::Server::local_builder)), so
//! loop-wide state can be an `Rc<RefCell<..>>`.

use std::fmt;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use super::Connection;
use crate::buffer::Buffer;
use crate::dispatcher::{AnyDispatcher, Dispatcher};
use crate::event_loop::EventLoop;

/// The events of one connection. Every method runs on the connection's loop
/// thread, never inside another of its methods.
///
/// ```
/// use muxloop::{Buffer, EventLoop, Handler, Connection};
///
/// /// Counts the lines a client sends and answers each with its number.
/// struct LineCounter {
///     lines: u64,
/// }
///
/// impl Handler for LineCounter {
///     fn on_message(&mut self, ev: &mut EventLoop, conn: &Connection, input: &mut Buffer) {
///         while let Some(eol) = input.find_eol() {
///             input.consume(eol + 1);
///             self.lines += 1;
///             let _ = conn.send(ev, format!("{}\n", self.lines).as_bytes());
///         }
///     }
/// }
///
/// // One `LineCounter` per connection:
/// let factory = |_: &Connection| LineCounter { lines: 0 };
/// # let _ = factory;
/// ```
pub trait Handler<D: Dispatcher + 'static = AnyDispatcher>: std::any::Any {
    /// The connection is up (registered, reading). Runs inside the accept
    /// (or connect) that created it.
    fn on_connect(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        let _ = (ev, conn);
    }

    /// Input arrived (or is offered again, see [`Connection::offer_input`]).
    /// Consume what forms complete messages; leave the rest in `input` for
    /// next time. Stopping early is fine: a handler that bounds its output
    /// (for example "stop once [`Connection::is_output_full`]") gets the
    /// leftover input again once the output has drained.
    fn on_message(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>, input: &mut Buffer);

    /// The output queue became empty: everything sent so far is in the
    /// kernel. Always runs after the current batch of events (deferred),
    /// whether the send completed at once or after write readiness.
    fn on_write_complete(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        let _ = (ev, conn);
    }

    /// Whether [`on_write_complete`](Self::on_write_complete) is wanted; each
    /// notification costs a deferred task, so handlers that ignore it say no.
    fn wants_write_complete(&self) -> bool {
        true
    }

    /// The output queue grew across
    /// [`ConnectionOptions::high_water_mark`] (deferred, once per crossing).
    fn on_high_water_mark(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>, queued: usize) {
        let _ = (ev, conn, queued);
    }

    /// File descriptors arrived over a Unix socket
    /// ([`Connection::send_fds`] on the other side), with the bytes the next
    /// [`on_message`](Self::on_message) sees. Runs right after the read that
    /// received them, before `on_message`. The fds are yours (close-on-exec);
    /// the default drops them, which closes them: nothing leaks.
    fn on_fds(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>, fds: Vec<OwnedFd>) {
        let _ = (ev, conn, fds);
    }

    /// The peer closed its side (end of file): no more input will come, and
    /// reading stops. The default closes the connection once the queued
    /// output is written ([`Connection::close_after_flush`]). A handler that
    /// still owes the peer an answer being computed elsewhere (an HTTP
    /// client may half-close after its request) keeps the connection open
    /// and closes it itself once the answer is out.
    fn on_peer_closed(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        conn.close_after_flush(ev);
    }

    /// The connection's timer ([`Connection::set_timeout`] or
    /// [`ConnectionOptions::idle_timeout`]) ran out. The default closes it.
    fn on_timeout(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        conn.force_close(ev);
    }

    /// The server is stopping gracefully ([`Server::stop`](super::Server::stop)):
    /// finish what is in flight, then close. The default half-closes
    /// ([`Connection::shutdown`]): queued output drains, then FIN. A
    /// request/response protocol answers the request it is reading first.
    fn on_server_stop(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        conn.shutdown(ev);
    }

    /// The connection is closed (fd deregistered and closed). Deferred: runs
    /// after the batch in which it closed.
    fn on_close(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        let _ = (ev, conn);
    }
}

/// Builds one [`Handler`] per connection. Implemented by closures
/// `Fn(&Connection<D>) -> H` and by [`Callbacks`].
pub trait HandlerFactory<D: Dispatcher + 'static = AnyDispatcher>: 'static {
    /// A handler for the connection that is coming up.
    fn make(&self, conn: &Connection<D>) -> Box<dyn Handler<D>>;
}

impl<D, F, H> HandlerFactory<D> for F
where
    D: Dispatcher + 'static,
    F: Fn(&Connection<D>) -> H + 'static,
    H: Handler<D>,
{
    fn make(&self, conn: &Connection<D>) -> Box<dyn Handler<D>> {
        Box::new(self(conn))
    }
}

/// Per-connection settings of a server or client.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ConnectionOptions {
    /// `TCP_NODELAY` (default on: small replies are not held back by Nagle).
    pub nodelay: bool,
    /// Queued output above which the connection stops reading (built-in
    /// backpressure; default 1 MiB, `None` turns it off). Reading resumes,
    /// and leftover input is offered again, once the queue is below half.
    pub output_limit: Option<usize>,
    /// Queued output that triggers [`Handler::on_high_water_mark`] (default 64 MiB).
    pub high_water_mark: usize,
    /// Close a connection that has neither read nor written for this long
    /// (through [`Handler::on_timeout`]; default: never).
    pub idle_timeout: Option<std::time::Duration>,
    /// How the socket's readiness is reported: edge- or level-triggered
    /// (default [`Trigger::Auto`]: edge where the backend can, level elsewhere).
    pub trigger: Trigger,
    /// Bytes one connection may read, and separately write, in one pass of
    /// its loop (default [`DEFAULT_PASS_BUDGET`]): the fairness cap that keeps
    /// one flooding peer from holding the loop while others wait.
    pub pass_budget: usize,
    /// `SO_SNDBUF` for the socket (default `None`: the kernel's size, which
    /// Linux grows on demand to megabytes). A smaller kernel buffer makes a
    /// slow reader show in [`Connection::queued_output`](crate::Connection::queued_output)
    /// sooner; the kernel doubles the value and clamps it to
    /// `net.core.wmem_max`.
    pub send_buffer: Option<usize>,
}

/// How a connection's socket is registered, and so how it reads and writes.
///
/// * **Level** ([`Mode::Level`](crate::Mode::Level)): the backend reports the
///   socket on every dispatch while it is readable, so one read per report is
///   enough (the next dispatch reports what is left). Write interest is
///   turned on only while output is queued, else "writable" would be
///   reported forever: each toggle is an `epoll_ctl`.
/// * **Edge** ([`Mode::Edge`](crate::Mode::Edge)): the backend reports only
///   *new* readiness, so the connection must drain: read until `WouldBlock`,
///   write until `WouldBlock` or the queue is empty, or data would sit
///   unread with no report to come. In return, the interest never changes
///   (readable and writable for the whole life: no `epoll_ctl` per write
///   burst or pause), and epoll does not re-check a drained socket on the
///   next `epoll_wait` as it does for level-triggered entries. Draining
///   would cost one extra read per readiness (the one that says
///   `WouldBlock`), so a read that comes back short ends the drain instead:
///   the receive queue was empty, and whatever arrives later raises a new
///   edge. Not when the event also said the peer closed its side
///   ([`Ready::READ_CLOSED`](crate::Ready::READ_CLOSED)), hung up or
///   failed: that news raised its edge already, so those drains go on to
///   `WouldBlock` or end of file. On `/hello` under `wrk` the two modes then
///   make the same system calls (one `recvmsg`, one `sendmsg` per request,
///   no `epoll_ctl`), and edge saves epoll's re-poll of level entries: about
///   1.3% of the server's CPU in a `perf` profile, within the noise of
///   requests/s on a shared 2-core machine.
/// * **Auto**: edge where the backend supports it (epoll, io_uring), level
///   on select and poll.
///
/// Both keep the fairness cap [`ConnectionOptions::pass_budget`]: an edge
/// connection that reaches it while data may remain gets another turn after
/// the loop's current batch instead of waiting for a new edge.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// Edge where the dispatcher supports it, level otherwise.
    #[default]
    Auto,
    /// Level-triggered on every backend.
    Level,
    /// Edge-triggered; a backend without it (select, poll) refuses the
    /// server or connection with `Unsupported` rather than degrade silently.
    Edge,
}

impl Trigger {
    /// The [`Mode`](crate::Mode) to register with on a backend for which
    /// `edge_supported` holds (`Trigger::Edge` stays `Edge`, so the backend
    /// can refuse it).
    pub fn mode(self, edge_supported: bool) -> crate::Mode {
        match self {
            Trigger::Edge => crate::Mode::Edge,
            Trigger::Auto if edge_supported => crate::Mode::Edge,
            Trigger::Auto | Trigger::Level => crate::Mode::Level,
        }
    }
}

impl std::str::FromStr for Trigger {
    type Err = std::io::Error;

    /// `"auto"`, `"level"` or `"edge"` (any case), as examples take it on the command line.
    fn from_str(s: &str) -> std::io::Result<Trigger> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Trigger::Auto),
            "level" => Ok(Trigger::Level),
            "edge" => Ok(Trigger::Edge),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("unknown trigger {s:?} (expected auto, level or edge)"),
            )),
        }
    }
}

/// The default [`ConnectionOptions::output_limit`].
pub const DEFAULT_OUTPUT_LIMIT: usize = 1024 * 1024;
/// The default [`ConnectionOptions::high_water_mark`].
pub const DEFAULT_HIGH_WATER_MARK: usize = 64 * 1024 * 1024;
/// The default [`ConnectionOptions::pass_budget`]: 256 KiB, two or three
/// full reads (a read takes up to the buffer's free space plus a 64 KiB
/// spill). Large enough that a bulk transfer makes few trips through the
/// loop, small enough that a pass over 100 flooding connections stays in the
/// tens of milliseconds.
pub const DEFAULT_PASS_BUDGET: usize = 256 * 1024;

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            nodelay: true,
            output_limit: Some(DEFAULT_OUTPUT_LIMIT),
            high_water_mark: DEFAULT_HIGH_WATER_MARK,
            idle_timeout: None,
            trigger: Trigger::Auto,
            pass_budget: DEFAULT_PASS_BUDGET,
            send_buffer: None,
        }
    }
}

type ConnectionFn<D> = Arc<dyn Fn(&mut EventLoop<D>, &Connection<D>) + Send + Sync>;
type MessageFn<D> = Arc<dyn Fn(&mut EventLoop<D>, &Connection<D>, &mut Buffer) + Send + Sync>;
type HighWaterMarkFn<D> = Arc<dyn Fn(&mut EventLoop<D>, &Connection<D>, usize) + Send + Sync>;

/// muduo's callback style: closures for connection up/down, messages, write
/// completion and the high-water mark, shared by all connections (so they
/// are `Send + Sync`; per-connection state belongs in a [`Handler`]).
///
/// ```
/// use muxloop::net::Callbacks;
/// let echo: Callbacks = Callbacks::new().on_message(|ev, conn, input| {
///     let _ = conn.send(ev, input.peek());
///     input.consume_all();
/// });
/// ```
pub struct Callbacks<D: Dispatcher + 'static = AnyDispatcher> {
    on_connection: Option<ConnectionFn<D>>,
    on_message: Option<MessageFn<D>>,
    on_write_complete: Option<ConnectionFn<D>>,
    on_high_water_mark: Option<HighWaterMarkFn<D>>,
}

impl<D: Dispatcher + 'static> Clone for Callbacks<D> {
    fn clone(&self) -> Self {
        Callbacks {
            on_connection: self.on_connection.clone(),
            on_message: self.on_message.clone(),
            on_write_complete: self.on_write_complete.clone(),
            on_high_water_mark: self.on_high_water_mark.clone(),
        }
    }
}

impl<D: Dispatcher + 'static> Default for Callbacks<D> {
    fn default() -> Self {
        Callbacks { on_connection: None, on_message: None, on_write_complete: None, on_high_water_mark: None }
    }
}

impl<D: Dispatcher + 'static> fmt::Debug for Callbacks<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callbacks")
            .field("on_connection", &self.on_connection.is_some())
            .field("on_message", &self.on_message.is_some())
            .field("on_write_complete", &self.on_write_complete.is_some())
            .field("on_high_water_mark", &self.on_high_water_mark.is_some())
            .finish()
    }
}

impl<D: Dispatcher + 'static> Callbacks<D> {
    /// No callbacks: input is discarded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Called when a connection comes up and again when it goes down (check
    /// [`Connection::is_connected`]).
    pub fn on_connection<F>(mut self, f: F) -> Self
    where
        F: Fn(&mut EventLoop<D>, &Connection<D>) + Send + Sync + 'static,
    {
        self.on_connection = Some(Arc::new(f));
        self
    }

    /// Called with the input buffer; see [`Handler::on_message`].
    pub fn on_message<F>(mut self, f: F) -> Self
    where
        F: Fn(&mut EventLoop<D>, &Connection<D>, &mut Buffer) + Send + Sync + 'static,
    {
        self.on_message = Some(Arc::new(f));
        self
    }

    /// Called when the output queue becomes empty; see [`Handler::on_write_complete`].
    pub fn on_write_complete<F>(mut self, f: F) -> Self
    where
        F: Fn(&mut EventLoop<D>, &Connection<D>) + Send + Sync + 'static,
    {
        self.on_write_complete = Some(Arc::new(f));
        self
    }

    /// Called when the output queue crosses the high-water mark
    /// ([`ConnectionOptions::high_water_mark`]), with its length.
    pub fn on_high_water_mark<F>(mut self, f: F) -> Self
    where
        F: Fn(&mut EventLoop<D>, &Connection<D>, usize) + Send + Sync + 'static,
    {
        self.on_high_water_mark = Some(Arc::new(f));
        self
    }
}

impl<D: Dispatcher + 'static> HandlerFactory<D> for Callbacks<D> {
    fn make(&self, _: &Connection<D>) -> Box<dyn Handler<D>> {
        Box::new(self.clone())
    }
}

/// Each connection gets a clone of the callbacks (four `Arc`s).
impl<D: Dispatcher + 'static> Handler<D> for Callbacks<D> {
    fn on_connect(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        if let Some(f) = &self.on_connection {
            f(ev, conn);
        }
    }

    fn on_message(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>, input: &mut Buffer) {
        match &self.on_message {
            Some(f) => f(ev, conn, input),
            None => input.consume_all(),
        }
    }

    fn on_write_complete(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        if let Some(f) = &self.on_write_complete {
            f(ev, conn);
        }
    }

    fn wants_write_complete(&self) -> bool {
        self.on_write_complete.is_some()
    }

    fn on_high_water_mark(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>, queued: usize) {
        if let Some(f) = &self.on_high_water_mark {
            f(ev, conn, queued);
        }
    }

    fn on_close(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        if let Some(f) = &self.on_connection {
            f(ev, conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mode;

    #[test]
    fn trigger_resolves_and_parses() {
        assert_eq!(Trigger::Auto.mode(true), Mode::Edge);
        assert_eq!(Trigger::Auto.mode(false), Mode::Level);
        assert_eq!(Trigger::Level.mode(true), Mode::Level);
        // Edge stays Edge where unsupported, so the backend refuses it loudly.
        assert_eq!(Trigger::Edge.mode(false), Mode::Edge);
        assert_eq!("EDGE".parse::<Trigger>().unwrap(), Trigger::Edge);
        assert_eq!("level".parse::<Trigger>().unwrap(), Trigger::Level);
        let err = "fast".parse::<Trigger>().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert_eq!(ConnectionOptions::default().trigger, Trigger::Auto);
        assert_eq!(ConnectionOptions::default().pass_budget, DEFAULT_PASS_BUDGET);
    }
}
