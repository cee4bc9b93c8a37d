//! Unix domain datagram sockets on the event loop: [`UnixDatagram`], a
//! [`DatagramSocket`] addressed by [`UnixAddr`].
//!
//! It teaches local IPC with message boundaries: the same `sendto`/`recvfrom`
//! as UDP, but addresses are file-system paths (or Linux abstract names, or
//! nothing for a `socketpair`), delivery is reliable and ordered, and, unlike
//! UDP, a sender *is* held back when the receiver's queue is full (its send
//! would block, so muxloop's bounded send queue comes into play).
//!
//! Binding to a path creates a socket file that outlives the process if it
//! dies. [`UnixDatagram::bind`] therefore checks an existing file: if a
//! `connect` to it is refused, nobody is bound any more (a stale file from a
//! dead process) and it is replaced; if the connect succeeds, a live socket
//! owns it and bind fails with `AddrInUse` (connecting a datagram socket
//! sends nothing, so the live owner never notices the probe). A file that is
//! not a socket is never removed. The file is removed at close if it is still
//! the one we bound (same device and inode).

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use log::debug;

use super::datagram::{Datagram, DatagramAddr, DatagramOptions, DatagramSocket};
use crate::dispatcher::{DefaultDispatcher, Dispatcher};
use crate::event_loop::EventLoop;
use crate::sys::{self, RawAddr};

/// A Unix domain datagram socket on an event loop.
pub type UnixDatagram<D = DefaultDispatcher> = DatagramSocket<D, UnixAddr>;

/// The address of a Unix domain socket.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UnixAddr {
    /// No name (a `socketpair` end, or a socket that never bound). Nothing can
    /// be sent to it by address.
    Unnamed,
    /// A file-system path.
    Path(PathBuf),
    /// A Linux abstract name (no file; it vanishes with the socket). Written
    /// `@name`.
    Abstract(Vec<u8>),
}

impl UnixAddr {
    /// The path, if this is a path address.
    pub fn as_path(&self) -> Option<&Path> {
        match self {
            UnixAddr::Path(p) => Some(p),
            _ => None,
        }
    }
}

impl From<&str> for UnixAddr {
    /// `@name` is an abstract name, anything else a path.
    fn from(s: &str) -> Self {
        match s.strip_prefix('@') {
            Some(name) => UnixAddr::Abstract(name.as_bytes().to_vec()),
            None => UnixAddr::Path(PathBuf::from(s)),
        }
    }
}

impl From<&Path> for UnixAddr {
    fn from(p: &Path) -> Self {
        UnixAddr::Path(p.to_path_buf())
    }
}

impl From<PathBuf> for UnixAddr {
    fn from(p: PathBuf) -> Self {
        UnixAddr::Path(p)
    }
}

impl From<&UnixAddr> for UnixAddr {
    fn from(a: &UnixAddr) -> Self {
        a.clone()
    }
}

impl fmt::Display for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnixAddr::Unnamed => f.write_str("(unnamed)"),
            UnixAddr::Path(p) => write!(f, "{}", p.display()),
            UnixAddr::Abstract(name) => write!(f, "@{}", String::from_utf8_lossy(name)),
        }
    }
}

impl DatagramAddr for UnixAddr {
    fn to_raw(&self) -> io::Result<RawAddr> {
        match self {
            UnixAddr::Unnamed => RawAddr::from_unix_bytes(&[]),
            UnixAddr::Path(p) if p.as_os_str().is_empty() => {
                Err(io::Error::new(io::ErrorKind::InvalidInput, "empty unix socket path"))
            }
            UnixAddr::Path(p) => RawAddr::from_unix_bytes(p.as_os_str().as_bytes()),
            UnixAddr::Abstract(name) => {
                let mut bytes = Vec::with_capacity(name.len() + 1);
                bytes.push(0);
                bytes.extend_from_slice(name);
                RawAddr::from_unix_bytes(&bytes)
            }
        }
    }

    fn from_raw(raw: &RawAddr) -> io::Result<Self> {
        let bytes = raw.unix_bytes()?;
        Ok(match bytes.split_first() {
            None => UnixAddr::Unnamed,
            Some((0, name)) => UnixAddr::Abstract(name.to_vec()),
            Some(_) => UnixAddr::Path(PathBuf::from(std::ffi::OsStr::from_bytes(bytes))),
        })
    }
}

/// Binds `fd` to `addr`, replacing a stale socket file (see the module docs).
fn bind_replacing_stale(fd: std::os::fd::RawFd, addr: &UnixAddr) -> io::Result<()> {
    let raw = addr.to_raw()?;
    let err = match sys::bind_raw(fd, &raw) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let Some(path) = addr.as_path().filter(|_| err.kind() == io::ErrorKind::AddrInUse) else {
        return Err(io::Error::new(err.kind(), format!("bind {addr}: {err}")));
    };
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(io::ErrorKind::AddrInUse, format!("{addr} exists and is not a socket")));
    }
    let probe = sys::datagram_socket(false, true)?;
    match sys::connect_raw(probe.as_raw_fd(), &raw) {
        Ok(()) => Err(io::Error::new(io::ErrorKind::AddrInUse, format!("a live socket is bound to {addr}"))),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            debug!("replacing stale socket file {addr}");
            std::fs::remove_file(path)?;
            sys::bind_raw(fd, &raw).map_err(|e| io::Error::new(e.kind(), format!("bind {addr}: {e}")))
        }
        // E.g. a stream socket lives there (EPROTOTYPE): not ours to remove.
        Err(e) => Err(io::Error::new(io::ErrorKind::AddrInUse, format!("{addr} is in use ({e})"))),
    }
}

impl<D: Dispatcher + 'static> DatagramSocket<D, UnixAddr> {
    /// Binds a Unix datagram socket to a path or an abstract name (`"@name"`)
    /// and registers it on `ev`. A stale socket file is replaced; a live one
    /// is `AddrInUse`. The file is removed at close.
    pub fn bind<F>(ev: &mut EventLoop<D>, addr: impl Into<UnixAddr>, on_datagram: F) -> io::Result<Self>
    where
        F: FnMut(&mut EventLoop<D>, &UnixDatagram<D>, &Datagram<'_, UnixAddr>) + 'static,
    {
        Self::bind_with(ev, addr, DatagramOptions::default(), on_datagram)
    }

    /// [`bind`](Self::bind) with explicit limits and buffer sizes.
    pub fn bind_with<F>(
        ev: &mut EventLoop<D>,
        addr: impl Into<UnixAddr>,
        options: DatagramOptions,
        on_datagram: F,
    ) -> io::Result<Self>
    where
        F: FnMut(&mut EventLoop<D>, &UnixDatagram<D>, &Datagram<'_, UnixAddr>) + 'static,
    {
        let addr = addr.into();
        if addr == UnixAddr::Unnamed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot bind to an unnamed unix address",
            ));
        }
        let socket = sys::datagram_socket(false, true)?;
        bind_replacing_stale(socket.as_raw_fd(), &addr)?;
        // Remember which file we created, so close never removes a successor's.
        let bound = match &addr {
            UnixAddr::Path(p) => std::fs::symlink_metadata(p).ok().map(|m| (p.clone(), m.dev(), m.ino())),
            _ => None,
        };
        let remove = move || {
            if let Some((path, dev, ino)) = bound
                && std::fs::symlink_metadata(&path).is_ok_and(|m| m.dev() == dev && m.ino() == ino)
            {
                let _ = std::fs::remove_file(&path);
            }
        };
        let sock = match DatagramSocket::open(ev, socket, options, on_datagram) {
            Ok(sock) => sock,
            Err(e) => {
                remove();
                return Err(e);
            }
        };
        sock.set_on_close(Box::new(remove));
        debug!("unix datagram socket bound to {addr}");
        Ok(sock)
    }

    /// A socket with no name: it can send to named sockets (which cannot
    /// answer it) or [`connect`](Self::connect) to one.
    pub fn unbound<F>(ev: &mut EventLoop<D>, on_datagram: F) -> io::Result<Self>
    where
        F: FnMut(&mut EventLoop<D>, &UnixDatagram<D>, &Datagram<'_, UnixAddr>) + 'static,
    {
        DatagramSocket::open(ev, sys::datagram_socket(false, true)?, DatagramOptions::default(), on_datagram)
    }

    /// Two connected, unnamed sockets (`socketpair(AF_UNIX, SOCK_DGRAM)`),
    /// both on `ev`: what one [`send`](Self::send)s, the other receives.
    pub fn pair<F, G>(ev: &mut EventLoop<D>, on_a: F, on_b: G) -> io::Result<(Self, Self)>
    where
        F: FnMut(&mut EventLoop<D>, &UnixDatagram<D>, &Datagram<'_, UnixAddr>) + 'static,
        G: FnMut(&mut EventLoop<D>, &UnixDatagram<D>, &Datagram<'_, UnixAddr>) + 'static,
    {
        Self::pair_with(ev, DatagramOptions::default(), on_a, on_b)
    }

    /// [`pair`](Self::pair) with explicit limits and buffer sizes.
    pub fn pair_with<F, G>(
        ev: &mut EventLoop<D>,
        options: DatagramOptions,
        on_a: F,
        on_b: G,
    ) -> io::Result<(Self, Self)>
    where
        F: FnMut(&mut EventLoop<D>, &UnixDatagram<D>, &Datagram<'_, UnixAddr>) + 'static,
        G: FnMut(&mut EventLoop<D>, &UnixDatagram<D>, &Datagram<'_, UnixAddr>) + 'static,
    {
        let (a, b) = sys::datagram_socketpair()?;
        let a = DatagramSocket::open(ev, a, options, on_a)?;
        let b = DatagramSocket::open(ev, b, options, on_b)?;
        Ok((a, b))
    }
}
