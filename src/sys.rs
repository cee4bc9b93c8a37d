//! The system-call layer: the only module (with `dispatcher/`) that calls
//! `libc` directly.
//!
//! It teaches one idea, borrowed from mio: every libc call is a single line
//! through the `syscall!` macro, which turns the C convention "returns -1 and sets
//! `errno`" into a Rust `io::Result`. Everything above this module works with
//! `OwnedFd`/`RawFd` and `io::Result` and never sees `errno`.
//!
//! The helpers are public so tests, benches and examples can build fixtures
//! (socket pairs, high-numbered fds, fd limits) without unsafe code of their
//! own.

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
