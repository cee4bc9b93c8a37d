//! Socket addresses beyond `SocketAddr`: [`UnixAddr`] (a path, a Linux
//! abstract name, or nothing) and [`StreamAddr`], either kind, which is what
//! a [`Connection`](super::Connection) or a [`Server`](super::Server) reports.
//!
//! It also holds what binding to a path needs. A bound path is a *socket
//! file* that outlives the process if it dies, and a later `bind` to it
//! fails with `EADDRINUSE`. So before giving up, we probe the file: if a
//! `connect` to it is refused, nobody listens any more (a stale file from a
//! dead process) and it is replaced; if the connect succeeds, a live socket
//! owns it and bind fails with `AddrInUse`. A file that is not a socket is
//! never removed. The file is removed again when its owner (a
//! [`Listener`](super::Listener), a server, a datagram socket) goes, but only
//! if it is still the one we bound (same device and inode): a successor may
//! have replaced it.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use log::debug;

use crate::sys::{self, RawAddr};

/// The address of a Unix domain socket.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UnixAddr {
    /// No name (a `socketpair` end, a client socket that never bound). Nothing
    /// can be sent to it by address.
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

    /// The kernel's form (`sockaddr_un`); `InvalidInput` if it does not fit.
    pub(crate) fn to_raw_addr(&self) -> io::Result<RawAddr> {
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

    /// From the kernel's form; `InvalidInput` for another family.
    pub(crate) fn from_raw_addr(raw: &RawAddr) -> io::Result<Self> {
        let bytes = raw.unix_bytes()?;
        Ok(match bytes.split_first() {
            None => UnixAddr::Unnamed,
            Some((0, name)) => UnixAddr::Abstract(name.to_vec()),
            Some(_) => UnixAddr::Path(PathBuf::from(std::ffi::OsStr::from_bytes(bytes))),
        })
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

impl From<&String> for UnixAddr {
    /// As for `&str`: `@name` is an abstract name.
    fn from(s: &String) -> Self {
        UnixAddr::from(s.as_str())
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

impl From<&PathBuf> for UnixAddr {
    fn from(p: &PathBuf) -> Self {
        UnixAddr::Path(p.clone())
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

/// The address of a stream socket: TCP over IPv4/IPv6, or a Unix domain
/// stream socket.
///
/// It compares equal to a `SocketAddr` when it is that TCP address, and it
/// is [`ToSocketAddrs`] (failing with `InvalidInput` for a Unix address), so
/// `TcpStream::connect(server.local_addr())` works for a TCP server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StreamAddr {
    /// TCP.
    Inet(SocketAddr),
    /// A Unix domain stream socket.
    Unix(UnixAddr),
}

impl StreamAddr {
    /// The TCP address, if this is one.
    pub fn as_inet(&self) -> Option<SocketAddr> {
        match self {
            StreamAddr::Inet(a) => Some(*a),
            StreamAddr::Unix(_) => None,
        }
    }

    /// The Unix address, if this is one.
    pub fn as_unix(&self) -> Option<&UnixAddr> {
        match self {
            StreamAddr::Unix(a) => Some(a),
            StreamAddr::Inet(_) => None,
        }
    }

    /// Whether this is a Unix domain address.
    pub fn is_unix(&self) -> bool {
        matches!(self, StreamAddr::Unix(_))
    }

    /// The TCP port (`None` for a Unix address).
    pub fn port(&self) -> Option<u16> {
        self.as_inet().map(|a| a.port())
    }

    pub(crate) fn to_raw_addr(&self) -> io::Result<RawAddr> {
        match self {
            StreamAddr::Inet(a) => Ok(RawAddr::from_inet(a)),
            StreamAddr::Unix(a) => a.to_raw_addr(),
        }
    }

    pub(crate) fn from_raw_addr(raw: &RawAddr) -> io::Result<Self> {
        match raw.to_inet() {
            Ok(a) => Ok(StreamAddr::Inet(a)),
            Err(_) => UnixAddr::from_raw_addr(raw).map(StreamAddr::Unix),
        }
    }

    /// The local (`peer: false`) or remote address of a socket.
    pub(crate) fn of_socket(fd: BorrowedFd<'_>, peer: bool) -> io::Result<Self> {
        let raw = if peer { sys::peer_addr(fd)? } else { sys::local_addr(fd)? };
        StreamAddr::from_raw_addr(&raw)
    }
}

impl From<SocketAddr> for StreamAddr {
    fn from(a: SocketAddr) -> Self {
        StreamAddr::Inet(a)
    }
}

impl From<UnixAddr> for StreamAddr {
    fn from(a: UnixAddr) -> Self {
        StreamAddr::Unix(a)
    }
}

impl PartialEq<SocketAddr> for StreamAddr {
    fn eq(&self, other: &SocketAddr) -> bool {
        self.as_inet() == Some(*other)
    }
}

impl fmt::Display for StreamAddr {
    /// A TCP address as usual; a Unix one as `unix:PATH` (or `unix:@name`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamAddr::Inet(a) => write!(f, "{a}"),
            StreamAddr::Unix(a) => write!(f, "unix:{a}"),
        }
    }
}

impl ToSocketAddrs for StreamAddr {
    type Iter = std::option::IntoIter<SocketAddr>;

    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        match self {
            StreamAddr::Inet(a) => Ok(Some(*a).into_iter()),
            StreamAddr::Unix(a) => {
                Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{a} is a unix socket address")))
            }
        }
    }
}

/// A socket file we created by binding to a path; dropping it removes the
/// file if it is still ours (same device and inode).
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    /// The file `addr` names, if it is a path that exists now.
    fn created(addr: &UnixAddr) -> Option<SocketFile> {
        let path = addr.as_path()?;
        let meta = std::fs::symlink_metadata(path).ok()?;
        Some(SocketFile { path: path.to_path_buf(), dev: meta.dev(), ino: meta.ino() })
    }
}

impl SocketFile {
    /// Lets go of the file without removing it.
    pub(crate) fn disarm(mut self) {
        self.path = PathBuf::new();
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if self.path.as_os_str().is_empty() {
            return;
        }
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino);
        if ours {
            debug!("removing socket file {}", self.path.display());
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds `fd` (a Unix socket of type `stream` or datagram) to `addr`,
/// replacing a stale socket file (see the module docs). Returns the socket
/// file created, if `addr` is a path.
pub(crate) fn bind_unix(fd: BorrowedFd<'_>, addr: &UnixAddr, stream: bool) -> io::Result<Option<SocketFile>> {
    if *addr == UnixAddr::Unnamed {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot bind to an unnamed unix address"));
    }
    let raw = addr.to_raw_addr()?;
    let err = match sys::bind_raw(fd, &raw) {
        Ok(()) => return Ok(SocketFile::created(addr)),
        Err(e) => e,
    };
    let Some(path) = addr.as_path().filter(|_| err.kind() == io::ErrorKind::AddrInUse) else {
        return Err(io::Error::new(err.kind(), format!("bind {addr}: {err}")));
    };
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(io::ErrorKind::AddrInUse, format!("{addr} exists and is not a socket")));
    }
    // A non-blocking probe of our own type: a stale file refuses it; a live
    // listener accepts it (and sees it close at once) or, with a full
    // backlog, makes it wait (EAGAIN): either way, in use.
    let probe = sys::unix_socket(stream)?;
    match sys::connect_raw(probe.as_fd(), &raw) {
        Ok(()) => Err(io::Error::new(io::ErrorKind::AddrInUse, format!("a live socket is bound to {addr}"))),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            debug!("replacing stale socket file {addr}");
            std::fs::remove_file(path)?;
            sys::bind_raw(fd, &raw).map_err(|e| io::Error::new(e.kind(), format!("bind {addr}: {e}")))?;
            Ok(SocketFile::created(addr))
        }
        // A socket of the other type lives there (EPROTOTYPE): not ours to remove.
        Err(e) => Err(io::Error::new(io::ErrorKind::AddrInUse, format!("{addr} is in use ({e})"))),
    }
}
