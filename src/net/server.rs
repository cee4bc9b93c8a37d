//! `Server`: an acceptor on the main loop plus a pool of sub-loops.
//!
//! This is the muduo/yolanda multi-reactor design: the main loop only
//! accepts, and hands each new socket to the next sub-loop round-robin by
//! queueing a task on it; from then on the connection lives on that one
//! thread. With `reuse_port`, each sub-loop instead gets its own listening
//! socket on the same port (`SO_REUSEPORT`) and the kernel spreads new
//! connections, so no hand-off is needed.
//!
//! The same server listens on a Unix domain path instead of a TCP port
//! ([`Server::unix_builder`]): accepting, the connections, the handlers and
//! the thread pool are the same; only the address differs (and
//! `SO_REUSEPORT` and `TCP_NODELAY`, which are TCP's). The socket file is
//! removed when the server stops.
//!
//! A started server belongs to its main loop: it keeps serving until
//! [`Server::stop`] or until the loop is dropped, whatever happens to the
//! [`Server`] value (which is only a handle to it).

use crate::event_loop::clock;
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Deref;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use log::{debug, info, trace, warn};

use super::acceptor::{self, AcceptFn};
use super::addr::{SocketFile, StreamAddr, UnixAddr};
use super::connection::Connection;
use super::handler::{ConnectionOptions, HandlerFactory, Trigger};
use super::listener::{DEFAULT_BACKLOG, Listener};
use super::{ConnectionGroup, ConnectionTable};
use crate::dispatcher::{AnyDispatcher, Dispatcher, Mode};
use crate::event_loop::{EventLoop, LoopHandle};
use crate::thread_pool::EventLoopThreadPool;

static NEXT_SERVER_ID: AtomicU64 = AtomicU64::new(1);

/// The handler factory, shared across threads or kept on the main loop.
enum Factory<D: Dispatcher + 'static> {
    Shared(Arc<dyn HandlerFactory<D> + Send + Sync>),
    Local(Rc<dyn HandlerFactory<D>>),
}

/// What every connection of a server is set up with; `P` points to the factory.
struct Service<P> {
    options: ConnectionOptions,
    group: Arc<ConnectionGroup>,
    factory: P,
}

impl<P: Deref> Service<P> {
    fn establish<D>(&self, ev: &mut EventLoop<D>, socket: OwnedFd, peer: StreamAddr)
    where
        D: Dispatcher + 'static,
        P::Target: HandlerFactory<D>,
    {
        let group = Some(Arc::clone(&self.group));
        let fd = socket.as_raw_fd();
        if let Err(e) = Connection::establish(ev, socket, peer, &*self.factory, self.options, group) {
            warn!("cannot set up the connection on fd {fd}: {e}");
        }
    }
}

/// Where a server listens, before it binds.
#[derive(Debug)]
enum BindTo {
    Tcp(io::Result<Vec<SocketAddr>>),
    Unix(UnixAddr),
}

/// How a [`Server`] is configured before it starts.
pub struct ServerBuilder<D: Dispatcher + 'static = AnyDispatcher> {
    bind_to: BindTo,
    listener: Option<Listener>,
    factory: Factory<D>,
    options: ConnectionOptions,
    threads: usize,
    reuse_port: bool,
    backlog: i32,
    name: String,
}

impl<D: Dispatcher + 'static> fmt::Debug for ServerBuilder<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("bind_to", &self.bind_to)
            .field("options", &self.options)
            .field("threads", &self.threads)
            .field("reuse_port", &self.reuse_port)
            .field("backlog", &self.backlog)
            .finish()
    }
}

impl<D: Dispatcher + 'static> ServerBuilder<D> {
    /// Number of sub-loop threads (default 0: everything on the main loop).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// One listener per sub-loop with `SO_REUSEPORT` instead of hand-off
    /// (TCP only: `Unsupported` at start for a Unix server with threads).
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }

    /// The `listen(2)` backlog (default 1024).
    pub fn backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Serves on an already bound and listening socket instead of binding
    /// the builder's address (a [`Listener`], or a std `TcpListener` or
    /// `UnixListener`): systemd sockets, a master's listener, a listener
    /// passed from another process. A [`Listener`] that created its socket
    /// file hands the removal to the server.
    pub fn listener(mut self, listener: impl Into<Listener>) -> Self {
        self.listener = Some(listener.into());
        self
    }

    /// Per-connection options (all of them at once).
    pub fn connection_options(mut self, options: ConnectionOptions) -> Self {
        self.options = options;
        self
    }

    /// `TCP_NODELAY` on new TCP connections (default on).
    pub fn nodelay(mut self, on: bool) -> Self {
        self.options.nodelay = on;
        self
    }

    /// Queued output above which a connection stops reading
    /// ([`ConnectionOptions::output_limit`]; default 1 MiB): a byte count, as
    /// for the HTTP server, or `None` for no limit.
    pub fn output_limit(mut self, limit: impl Into<Option<usize>>) -> Self {
        self.options.output_limit = limit.into();
        self
    }

    /// `SO_SNDBUF` of each connection's socket ([`ConnectionOptions::send_buffer`];
    /// default: the kernel's).
    pub fn send_buffer(mut self, bytes: Option<usize>) -> Self {
        self.options.send_buffer = bytes;
        self
    }

    /// Queued output that triggers `on_high_water_mark` (default 64 MiB).
    pub fn high_water_mark(mut self, mark: usize) -> Self {
        self.options.high_water_mark = mark.max(1);
        self
    }

    /// Closes connections idle for this long ([`ConnectionOptions::idle_timeout`]).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.options.idle_timeout = timeout;
        self
    }

    /// Edge- or level-triggered connections ([`ConnectionOptions::trigger`];
    /// default [`Trigger::Auto`]: edge on epoll and io_uring, level on select
    /// and poll). [`Trigger::Edge`] on select or poll makes
    /// [`start`](Self::start) fail with `Unsupported`.
    pub fn trigger(mut self, trigger: Trigger) -> Self {
        self.options.trigger = trigger;
        self
    }

    /// Bytes a connection may read, and write, per loop pass
    /// ([`ConnectionOptions::pass_budget`]; default 256 KiB, at least 1).
    pub fn pass_budget(mut self, bytes: usize) -> Self {
        self.options.pass_budget = bytes.max(1);
        self
    }

    /// Replaces the handler factory (layers built on `Server` set theirs).
    #[cfg_attr(not(feature = "http"), allow(dead_code))] // the HTTP server builds its own handlers
    pub(crate) fn factory(mut self, factory: impl HandlerFactory<D> + Send + Sync) -> Self {
        self.factory = Factory::Shared(Arc::new(factory));
        self
    }

    /// Name used for threads and logs (default `"muxloop"`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Binds (or adopts the listener), starts the sub-loops and starts
    /// accepting on `ev`, the main loop: run it afterwards. The server then
    /// belongs to `ev`. Errors: bind/listen failures such as `AddrInUse`, a
    /// thread that could not start, `InvalidInput` for a
    /// [`local_builder`](Server::local_builder) server with threads, or
    /// `Unsupported` for [`Trigger::Edge`] on a backend without edge mode.
    pub fn start(self, ev: &mut EventLoop<D>) -> io::Result<Server<D>> {
        // Said now, not once per accepted connection (sub-loops share the backend).
        if self.options.trigger == Trigger::Edge && !ev.supports(Mode::Edge) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{}: edge-triggered connections need epoll or io_uring; the {} dispatcher has no edge mode \
                     (use Trigger::Auto or Trigger::Level)",
                    self.name,
                    ev.dispatcher_name()
                ),
            ));
        }
        let group = Arc::new(ConnectionGroup::default());
        let pool = match &self.factory {
            Factory::Local(_) if self.threads > 0 => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{}: a local_builder server runs on one loop; use Server::builder with a Send + Sync \
                         factory for {} threads",
                        self.name, self.threads
                    ),
                ));
            }
            // Sub-loops get the main loop's backend, also when it was chosen at run time.
            _ => EventLoopThreadPool::with_dispatchers(&self.name, self.threads, || ev.fresh_dispatcher())?,
        };
        let first = match self.listener {
            Some(listener) => listener,
            None => match self.bind_to {
                BindTo::Tcp(addrs) => Listener::bind_tcp(&addrs?, self.reuse_port, self.backlog)?,
                BindTo::Unix(addr) => Listener::bind_unix(addr, self.backlog)?,
            },
        };
        let (socket, local_addr, socket_file) = first.into_parts();
        let mut listeners = Vec::new();
        match self.factory {
            Factory::Shared(factory) if self.reuse_port && !pool.is_empty() => {
                // Later listeners reuse the port the first one got.
                let Some(port_addr) = local_addr.as_inet() else {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!("{}: SO_REUSEPORT is for TCP; {local_addr} is a unix socket", self.name),
                    ));
                };
                let service = Arc::new(Service { options: self.options, group: Arc::clone(&group), factory });
                let mut socket = Some(socket);
                for handle in pool.handles() {
                    let socket = match socket.take() {
                        Some(first) => first,
                        None => Listener::bind_tcp(&[port_addr], true, self.backlog)?.into_parts().0,
                    };
                    let service = Arc::clone(&service);
                    let fd = listen_on(&handle, socket, move |ev, socket, peer| {
                        service.establish(ev, socket, peer)
                    })?;
                    listeners.push((Some(handle), fd));
                }
            }
            factory => {
                let on_accept = match factory {
                    Factory::Local(factory) => {
                        let service = Service { options: self.options, group: Arc::clone(&group), factory };
                        Box::new(move |ev: &mut EventLoop<D>, socket: OwnedFd, peer: StreamAddr| {
                            service.establish(ev, socket, peer)
                        }) as AcceptFn<D>
                    }
                    Factory::Shared(factory) => {
                        let service =
                            Arc::new(Service { options: self.options, group: Arc::clone(&group), factory });
                        if pool.is_empty() {
                            Box::new(move |ev: &mut EventLoop<D>, socket: OwnedFd, peer: StreamAddr| {
                                service.establish(ev, socket, peer)
                            }) as AcceptFn<D>
                        } else {
                            round_robin(pool.handles(), service)
                        }
                    }
                };
                listeners.push((None, acceptor::listen(ev, socket, on_accept)?));
            }
        }
        info!(
            "{}: listening on {local_addr} ({} dispatcher, {} sub-loop(s){})",
            self.name,
            ev.dispatcher_name(),
            pool.len(),
            if self.reuse_port { ", SO_REUSEPORT" } else { "" }
        );
        let id = NEXT_SERVER_ID.fetch_add(1, Ordering::Relaxed);
        let sub_loops = pool.handles();
        let core = ServerCore { pool, listeners, socket_file, main: ev.handle() };
        ev.context::<Servers<D>>().by_id.insert(id, core);
        Ok(Server { id, local_addr, group, main: ev.handle(), sub_loops, name: self.name })
    }
}

/// Every accepted socket is handed to the next sub-loop.
fn round_robin<D: Dispatcher + 'static>(
    loops: Vec<LoopHandle<D>>,
    service: Arc<Service<Arc<dyn HandlerFactory<D> + Send + Sync>>>,
) -> AcceptFn<D> {
    let next = Cell::new(0);
    Box::new(move |ev, socket, peer| {
        let i = next.get();
        next.set((i + 1) % loops.len());
        let service = Arc::clone(&service);
        trace!("[{}] handing {peer} (fd {}) to sub-loop {i}", ev.name(), socket.as_raw_fd());
        // If the sub-loop is gone, the task (and the socket in it) is dropped: the client sees a close.
        if let Err(e) = loops[i].run_in_loop(move |ev| service.establish(ev, socket, peer)) {
            warn!("cannot hand a connection to sub-loop {i}: {e}");
        }
    })
}

/// Registers an acceptor on another loop and waits for the outcome.
fn listen_on<D: Dispatcher + 'static>(
    handle: &LoopHandle<D>,
    listener: OwnedFd,
    on_accept: impl FnMut(&mut EventLoop<D>, OwnedFd, StreamAddr) + Send + 'static,
) -> io::Result<RawFd> {
    let (tx, rx) = mpsc::channel();
    handle.run_in_loop(move |ev| {
        let _ = tx.send(acceptor::listen(ev, listener, Box::new(on_accept)));
    })?;
    rx.recv().map_err(|_| io::Error::other("sub-loop exited before its listener was registered"))?
}

/// The running part of a server, owned by its main loop.
struct ServerCore<D: Dispatcher + 'static> {
    pool: EventLoopThreadPool<D>,
    /// Each listener's fd and the loop it is on (`None`: the main loop).
    listeners: Vec<(Option<LoopHandle<D>>, RawFd)>,
    /// A Unix server's socket file, removed once it stops accepting.
    socket_file: Option<SocketFile>,
    main: LoopHandle<D>,
}

impl<D: Dispatcher + 'static> ServerCore<D> {
    /// Deregisters (and so closes) every listener: directly on `ev` if it is
    /// given (the main loop), through a queued task otherwise.
    fn stop_accepting(&mut self, mut ev: Option<&mut EventLoop<D>>) {
        self.socket_file = None;
        for (handle, fd) in self.listeners.drain(..) {
            match (handle, ev.as_deref_mut()) {
                (None, Some(ev)) => {
                    let _ = ev.deregister(fd);
                }
                (handle, _) => {
                    let _ = handle.as_ref().unwrap_or(&self.main).run_in_loop(move |ev| {
                        let _ = ev.deregister(fd);
                    });
                }
            }
        }
    }
}

impl<D: Dispatcher + 'static> Drop for ServerCore<D> {
    fn drop(&mut self) {
        self.stop_accepting(None);
        self.pool.stop();
    }
}

/// The servers a loop owns.
struct Servers<D: Dispatcher + 'static> {
    by_id: HashMap<u64, ServerCore<D>>,
}

impl<D: Dispatcher + 'static> Default for Servers<D> {
    fn default() -> Self {
        Servers { by_id: HashMap::new() }
    }
}

/// A handle to a running server (TCP or Unix domain). The server itself belongs to the main
/// loop it was started on: dropping this value does not stop it; call
/// [`stop`](Self::stop) for a graceful stop, or drop the loop.
pub struct Server<D: Dispatcher + 'static = AnyDispatcher> {
    id: u64,
    local_addr: StreamAddr,
    group: Arc<ConnectionGroup>,
    /// The loop that accepts (and, with 0 threads, runs the connections).
    main: LoopHandle<D>,
    sub_loops: Vec<LoopHandle<D>>,
    name: String,
}

impl<D: Dispatcher + 'static> fmt::Debug for Server<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.name)
            .field("local_addr", &self.local_addr)
            .field("threads", &self.sub_loops.len())
            .field("live_connections", &self.live_connections())
            .finish()
    }
}

impl<D: Dispatcher + 'static> Server<D> {
    /// Starts configuring a server on `addr` (port 0 picks a free port).
    /// `factory` builds each connection's [`Handler`](super::Handler): a
    /// closure `|conn| MyHandler { .. }` or [`Callbacks`](super::Callbacks).
    /// It is shared with the sub-loop threads, hence `Send + Sync`; the
    /// handlers it builds are not shared and need neither.
    pub fn builder<F>(addr: impl ToSocketAddrs, factory: F) -> ServerBuilder<D>
    where
        F: HandlerFactory<D> + Send + Sync,
    {
        Self::new_builder(tcp(addr), Factory::Shared(Arc::new(factory)))
    }

    /// Like [`builder`](Self::builder), for a server that runs entirely on
    /// its main loop (no threads), so `factory` need not be `Send`: it may
    /// hold loop-wide state in an `Rc<RefCell<..>>`.
    pub fn local_builder<F>(addr: impl ToSocketAddrs, factory: F) -> ServerBuilder<D>
    where
        F: HandlerFactory<D>,
    {
        Self::new_builder(tcp(addr), Factory::Local(Rc::new(factory)))
    }

    /// Starts configuring a server on a Unix domain socket: a path, or a
    /// Linux abstract name written `"@name"`. A stale socket file left by a
    /// dead process is replaced, a live one is `AddrInUse`; the file is
    /// removed when the server stops. Otherwise like [`builder`](Self::builder).
    pub fn unix_builder<F>(addr: impl Into<UnixAddr>, factory: F) -> ServerBuilder<D>
    where
        F: HandlerFactory<D> + Send + Sync,
    {
        Self::new_builder(BindTo::Unix(addr.into()), Factory::Shared(Arc::new(factory)))
    }

    /// [`unix_builder`](Self::unix_builder) for a server on its main loop
    /// only, like [`local_builder`](Self::local_builder).
    pub fn local_unix_builder<F>(addr: impl Into<UnixAddr>, factory: F) -> ServerBuilder<D>
    where
        F: HandlerFactory<D>,
    {
        Self::new_builder(BindTo::Unix(addr.into()), Factory::Local(Rc::new(factory)))
    }

    fn new_builder(bind_to: BindTo, factory: Factory<D>) -> ServerBuilder<D> {
        ServerBuilder {
            bind_to,
            listener: None,
            factory,
            options: ConnectionOptions::default(),
            threads: 0,
            reuse_port: false,
            backlog: DEFAULT_BACKLOG,
            name: "muxloop".into(),
        }
    }

    /// The address it listens on (a `SocketAddr` for TCP: it compares equal
    /// to one and can be passed to `TcpStream::connect`).
    pub fn local_addr(&self) -> StreamAddr {
        self.local_addr.clone()
    }

    /// Connections currently open, on all loops.
    pub fn live_connections(&self) -> usize {
        self.group.live.load(Ordering::Acquire)
    }

    /// Handles of the sub-loops (empty with 0 threads).
    pub fn sub_loops(&self) -> Vec<LoopHandle<D>> {
        self.sub_loops.clone()
    }

    /// Handles of the loops that run this server's connections: the
    /// sub-loops, or the main loop when there are none (muduo's
    /// `getAllLoops`). A broadcast queues one task per loop here and sends
    /// to that loop's connections from it.
    pub fn loops(&self) -> Vec<LoopHandle<D>> {
        if self.sub_loops.is_empty() { vec![self.main.clone()] } else { self.sub_loops.clone() }
    }

    /// Runs `f` on every connection of this server, on each one's own loop.
    /// `ev` is the main loop; the sub-loops get a queued task.
    pub fn for_each_connection<F>(&self, ev: &mut EventLoop<D>, f: F)
    where
        F: Fn(&mut EventLoop<D>, &Connection<D>) + Send + Sync + Clone + 'static,
    {
        for conn in members(ev, &self.group) {
            f(ev, &conn);
        }
        for handle in &self.sub_loops {
            let (group, f) = (Arc::clone(&self.group), f.clone());
            let _ = handle.run_in_loop(move |ev| {
                for conn in members(ev, &group) {
                    f(ev, &conn);
                }
            });
        }
    }

    /// Runs `ev` until no connection is left or `limit` passes; returns how
    /// many are left.
    fn drive_until_closed(&self, ev: &mut EventLoop<D>, limit: Duration) -> io::Result<usize> {
        let deadline = clock::now() + limit;
        while self.live_connections() > 0 && clock::now() < deadline {
            ev.run_once(Some(Duration::from_millis(10)))?;
        }
        Ok(self.live_connections())
    }

    /// Graceful stop, called on the main loop's thread outside its callbacks
    /// (e.g. after `run()` or [`EventLoop::run_until_signal`] returned):
    /// stops accepting, tells every connection's handler
    /// ([`Handler::on_server_stop`](super::Handler::on_server_stop): by
    /// default a half-close once queued output drains), drives `ev` until all
    /// have closed or `grace` has passed, force-closes the rest and joins the
    /// sub-loops. Says how many closed cleanly and how many were forced.
    /// `InvalidInput` if `ev` is not the loop the server was started on.
    pub fn stop(self, ev: &mut EventLoop<D>, grace: Duration) -> io::Result<StopSummary> {
        if ev.id() != self.main.id() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: stop must be given the loop the server was started on", self.name),
            ));
        }
        let Some(mut core) = ev.context::<Servers<D>>().by_id.remove(&self.id) else {
            return Ok(StopSummary::default());
        };
        core.stop_accepting(Some(ev));
        let open = self.live_connections();
        self.for_each_connection(ev, |ev, conn| conn.server_stopping(ev));
        let forced = self.drive_until_closed(ev, grace)?;
        if forced > 0 {
            warn!("{}: {forced} connection(s) still open after {grace:?}; closing them", self.name);
            self.for_each_connection(ev, |ev, conn| conn.force_close(ev));
            self.drive_until_closed(ev, Duration::from_secs(1))?;
        }
        drop(core); // joins the sub-loops
        let summary = StopSummary { closed_cleanly: open.saturating_sub(forced), forced };
        debug!("{}: stopped ({summary})", self.name);
        Ok(summary)
    }
}

fn tcp(addr: impl ToSocketAddrs) -> BindTo {
    BindTo::Tcp(addr.to_socket_addrs().map(Iterator::collect))
}

/// What a graceful [`Server::stop`] did.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct StopSummary {
    /// Connections that finished and closed within the grace period.
    pub closed_cleanly: usize,
    /// Connections still open at the deadline, closed by force.
    pub forced: usize,
}

impl fmt::Display for StopSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} connection(s) closed cleanly, {} forced", self.closed_cleanly, self.forced)
    }
}

/// The connections of `group` on this loop.
fn members<D: Dispatcher + 'static>(
    ev: &mut EventLoop<D>,
    group: &Arc<ConnectionGroup>,
) -> Vec<Connection<D>> {
    ConnectionTable::all(ev).into_iter().filter(|c| c.in_group(group)).collect()
}
