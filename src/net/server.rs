//! `TcpServer`: an acceptor on the main loop plus a pool of sub-loops.
//!
//! This is the muduo/yolanda multi-reactor design: the main loop only
//! accepts, and hands each new socket to the next sub-loop round-robin by
//! queueing a task on it; from then on the connection lives on that one
//! thread. With `reuse_port`, each sub-loop instead gets its own listening
//! socket on the same port (`SO_REUSEPORT`) and the kernel spreads new
//! connections, so no hand-off is needed.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::acceptor::{self, AcceptFn};
use super::connection::{ConnectionTable, TcpConnection};
use super::{Callbacks, ConnectionGroup};
use crate::dispatcher::{DefaultDispatcher, Dispatcher};
use crate::event_loop::{EventLoop, LoopHandle};
use crate::sys;
use crate::thread_pool::EventLoopThreadPool;

/// How a [`TcpServer`] is configured before it starts.
pub struct TcpServerBuilder<D: Dispatcher + 'static = DefaultDispatcher> {
    addr: SocketAddr,
    callbacks: Callbacks<D>,
    threads: usize,
    reuse_port: bool,
    backlog: i32,
    name: String,
}

impl<D: Dispatcher + 'static> fmt::Debug for TcpServerBuilder<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpServerBuilder")
            .field("addr", &self.addr)
            .field("threads", &self.threads)
            .field("reuse_port", &self.reuse_port)
            .field("backlog", &self.backlog)
            .finish()
    }
}

impl<D: Dispatcher + 'static> TcpServerBuilder<D> {
    /// Number of sub-loop threads (default 0: everything on the main loop).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// One listener per sub-loop with `SO_REUSEPORT` instead of hand-off.
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }

    /// The `listen(2)` backlog (default 1024).
    pub fn backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Replaces the callbacks (layers built on `TcpServer` set theirs last).
    pub fn callbacks(mut self, callbacks: Callbacks<D>) -> Self {
        self.callbacks = callbacks;
        self
    }

    /// Name used for threads and logs (default `"muxloop"`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Binds, starts the sub-loops and starts accepting on `ev` (the main
    /// loop; run it afterwards). Errors: bind/listen failures such as
    /// `AddrInUse`, or a thread that could not start.
    pub fn start(self, ev: &mut EventLoop<D>) -> io::Result<TcpServer<D>> {
        let group = Arc::new(ConnectionGroup::default());
        let mut callbacks = self.callbacks;
        callbacks.group = Some(Arc::clone(&group));
        let pool = EventLoopThreadPool::<D>::new(&self.name, self.threads)?;
        let mut listeners = Vec::new();
        let local_addr;
        if self.reuse_port && !pool.is_empty() {
            let mut addr = self.addr;
            for handle in pool.handles() {
                let listener = sys::tcp_listener(&addr, true, self.backlog)?;
                addr = sys::local_addr(listener.as_raw_fd())?; // later listeners reuse the chosen port
                let fd = listen_on(&handle, listener, callbacks.clone())?;
                listeners.push((Some(handle), fd));
            }
            local_addr = addr;
        } else {
            let listener = sys::tcp_listener(&self.addr, self.reuse_port, self.backlog)?;
            local_addr = sys::local_addr(listener.as_raw_fd())?;
            let on_accept = if pool.is_empty() {
                local_acceptor(callbacks.clone())
            } else {
                round_robin_acceptor(pool.handles(), callbacks.clone())
            };
            listeners.push((None, acceptor::listen(ev, listener, on_accept)?));
        }
        info!(
            "{}: listening on {local_addr} ({} dispatcher, {} sub-loop(s){})",
            self.name,
            ev.dispatcher_name(),
            pool.len(),
            if self.reuse_port { ", SO_REUSEPORT" } else { "" }
        );
        Ok(TcpServer { local_addr, pool, listeners, group, main: ev.handle(), name: self.name })
    }
}

fn establish<D: Dispatcher + 'static>(
    ev: &mut EventLoop<D>,
    socket: OwnedFd,
    peer: SocketAddr,
    callbacks: &Callbacks<D>,
) {
    if let Err(e) = TcpConnection::establish(ev, socket, peer, callbacks.clone()) {
        warn!("cannot set up the connection from {peer}: {e}");
    }
}

/// Every accepted socket becomes a connection on the accepting loop.
fn local_acceptor<D: Dispatcher + 'static>(callbacks: Callbacks<D>) -> AcceptFn<D> {
    Box::new(move |ev, socket, peer| establish(ev, socket, peer, &callbacks))
}

/// Every accepted socket is handed to the next sub-loop.
fn round_robin_acceptor<D: Dispatcher + 'static>(
    loops: Vec<LoopHandle<D>>,
    callbacks: Callbacks<D>,
) -> AcceptFn<D> {
    let next = Cell::new(0);
    Box::new(move |_, socket, peer| {
        let target = &loops[next.get()];
        next.set((next.get() + 1) % loops.len());
        let callbacks = callbacks.clone();
        // If the sub-loop is gone, the task (and the socket in it) is dropped: the client sees a close.
        if let Err(e) = target.run_in_loop(move |ev| establish(ev, socket, peer, &callbacks)) {
            warn!("cannot hand the connection from {peer} to a sub-loop: {e}");
        }
    })
}

/// Registers a local acceptor on another loop and waits for the outcome.
fn listen_on<D: Dispatcher + 'static>(
    handle: &LoopHandle<D>,
    listener: OwnedFd,
    callbacks: Callbacks<D>,
) -> io::Result<RawFd> {
    let (tx, rx) = mpsc::channel();
    handle.run_in_loop(move |ev| {
        let _ = tx.send(acceptor::listen(ev, listener, local_acceptor(callbacks)));
    })?;
    rx.recv().map_err(|_| io::Error::other("sub-loop exited before its listener was registered"))?
}

/// A running TCP server. Stop it with [`stop`](Self::stop) (graceful);
/// dropping it stops accepting and joins the sub-loops (connections on them
/// are closed).
pub struct TcpServer<D: Dispatcher + 'static = DefaultDispatcher> {
    local_addr: SocketAddr,
    pool: EventLoopThreadPool<D>,
    /// Each listener's fd and the loop it is on (`None`: the main loop).
    listeners: Vec<(Option<LoopHandle<D>>, RawFd)>,
    group: Arc<ConnectionGroup>,
    main: LoopHandle<D>,
    name: String,
}

impl<D: Dispatcher + 'static> fmt::Debug for TcpServer<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpServer")
            .field("name", &self.name)
            .field("local_addr", &self.local_addr)
            .field("threads", &self.pool.len())
            .field("live_connections", &self.live_connections())
            .finish()
    }
}

impl<D: Dispatcher + 'static> TcpServer<D> {
    /// Starts configuring a server on `addr` (port 0 picks a free port).
    pub fn builder(addr: SocketAddr, callbacks: Callbacks<D>) -> TcpServerBuilder<D> {
        TcpServerBuilder {
            addr,
            callbacks,
            threads: 0,
            reuse_port: false,
            backlog: 1024,
            name: "muxloop".into(),
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Connections currently open, on all loops.
    pub fn live_connections(&self) -> usize {
        self.group.live.load(Ordering::Acquire)
    }

    /// Handles of the sub-loops (empty with 0 threads).
    pub fn sub_loops(&self) -> Vec<LoopHandle<D>> {
        self.pool.handles()
    }

    /// Runs `f` on every connection of this server, on each one's own loop.
    /// `ev` is the main loop; the sub-loops get a queued task.
    pub fn for_each_connection<F>(&self, ev: &mut EventLoop<D>, f: F)
    where
        F: Fn(&mut EventLoop<D>, &TcpConnection<D>) + Send + Sync + Clone + 'static,
    {
        for conn in ConnectionTable::members(ev, &self.group) {
            f(ev, &conn);
        }
        for handle in self.pool.handles() {
            let (group, f) = (Arc::clone(&self.group), f.clone());
            let _ = handle.run_in_loop(move |ev| {
                for conn in ConnectionTable::members(ev, &group) {
                    f(ev, &conn);
                }
            });
        }
    }

    /// Deregisters (and so closes) every listener: directly on `ev` if it is
    /// given (the main loop), through a queued task otherwise.
    fn stop_accepting(&mut self, mut ev: Option<&mut EventLoop<D>>) {
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

    /// Runs `ev` until no connection is left or `limit` passes; returns how
    /// many are left.
    fn drive_until_closed(&self, ev: &mut EventLoop<D>, limit: Duration) -> io::Result<usize> {
        let deadline = Instant::now() + limit;
        while self.live_connections() > 0 && Instant::now() < deadline {
            ev.run_once(Some(Duration::from_millis(10)))?;
        }
        Ok(self.live_connections())
    }

    /// Graceful stop, called on the main loop's thread outside its callbacks
    /// (e.g. after `run()` returned): stops accepting, half-closes every
    /// connection so queued output drains, drives `ev` until all have closed
    /// or `grace` has passed, force-closes the rest and joins the sub-loops.
    pub fn stop(mut self, ev: &mut EventLoop<D>, grace: Duration) -> io::Result<()> {
        self.stop_accepting(Some(ev));
        self.for_each_connection(ev, |ev, conn| conn.shutdown(ev));
        let left = self.drive_until_closed(ev, grace)?;
        if left > 0 {
            warn!("{}: {left} connection(s) still open after {grace:?}; closing them", self.name);
            self.for_each_connection(ev, |ev, conn| conn.force_close(ev));
            self.drive_until_closed(ev, Duration::from_secs(1))?;
        }
        self.pool.stop();
        debug!("{}: stopped", self.name);
        Ok(())
    }
}

impl<D: Dispatcher + 'static> Drop for TcpServer<D> {
    fn drop(&mut self) {
        self.stop_accepting(None);
        self.pool.stop();
    }
}
