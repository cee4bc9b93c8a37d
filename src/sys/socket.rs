//! Stream sockets (TCP and Unix): creating, listening, accepting and
//! connecting without blocking, the socket options a server sets, and
//! `send`/`recv` with `MSG_NOSIGNAL`.
//!
//! One path per job for every family the crate uses (TCP over IPv4 and
//! IPv6, Unix): [`stream_socket`], [`accept`] and [`start_connect`] take and
//! give a [`RawAddr`]. Sockets are created non-blocking and close-on-exec:
//! in one call with `muxloop_linux` (`SOCK_NONBLOCK | SOCK_CLOEXEC`,
//! `accept4`), else with `fcntl` right after (the POSIX path).

use std::io::{self, IoSlice, IoSliceMut};
use std::mem;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::*;

/// `socket(2)`: a new non-blocking, close-on-exec socket of `domain` and `ty`
/// (`SOCK_STREAM`, `SOCK_DGRAM`).
pub(super) fn new_socket(domain: libc::c_int, ty: libc::c_int, protocol: libc::c_int) -> io::Result<OwnedFd> {
    #[cfg(muxloop_linux)]
    {
        // SAFETY: plain integer arguments.
        let fd = syscall!(socket(domain, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, protocol))?;
        Ok(owned(fd))
    }
    #[cfg(not(muxloop_linux))]
    {
        // SAFETY: plain integer arguments.
        let fd = syscall!(socket(domain, ty, protocol))?;
        nonblocking_cloexec(owned(fd))
    }
}

/// `socketpair(2)` of `AF_UNIX` sockets of type `ty`, non-blocking and close-on-exec.
pub(super) fn new_socketpair(ty: libc::c_int) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    #[cfg(muxloop_linux)]
    {
        // SAFETY: `fds` has room for the two descriptors the kernel writes.
        syscall!(socketpair(
            libc::AF_UNIX,
            ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr()
        ))?;
        Ok((owned(fds[0]), owned(fds[1])))
    }
    #[cfg(not(muxloop_linux))]
    {
        // SAFETY: `fds` has room for the two descriptors the kernel writes.
        syscall!(socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()))?;
        let (a, b) = (owned(fds[0]), owned(fds[1]));
        Ok((nonblocking_cloexec(a)?, nonblocking_cloexec(b)?))
    }
}

/// A connected, non-blocking, close-on-exec `AF_UNIX` stream socket pair.
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    simulated_new!(|k| k.socketpair());
    new_socketpair(libc::SOCK_STREAM)
}

/// `recvmsg(2)` into several buffers in order (a socket's `readv`).
pub fn recv_vectored(fd: BorrowedFd<'_>, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
    simulated!(fd, |k, id| k.read(id, bufs, true));
    // SAFETY: all-zero bytes are a valid msghdr (no name, no control data).
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = bufs.as_mut_ptr().cast();
    msg.msg_iovlen = bufs.len() as _;
    // SAFETY: `msg` points to `bufs`, whose `IoSliceMut`s are ABI-compatible
    // with `struct iovec` and point to writable memory of their stated lengths.
    let n = syscall!(recvmsg(fd.as_raw_fd(), &mut msg, 0))?;
    Ok(n as usize)
}

/// `sendmsg(2)` of several buffers in order (a socket's `writev`), with
/// `MSG_NOSIGNAL` like [`send`].
pub fn send_vectored(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    simulated!(fd, |k, id| k.write(id, bufs, true));
    // SAFETY: all-zero bytes are a valid msghdr (no name, no control data).
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len() as _;
    // SAFETY: `msg` points to `bufs`, whose `IoSlice`s are ABI-compatible with
    // `struct iovec`; the kernel only reads them.
    let n = syscall!(sendmsg(fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL))?;
    Ok(n as usize)
}

/// `recv(2)` on a socket (skips the VFS layer `read` goes through).
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    simulated!(fd, |k, id| k.read(id, &mut [IoSliceMut::new(buf)], true));
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let n = syscall!(recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0))?;
    Ok(n as usize)
}

/// `send(2)` with `MSG_NOSIGNAL`: no `SIGPIPE`, whatever the signal's action.
/// After the peer's RST the first send fails with `ECONNRESET` and the next
/// ones with `EPIPE`; without `MSG_NOSIGNAL` (plain `write(2)`) those `EPIPE`
/// sends would raise `SIGPIPE`, whose default action kills the process.
/// After a plain FIN the first send succeeds (and draws the peer's RST).
pub fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    simulated!(fd, |k, id| k.write(id, &[IoSlice::new(buf)], true));
    // SAFETY: the kernel reads at most `buf.len()` bytes from `buf`.
    let n = syscall!(send(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL))?;
    Ok(n as usize)
}

/// Sets an integer socket option.
pub(super) fn set_int_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    simulated!(fd, |_k, _id| Ok(())); // options change nothing the simulator models
    let len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` lives across the call and `len` is its size.
    syscall!(setsockopt(fd.as_raw_fd(), level, name, (&value as *const libc::c_int).cast(), len))?;
    Ok(())
}

/// Reads an integer socket option.
pub(super) fn get_int_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<libc::c_int> {
    simulated!(fd, |k, id| Ok(if (level, name) == (libc::SOL_SOCKET, libc::SO_ERROR) {
        k.take_error(id).unwrap_or(0)
    } else {
        0
    }));
    let mut value: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid out-pointers of the stated size.
    syscall!(getsockopt(fd.as_raw_fd(), level, name, (&mut value as *mut libc::c_int).cast(), &mut len))?;
    Ok(value)
}

/// A new non-blocking, close-on-exec stream socket for `addr`'s family:
/// TCP for an IPv4 or IPv6 address, `AF_UNIX` for a Unix one.
pub fn stream_socket(addr: &RawAddr) -> io::Result<OwnedFd> {
    if addr.to_inet().is_ok() {
        simulated_new!(|k| k.fresh_socket());
    }
    match addr.family() {
        family @ (libc::AF_INET | libc::AF_INET6) => new_socket(family, libc::SOCK_STREAM, libc::IPPROTO_TCP),
        _ => new_socket(libc::AF_UNIX, libc::SOCK_STREAM, 0),
    }
}

/// A non-blocking listening socket bound to `addr` with `SO_REUSEADDR`
/// (restart without waiting for TIME_WAIT) and, if asked, `SO_REUSEPORT`
/// (several listeners on one port, the kernel spreads connections).
pub fn tcp_listener(addr: &SocketAddr, reuse_port: bool, backlog: i32) -> io::Result<OwnedFd> {
    simulated_new!(|k| k.listen(*addr, backlog));
    let addr = RawAddr::from_inet(addr);
    let socket = stream_socket(&addr)?;
    set_int_option(socket.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if reuse_port {
        set_int_option(socket.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    }
    bind_raw(socket.as_fd(), &addr)?;
    listen(socket.as_fd(), backlog)?;
    Ok(socket)
}

/// `listen(2)`.
pub fn listen(fd: BorrowedFd<'_>, backlog: i32) -> io::Result<()> {
    // SAFETY: plain integer arguments; `fd` is borrowed, hence open.
    syscall!(listen(fd.as_raw_fd(), backlog))?;
    Ok(())
}

/// Accepts one connection, of any family, as a non-blocking, close-on-exec
/// socket, with the peer's address ([`RawAddr::to_inet`] for TCP).
/// `WouldBlock` means the backlog is empty. `accept4(2)` with
/// `muxloop_linux`, else `accept(2)` + `fcntl`.
pub fn accept(listener: BorrowedFd<'_>) -> io::Result<(OwnedFd, RawAddr)> {
    simulated!(listener, |k, id| k.accept(id).map(|(fd, peer)| (fd, peer.raw())));
    let mut peer = RawAddr::empty();
    let ptr = (&mut peer.storage as *mut libc::sockaddr_storage).cast();
    #[cfg(muxloop_linux)]
    {
        let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: `peer.storage`/`peer.len` are valid out-pointers; the kernel
        // writes at most `len` bytes.
        let fd = syscall!(accept4(listener.as_raw_fd(), ptr, &mut peer.len, flags))?;
        Ok((owned(fd), peer))
    }
    #[cfg(not(muxloop_linux))]
    {
        // SAFETY: as above.
        let fd = syscall!(accept(listener.as_raw_fd(), ptr, &mut peer.len))?;
        Ok((nonblocking_cloexec(owned(fd))?, peer))
    }
}

/// Starts a non-blocking connect to an address of any family. `Ok(true)`:
/// connected at once; `Ok(false)`: in progress (wait for writable, then
/// check [`take_socket_error`]). A Unix stream socket whose listener's
/// backlog is full fails with `WouldBlock` (it never waits in the
/// background like TCP): the caller retries.
pub fn start_connect(fd: BorrowedFd<'_>, addr: &RawAddr) -> io::Result<bool> {
    simulated!(fd, |k, id| k.start_connect(id, addr.to_inet()?));
    match connect_raw(fd, addr) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Reads and clears `SO_ERROR`: the outcome of a non-blocking connect, or an
/// asynchronous error on a connected socket. `None` means no error.
pub fn take_socket_error(fd: BorrowedFd<'_>) -> io::Result<Option<io::Error>> {
    let code = get_int_option(fd, libc::SOL_SOCKET, libc::SO_ERROR)?;
    Ok((code != 0).then(|| io::Error::from_raw_os_error(code)))
}

/// `shutdown(2)`: `Shutdown::Write` sends FIN after queued data (a half-close).
pub fn shutdown(fd: BorrowedFd<'_>, how: Shutdown) -> io::Result<()> {
    simulated!(fd, |k, id| k.shutdown(id, how));
    let how = match how {
        Shutdown::Read => libc::SHUT_RD,
        Shutdown::Write => libc::SHUT_WR,
        Shutdown::Both => libc::SHUT_RDWR,
    };
    // SAFETY: plain integer arguments; `fd` is borrowed, hence open.
    syscall!(shutdown(fd.as_raw_fd(), how))?;
    Ok(())
}

/// `TCP_NODELAY`: send small writes at once instead of waiting (Nagle).
pub fn set_nodelay(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    set_int_option(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, on as libc::c_int)
}

/// `SO_KEEPALIVE`: let the kernel probe an idle peer.
pub fn set_keepalive(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, on as libc::c_int)
}

/// Whether `TCP_NODELAY` is on.
pub fn nodelay(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(get_int_option(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY)? != 0)
}

/// Whether `SO_KEEPALIVE` is on.
pub fn keepalive(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(get_int_option(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE)? != 0)
}

/// `SO_LINGER`: `Some(Duration::ZERO)` makes `close` reset the connection
/// (RST) instead of a graceful FIN; `None` restores the default.
pub fn set_linger(fd: BorrowedFd<'_>, linger: Option<std::time::Duration>) -> io::Result<()> {
    let value = libc::linger {
        l_onoff: linger.is_some() as libc::c_int,
        l_linger: linger.map_or(0, |d| d.as_secs().min(i32::MAX as u64) as libc::c_int),
    };
    let len = mem::size_of::<libc::linger>() as libc::socklen_t;
    let (level, name, ptr) = (libc::SOL_SOCKET, libc::SO_LINGER, (&value as *const libc::linger).cast());
    // SAFETY: `value` lives across the call and `len` is its size.
    syscall!(setsockopt(fd.as_raw_fd(), level, name, ptr, len))?;
    Ok(())
}

/// Sets `SO_SNDBUF` / `SO_RCVBUF` (the kernel doubles and clamps the value).
pub fn set_buffer_sizes(fd: BorrowedFd<'_>, send: Option<usize>, recv: Option<usize>) -> io::Result<()> {
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
    new_socket(libc::AF_UNIX, if stream { libc::SOCK_STREAM } else { libc::SOCK_DGRAM }, 0)
}

/// `TCP_CORK`: while on, the kernel sends only full segments (a partial one
/// waits for more data, at most 200 ms); turning it off sends what is held.
/// Set while a file streams out, so a window-limited flow is not cut into
/// small segments (nginx's `tcp_nopush`). Linux only (`muxloop_linux`).
#[cfg(muxloop_linux)]
pub fn set_cork(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    set_int_option(fd, libc::IPPROTO_TCP, libc::TCP_CORK, on as libc::c_int)
}

/// Per-socket keepalive timings (Linux): `TCP_KEEPIDLE` (idle time before
/// the first probe), `TCP_KEEPINTVL` (time between probes) and
/// `TCP_KEEPCNT` (unanswered probes before the connection is dropped with
/// `ETIMEDOUT`), whole seconds (at least 1). They override the system-wide
/// `net.ipv4.tcp_keepalive_time`, `_intvl` and `_probes` for this socket and
/// take effect once [`set_keepalive`] is on: a dead peer is then noticed
/// after about `idle + interval * count`.
#[cfg(muxloop_linux)]
pub fn set_keepalive_timing(
    fd: BorrowedFd<'_>,
    idle: std::time::Duration,
    interval: std::time::Duration,
    count: u32,
) -> io::Result<()> {
    let secs = |d: std::time::Duration| d.as_secs().clamp(1, i32::MAX as u64) as libc::c_int;
    set_int_option(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs(idle))?;
    set_int_option(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, secs(interval))?;
    set_int_option(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, count.min(i32::MAX as u32) as libc::c_int)
}

/// The keepalive timings in effect for this socket, `(idle, interval,
/// count)`: the system-wide defaults until [`set_keepalive_timing`] changes
/// them (Linux).
#[cfg(muxloop_linux)]
pub fn keepalive_timing(fd: BorrowedFd<'_>) -> io::Result<(std::time::Duration, std::time::Duration, u32)> {
    let get = |name| get_int_option(fd, libc::IPPROTO_TCP, name);
    let secs = |v: libc::c_int| std::time::Duration::from_secs(v as u64);
    Ok((secs(get(libc::TCP_KEEPIDLE)?), secs(get(libc::TCP_KEEPINTVL)?), get(libc::TCP_KEEPCNT)? as u32))
}

/// `SO_RCVLOWAT`: the receive low-water mark. A socket is reported readable
/// (by `select`, `poll`, `epoll` and io_uring's poll alike: they all ask the
/// socket) only once `bytes` are queued, or at EOF or on an error; the
/// default is 1. (Its twin `SO_SNDLOWAT` cannot be set on Linux:
/// `ENOPROTOOPT`.)
pub fn set_recv_lowat(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVLOWAT, bytes.clamp(1, i32::MAX as usize) as libc::c_int)
}
