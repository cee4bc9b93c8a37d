//! Stream sockets (TCP and Unix): creating, listening, accepting and
//! connecting without blocking, the socket options a server sets, and
//! `send`/`recv` with `MSG_NOSIGNAL`.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::*;

/// A connected, non-blocking, close-on-exec `AF_UNIX` stream socket pair.
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` has room for the two descriptors the kernel writes.
    syscall!(socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()))?;
    Ok((owned(fds[0]), owned(fds[1])))
}

/// `recvmsg(2)` into several buffers in order (a socket's `readv`).
pub fn recv_vectored(fd: RawFd, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
    // SAFETY: all-zero bytes are a valid msghdr (no name, no control data).
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = bufs.as_mut_ptr().cast();
    msg.msg_iovlen = bufs.len() as _;
    // SAFETY: `msg` points to `bufs`, whose `IoSliceMut`s are ABI-compatible
    // with `struct iovec` and point to writable memory of their stated lengths.
    let n = syscall!(recvmsg(fd, &mut msg, 0))?;
    Ok(n as usize)
}

/// `sendmsg(2)` of several buffers in order (a socket's `writev`), with
/// `MSG_NOSIGNAL` like [`send`].
pub fn send_vectored(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: all-zero bytes are a valid msghdr (no name, no control data).
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len() as _;
    // SAFETY: `msg` points to `bufs`, whose `IoSlice`s are ABI-compatible with
    // `struct iovec`; the kernel only reads them.
    let n = syscall!(sendmsg(fd, &msg, libc::MSG_NOSIGNAL))?;
    Ok(n as usize)
}

/// `recv(2)` on a socket (skips the VFS layer `read` goes through).
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let n = syscall!(recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0))?;
    Ok(n as usize)
}

/// `send(2)` with `MSG_NOSIGNAL`: no `SIGPIPE`, whatever the signal's action.
/// After the peer's RST the first send fails with `ECONNRESET` and the next
/// ones with `EPIPE`; without `MSG_NOSIGNAL` (plain `write(2)`) those `EPIPE`
/// sends would raise `SIGPIPE`, whose default action kills the process.
/// After a plain FIN the first send succeeds (and draws the peer's RST).
pub fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: the kernel reads at most `buf.len()` bytes from `buf`.
    let n = syscall!(send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL))?;
    Ok(n as usize)
}

/// Sets an integer socket option.
pub(super) fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    let len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` lives across the call and `len` is its size.
    syscall!(setsockopt(fd, level, name, (&value as *const libc::c_int).cast(), len))?;
    Ok(())
}

/// Reads an integer socket option.
pub(super) fn get_int_option(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid out-pointers of the stated size.
    syscall!(getsockopt(fd, level, name, (&mut value as *mut libc::c_int).cast(), &mut len))?;
    Ok(value)
}

/// A new non-blocking, close-on-exec TCP socket for `addr`'s family.
pub fn tcp_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: plain integer arguments.
    let fd = syscall!(socket(domain, ty, libc::IPPROTO_TCP))?;
    Ok(owned(fd))
}

/// A non-blocking listening socket bound to `addr` with `SO_REUSEADDR`
/// (restart without waiting for TIME_WAIT) and, if asked, `SO_REUSEPORT`
/// (several listeners on one port, the kernel spreads connections).
pub fn tcp_listener(addr: &SocketAddr, reuse_port: bool, backlog: i32) -> io::Result<OwnedFd> {
    let socket = tcp_socket(addr)?;
    let fd = socket.as_raw_fd();
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if reuse_port {
        set_int_option(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    }
    let (storage, len) = from_socket_addr(addr);
    // SAFETY: `storage` holds a valid address of `len` bytes.
    syscall!(bind(fd, (&storage as *const libc::sockaddr_storage).cast(), len))?;
    // SAFETY: plain integer arguments.
    syscall!(listen(fd, backlog))?;
    Ok(socket)
}

/// Accepts one connection as a non-blocking, close-on-exec socket.
/// `WouldBlock` means the backlog is empty.
pub fn accept(listener: RawFd) -> io::Result<(OwnedFd, SocketAddr)> {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: `storage`/`len` are valid out-pointers; the kernel writes at most `len` bytes.
    let fd =
        syscall!(accept4(listener, (&mut storage as *mut libc::sockaddr_storage).cast(), &mut len, flags))?;
    let socket = owned(fd);
    Ok((socket, to_socket_addr(&storage)?))
}

/// Starts a non-blocking connect. `Ok(true)`: connected at once; `Ok(false)`:
/// in progress (wait for writable, then check [`take_socket_error`]).
pub fn start_connect(fd: RawFd, addr: &SocketAddr) -> io::Result<bool> {
    let (storage, len) = from_socket_addr(addr);
    // SAFETY: `storage` holds a valid address of `len` bytes.
    match syscall!(connect(fd, (&storage as *const libc::sockaddr_storage).cast(), len)) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Reads and clears `SO_ERROR`: the outcome of a non-blocking connect, or an
/// asynchronous error on a connected socket. `None` means no error.
pub fn take_socket_error(fd: RawFd) -> io::Result<Option<io::Error>> {
    let code = get_int_option(fd, libc::SOL_SOCKET, libc::SO_ERROR)?;
    Ok((code != 0).then(|| io::Error::from_raw_os_error(code)))
}

/// `shutdown(2)`: `Shutdown::Write` sends FIN after queued data (a half-close).
pub fn shutdown(fd: RawFd, how: Shutdown) -> io::Result<()> {
    let how = match how {
        Shutdown::Read => libc::SHUT_RD,
        Shutdown::Write => libc::SHUT_WR,
        Shutdown::Both => libc::SHUT_RDWR,
    };
    // SAFETY: plain integer arguments.
    syscall!(shutdown(fd, how))?;
    Ok(())
}

/// `TCP_NODELAY`: send small writes at once instead of waiting (Nagle).
pub fn set_nodelay(fd: RawFd, on: bool) -> io::Result<()> {
    set_int_option(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, on as libc::c_int)
}

/// `SO_KEEPALIVE`: let the kernel probe an idle peer.
pub fn set_keepalive(fd: RawFd, on: bool) -> io::Result<()> {
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, on as libc::c_int)
}

/// Whether `TCP_NODELAY` is on.
pub fn nodelay(fd: RawFd) -> io::Result<bool> {
    Ok(get_int_option(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY)? != 0)
}

/// Whether `SO_KEEPALIVE` is on.
pub fn keepalive(fd: RawFd) -> io::Result<bool> {
    Ok(get_int_option(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE)? != 0)
}

/// `SO_LINGER`: `Some(Duration::ZERO)` makes `close` reset the connection
/// (RST) instead of a graceful FIN; `None` restores the default.
pub fn set_linger(fd: RawFd, linger: Option<std::time::Duration>) -> io::Result<()> {
    let value = libc::linger {
        l_onoff: linger.is_some() as libc::c_int,
        l_linger: linger.map_or(0, |d| d.as_secs().min(i32::MAX as u64) as libc::c_int),
    };
    let len = mem::size_of::<libc::linger>() as libc::socklen_t;
    // SAFETY: `value` lives across the call and `len` is its size.
    syscall!(setsockopt(fd, libc::SOL_SOCKET, libc::SO_LINGER, (&value as *const libc::linger).cast(), len))?;
    Ok(())
}

/// Sets `SO_SNDBUF` / `SO_RCVBUF` (the kernel doubles and clamps the value).
pub fn set_buffer_sizes(fd: RawFd, send: Option<usize>, recv: Option<usize>) -> io::Result<()> {
    if let Some(size) = send {
        set_int_option(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, size.min(i32::MAX as usize) as libc::c_int)?;
    }
    if let Some(size) = recv {
        set_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, size.min(i32::MAX as usize) as libc::c_int)?;
    }
    Ok(())
}

/// A new non-blocking, close-on-exec `AF_UNIX` socket, of type
/// `SOCK_STREAM` when `stream` is true, else `SOCK_DGRAM`.
pub fn unix_socket(stream: bool) -> io::Result<OwnedFd> {
    let kind = if stream { libc::SOCK_STREAM } else { libc::SOCK_DGRAM };
    // SAFETY: plain integer arguments.
    Ok(owned(syscall!(socket(libc::AF_UNIX, kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0))?))
}

/// A new non-blocking, close-on-exec stream socket for `addr`'s family.
pub fn stream_socket(addr: &RawAddr) -> io::Result<OwnedFd> {
    match addr.to_inet() {
        Ok(inet) => tcp_socket(&inet),
        Err(_) => unix_socket(true),
    }
}

/// `listen(2)`.
pub fn listen(fd: RawFd, backlog: i32) -> io::Result<()> {
    // SAFETY: plain integer arguments.
    syscall!(listen(fd, backlog))?;
    Ok(())
}

/// Accepts one connection of any family as a non-blocking, close-on-exec
/// socket. `WouldBlock` means the backlog is empty.
pub fn accept_raw(listener: RawFd) -> io::Result<(OwnedFd, RawAddr)> {
    let mut peer = RawAddr::empty();
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    let ptr = (&mut peer.storage as *mut libc::sockaddr_storage).cast();
    // SAFETY: `peer.storage`/`peer.len` are valid out-pointers; the kernel writes at most `len` bytes.
    let fd = syscall!(accept4(listener, ptr, &mut peer.len, flags))?;
    Ok((owned(fd), peer))
}

/// [`start_connect`] to an address of any family.
pub fn start_connect_raw(fd: RawFd, addr: &RawAddr) -> io::Result<bool> {
    match connect_raw(fd, addr) {
        Ok(()) => Ok(true),
        // A Unix stream socket whose listener's backlog is full says EAGAIN
        // (it never waits in the background like TCP): the caller retries.
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `TCP_CORK`: while on, the kernel sends only full segments (a partial one
/// waits for more data, at most 200 ms); turning it off sends what is held.
/// Set while a file streams out, so a window-limited flow is not cut into
/// small segments (nginx's `tcp_nopush`).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn set_cork(fd: RawFd, on: bool) -> io::Result<()> {
    set_int_option(fd, libc::IPPROTO_TCP, libc::TCP_CORK, on as libc::c_int)
}
