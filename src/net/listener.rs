//! [`Listener`]: a listening stream socket, TCP or Unix, before a
//! [`Server`](super::Server) serves on it.
//!
//! It exists so the same server code can listen on a TCP port or a Unix
//! path, and so a listener can be made in one place and served in another:
//! bound by a master process and served by forked workers
//! ([`process::Master`](crate::process::Master)), handed over by systemd, or
//! passed to another process over a Unix socket. A listener that bound a path
//! itself removes the socket file when it is dropped (if the file is still
//! the one it created); its clones and listeners made from std types never do.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;

use log::debug;

use super::addr::{SocketFile, StreamAddr, UnixAddr, bind_unix};
use crate::sys;

/// The `listen(2)` backlog muxloop uses unless told otherwise.
pub const DEFAULT_BACKLOG: i32 = 1024;

/// A listening stream socket (TCP or Unix domain), non-blocking.
#[derive(Debug)]
pub struct Listener {
    socket: OwnedFd,
    addr: StreamAddr,
    /// The socket file this listener created, removed when it goes.
    file: Option<SocketFile>,
}

impl Listener {
    /// Binds and listens on the first of `addrs` that works, with
    /// `SO_REUSEADDR` (and `SO_REUSEPORT` if asked).
    pub fn bind_tcp(addrs: &[SocketAddr], reuse_port: bool, backlog: i32) -> io::Result<Listener> {
        let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address to listen on");
        for addr in addrs {
            match sys::tcp_listener(addr, reuse_port, backlog) {
                Ok(socket) => return Listener::from_socket(socket, None),
                Err(e) => last = io::Error::new(e.kind(), format!("listen on {addr}: {e}")),
            }
        }
        Err(last)
    }

    /// Binds and listens on a Unix path or abstract name (`"@name"`). A stale
    /// socket file from a dead process is replaced; a live one is
    /// `AddrInUse`. The file is removed when this listener is dropped.
    pub fn bind_unix(addr: impl Into<UnixAddr>, backlog: i32) -> io::Result<Listener> {
        let addr = addr.into();
        let socket = sys::unix_socket(true)?;
        let file = bind_unix(socket.as_fd(), &addr, true)?;
        sys::listen(socket.as_fd(), backlog)
            .map_err(|e| io::Error::new(e.kind(), format!("listen on {addr}: {e}")))?;
        Listener::from_socket(socket, file)
    }

    fn from_socket(socket: OwnedFd, file: Option<SocketFile>) -> io::Result<Listener> {
        sys::set_nonblocking(socket.as_fd(), true)?;
        let addr = StreamAddr::of_socket(socket.as_fd(), false)?;
        debug!("listener on {addr} (fd {})", socket.as_raw_fd());
        Ok(Listener { socket, addr, file })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> &StreamAddr {
        &self.addr
    }

    /// A second handle on the same listening socket (`dup`); it never
    /// removes the socket file.
    pub fn try_clone(&self) -> io::Result<Listener> {
        Ok(Listener { socket: self.socket.try_clone()?, addr: self.addr.clone(), file: None })
    }

    /// The same listener, no longer responsible for its socket file (a
    /// forked worker's copy: the file is its master's).
    pub(crate) fn without_socket_file(mut self) -> Listener {
        if let Some(file) = self.file.take() {
            file.disarm();
        }
        self
    }

    /// The socket and, if this listener created one, its socket file.
    pub(crate) fn into_parts(self) -> (OwnedFd, StreamAddr, Option<SocketFile>) {
        (self.socket, self.addr, self.file)
    }
}

impl From<TcpListener> for Listener {
    /// Takes over a bound and listening std listener (made non-blocking).
    fn from(listener: TcpListener) -> Self {
        Listener::adopt(listener.into())
    }
}

impl From<UnixListener> for Listener {
    /// Takes over a bound and listening std listener (made non-blocking). Its
    /// socket file is left for its creator to remove.
    fn from(listener: UnixListener) -> Self {
        Listener::adopt(listener.into())
    }
}

impl Listener {
    /// A listener from a socket std already set up; the address is looked up
    /// when possible (a failure there leaves an unnamed address).
    fn adopt(socket: OwnedFd) -> Listener {
        let _ = sys::set_nonblocking(socket.as_fd(), true);
        let addr =
            StreamAddr::of_socket(socket.as_fd(), false).unwrap_or(StreamAddr::Unix(UnixAddr::Unnamed));
        Listener { socket, addr, file: None }
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}
