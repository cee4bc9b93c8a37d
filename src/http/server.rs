//! `HttpServer`: a `Server` whose per-connection [`net::Handler`] turns
//! input bytes into requests and application responses; its time limits are
//! connection timers (one sweep per loop, shared with the TCP layer).

use std::fmt;
use std::io;
use std::net::ToSocketAddrs;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use log::{debug, error, trace};

use super::request::{self, Parsed, Rejection, Request, Version};
use super::response::FileBody;
use super::{HttpConfig, Response};
use crate::buffer::Buffer;
use crate::dispatcher::{DefaultDispatcher, Dispatcher};
use crate::event_loop::EventLoop;
use crate::net::{self, Callbacks, Connection, Listener, Server, ServerBuilder, StreamAddr, UnixAddr};

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

/// One HTTP connection: the [`net::Handler`] the server builds per connection.
struct HttpConnection {
    phase: Phase,
    /// How far the unfinished header section has been searched for its end.
    scanned: usize,
    continue_sent: bool,
    /// A final response was sent and the connection is half-closed.
    closing: bool,
    /// The server is stopping: the request in flight gets `Connection: close`.
    stopping: bool,
    /// The file body of the last answered response: sent after its head,
    /// before anything else is answered.
    file: Option<FileBody>,
    /// Queued output when the timer last ran out while a response was going
    /// out (`usize::MAX`: not yet); less now means the peer is reading.
    queued_at_timeout: usize,
    config: Arc<HttpConfig>,
    app: Handler,
}

fn connection_header(version: Version, keep_alive: bool) -> Option<&'static str> {
    match (version, keep_alive) {
        (Version::Http11, true) => None,
        (Version::Http10, true) => Some("keep-alive"),
        (_, false) => Some("close"),
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

impl HttpConnection {
    /// Enters `phase` and arms the timer that bounds it: idle keep-alive,
    /// header section from its first byte (slowloris), body in total (a
    /// body trickled a byte a minute is cut off too).
    fn enter<D: Dispatcher + 'static>(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>, phase: Phase) {
        self.phase = phase;
        self.queued_at_timeout = usize::MAX;
        let limit = match phase {
            Phase::Idle => self.config.idle_timeout,
            Phase::Head => self.config.header_timeout,
            Phase::Body => self.config.body_timeout,
        };
        conn.set_timeout(ev, Some(limit));
    }

    /// After the final response: half-close, and give the peer
    /// `header_timeout` to finish closing (a lingering close, so what it
    /// still sends cannot make the kernel reset away our response). A
    /// stopping server does not wait for the peer: it closes once flushed.
    fn close<D: Dispatcher + 'static>(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        self.closing = true;
        if self.stopping {
            conn.close_after_flush(ev);
            return;
        }
        conn.shutdown(ev);
        conn.set_timeout(ev, Some(self.config.header_timeout));
    }

    /// Parses and answers requests from `input` into `out` until the input
    /// runs out, the connection must close, or `out` reaches `budget` bytes
    /// (the rest of the input is then offered again once the output drains).
    /// Returns the phase the connection is left in.
    fn answer(&mut self, input: &mut Buffer, out: &mut Vec<u8>, budget: usize, peer: &StreamAddr) -> Phase {
        let mut phase = self.phase;
        while !self.closing && out.len() < budget {
            if phase == Phase::Idle {
                // Stray CRLFs between requests are allowed and ignored.
                let blank = input.peek().iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
                input.consume(blank);
                if input.is_empty() {
                    break;
                }
                phase = Phase::Head;
            }
            let outcome = match request::parse(input.peek(), self.scanned, &self.config) {
                Ok(Parsed::Partial { scanned }) => {
                    self.scanned = scanned;
                    break;
                }
                Ok(Parsed::AwaitingBody { request, missing }) => {
                    trace!("http: {peer} has {missing} more body bytes to send");
                    phase = Phase::Body;
                    if request.expects_continue() && !self.continue_sent {
                        out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                        self.continue_sent = true;
                    }
                    break;
                }
                Ok(Parsed::Complete { request, len }) => respond(&self.app, &request).map(|mut response| {
                    let keep_alive = request.keep_alive() && !self.stopping;
                    let head_only = request.method() == "HEAD";
                    response.write_to(out, head_only, connection_header(request.version(), keep_alive));
                    if !head_only {
                        self.file = response.take_file();
                    }
                    (len, keep_alive)
                }),
                Err(rejection) => Err(rejection),
            };
            match outcome {
                Ok((len, keep_alive)) => {
                    input.consume(len);
                    phase = Phase::Idle;
                    self.scanned = 0;
                    self.continue_sent = false;
                    self.closing = !keep_alive;
                    if self.file.is_some() {
                        break; // its head must go out, then the file, then what follows
                    }
                }
                Err(rejection) => {
                    debug!("http: {} from {peer}: {}", rejection.status, rejection.reason);
                    write_final(out, rejection.status, &rejection.reason);
                    self.closing = true;
                }
            }
        }
        phase
    }
}

impl<D: Dispatcher + 'static> net::Handler<D> for HttpConnection {
    fn on_connect(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        self.enter(ev, conn, Phase::Idle);
    }

    /// Answers every complete request in `input`, in order, with one send,
    /// up to the connection's output limit.
    fn on_message(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>, input: &mut Buffer) {
        if self.closing {
            input.consume_all(); // not answered: drop rather than buffer
            return;
        }
        let budget = match conn.options().output_limit {
            _ if conn.is_output_full() => 0, // e.g. too many files queued
            Some(limit) => limit.saturating_sub(conn.queued_output()),
            None => usize::MAX,
        };
        let peer = conn.peer_addr();
        let phase = match conn.send_with(ev, |out| self.answer(input, out, budget, &peer)) {
            Ok(phase) => phase,
            Err(_) => {
                self.file = None;
                return; // the connection closed
            }
        };
        if let Some(body) = self.file.take()
            && let Err(e) = conn.send_file(ev, body.file, body.offset, body.len)
        {
            // The head promised the body: the connection cannot go on.
            debug!("http: file body to {peer} failed: {e}");
            conn.force_close(ev);
            return;
        }
        if self.closing {
            input.consume_all();
            self.close(ev, conn);
            return;
        }
        if phase != self.phase || phase == Phase::Idle {
            self.enter(ev, conn, phase); // a finished request restarts the idle clock
        }
        if phase == Phase::Idle && !input.is_empty() && !conn.is_output_full() {
            // Stopped at the budget with requests left: answer them on the
            // next pass. (Above the limit, the drain offers them again.)
            conn.offer_input(ev);
        }
    }

    fn wants_write_complete(&self) -> bool {
        false
    }

    /// Idle connections close now; a request being read is answered first,
    /// with `Connection: close`.
    fn on_server_stop(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        self.stopping = true;
        if self.phase == Phase::Idle && !self.closing {
            conn.close_after_flush(ev);
        }
    }

    fn on_timeout(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        let queued = conn.queued_output();
        if (self.phase == Phase::Idle || self.closing) && queued > 0 && queued < self.queued_at_timeout {
            // A response (a large file, say) is still going out and the peer
            // took some of it since the last check: give it another period.
            self.queued_at_timeout = queued;
            let period = if self.closing { self.config.header_timeout } else { self.config.idle_timeout };
            conn.set_timeout(ev, Some(period));
            return;
        }
        if self.phase == Phase::Idle || self.closing {
            debug!("http: closing idle connection {} from {}", conn.id(), conn.peer_addr());
            conn.force_close(ev);
            return;
        }
        debug!("http: request from {} timed out ({:?})", conn.peer_addr(), self.phase);
        let _ = conn.send_with(ev, |out| write_final(out, 408, "request timed out"));
        self.close(ev, conn);
    }
}

/// How an [`HttpServer`] is configured before it starts: a
/// [`ServerBuilder`] plus the handler and HTTP limits.
pub struct HttpServerBuilder<D: Dispatcher + 'static = DefaultDispatcher> {
    tcp: ServerBuilder<D>,
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

    /// Serves on an already bound and listening socket instead of binding
    /// the builder's address; see [`ServerBuilder::listener`].
    pub fn listener(mut self, listener: impl Into<Listener>) -> Self {
        self.tcp = self.tcp.listener(listener);
        self
    }

    /// Name used for threads and logs (default `"http"`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.tcp = self.tcp.name(name);
        self
    }

    /// Edge- or level-triggered connections; see [`ServerBuilder::trigger`].
    pub fn trigger(mut self, trigger: net::Trigger) -> Self {
        self.tcp = self.tcp.trigger(trigger);
        self
    }

    /// Queued response bytes above which a connection stops reading and
    /// parsing pipelined requests (default 1 MiB; see
    /// [`ConnectionOptions::output_limit`](crate::net::ConnectionOptions::output_limit)).
    pub fn output_limit(mut self, limit: usize) -> Self {
        self.tcp = self.tcp.output_limit(Some(limit.max(1)));
        self
    }

    /// Binds and starts serving on `ev` (run it afterwards); the server
    /// belongs to `ev` from then on, as a [`Server`] does.
    pub fn start(self, ev: &mut EventLoop<D>) -> io::Result<HttpServer<D>> {
        let config = Arc::new(self.config);
        let app = self.handler;
        let factory = move |_: &Connection<D>| HttpConnection {
            phase: Phase::Idle,
            scanned: 0,
            continue_sent: false,
            closing: false,
            stopping: false,
            file: None,
            queued_at_timeout: usize::MAX,
            config: Arc::clone(&config),
            app: Arc::clone(&app),
        };
        Ok(HttpServer { tcp: self.tcp.factory(factory).start(ev)? })
    }
}

/// A running HTTP/1.1 server.
#[derive(Debug)]
pub struct HttpServer<D: Dispatcher + 'static = DefaultDispatcher> {
    tcp: Server<D>,
}

impl<D: Dispatcher + 'static> HttpServer<D> {
    /// Starts configuring a server on `addr` that answers with `handler`.
    pub fn builder<F>(addr: impl ToSocketAddrs, handler: F) -> HttpServerBuilder<D>
    where
        F: Fn(&Request<'_>) -> Response + Send + Sync + 'static,
    {
        Self::on(Server::builder(addr, Callbacks::new()), handler)
    }

    /// Like [`builder`](Self::builder), on a Unix domain socket (a path or
    /// `"@name"`): `curl --unix-socket PATH http://x/` talks to it.
    pub fn unix_builder<F>(addr: impl Into<UnixAddr>, handler: F) -> HttpServerBuilder<D>
    where
        F: Fn(&Request<'_>) -> Response + Send + Sync + 'static,
    {
        Self::on(Server::unix_builder(addr, Callbacks::new()), handler)
    }

    fn on<F>(tcp: ServerBuilder<D>, handler: F) -> HttpServerBuilder<D>
    where
        F: Fn(&Request<'_>) -> Response + Send + Sync + 'static,
    {
        HttpServerBuilder { tcp: tcp.name("http"), handler: Arc::new(handler), config: HttpConfig::default() }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> StreamAddr {
        self.tcp.local_addr()
    }

    /// Connections currently open.
    pub fn live_connections(&self) -> usize {
        self.tcp.live_connections()
    }

    /// Graceful stop; see [`Server::stop`]. Idle keep-alive connections
    /// close at once; a request being received is answered (with
    /// `Connection: close`) before its connection closes.
    pub fn stop(self, ev: &mut EventLoop<D>, grace: Duration) -> io::Result<net::StopSummary> {
        self.tcp.stop(ev, grace)
    }
}
