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
