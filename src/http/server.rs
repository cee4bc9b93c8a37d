//! `HttpServer`: a [`Server`] whose per-connection handler
//! ([`connection`](super::connection)) turns input bytes into requests and
//! the application's answers; its time limits are connection timers (one
//! sweep per loop, shared with the TCP layer).

use std::fmt;
use std::io;
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::Duration;

use super::connection::{ErrorPage, HttpConnection, Shared};
use super::{HttpConfig, Request, Response};
use crate::dispatcher::{AnyDispatcher, Dispatcher};
use crate::event_loop::EventLoop;
use crate::net::{self, Callbacks, Connection, Listener, Server, ServerBuilder, StreamAddr, UnixAddr};

/// The application: answers each request. It runs on a loop thread, so it
/// must not block; slow work answers later ([`Response::later`]). A
/// [`Router`](super::Router) is used through one:
/// `move |req| router.respond(req)`.
pub(crate) type App = Arc<dyn Fn(&Request<'_>) -> Response + Send + Sync>;

/// How an [`HttpServer`] is configured before it starts: a
/// [`ServerBuilder`] plus the handler and HTTP limits.
pub struct HttpServerBuilder<D: Dispatcher + 'static = AnyDispatcher> {
    tcp: ServerBuilder<D>,
    app: App,
    config: HttpConfig,
    error_page: Option<ErrorPage>,
}

impl<D: Dispatcher + 'static> fmt::Debug for HttpServerBuilder<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpServerBuilder")
            .field("tcp", &self.tcp)
            .field("config", &self.config)
            .field("error_page", &self.error_page.is_some())
            .finish()
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
        self.tcp = self.tcp.output_limit(limit.max(1));
        self
    }

    /// Renders the server's own error replies (400, 408, 413, 431, 500,
    /// 501...: refused requests, a handler that panicked or built an invalid
    /// response) with `page(status, reason)`, e.g. as JSON for an API. The
    /// server still adds `Connection: close` where it closes. If `page`
    /// panics, returns another status or an invalid response, the plain-text
    /// reply is sent instead (and the problem logged).
    pub fn error_page<F>(mut self, page: F) -> Self
    where
        F: Fn(u16, &str) -> Response + Send + Sync + 'static,
    {
        self.error_page = Some(Arc::new(page));
        self
    }

    /// Binds and starts serving on `ev` (run it afterwards); the server
    /// belongs to `ev` from then on, as a [`Server`] does.
    pub fn start(self, ev: &mut EventLoop<D>) -> io::Result<HttpServer<D>> {
        let shared = Arc::new(Shared { config: self.config, app: self.app, error_page: self.error_page });
        let factory =
            move |conn: &Connection<D>| HttpConnection::new(Arc::clone(&shared), conn.options().output_limit);
        Ok(HttpServer { tcp: self.tcp.factory(factory).start(ev)? })
    }
}

/// A running HTTP/1.1 server.
#[derive(Debug)]
pub struct HttpServer<D: Dispatcher + 'static = AnyDispatcher> {
    tcp: Server<D>,
}

impl<D: Dispatcher + 'static> HttpServer<D> {
    /// Starts configuring a server on `addr` that answers with `app`
    /// (`|req| -> Response`; for a [`Router`](super::Router),
    /// `move |req| router.respond(req)`).
    pub fn builder<F>(addr: impl ToSocketAddrs, app: F) -> HttpServerBuilder<D>
    where
        F: Fn(&Request<'_>) -> Response + Send + Sync + 'static,
    {
        Self::on(Server::builder(addr, Callbacks::new()), Arc::new(app))
    }

    /// Like [`builder`](Self::builder), on a Unix domain socket (a path or
    /// `"@name"`): `curl --unix-socket PATH http://x/` talks to it.
    pub fn unix_builder<F>(addr: impl Into<UnixAddr>, app: F) -> HttpServerBuilder<D>
    where
        F: Fn(&Request<'_>) -> Response + Send + Sync + 'static,
    {
        Self::on(Server::unix_builder(addr, Callbacks::new()), Arc::new(app))
    }

    fn on(tcp: ServerBuilder<D>, app: App) -> HttpServerBuilder<D> {
        HttpServerBuilder { tcp: tcp.name("http"), app, config: HttpConfig::default(), error_page: None }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> StreamAddr {
        self.tcp.local_addr()
    }

    /// Connections currently open.
    pub fn live_connections(&self) -> usize {
        self.tcp.live_connections()
    }

    /// Runs `f` on every connection of this server, on each one's own loop
    /// (e.g. to read [`Connection::queued_output`]); see
    /// [`Server::for_each_connection`].
    pub fn for_each_connection<F>(&self, ev: &mut EventLoop<D>, f: F)
    where
        F: Fn(&mut EventLoop<D>, &Connection<D>) + Send + Sync + Clone + 'static,
    {
        self.tcp.for_each_connection(ev, f);
    }

    /// Graceful stop; see [`Server::stop`]. Idle keep-alive connections
    /// close at once; a request being received is answered (with
    /// `Connection: close`) before its connection closes, and answers that
    /// come later ([`Response::later`]) and streamed bodies are waited for,
    /// all up to `grace`.
    pub fn stop(self, ev: &mut EventLoop<D>, grace: Duration) -> io::Result<net::StopSummary> {
        self.tcp.stop(ev, grace)
    }
}
