//! The system-call layer: with `dispatcher/`, the only code that calls
//! `libc`.
//!
//! It teaches one idea, borrowed from mio: each libc call is a single line
//! through the `syscall!` macro, which turns the C convention "returns -1 and
//! sets `errno`" into a Rust `io::Result`. This module wraps the calls fds,
//! sockets and buffers need; the backends in `dispatcher/` make their own
//! multiplexer calls (`epoll_*`, `poll`, `select`) through the same macro.
//! Everything above those two works with `OwnedFd`/`RawFd` and `io::Result`
//! and never sees `errno`.
//!
//! The helpers are public so tests, benches and examples can build fixtures
//! (socket pairs, pipes) without unsafe code of their own. The pure test
//! fixtures (`dup_at_least`, `set_nofile_limit`, `open_fd_count`) are hidden
//! from the docs: they are not part of the API.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Calls a libc function and maps a `-1` return to `io::Error::last_os_error()`.
///
/// `syscall!(close(fd))` expands to an `unsafe` call of `libc::close(fd)`; the
/// caller writes the `// SAFETY:` comment for the arguments it passes.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        #[allow(unused_unsafe)]
        // SAFETY: the caller of `syscall!` justifies the arguments; the call itself
        // only reads/writes what those arguments point to.
        let res = unsafe { libc::$fn($($arg),*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}
pub(crate) use syscall;

/// Wraps a freshly returned descriptor in an `OwnedFd`.
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful syscall, so it is open and
    // nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Turns `O_NONBLOCK` on or off.
pub fn set_nonblocking(fd: RawFd, nonblocking: bool) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL take and return plain integers.
    let flags = syscall!(fcntl(fd, libc::F_GETFL))?;
    let wanted = if nonblocking { flags | libc::O_NONBLOCK } else { flags & !libc::O_NONBLOCK };
    if wanted != flags {
        // SAFETY: as above.
        syscall!(fcntl(fd, libc::F_SETFL, wanted))?;
    }
    Ok(())
}

/// Returns true if `fd` is an open descriptor of this process.
pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD on any integer is harmless; EBADF means "not open".
    fd >= 0 && syscall!(fcntl(fd, libc::F_GETFD)).is_ok()
}

/// A connected, non-blocking, close-on-exec `AF_UNIX` stream socket pair.
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` has room for the two descriptors the kernel writes.
    syscall!(socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()))?;
    Ok((owned(fds[0]), owned(fds[1])))
}

/// A non-blocking, close-on-exec pipe: `(read end, write end)`.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors the kernel writes.
    syscall!(pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC))?;
    Ok((owned(fds[0]), owned(fds[1])))
}

/// A non-blocking, close-on-exec eventfd (the loop's waker on Linux).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain integer arguments.
    let fd = syscall!(eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC))?;
    Ok(owned(fd))
}

/// Duplicates `fd` onto the lowest free number that is `>= min` (close-on-exec).
/// Tests use it to get descriptors above `FD_SETSIZE`.
// A test fixture, not API: public only for tests and examples.
#[doc(hidden)]
pub fn dup_at_least(fd: BorrowedFd<'_>, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer; `fd` is borrowed, hence open.
    let new = syscall!(fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min))?;
    Ok(owned(new))
}

/// `read(2)` into `buf`. `Ok(0)` is end of file.
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let n = syscall!(read(fd, buf.as_mut_ptr().cast(), buf.len()))?;
    Ok(n as usize)
}

/// `readv(2)`: one system call that fills several buffers in order.
pub fn readv(fd: RawFd, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
    let count = bufs.len().min(libc::c_int::MAX as usize) as libc::c_int;
    // SAFETY: `IoSliceMut` is ABI-compatible with `struct iovec` and each one
    // points to writable memory of its stated length.
    let n = syscall!(readv(fd, bufs.as_mut_ptr().cast(), count))?;
    Ok(n as usize)
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

/// `write(2)` from `buf`.
pub fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: the kernel reads at most `buf.len()` bytes from `buf`.
    let n = syscall!(write(fd, buf.as_ptr().cast(), buf.len()))?;
    Ok(n as usize)
}

/// `writev(2)`: one system call that writes several buffers in order.
pub fn writev(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    let count = bufs.len().min(libc::c_int::MAX as usize) as libc::c_int;
    // SAFETY: `IoSlice` is ABI-compatible with `struct iovec`; the kernel only reads.
    let n = syscall!(writev(fd, bufs.as_ptr().cast(), count))?;
    Ok(n as usize)
}

/// `recv(2)` on a socket (skips the VFS layer `read` goes through).
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let n = syscall!(recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0))?;
    Ok(n as usize)
}

/// `send(2)` with `MSG_NOSIGNAL`: a peer that has reset the connection makes
/// this return `EPIPE` instead of killing the process with `SIGPIPE`.
pub fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: the kernel reads at most `buf.len()` bytes from `buf`.
    let n = syscall!(send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL))?;
    Ok(n as usize)
}

/// The soft and hard `RLIMIT_NOFILE` of this process.
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not everywhere
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid out-pointer.
    syscall!(getrlimit(libc::RLIMIT_NOFILE, &mut lim))?;
    Ok((lim.rlim_cur as u64, lim.rlim_max as u64))
}

/// Sets the soft `RLIMIT_NOFILE` (clamped to the hard limit); returns the new soft limit.
// A test fixture, not API: public only for tests and examples.
#[doc(hidden)]
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not everywhere
pub fn set_nofile_limit(soft: u64) -> io::Result<u64> {
    let (_, hard) = nofile_limit()?;
    let lim = libc::rlimit { rlim_cur: soft.min(hard) as libc::rlim_t, rlim_max: hard as libc::rlim_t };
    // SAFETY: `lim` is a valid pointer to an initialised rlimit.
    syscall!(setrlimit(libc::RLIMIT_NOFILE, &lim))?;
    Ok(lim.rlim_cur as u64)
}

/// Sets an integer socket option.
fn set_int_option(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    let len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` lives across the call and `len` is its size.
    syscall!(setsockopt(fd, level, name, (&value as *const libc::c_int).cast(), len))?;
    Ok(())
}

/// Reads an integer socket option.
fn get_int_option(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
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

/// The local address of a socket (`getsockname`).
pub fn local_addr(fd: RawFd) -> io::Result<SocketAddr> {
    socket_name(fd, false)
}

/// The remote address of a connected socket (`getpeername`).
pub fn peer_addr(fd: RawFd) -> io::Result<SocketAddr> {
    socket_name(fd, true)
}

fn socket_name(fd: RawFd, peer: bool) -> io::Result<SocketAddr> {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let ptr = (&mut storage as *mut libc::sockaddr_storage).cast();
    if peer {
        // SAFETY: `storage`/`len` are valid out-pointers.
        syscall!(getpeername(fd, ptr, &mut len))?;
    } else {
        // SAFETY: as above.
        syscall!(getsockname(fd, ptr, &mut len))?;
    }
    to_socket_addr(&storage)
}

/// Opens `/dev/null` read-only: the acceptor's spare fd for the EMFILE trick.
pub fn open_dev_null() -> io::Result<OwnedFd> {
    // SAFETY: the path is a NUL-terminated C string literal.
    let fd = syscall!(open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC))?;
    Ok(owned(fd))
}

/// How many fds this process has open (counts `/proc/self/fd`; Linux).
// A test fixture, not API: public only for tests and examples.
#[doc(hidden)]
pub fn open_fd_count() -> io::Result<usize> {
    // One of the entries is the directory handle read_dir itself holds.
    Ok(std::fs::read_dir("/proc/self/fd")?.count().saturating_sub(1))
}

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

// ---- processes (ladder) ----

/// Set by the `SIGCHLD` handler [`catch_sigchld`] installs.
static SIGCHLD_SEEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Which side of a [`fork`] this process is on.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Forked {
    /// The original process; the value is the child's pid.
    Parent(libc::pid_t),
    /// The new process.
    Child,
}

/// `fork(2)`: duplicates this process (every fd is shared, its reference
/// count goes up). Refuses with `Unsupported` unless the process has exactly
/// one thread: in a threaded program the child would inherit locks held by
/// threads that no longer exist (the allocator's, the logger's).
pub fn fork() -> io::Result<Forked> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let threads = status.lines().find_map(|l| l.strip_prefix("Threads:")).map(str::trim);
    if threads != Some("1") {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("fork refused: the process has {} threads, not 1", threads.unwrap_or("?")),
        ));
    }
    // SAFETY: the process is single-threaded (checked above; only this thread
    // could start another), so the child's copy of every lock is consistent.
    let pid = syscall!(fork())?;
    Ok(if pid == 0 { Forked::Child } else { Forked::Parent(pid) })
}

/// `waitpid(-1, WNOHANG)`: reaps one exited child (a zombie) if there is one.
/// `Ok(None)`: children exist but none has exited; `ECHILD`: no children.
pub fn waitpid_nohang() -> io::Result<Option<(libc::pid_t, std::process::ExitStatus)>> {
    use std::os::unix::process::ExitStatusExt;
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a valid out-pointer.
    let pid = syscall!(waitpid(-1, &mut status, libc::WNOHANG))?;
    Ok((pid > 0).then(|| (pid, std::process::ExitStatus::from_raw(status))))
}

extern "C" fn note_sigchld(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    SIGCHLD_SEEN.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Installs a `SIGCHLD` handler that only records the signal (read it with
/// [`take_sigchld`]). It is installed without `SA_RESTART`, so a blocking
/// call such as `accept` returns `EINTR` and the caller gets to reap.
pub fn catch_sigchld() -> io::Result<()> {
    // SAFETY: all-zero bytes are a valid sigaction (empty mask, no flags).
    let mut action: libc::sigaction = unsafe { mem::zeroed() };
    action.sa_sigaction = note_sigchld as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: `action` is initialised; the handler only stores an atomic.
    syscall!(sigaction(libc::SIGCHLD, &action, std::ptr::null_mut()))?;
    Ok(())
}

/// Whether `SIGCHLD` arrived since the last call (see [`catch_sigchld`]).
pub fn take_sigchld() -> bool {
    SIGCHLD_SEEN.swap(false, std::sync::atomic::Ordering::Relaxed)
}

// ---- datagrams and pipes ----

/// A socket address in the kernel's own form (`sockaddr_storage` + length),
/// for any family: IPv4, IPv6 or `AF_UNIX` (path, abstract or unnamed).
/// The datagram layer converts its address types to and from this.
#[derive(Clone, Copy)]
pub struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl RawAddr {
    fn empty() -> RawAddr {
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

    fn ptr(&self) -> *const libc::sockaddr {
        (&self.storage as *const libc::sockaddr_storage).cast()
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

/// A new non-blocking, close-on-exec datagram socket: UDP for an IP family,
/// or `AF_UNIX`/`SOCK_DGRAM` when `unix` is true.
pub fn datagram_socket(ipv6: bool, unix: bool) -> io::Result<OwnedFd> {
    let domain = match (unix, ipv6) {
        (true, _) => libc::AF_UNIX,
        (false, false) => libc::AF_INET,
        (false, true) => libc::AF_INET6,
    };
    let ty = libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: plain integer arguments.
    Ok(owned(syscall!(socket(domain, ty, 0))?))
}

/// A connected, non-blocking, close-on-exec `AF_UNIX` datagram socket pair.
pub fn datagram_socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    let ty = libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` has room for the two descriptors the kernel writes.
    syscall!(socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()))?;
    Ok((owned(fds[0]), owned(fds[1])))
}

/// `bind(2)` to any address.
pub fn bind_raw(fd: RawFd, addr: &RawAddr) -> io::Result<()> {
    // SAFETY: `addr` holds a valid address of `addr.len` bytes.
    syscall!(bind(fd, addr.ptr(), addr.len))?;
    Ok(())
}

/// `connect(2)` to any address (for a datagram socket: fixes the default
/// destination and filters what is received).
pub fn connect_raw(fd: RawFd, addr: &RawAddr) -> io::Result<()> {
    // SAFETY: `addr` holds a valid address of `addr.len` bytes.
    syscall!(connect(fd, addr.ptr(), addr.len))?;
    Ok(())
}

/// `getsockname`/`getpeername` for any family.
pub fn raw_name(fd: RawFd, peer: bool) -> io::Result<RawAddr> {
    let mut raw = RawAddr::empty();
    let ptr = (&mut raw.storage as *mut libc::sockaddr_storage).cast();
    if peer {
        // SAFETY: `raw.storage`/`raw.len` are valid out-pointers of the stated size.
        syscall!(getpeername(fd, ptr, &mut raw.len))?;
    } else {
        // SAFETY: as above.
        syscall!(getsockname(fd, ptr, &mut raw.len))?;
    }
    Ok(raw)
}

/// `sendto(2)` one datagram (`to: None` on a connected socket), with
/// `MSG_NOSIGNAL`. A datagram is sent whole or not at all.
pub fn send_to(fd: RawFd, buf: &[u8], to: Option<&RawAddr>) -> io::Result<usize> {
    let (ptr, len) = to.map_or((std::ptr::null(), 0), |a| (a.ptr(), a.len));
    // SAFETY: the kernel reads `buf.len()` bytes from `buf` and `len` bytes from `ptr` (or none).
    let n = syscall!(sendto(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL, ptr, len))?;
    Ok(n as usize)
}

/// One received datagram: its length as sent (larger than the buffer when
/// it was truncated) and the sender.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    /// The datagram's real length (Linux reports it with `MSG_TRUNC`).
    pub len: usize,
    /// Whether it did not fit the buffer and was cut.
    pub truncated: bool,
    /// The sender.
    pub from: RawAddr,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
const RECV_FLAGS: libc::c_int = libc::MSG_TRUNC;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const RECV_FLAGS: libc::c_int = 0;

/// `recvmsg(2)` one datagram into `buf`. A datagram larger than `buf` is cut
/// by the kernel; the answer says so, and on Linux gives its real length.
pub fn recv_from(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut from = RawAddr::empty();
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: all-zero bytes are a valid msghdr.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = (&mut from.storage as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = from.len;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: `msg` points to `iov` (writable `buf`) and `from.storage`, both
    // alive across the call and of the stated sizes.
    let n = syscall!(recvmsg(fd, &mut msg, RECV_FLAGS))? as usize;
    from.len = msg.msg_namelen;
    let truncated = msg.msg_flags & libc::MSG_TRUNC != 0;
    Ok(Received { len: if truncated { n.max(buf.len()) } else { n }, truncated, from })
}

/// Buffers for receiving up to `slots` datagrams of up to `slot_size` bytes
/// with one `recvmmsg(2)` call (Linux), or a `recvmsg` loop elsewhere.
/// Pages are only touched as datagrams land in them.
pub struct RecvBatch {
    slot_size: usize,
    data: Vec<u8>,
    got: Vec<Received>,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    headers: Vec<libc::mmsghdr>,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    iovs: Vec<libc::iovec>,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    names: Vec<RawAddr>,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch").field("slots", &self.slots()).field("slot_size", &self.slot_size).finish()
    }
}

impl RecvBatch {
    /// Room for `slots` (at least 1) datagrams of `slot_size` (at least 1) bytes.
    pub fn new(slots: usize, slot_size: usize) -> RecvBatch {
        let (slots, slot_size) = (slots.max(1), slot_size.max(1));
        RecvBatch {
            slot_size,
            data: vec![0; slots * slot_size],
            got: Vec::with_capacity(slots),
            #[cfg(any(target_os = "linux", target_os = "android"))]
            // SAFETY: all-zero bytes are a valid mmsghdr.
            headers: (0..slots).map(|_| unsafe { mem::zeroed() }).collect(),
            #[cfg(any(target_os = "linux", target_os = "android"))]
            iovs: (0..slots).map(|_| libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }).collect(),
            #[cfg(any(target_os = "linux", target_os = "android"))]
            names: vec![RawAddr::empty(); slots],
        }
    }

    /// How many datagrams one call can receive.
    pub fn slots(&self) -> usize {
        self.data.len() / self.slot_size
    }

    /// Receives up to `max` (and at most [`slots`](Self::slots)) datagrams;
    /// returns how many. `WouldBlock` when none is waiting.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn recv(&mut self, fd: RawFd, max: usize) -> io::Result<usize> {
        let n = max.clamp(1, self.slots());
        self.got.clear();
        for i in 0..n {
            let slot = &mut self.data[i * self.slot_size..(i + 1) * self.slot_size];
            self.iovs[i] = libc::iovec { iov_base: slot.as_mut_ptr().cast(), iov_len: slot.len() };
            self.names[i].len = mem::size_of::<libc::sockaddr_storage>() as _;
            let hdr = &mut self.headers[i].msg_hdr;
            hdr.msg_name = (&mut self.names[i].storage as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = self.names[i].len;
            hdr.msg_iov = &mut self.iovs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_control = std::ptr::null_mut();
            hdr.msg_controllen = 0;
            hdr.msg_flags = 0;
            self.headers[i].msg_len = 0;
        }
        // SAFETY: the first `n` headers point to live iovecs (into `data`) and
        // name buffers of the stated sizes; nothing moves until the call returns.
        let got = syscall!(recvmmsg(fd, self.headers.as_mut_ptr(), n as _, RECV_FLAGS, std::ptr::null_mut()))?
            as usize;
        for i in 0..got {
            let hdr = &self.headers[i].msg_hdr;
            self.names[i].len = hdr.msg_namelen;
            let truncated = hdr.msg_flags & libc::MSG_TRUNC != 0;
            let len = self.headers[i].msg_len as usize;
            let len = if truncated { len.max(self.slot_size) } else { len };
            self.got.push(Received { len, truncated, from: self.names[i] });
        }
        Ok(got)
    }

    /// Receives up to `max` datagrams with a `recvmsg` loop.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub fn recv(&mut self, fd: RawFd, max: usize) -> io::Result<usize> {
        let n = max.clamp(1, self.slots());
        self.got.clear();
        for i in 0..n {
            let slot = &mut self.data[i * self.slot_size..(i + 1) * self.slot_size];
            match recv_from(fd, slot) {
                Ok(r) => self.got.push(r),
                Err(e) if i > 0 && e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(self.got.len())
    }

    /// Datagram `i` of the last [`recv`](Self::recv): its bytes (at most the
    /// slot size) and what the kernel said about it.
    pub fn get(&self, i: usize) -> (&[u8], &Received) {
        let r = &self.got[i];
        let start = i * self.slot_size;
        (&self.data[start..start + r.len.min(self.slot_size)], r)
    }
}

/// One datagram to send with [`send_batch`]: bytes and destination (`None`
/// on a connected socket).
pub type OutDatagram<'a> = (&'a [u8], Option<&'a RawAddr>);

/// Sends datagrams in order with one `sendmmsg(2)` call per 64 (Linux; a
/// `sendto` loop elsewhere); returns how many the kernel took. The first one
/// failing is an error only if none was sent (as `sendmmsg` reports it).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn send_batch(fd: RawFd, datagrams: &[OutDatagram<'_>]) -> io::Result<usize> {
    const MAX: usize = 64;
    let mut sent = 0;
    for chunk in datagrams.chunks(MAX) {
        let mut iovs: [libc::iovec; MAX] = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; MAX];
        // SAFETY: all-zero bytes are a valid mmsghdr.
        let mut headers: [libc::mmsghdr; MAX] = unsafe { mem::zeroed() };
        for (i, (data, to)) in chunk.iter().enumerate() {
            iovs[i] = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
            let hdr = &mut headers[i].msg_hdr;
            if let Some(to) = to {
                hdr.msg_name = to.ptr() as *mut libc::c_void;
                hdr.msg_namelen = to.len;
            }
            hdr.msg_iov = &mut iovs[i];
            hdr.msg_iovlen = 1;
        }
        // SAFETY: the first `chunk.len()` headers point to iovecs and names that
        // live across the call; the kernel only reads the data (sendmmsg).
        match syscall!(sendmmsg(fd, headers.as_mut_ptr(), chunk.len() as _, libc::MSG_NOSIGNAL)) {
            Ok(n) => {
                sent += n as usize;
                if (n as usize) < chunk.len() {
                    break;
                }
            }
            Err(e) if sent == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(sent)
}

/// Sends datagrams in order with a `sendto` loop; returns how many were taken.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn send_batch(fd: RawFd, datagrams: &[OutDatagram<'_>]) -> io::Result<usize> {
    for (i, (data, to)) in datagrams.iter().enumerate() {
        match send_to(fd, data, *to) {
            Ok(_) => {}
            Err(e) if i == 0 => return Err(e),
            Err(_) => return Ok(i),
        }
    }
    Ok(datagrams.len())
}

/// Whether `O_NONBLOCK` is set on `fd`.
pub fn is_nonblocking(fd: RawFd) -> io::Result<bool> {
    // SAFETY: F_GETFL takes and returns plain integers.
    Ok(syscall!(fcntl(fd, libc::F_GETFL))? & libc::O_NONBLOCK != 0)
}

/// Joins (or leaves) an IPv4 multicast group on the interface with address
/// `interface` (`0.0.0.0`: the kernel's choice).
pub fn set_multicast_v4(fd: RawFd, group: Ipv4Addr, interface: Ipv4Addr, join: bool) -> io::Result<()> {
    let mreq = libc::ip_mreq {
        imr_multiaddr: libc::in_addr { s_addr: u32::from(group).to_be() },
        imr_interface: libc::in_addr { s_addr: u32::from(interface).to_be() },
    };
    let name = if join { libc::IP_ADD_MEMBERSHIP } else { libc::IP_DROP_MEMBERSHIP };
    let len = mem::size_of::<libc::ip_mreq>() as libc::socklen_t;
    // SAFETY: `mreq` lives across the call and `len` is its size.
    syscall!(setsockopt(fd, libc::IPPROTO_IP, name, (&mreq as *const libc::ip_mreq).cast(), len))?;
    Ok(())
}

/// `IPV6_V6ONLY`: an IPv6 socket that does not also take IPv4-mapped traffic.
pub fn set_only_v6(fd: RawFd, on: bool) -> io::Result<()> {
    set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, on as libc::c_int)
}

/// The socket's `SO_RCVBUF` as the kernel reports it (doubled for bookkeeping).
pub fn recv_buffer_size(fd: RawFd) -> io::Result<usize> {
    Ok(get_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF)? as usize)
}

/// `dup2(2)` (close-on-exec off on the copy, as for stdin): makes `target`
/// refer to what `fd` refers to. Tests use it to put a pipe on stdin.
pub fn dup_onto(fd: BorrowedFd<'_>, target: RawFd) -> io::Result<()> {
    // SAFETY: plain integer arguments; `fd` is borrowed, hence open.
    syscall!(dup2(fd.as_raw_fd(), target))?;
    Ok(())
}

/// `IP_MULTICAST_IF`: the interface (by its IPv4 address) multicast leaves by.
pub fn set_multicast_if_v4(fd: RawFd, interface: Ipv4Addr) -> io::Result<()> {
    let addr = libc::in_addr { s_addr: u32::from(interface).to_be() };
    let len = mem::size_of::<libc::in_addr>() as libc::socklen_t;
    // SAFETY: `addr` lives across the call and `len` is its size.
    syscall!(setsockopt(
        fd,
        libc::IPPROTO_IP,
        libc::IP_MULTICAST_IF,
        (&addr as *const libc::in_addr).cast(),
        len
    ))?;
    Ok(())
}

// ---- signals, splice, sendfile ----

/// The highest signal number the signal helpers accept (Linux's `SIGRTMAX`).
pub const MAX_SIGNAL: i32 = 64;

/// Calls a `pthread_*` function, which returns the error number instead of
/// setting `errno`, and maps a non-zero result to an `io::Error`.
macro_rules! pthread_call {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        // SAFETY: the caller justifies the arguments (see each use).
        let rc = unsafe { libc::$fn($($arg),*) };
        if rc == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(rc)) }
    }};
}

/// `InvalidInput` unless `signal` is a number a handler can be set for.
pub fn check_signal(signal: i32) -> io::Result<()> {
    if (1..=MAX_SIGNAL).contains(&signal) && signal != libc::SIGKILL && signal != libc::SIGSTOP {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::InvalidInput, format!("signal {signal} cannot be caught")))
    }
}

/// Builds a `sigset_t` holding `signals`.
fn sigset(signals: &[i32]) -> io::Result<libc::sigset_t> {
    // SAFETY: all-zero bytes are a valid sigset_t; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t.
    syscall!(sigemptyset(&mut set))?;
    for &signal in signals {
        check_signal(signal)?;
        // SAFETY: as above; `signal` was checked to be in range.
        syscall!(sigaddset(&mut set, signal))?;
    }
    Ok(set)
}

fn thread_mask(how: libc::c_int, signals: &[i32]) -> io::Result<()> {
    let set = sigset(signals)?;
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    pthread_call!(pthread_sigmask(how, &set, std::ptr::null_mut()))
}

/// Blocks `signals` in the calling thread (`pthread_sigmask(SIG_BLOCK)`).
/// Threads spawned afterwards inherit the mask.
pub fn block_signals(signals: &[i32]) -> io::Result<()> {
    thread_mask(libc::SIG_BLOCK, signals)
}

/// Unblocks `signals` in the calling thread. A pending one is delivered at once.
pub fn unblock_signals(signals: &[i32]) -> io::Result<()> {
    thread_mask(libc::SIG_UNBLOCK, signals)
}

/// Whether `signal` is blocked in the calling thread.
pub fn is_signal_blocked(signal: i32) -> io::Result<bool> {
    check_signal(signal)?;
    // SAFETY: all-zero bytes are a valid sigset_t for the kernel to overwrite.
    let mut current: libc::sigset_t = unsafe { mem::zeroed() };
    // SAFETY: a null new-set only queries; `current` is a valid out-pointer.
    pthread_call!(pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut current))?;
    // SAFETY: `current` was filled by the kernel; `signal` is in range.
    Ok(syscall!(sigismember(&current, signal))? == 1)
}

/// The process id (`getpid`).
pub fn getpid() -> i32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

/// Sends `signal` to process `pid` (`kill(2)`): a process-directed signal the
/// kernel hands to any thread that does not block it.
pub fn kill(pid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: plain integer arguments.
    syscall!(kill(pid, signal))?;
    Ok(())
}

/// A thread that [`signal_thread`] can target (a `pthread_t`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ThreadTarget(libc::pthread_t);

// SAFETY: a pthread_t is an opaque id; any thread may pass it to pthread_kill.
unsafe impl Send for ThreadTarget {}
// SAFETY: as above; it is never dereferenced.
unsafe impl Sync for ThreadTarget {}

/// The calling thread, as a [`signal_thread`] target.
pub fn current_thread() -> ThreadTarget {
    // SAFETY: pthread_self cannot fail.
    ThreadTarget(unsafe { libc::pthread_self() })
}

/// Sends `signal` to one thread of this process (`pthread_kill`): it stays
/// pending for that thread only. The thread must still be running.
pub fn signal_thread(thread: ThreadTarget, signal: i32) -> io::Result<()> {
    // SAFETY: `thread.0` came from pthread_self of a thread the caller keeps alive.
    pthread_call!(pthread_kill(thread.0, signal))
}

/// What a signal does when delivered, as `sigaction` reports it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// `SIG_DFL`: the default action (terminate, ignore, stop... per signal).
    Default,
    /// `SIG_IGN`.
    Ignore,
    /// A handler function, by address.
    Handler(usize),
}

/// A saved `struct sigaction`, to put back with [`restore_signal_action`].
#[derive(Copy, Clone)]
pub struct SignalAction(libc::sigaction);

impl std::fmt::Debug for SignalAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SignalAction").field(&disposition_of(&self.0)).finish()
    }
}

fn disposition_of(action: &libc::sigaction) -> Disposition {
    match action.sa_sigaction {
        libc::SIG_DFL => Disposition::Default,
        libc::SIG_IGN => Disposition::Ignore,
        address => Disposition::Handler(address),
    }
}

fn sigaction_swap(signal: i32, new: Option<&libc::sigaction>) -> io::Result<libc::sigaction> {
    check_signal(signal)?;
    // SAFETY: all-zero bytes are a valid sigaction for the kernel to overwrite.
    let mut old: libc::sigaction = unsafe { mem::zeroed() };
    let new = new.map_or(std::ptr::null(), |n| n as *const libc::sigaction);
    // SAFETY: `new` is null (query) or a valid sigaction; `old` is a valid out-pointer.
    syscall!(sigaction(signal, new, &mut old))?;
    Ok(old)
}

/// The current disposition of `signal` (process-wide).
pub fn signal_disposition(signal: i32) -> io::Result<Disposition> {
    Ok(disposition_of(&sigaction_swap(signal, None)?))
}

/// Sets `signal` to `SIG_DFL` or `SIG_IGN`; returns the previous action.
/// `Disposition::Handler` is `InvalidInput` (use [`set_signal_handler`]).
pub fn set_signal_disposition(signal: i32, disposition: Disposition) -> io::Result<SignalAction> {
    let handler = match disposition {
        Disposition::Default => libc::SIG_DFL,
        Disposition::Ignore => libc::SIG_IGN,
        Disposition::Handler(_) => {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "use set_signal_handler for a handler"));
        }
    };
    // SAFETY: all-zero bytes are a valid sigaction (empty mask, no flags).
    let mut action: libc::sigaction = unsafe { mem::zeroed() };
    action.sa_sigaction = handler;
    Ok(SignalAction(sigaction_swap(signal, Some(&action))?))
}

/// Installs `handler` for `signal` with `SA_RESTART` (interrupted slow
/// system calls resume instead of failing with `EINTR`); returns the previous
/// action. The handler must be async-signal-safe.
pub fn set_signal_handler(signal: i32, handler: extern "C" fn(libc::c_int)) -> io::Result<SignalAction> {
    // SAFETY: all-zero bytes are a valid sigaction (empty mask, no flags).
    let mut action: libc::sigaction = unsafe { mem::zeroed() };
    action.sa_sigaction = handler as usize;
    action.sa_flags = libc::SA_RESTART;
    Ok(SignalAction(sigaction_swap(signal, Some(&action))?))
}

/// Puts back an action saved by [`set_signal_handler`] or [`set_signal_disposition`].
pub fn restore_signal_action(signal: i32, saved: &SignalAction) -> io::Result<()> {
    sigaction_swap(signal, Some(&saved.0)).map(drop)
}

/// The calling thread's `errno`. A signal handler saves it on entry and
/// restores it on exit, so the code it interrupted sees no change.
pub fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Sets the calling thread's `errno` (see [`errno`]).
pub fn set_errno(value: i32) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe {
        *libc::__errno_location() = value
    };
    #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
    // SAFETY: __error returns this thread's errno slot, always valid.
    unsafe {
        *libc::__error() = value
    };
}

/// One record read from a signalfd.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SignalRecord {
    /// The signal number.
    pub signal: i32,
    /// The sender's pid (0 for signals the kernel raised itself).
    pub pid: u32,
    /// The sender's real uid.
    pub uid: u32,
}

/// A non-blocking, close-on-exec `signalfd` for `signals`, or, with
/// `existing`, replaces that signalfd's set (and returns `None`).
/// The signals must be blocked in every thread that could receive them, or
/// they are delivered the ordinary way and never reach the fd.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn signalfd(existing: Option<RawFd>, signals: &[i32]) -> io::Result<Option<OwnedFd>> {
    let set = sigset(signals)?;
    let flags = libc::SFD_NONBLOCK | libc::SFD_CLOEXEC;
    // SAFETY: `set` is initialised; -1 asks for a new fd, else `existing` is one.
    let fd = syscall!(signalfd(existing.unwrap_or(-1), &set, flags))?;
    Ok(existing.is_none().then(|| owned(fd)))
}

/// Reads every pending record from a non-blocking signalfd into `out`.
/// Returns how many were read (0 if none was pending).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn read_signalfd(fd: RawFd, out: &mut Vec<SignalRecord>) -> io::Result<usize> {
    const SIZE: usize = mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: all-zero bytes are a valid signalfd_siginfo.
    let mut records: [libc::signalfd_siginfo; 16] = unsafe { mem::zeroed() };
    let mut total = 0;
    loop {
        let bytes = SIZE * records.len();
        // SAFETY: the kernel writes at most `bytes` bytes, the size of `records`.
        let n = match syscall!(read(fd, records.as_mut_ptr().cast(), bytes)) {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(total),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        // A signalfd only returns whole records.
        for r in &records[..n / SIZE] {
            out.push(SignalRecord { signal: r.ssi_signo as i32, pid: r.ssi_pid, uid: r.ssi_uid });
        }
        total += n / SIZE;
        if n < bytes {
            return Ok(total);
        }
    }
}

/// Consumes the pending instances of `signal` (thread's and process's)
/// without delivering them (`sigtimedwait` with a zero timeout). The
/// signal must be blocked. Returns how many were consumed.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn discard_pending_signal(signal: i32) -> io::Result<usize> {
    let set = sigset(&[signal])?;
    let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    let mut count = 0;
    loop {
        // SAFETY: `set` and `zero` are initialised; a null siginfo pointer is allowed.
        match syscall!(sigtimedwait(&set, std::ptr::null_mut(), &zero)) {
            Ok(_) => count += 1,
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Ok(count),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Asks the kernel for a pipe buffer of `size` bytes (`F_SETPIPE_SZ`);
/// returns the size it granted (rounded up to pages). Unprivileged processes
/// are limited by `/proc/sys/fs/pipe-max-size` (1 MiB by default): `EPERM`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn set_pipe_size(fd: RawFd, size: usize) -> io::Result<usize> {
    let size = size.min(i32::MAX as usize) as libc::c_int;
    // SAFETY: F_SETPIPE_SZ takes an integer.
    let granted = syscall!(fcntl(fd, libc::F_SETPIPE_SZ, size))?;
    Ok(granted as usize)
}

/// `splice(2)` without offsets: moves up to `len` bytes between two fds one of
/// which is a pipe, inside the kernel (no copy through user memory), with
/// `SPLICE_F_MOVE | SPLICE_F_NONBLOCK`. `Ok(0)`: end of input.
/// `WouldBlock`: the input has nothing or the output (pipe or socket) is full.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn splice(fd_in: RawFd, fd_out: RawFd, len: usize) -> io::Result<usize> {
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    let null = std::ptr::null_mut();
    // SAFETY: null offsets mean "use and advance the fds' own positions"
    // (required for pipes and sockets); no user memory is touched.
    let n = syscall!(splice(fd_in, null, fd_out, null, len, flags))?;
    Ok(n as usize)
}

/// `sendfile(2)`: copies up to `count` bytes of the file `in_fd`, starting at
/// `*offset`, to `out_fd` (a socket or any fd) inside the kernel, and advances
/// `*offset` by what was sent. `in_fd`'s own file position is not used or
/// changed. On a non-blocking socket it may send less (`WouldBlock` if nothing
/// fits); `Ok(0)` means `*offset` is at or past the end of the file.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn sendfile(out_fd: RawFd, in_fd: RawFd, offset: &mut u64, count: usize) -> io::Result<usize> {
    let mut off = libc::off_t::try_from(*offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "sendfile offset does not fit off_t"))?;
    // SAFETY: `off` is a valid, writable off_t the kernel reads and advances;
    // no user memory is read or written otherwise.
    let n = syscall!(sendfile(out_fd, in_fd, &mut off, count))?;
    *offset = off as u64;
    Ok(n as usize)
}

/// A duplicate of `fd` *without* close-on-exec, so a child started with
/// `std::process::Command` inherits it (the herd example's accept processes).
pub fn dup_inheritable(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD takes an integer; `fd` is borrowed, hence open.
    let new = syscall!(fcntl(fd.as_raw_fd(), libc::F_DUPFD, 3))?;
    Ok(owned(new))
}

/// A bare epoll instance (close-on-exec), for experiments the
/// `EpollDispatcher` does not offer, such as `EPOLLEXCLUSIVE`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: plain integer argument.
    let fd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
    Ok(owned(fd))
}

/// Adds `fd` to epoll instance `epfd` for readability; with `exclusive`,
/// `EPOLLEXCLUSIVE` (when several epoll instances wait on one fd, an event
/// wakes one or a few of them, not all: the thundering herd's kernel fix).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn epoll_add_readable(epfd: RawFd, fd: RawFd, exclusive: bool) -> io::Result<()> {
    let flags = if exclusive { libc::EPOLLEXCLUSIVE } else { 0 };
    let mut event = libc::epoll_event { events: (libc::EPOLLIN | flags) as u32, u64: fd as u64 };
    // SAFETY: `event` is a valid epoll_event for the duration of the call.
    syscall!(epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut event))?;
    Ok(())
}

/// Waits up to `timeout_ms` on `epfd`; returns how many fds are ready
/// (0 on timeout or `EINTR`).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn epoll_wait_ready(epfd: RawFd, timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: all-zero bytes are valid epoll_events for the kernel to overwrite.
    let mut events: [libc::epoll_event; 8] = unsafe { mem::zeroed() };
    // SAFETY: the kernel writes at most `events.len()` entries into `events`.
    match syscall!(epoll_wait(epfd, events.as_mut_ptr(), events.len() as libc::c_int, timeout_ms)) {
        Ok(n) => Ok(n as usize),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod signals_splice_sendfile_tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    #[test]
    fn sendfile_moves_a_file_into_a_socket() {
        let path = std::env::temp_dir().join(format!("muxloop-sendfile-{}", getpid()));
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::File::create(&path).unwrap().write_all(&data).unwrap();
        let mut file = std::fs::File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let (tx, rx) = socketpair().unwrap();
        let (mut offset, mut got) = (1000u64, Vec::new());
        let mut buf = vec![0u8; 64 * 1024];
        for _ in 0..10_000 {
            match sendfile(tx.as_raw_fd(), file.as_raw_fd(), &mut offset, 1 << 20) {
                Ok(0) => break,
                Ok(_) => {}
                // The socket is full: drain it (the non-blocking partial-send case).
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
            }
            while let Ok(n) = read(rx.as_raw_fd(), &mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
        }
        assert_eq!(offset, data.len() as u64, "the offset advanced to the end");
        assert!(got == data[1000..], "byte-exact from the starting offset");
        assert_eq!(file.stream_position().unwrap(), 0, "the file's own position is untouched");
        // Past the end: nothing to send.
        let mut past = data.len() as u64 + 10;
        assert_eq!(sendfile(tx.as_raw_fd(), file.as_raw_fd(), &mut past, 10).unwrap(), 0);
        file.seek(SeekFrom::Start(0)).unwrap();
        // A socket is not a file to read pages from (ESPIPE: it has no offsets).
        let err = sendfile(tx.as_raw_fd(), rx.as_raw_fd(), &mut 0, 10).unwrap_err();
        assert!(matches!(err.raw_os_error(), Some(libc::ESPIPE | libc::EINVAL)), "{err}");
        let mut huge = u64::MAX;
        let err = sendfile(tx.as_raw_fd(), file.as_raw_fd(), &mut huge, 10).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn splice_moves_socket_to_pipe_to_socket() {
        let (a, b) = socketpair().unwrap();
        let (c, d) = socketpair().unwrap();
        let (pr, pw) = pipe().unwrap();
        assert!(set_pipe_size(pw.as_raw_fd(), 1 << 20).unwrap() >= 1 << 20);
        write(a.as_raw_fd(), b"through the kernel").unwrap();
        assert_eq!(splice(b.as_raw_fd(), pw.as_raw_fd(), 1 << 20).unwrap(), 18);
        let err = splice(b.as_raw_fd(), pw.as_raw_fd(), 1 << 20).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "nothing more to read");
        assert_eq!(splice(pr.as_raw_fd(), c.as_raw_fd(), 1 << 20).unwrap(), 18);
        let mut buf = [0u8; 32];
        let n = read(d.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"through the kernel");
        drop(a);
        assert_eq!(splice(b.as_raw_fd(), pw.as_raw_fd(), 1 << 20).unwrap(), 0, "EOF");
    }
}

// ---- master/worker ----

/// `waitpid(pid, WNOHANG)`: reaps child `pid` if it has exited, and only it
/// (a master must not collect the statuses of children it did not start).
/// `Ok(None)`: still running; `ECHILD`: not a child of this process.
pub fn waitpid_child_nohang(pid: libc::pid_t) -> io::Result<Option<std::process::ExitStatus>> {
    use std::os::unix::process::ExitStatusExt;
    if pid <= 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{pid} names no single child")));
    }
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a valid out-pointer; `pid` names one process.
    let reaped = syscall!(waitpid(pid, &mut status, libc::WNOHANG))?;
    Ok((reaped == pid).then(|| std::process::ExitStatus::from_raw(status)))
}

/// Asks the kernel to send `signal` to this process when its parent exits
/// (`prctl(PR_SET_PDEATHSIG)`, Linux): a worker then cannot outlive a master
/// killed with SIGKILL. Elsewhere `Unsupported`.
pub fn set_parent_death_signal(signal: i32) -> io::Result<()> {
    check_signal(signal)?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: PR_SET_PDEATHSIG takes the signal number as an integer.
        syscall!(prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0))?;
        Ok(())
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    Err(io::Error::new(io::ErrorKind::Unsupported, "no parent-death signal on this system"))
}

/// The parent's pid (`getppid`).
pub fn getppid() -> i32 {
    // SAFETY: getppid cannot fail.
    unsafe { libc::getppid() }
}

// ---- Stream sockets of any family (TCP and Unix) ----

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

// ---- Passing fds over Unix sockets (SCM_RIGHTS) ----

/// The most fds one message carries (Linux's `SCM_MAX_FD`).
pub const MAX_FDS_PER_MESSAGE: usize = 253;

/// `sendmsg(2)` of `bufs` with `fds` attached (`SCM_RIGHTS`) and
/// `MSG_NOSIGNAL`. The fds travel with the first byte sent, so `bufs` must
/// not be empty; the receiver gets duplicates, ours stay open.
pub fn send_with_fds(fd: RawFd, bufs: &[IoSlice<'_>], fds: &[RawFd]) -> io::Result<usize> {
    if fds.is_empty() {
        return send_vectored(fd, bufs);
    }
    if fds.len() > MAX_FDS_PER_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} fds in one message; the kernel takes at most {MAX_FDS_PER_MESSAGE}", fds.len()),
        ));
    }
    if bufs.iter().all(|b| b.is_empty()) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "fds must travel with at least one byte"));
    }
    let payload = mem::size_of_val(fds);
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(payload as u32) } as usize;
    // u64 words keep the control buffer aligned for cmsghdr.
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: all-zero bytes are a valid msghdr.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len() as _;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer has room for one header and `payload` bytes
    // (CMSG_SPACE), so CMSG_FIRSTHDR is non-null and CMSG_DATA points inside it.
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&msg);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(payload as u32) as _;
        std::ptr::copy_nonoverlapping(fds.as_ptr().cast::<u8>(), libc::CMSG_DATA(header), payload);
    }
    // SAFETY: `msg` points to `bufs` (ABI-compatible with iovec, read only)
    // and to the control buffer filled above.
    let n = syscall!(sendmsg(fd, &msg, libc::MSG_NOSIGNAL))?;
    Ok(n as usize)
}

/// `recvmsg(2)` into `bufs`, taking the fds that came with the data
/// (`SCM_RIGHTS`, received close-on-exec) into `fds`. Fds beyond what the
/// control buffer holds are closed by the kernel; that is reported as
/// `truncated` (the data itself is complete).
pub fn recv_with_fds(
    fd: RawFd,
    bufs: &mut [IoSliceMut<'_>],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<RecvWithFds> {
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE((MAX_FDS_PER_MESSAGE * mem::size_of::<RawFd>()) as u32) } as usize;
    let mut control = [0u64; 160];
    debug_assert!(space <= mem::size_of_val(&control));
    // SAFETY: all-zero bytes are a valid msghdr.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = bufs.as_mut_ptr().cast();
    msg.msg_iovlen = bufs.len() as _;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `msg` points to writable buffers of their stated lengths and
    // to a control buffer of `space` bytes.
    let n = syscall!(recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC))? as usize;
    // SAFETY: the kernel filled `msg_controllen` bytes of well-formed
    // headers; CMSG_FIRSTHDR/CMSG_NXTHDR walk only within them, and each
    // SCM_RIGHTS payload is an array of fds the kernel just installed for us.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(&msg);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET && (*header).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(header);
                let bytes = (*header).cmsg_len as usize - (data as usize - header as usize);
                for i in 0..bytes / mem::size_of::<RawFd>() {
                    let raw = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    fds.push(OwnedFd::from_raw_fd(raw));
                }
            }
            header = libc::CMSG_NXTHDR(&msg, header);
        }
    }
    Ok(RecvWithFds { bytes: n, truncated: msg.msg_flags & libc::MSG_CTRUNC != 0 })
}

/// What [`recv_with_fds`] got.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RecvWithFds {
    /// Bytes read (0: end of stream).
    pub bytes: usize,
    /// Some fds did not fit and were closed by the kernel.
    pub truncated: bool,
}

// ---- stdin kind ----

/// Whether `fd` is a pipe or a FIFO (`fstat(2)`, `S_ISFIFO`): `splice(2)`
/// needs one on one side of every move, so a program checks its stdin
/// before choosing splice over read + write.
pub fn is_fifo(fd: RawFd) -> io::Result<bool> {
    let mut stat = mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `stat` is a writable `struct stat` the kernel fills on success.
    syscall!(fstat(fd, stat.as_mut_ptr()))?;
    // SAFETY: fstat succeeded, so the kernel initialised `stat`.
    let mode = unsafe { stat.assume_init() }.st_mode;
    Ok(mode & libc::S_IFMT == libc::S_IFIFO)
}

/// A second close-on-exec descriptor for the file `fd` refers to
/// (`F_DUPFD_CLOEXEC`): a loop can then watch the same socket for another
/// interest than its owner's registration (the chat client waits on it for
/// room while splicing into it).
pub fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer; a bad `fd` is EBADF.
    let new = syscall!(fcntl(fd, libc::F_DUPFD_CLOEXEC, 0))?;
    Ok(owned(new))
}

// ---- file bodies (sendfile) ----

/// `TCP_CORK`: while on, the kernel sends only full segments (a partial one
/// waits for more data, at most 200 ms); turning it off sends what is held.
/// Set while a file streams out, so a window-limited flow is not cut into
/// small segments (nginx's `tcp_nopush`).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn set_cork(fd: RawFd, on: bool) -> io::Result<()> {
    set_int_option(fd, libc::IPPROTO_TCP, libc::TCP_CORK, on as libc::c_int)
}
