//! `Client`: a non-blocking connector with timeout and retry.
//!
//! It teaches the non-blocking `connect(2)` dance: the call returns
//! `EINPROGRESS`; the socket becomes *writable* when the handshake ends,
//! successfully or not, and only `getsockopt(SO_ERROR)` says which. A timer
//! bounds the wait, and failed attempts are retried with exponential backoff.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use log::{debug, warn};

use super::addr::StreamAddr;
use super::connection::Connection;
use super::handler::{ConnectionOptions, HandlerFactory};
use crate::dispatcher::{AnyDispatcher, Dispatcher, Interest, Mode};
use crate::event_loop::EventLoop;
use crate::sys;

/// Called when connecting has failed for good (after all retries).
pub type ConnectErrorCallback<D> = Box<dyn Fn(&mut EventLoop<D>, &io::Error)>;

/// Timeout and retry policy of a [`Client`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectOptions {
    /// How long one attempt may take (default 5 s).
    pub timeout: Duration,
    /// Further attempts after the first fails (default 0).
    pub retries: u32,
    /// Wait before the first retry; doubles each time (default 100 ms).
    pub initial_backoff: Duration,
    /// Upper bound of the wait between retries (default 5 s).
    pub max_backoff: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout: Duration::from_secs(5),
            retries: 0,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Connects to a server and runs a [`Handler`](super::Handler) from the
/// given factory (or [`Callbacks`](super::Callbacks)) on the connection.
///
/// Success shows as the handler's `on_connect`; failure, after all retries,
/// as the connect-error callback (or a warning in the log).
pub struct Client<D: Dispatcher + 'static = AnyDispatcher> {
    addr: StreamAddr,
    factory: Box<dyn HandlerFactory<D>>,
    connection_options: ConnectionOptions,
    options: ConnectOptions,
    on_connect_error: Option<ConnectErrorCallback<D>>,
}

impl<D: Dispatcher + 'static> fmt::Debug for Client<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("addr", &self.addr).field("options", &self.options).finish()
    }
}

/// One connect operation across its attempts.
struct Connecting<D: Dispatcher + 'static> {
    client: Client<D>,
    attempts: Cell<u32>,
    backoff: Cell<Duration>,
}

impl<D: Dispatcher + 'static> Client<D> {
    /// A client for `addr` whose connection gets a handler from `factory`.
    pub fn new(addr: impl Into<StreamAddr>, factory: impl HandlerFactory<D>) -> Self {
        Client {
            addr: addr.into(),
            factory: Box::new(factory),
            connection_options: ConnectionOptions::default(),
            options: ConnectOptions::default(),
            on_connect_error: None,
        }
    }

    /// Options of the connection once it is up.
    pub fn connection_options(mut self, options: ConnectionOptions) -> Self {
        self.connection_options = options;
        self
    }

    /// Sets the timeout and retry policy.
    pub fn options(mut self, options: ConnectOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets the callback for a connect that failed for good.
    pub fn on_connect_error<F>(mut self, f: F) -> Self
    where
        F: Fn(&mut EventLoop<D>, &io::Error) + 'static,
    {
        self.on_connect_error = Some(Box::new(f));
        self
    }

    /// Starts connecting on `ev`. The first attempt begins on the loop's next
    /// iteration, so no callback ever runs inside this call.
    pub fn connect(self, ev: &mut EventLoop<D>) {
        let backoff = self.options.initial_backoff;
        let connecting =
            Rc::new(Connecting { client: self, attempts: Cell::new(0), backoff: Cell::new(backoff) });
        ev.defer(move |ev| attempt(ev, connecting));
    }
}

fn attempt<D: Dispatcher + 'static>(ev: &mut EventLoop<D>, connecting: Rc<Connecting<D>>) {
    let addr = &connecting.client.addr;
    connecting.attempts.set(connecting.attempts.get() + 1);
    debug!("connecting to {addr} (attempt {})", connecting.attempts.get());
    let started = addr.to_raw_addr().and_then(|raw| {
        let socket = sys::stream_socket(&raw)?;
        let done = sys::start_connect(socket.as_fd(), &raw)?;
        Ok((socket, done))
    });
    match started {
        Ok((socket, true)) => connected(ev, connecting, socket),
        Ok((socket, false)) => wait_for_handshake(ev, connecting, socket),
        Err(e) => failed(ev, connecting, e),
    }
}

/// Waits (bounded by the timeout) for the socket to become writable.
fn wait_for_handshake<D: Dispatcher + 'static>(
    ev: &mut EventLoop<D>,
    connecting: Rc<Connecting<D>>,
    socket: OwnedFd,
) {
    let fd = socket.as_raw_fd();
    // Whichever of "writable" and "timed out" comes first takes the socket.
    let pending = Rc::new(RefCell::new(Some(socket)));
    let timer = {
        let (pending, connecting) = (Rc::clone(&pending), Rc::clone(&connecting));
        let timeout = connecting.client.options.timeout;
        ev.run_after(timeout, move |ev| {
            if let Some(socket) = pending.borrow_mut().take() {
                let _ = ev.deregister(fd);
                drop(socket);
                let e =
                    io::Error::new(io::ErrorKind::TimedOut, format!("connect timed out after {timeout:?}"));
                failed(ev, connecting, e);
            }
        })
    };
    let on_writable = {
        let (pending, connecting) = (Rc::clone(&pending), Rc::clone(&connecting));
        move |ev: &mut EventLoop<D>, _| {
            let Some(socket) = pending.borrow_mut().take() else { return };
            ev.cancel(timer);
            let _ = ev.deregister(fd);
            match sys::take_socket_error(socket.as_fd()) {
                Ok(None) => connected(ev, Rc::clone(&connecting), socket),
                Ok(Some(e)) | Err(e) => failed(ev, Rc::clone(&connecting), e),
            }
        }
    };
    if let Err(e) = ev.register(fd, Interest::WRITABLE, Mode::Oneshot, on_writable) {
        ev.cancel(timer);
        pending.borrow_mut().take();
        failed(ev, connecting, e);
    }
}

fn connected<D: Dispatcher + 'static>(ev: &mut EventLoop<D>, connecting: Rc<Connecting<D>>, socket: OwnedFd) {
    let addr = connecting.client.addr.clone();
    // Connecting to a free local port can "succeed" by connecting to itself
    // (TCP simultaneous open): treat that as refused.
    if addr.as_inet().is_some()
        && StreamAddr::of_socket(socket.as_fd(), false).is_ok_and(|local| local == addr)
    {
        drop(socket);
        let e = io::Error::new(io::ErrorKind::ConnectionRefused, format!("connect to {addr} reached itself"));
        return failed(ev, connecting, e);
    }
    let client = &connecting.client;
    if let Err(e) = Connection::establish(ev, socket, addr, &*client.factory, client.connection_options, None)
    {
        failed(ev, connecting, e);
    }
}

fn failed<D: Dispatcher + 'static>(ev: &mut EventLoop<D>, connecting: Rc<Connecting<D>>, error: io::Error) {
    let client = &connecting.client;
    let attempts = connecting.attempts.get();
    if attempts <= client.options.retries {
        let delay = connecting.backoff.get();
        connecting.backoff.set((delay * 2).min(client.options.max_backoff));
        debug!("connect to {} failed: {error}; retrying in {delay:?}", client.addr);
        ev.run_after(delay, move |ev| attempt(ev, connecting));
        return;
    }
    match &client.on_connect_error {
        Some(cb) => cb(ev, &error),
        None => warn!("connect to {} failed after {attempts} attempt(s): {error}", client.addr),
    }
}
