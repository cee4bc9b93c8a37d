//! Socket addresses: `sockaddr_storage` to and from `SocketAddr`, and
//! [`RawAddr`], the address of any family (IPv4, IPv6, Unix paths and
//! abstract names) as the kernel gives it.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};

use super::*;

/// Converts a `sockaddr_storage` filled by the kernel into a `SocketAddr`.
pub(crate) fn to_socket_addr(storage: &libc::sockaddr_storage) -> io::Result<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // sockaddr_storage is large and aligned enough for it.
            let sin: &libc::sockaddr_in = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Ok(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6: &libc::sockaddr_in6 = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            Ok(SocketAddr::V6(SocketAddrV6::new(ip, port, sin6.sin6_flowinfo, sin6.sin6_scope_id)))
        }
        family => {
            Err(io::Error::new(io::ErrorKind::InvalidInput, format!("unsupported address family {family}")))
        }
    }
}

/// Converts a `SocketAddr` into a `sockaddr_storage` and its length.
pub(crate) fn from_socket_addr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr = libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_addr = libc::in6_addr { s6_addr: v6.ip().octets() };
            sin6.sin6_flowinfo = v6.flowinfo();
            sin6.sin6_scope_id = v6.scope_id();
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// A socket address in the kernel's own form (`sockaddr_storage` + length),
/// for any family: IPv4, IPv6 or `AF_UNIX` (path, abstract or unnamed).
/// The datagram layer converts its address types to and from this.
#[derive(Clone, Copy)]
pub struct RawAddr {
    pub(super) storage: libc::sockaddr_storage,
    pub(super) len: libc::socklen_t,
}

impl RawAddr {
    pub(super) fn empty() -> RawAddr {
        // SAFETY: all-zero bytes are a valid sockaddr_storage.
        RawAddr { storage: unsafe { mem::zeroed() }, len: mem::size_of::<libc::sockaddr_storage>() as _ }
    }

    /// An IPv4 or IPv6 address.
    pub fn from_inet(addr: &SocketAddr) -> RawAddr {
        let (storage, len) = from_socket_addr(addr);
        RawAddr { storage, len }
    }

    /// The IPv4 or IPv6 address; `InvalidInput` for another family.
    pub fn to_inet(&self) -> io::Result<SocketAddr> {
        to_socket_addr(&self.storage)
    }

    /// An `AF_UNIX` address from the bytes of `sun_path`: empty for an unnamed
    /// socket, a leading NUL for a Linux abstract name, else a path (no NUL
    /// inside). `InvalidInput` if it does not fit `sun_path`.
    pub fn from_unix_bytes(name: &[u8]) -> io::Result<RawAddr> {
        let mut raw = RawAddr::empty();
        // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_un.
        let sun = unsafe { &mut *(&mut raw.storage as *mut _ as *mut libc::sockaddr_un) };
        sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let is_path = name.first().is_some_and(|&b| b != 0);
        // A path needs room for its terminating NUL.
        let room = sun.sun_path.len() - usize::from(is_path);
        if name.len() > room {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unix socket name of {} bytes does not fit sun_path ({room} bytes)", name.len()),
            ));
        }
        if is_path && name.contains(&0) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "unix socket path contains a NUL byte"));
        }
        for (dst, &src) in sun.sun_path.iter_mut().zip(name) {
            *dst = src as libc::c_char;
        }
        let header = mem::size_of::<libc::sa_family_t>();
        raw.len = (header + name.len() + usize::from(is_path)) as libc::socklen_t;
        Ok(raw)
    }

    /// The `sun_path` bytes of an `AF_UNIX` address (see
    /// [`from_unix_bytes`](Self::from_unix_bytes)), without a path's trailing NUL.
    /// An empty address (length 0: what `recvfrom` reports for an unnamed
    /// Unix sender) is an unnamed Unix address.
    pub fn unix_bytes(&self) -> io::Result<&[u8]> {
        if self.len == 0 {
            return Ok(&[]);
        }
        if self.storage.ss_family as libc::c_int != libc::AF_UNIX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("address family {} is not AF_UNIX", self.storage.ss_family),
            ));
        }
        // SAFETY: the family says the storage holds a sockaddr_un, which fits in it.
        let sun = unsafe { &*(&self.storage as *const _ as *const libc::sockaddr_un) };
        let header = mem::size_of::<libc::sa_family_t>();
        let len = (self.len as usize).saturating_sub(header).min(sun.sun_path.len());
        // SAFETY: `sun_path` is `len` or more initialised c_chars, and c_char has u8's layout.
        let bytes: &[u8] = unsafe { std::slice::from_raw_parts(sun.sun_path.as_ptr().cast(), len) };
        Ok(match bytes.first() {
            // A path: up to its NUL (the kernel may count the NUL or not).
            Some(&b) if b != 0 => &bytes[..bytes.iter().position(|&c| c == 0).unwrap_or(len)],
            _ => bytes,
        })
    }

    /// The address family (`AF_INET`, `AF_INET6`, `AF_UNIX`).
    pub(super) fn family(&self) -> libc::c_int {
        self.storage.ss_family as libc::c_int
    }

    pub(super) fn ptr(&self) -> *const libc::sockaddr {
        (&self.storage as *const libc::sockaddr_storage).cast()
    }
}

/// `127.0.0.1:80`, `[::1]:80`, `unix:"/path"`, or `family N`.
impl std::fmt::Display for RawAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl std::fmt::Debug for RawAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.to_inet(), self.unix_bytes()) {
            (Ok(a), _) => write!(f, "{a}"),
            (_, Ok(b)) => write!(f, "unix:{:?}", String::from_utf8_lossy(b)),
            _ => write!(f, "family {}", self.storage.ss_family),
        }
    }
}

/// The local address of a socket, of any family (`getsockname`);
/// [`RawAddr::to_inet`] turns a TCP or UDP one into a `SocketAddr`.
pub fn local_addr(fd: BorrowedFd<'_>) -> io::Result<RawAddr> {
    socket_name(fd, false)
}

/// The remote address of a connected socket, of any family (`getpeername`).
pub fn peer_addr(fd: BorrowedFd<'_>) -> io::Result<RawAddr> {
    socket_name(fd, true)
}

fn socket_name(fd: BorrowedFd<'_>, peer: bool) -> io::Result<RawAddr> {
    simulated!(fd, |k, id| k.address(id, peer));
    let mut raw = RawAddr::empty();
    let ptr = (&mut raw.storage as *mut libc::sockaddr_storage).cast();
    if peer {
        // SAFETY: `raw.storage`/`raw.len` are valid out-pointers of the stated
        // size; `fd` is borrowed, hence open.
        syscall!(getpeername(fd.as_raw_fd(), ptr, &mut raw.len))?;
    } else {
        // SAFETY: as above.
        syscall!(getsockname(fd.as_raw_fd(), ptr, &mut raw.len))?;
    }
    Ok(raw)
}
