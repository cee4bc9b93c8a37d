//! `HttpServer`: a `TcpServer` whose message callback turns input bytes into
//! requests and handler responses, with per-connection sessions and a
//! per-loop timer that enforces the time limits.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, error, trace};

use super::request::{self, Parsed, Rejection, Request, Version};
use super::{HttpConfig, Response};
use crate::buffer::Buffer;
use crate::dispatcher::{DefaultDispatcher, Dispatcher};
use crate::event_loop::{EventLoop, TimerId};
use crate::net::{Callbacks, TcpConnection, TcpServer, TcpServerBuilder};

/// The application: one response per request. Runs on a loop thread, so it
/// must not block.
pub type Handler = Arc<dyn Fn(&Request<'_>) -> Response + Send + Sync>;

/// Where a connection is between requests.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the next request (keep-alive).
    Idle,
    /// Part of a header section has arrived.
    Head,
    /// The header section is complete; body bytes are arriving.
    Body,
}

/// Per-connection state, kept in the connection's context.
struct Session {
    phase: Phase,
    /// When the current phase's clock started (see `expired`).
    since: Instant,
    /// How far the unfinished header section has been searched for its end.
    scanned: usize,
    continue_sent: bool,
    /// A final response was sent and the connection is half-closed.
    closing: bool,
    config: Arc<HttpConfig>,
}

impl Session {
    fn new(config: Arc<HttpConfig>, now: Instant) -> Session {
        Session { phase: Phase::Idle, since: now, scanned: 0, continue_sent: false, closing: false, config }
    }

    fn finish_request(&mut self, now: Instant) {
        self.phase = Phase::Idle;
        self.since = now;
        self.scanned = 0;
        self.continue_sent = false;
    }

    /// Header sections must finish within `header_timeout` of their first byte
    /// (slowloris); idle connections and stalled bodies get `idle_timeout`
    /// from their last progress; a half-closed connection gets
    /// `header_timeout` to finish closing.
    fn expired(&self, now: Instant) -> bool {
        let limit = match self.phase {
            _ if self.closing => self.config.header_timeout,
            Phase::Head => self.config.header_timeout,
            Phase::Idle | Phase::Body => self.config.idle_timeout,
        };
        now.duration_since(self.since) > limit
    }
}

/// The HTTP connections of one loop, swept by one repeating timer.
struct Sessions<D: Dispatcher + 'static> {
    conns: HashMap<u64, TcpConnection<D>>,
    sweeper: Option<TimerId>,
}

impl<D: Dispatcher + 'static> Default for Sessions<D> {
    fn default() -> Self {
        Sessions { conns: HashMap::new(), sweeper: None }
    }
}

fn connection_header(version: Version, keep_alive: bool) -> Option<&'static str> {
    match (version, keep_alive) {
        (Version::Http11, true) => None,
        (Version::Http10, true) => Some("keep-alive"),
        (_, false) => Some("close"),
    }
}

fn on_connection<D: Dispatcher + 'static>(
    ev: &mut EventLoop<D>,
    conn: &TcpConnection<D>,
    config: &Arc<HttpConfig>,
) {
    if conn.is_connected() {
        conn.set_context(Session::new(Arc::clone(config), Instant::now()));
        let sessions = ev.context::<Sessions<D>>();
        sessions.conns.insert(conn.id(), conn.clone());
        if sessions.sweeper.is_none() {
            let period = (config.header_timeout.min(config.idle_timeout) / 4)
                .clamp(Duration::from_millis(10), Duration::from_secs(1));
            let timer = ev.run_every(period, sweep::<D>);
            ev.context::<Sessions<D>>().sweeper = Some(timer);
        }
    } else {
        let sessions = ev.context::<Sessions<D>>();
        sessions.conns.remove(&conn.id());
        if sessions.conns.is_empty()
            && let Some(timer) = sessions.sweeper.take()
        {
            ev.cancel(timer);
        }
    }
}

/// Closes connections that have run out of time.
fn sweep<D: Dispatcher + 'static>(ev: &mut EventLoop<D>) {
    let now = Instant::now();
    let conns: Vec<TcpConnection<D>> = ev.context::<Sessions<D>>().conns.values().cloned().collect();
    for conn in conns {
        let Some(mut session) = conn.context::<Session>() else { continue };
        if !session.expired(now) {
            continue;
        }
        if session.phase == Phase::Idle || session.closing {
            drop(session);
            debug!("http: closing idle connection {} from {}", conn.id(), conn.peer_addr());
            conn.force_close(ev);
        } else {
            session.closing = true;
            session.since = now;
            drop(session);
            debug!("http: request from {} timed out", conn.peer_addr());
            let mut out = Vec::new();
            write_final(&mut out, 408, "request timed out");
            let _ = conn.send(ev, &out);
            conn.shutdown(ev);
        }
    }
}

/// Appends the last response a connection gets: `status`, `reason` as the
/// body, `Connection: close`.
fn write_final(out: &mut Vec<u8>, status: u16, reason: &str) {
    Response::text(status, format!("{reason}\n")).write_to(out, false, Some("close"));
}

/// Calls the handler; a panic becomes a 500 instead of killing the loop thread.
fn respond(handler: &Handler, request: &Request<'_>) -> Result<Response, Rejection> {
    panic::catch_unwind(AssertUnwindSafe(|| handler(request))).map_err(|_| {
        error!("http: handler panicked on {} {}", request.method(), request.path());
        Rejection { status: 500, reason: "internal error".into() }
    })
}

thread_local! {
    /// The thread's reusable response buffer, so answering allocates nothing
    /// once it has grown to the usual response size.
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Responses larger than this are not kept in the scratch buffer.
const SCRATCH_KEEP: usize = 64 * 1024;

/// Answers every complete request in `input`, in order, with one send.
fn on_message<D: Dispatcher + 'static>(
    ev: &mut EventLoop<D>,
    conn: &TcpConnection<D>,
    input: &mut Buffer,
    handler: &Handler,
) {
    let mut out = SCRATCH.take();
    let closing = match conn.context::<Session>() {
        Some(mut session) => {
            answer(&mut session, input, handler, &mut out, conn.peer_addr());
            session.closing
        }
        None => true,
    };
    if closing {
        // Whatever else arrives is not answered; drop it rather than buffer it.
        input.consume_all();
    }
    if !out.is_empty() {
        let _ = conn.send(ev, &out);
    }
    if closing {
        conn.shutdown(ev);
    }
    if out.capacity() <= SCRATCH_KEEP {
        out.clear();
        SCRATCH.set(out);
    }
}

/// Parses and answers requests from `input` into `out` until the input runs
/// out or the connection must close.
fn answer(session: &mut Session, input: &mut Buffer, handler: &Handler, out: &mut Vec<u8>, peer: SocketAddr) {
    let now = Instant::now();
    while !session.closing {
        if session.phase == Phase::Idle {
            // Stray CRLFs between requests are allowed and ignored.
            let blank = input.peek().iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
            input.consume(blank);
            if input.is_empty() {
                return;
            }
            session.phase = Phase::Head;
            session.since = now;
        }
        let outcome = match request::parse(input.peek(), session.scanned, &session.config) {
            Ok(Parsed::Partial { scanned }) => {
                session.scanned = scanned;
                return;
            }
            Ok(Parsed::AwaitingBody { request, missing }) => {
                trace!("http: {peer} has {missing} more body bytes to send");
                // A body that keeps arriving is progress.
                session.phase = Phase::Body;
                session.since = now;
                if request.expects_continue() && !session.continue_sent {
                    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                    session.continue_sent = true;
                }
                return;
            }
            Ok(Parsed::Complete { request, len }) => respond(handler, &request).map(|response| {
                let keep_alive = request.keep_alive();
                let head_only = request.method() == "HEAD";
                response.write_to(out, head_only, connection_header(request.version(), keep_alive));
                (len, keep_alive)
            }),
            Err(rejection) => Err(rejection),
        };
        match outcome {
            Ok((len, keep_alive)) => {
                input.consume(len);
                session.finish_request(now);
                session.closing = !keep_alive;
            }
            Err(rejection) => {
                debug!("http: {} from {peer}: {}", rejection.status, rejection.reason);
                write_final(out, rejection.status, &rejection.reason);
                session.closing = true;
                session.since = now;
            }
        }
    }
}

/// How an [`HttpServer`] is configured before it starts: a
/// [`TcpServerBuilder`] plus the handler and HTTP limits.
pub struct HttpServerBuilder<D: Dispatcher + 'static = DefaultDispatcher> {
    tcp: TcpServerBuilder<D>,
    handler: Handler,
    config: HttpConfig,
}

impl<D: Dispatcher + 'static> fmt::Debug for HttpServerBuilder<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpServerBuilder").field("tcp", &self.tcp).field("config", &self.config).finish()
    }
}

impl<D: Dispatcher + 'static> HttpServerBuilder<D> {
    /// Number of sub-loop threads (default 0: everything on the main loop).
    pub fn threads(mut self, threads: usize) -> Self {
        self.tcp = self.tcp.threads(threads);
        self
    }

    /// Limits and timeouts.
    pub fn config(mut self, config: HttpConfig) -> Self {
        self.config = config;
        self
    }

    /// One listener per sub-loop with `SO_REUSEPORT`.
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.tcp = self.tcp.reuse_port(on);
        self
    }

    /// Name used for threads and logs (default `"http"`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.tcp = self.tcp.name(name);
        self
    }

    /// Binds and starts serving on `ev` (run it afterwards).
    pub fn start(self, ev: &mut EventLoop<D>) -> io::Result<HttpServer<D>> {
        let config = Arc::new(self.config);
        let handler = self.handler;
        let callbacks = Callbacks::<D>::new()
            .on_connection(move |ev, conn| on_connection(ev, conn, &config))
            .on_message(move |ev, conn, input| on_message(ev, conn, input, &handler));
        Ok(HttpServer { tcp: self.tcp.callbacks(callbacks).start(ev)? })
    }
}

/// A running HTTP/1.1 server.
#[derive(Debug)]
pub struct HttpServer<D: Dispatcher + 'static = DefaultDispatcher> {
    tcp: TcpServer<D>,
}

impl<D: Dispatcher + 'static> HttpServer<D> {
    /// Starts configuring a server on `addr` that answers with `handler`.
    pub fn builder<F>(addr: SocketAddr, handler: F) -> HttpServerBuilder<D>
    where
        F: Fn(&Request<'_>) -> Response + Send + Sync + 'static,
    {
        HttpServerBuilder {
            tcp: TcpServer::builder(addr, Callbacks::new()).name("http"),
            handler: Arc::new(handler),
            config: HttpConfig::default(),
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.tcp.local_addr()
    }

    /// Connections currently open.
    pub fn live_connections(&self) -> usize {
        self.tcp.live_connections()
    }

    /// Graceful stop; see [`TcpServer::stop`].
    pub fn stop(self, ev: &mut EventLoop<D>, grace: Duration) -> io::Result<()> {
        self.tcp.stop(ev, grace)
    }
}
