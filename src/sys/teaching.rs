//! Helpers only the examples use, kept apart from the library's own:
//! the `SIGCHLD` flag and `waitpid` loop of ladder rung 03 (a process per
//! connection), the bare `epoll_*` calls of the `herd` lab, and the
//! kernel's view of a socket the `tcp_lab` and `readiness_lab` examples
//! print (TCP state, queued bytes, out-of-band data, one `poll`, `SIGIO`,
//! a subreaper; the Linux-only ones with `muxloop_linux`). The library
//! itself never calls them, and `sys` does not re-export them: the path is
//! `sys::teaching::name`.

use std::io;
use std::mem;
#[cfg(muxloop_linux)]
use std::os::fd::OwnedFd;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::*;

/// Set by the `SIGCHLD` handler [`catch_sigchld`] installs.
static SIGCHLD_SEEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

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

/// A bare epoll instance (close-on-exec), for experiments the
/// `EpollDispatcher` does not offer, such as `EPOLLEXCLUSIVE`.
#[cfg(muxloop_linux)]
pub fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: plain integer argument.
    let fd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
    Ok(owned(fd))
}

/// Adds `fd` to epoll instance `epfd` for readability; with `exclusive`,
/// `EPOLLEXCLUSIVE` (when several epoll instances wait on one fd, an event
/// wakes one or a few of them, not all: the thundering herd's kernel fix).
#[cfg(muxloop_linux)]
pub fn epoll_add_readable(epfd: BorrowedFd<'_>, fd: BorrowedFd<'_>, exclusive: bool) -> io::Result<()> {
    let flags = if exclusive { libc::EPOLLEXCLUSIVE } else { 0 };
    let fd = fd.as_raw_fd();
    let mut event = libc::epoll_event { events: (libc::EPOLLIN | flags) as u32, u64: fd as u64 };
    // SAFETY: `event` is a valid epoll_event for the duration of the call;
    // both fds are borrowed, hence open.
    syscall!(epoll_ctl(epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event))?;
    Ok(())
}

/// Waits up to `timeout_ms` on `epfd`; returns how many fds are ready
/// (0 on timeout or `EINTR`).
#[cfg(muxloop_linux)]
pub fn epoll_wait_ready(epfd: BorrowedFd<'_>, timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: all-zero bytes are valid epoll_events for the kernel to overwrite.
    let mut events: [libc::epoll_event; 8] = unsafe { mem::zeroed() };
    // SAFETY: the kernel writes at most `events.len()` entries into `events`.
    match syscall!(epoll_wait(epfd.as_raw_fd(), events.as_mut_ptr(), events.len() as libc::c_int, timeout_ms))
    {
        Ok(n) => Ok(n as usize),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}

/// Adds `fd` to epoll instance `epfd` for readability, edge-triggered
/// (`EPOLLIN | EPOLLET`): after one report the entry is not put back on the
/// ready list until new data (a new connection) arrives.
#[cfg(muxloop_linux)]
pub fn epoll_add_readable_edge(epfd: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()> {
    let fd = fd.as_raw_fd();
    let mut event = libc::epoll_event { events: (libc::EPOLLIN | libc::EPOLLET) as u32, u64: fd as u64 };
    // SAFETY: `event` is a valid epoll_event for the duration of the call;
    // both fds are borrowed, hence open.
    syscall!(epoll_ctl(epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event))?;
    Ok(())
}

/// The TCP state of a socket as the kernel keeps it (`tcpi_state` of
/// `TCP_INFO`, the names of `ss`): `"ESTABLISHED"`, `"SYN_SENT"`,
/// `"FIN_WAIT2"`, `"CLOSE_WAIT"`, `"LAST_ACK"`, `"LISTEN"`, `"CLOSE"`, ...
/// (Linux.) A socket whose side of the close is over reads `"CLOSE"`: its
/// `TIME_WAIT` lives on in a separate, fd-less kernel object, which `ss`
/// and `/proc/net/tcp` list.
#[cfg(muxloop_linux)]
pub fn tcp_state(fd: BorrowedFd<'_>) -> io::Result<&'static str> {
    // SAFETY: all-zero bytes are a valid tcp_info for the kernel to overwrite.
    let mut info: libc::tcp_info = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let ptr = (&mut info as *mut libc::tcp_info).cast();
    // SAFETY: `info` and `len` are valid out-pointers of the stated size.
    syscall!(getsockopt(fd.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_INFO, ptr, &mut len))?;
    const NAMES: [&str; 12] = [
        "?",
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT1",
        "FIN_WAIT2",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "CLOSING",
    ];
    Ok(NAMES.get(info.tcpi_state as usize).copied().unwrap_or("?"))
}

/// Bytes the kernel holds for this socket: `(unread, unacknowledged)`:
/// received but not yet read by the application (`SIOCINQ`), and written by
/// the application but not yet acknowledged by the peer's kernel
/// (`SIOCOUTQ`). A successful `send` only moved bytes into the second
/// count. (Linux.)
#[cfg(muxloop_linux)]
pub fn queued_bytes(fd: BorrowedFd<'_>) -> io::Result<(usize, usize)> {
    let (mut unread, mut unacked): (libc::c_int, libc::c_int) = (0, 0);
    // SAFETY: both ioctls write one int through a valid pointer.
    syscall!(ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut unread))?;
    // SAFETY: as above (SIOCOUTQ is TIOCOUTQ's number).
    syscall!(ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &mut unacked))?;
    Ok((unread as usize, unacked as usize))
}

/// Sends one byte of TCP urgent ("out-of-band") data: `send(MSG_OOB)`. The
/// peer's socket becomes "exceptional": `POLLPRI` for `poll`/`epoll`, the
/// exceptfds set for `select`; the byte is read apart with [`recv_oob`]
/// (unless the peer set `SO_OOBINLINE`).
pub fn send_oob(fd: BorrowedFd<'_>, byte: u8) -> io::Result<()> {
    // SAFETY: the kernel reads one byte from `byte`.
    syscall!(send(fd.as_raw_fd(), (&byte as *const u8).cast(), 1, libc::MSG_OOB | libc::MSG_NOSIGNAL))?;
    Ok(())
}

/// Reads the urgent byte: `recv(MSG_OOB)`. `EINVAL` if there is none
/// (Linux), `WouldBlock` if it has not arrived yet.
pub fn recv_oob(fd: BorrowedFd<'_>) -> io::Result<u8> {
    let mut byte = 0u8;
    // SAFETY: the kernel writes at most one byte into `byte`.
    syscall!(recv(fd.as_raw_fd(), (&mut byte as *mut u8).cast(), 1, libc::MSG_OOB))?;
    Ok(byte)
}

/// One `poll(2)` on one fd for `events` (`libc::POLLIN`, `POLLPRI`,
/// `POLLOUT`, ...): the `revents` the kernel returned, 0 on timeout.
pub fn poll_once(fd: BorrowedFd<'_>, events: libc::c_short, timeout_ms: i32) -> io::Result<libc::c_short> {
    let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events, revents: 0 };
    // SAFETY: `pfd` is one valid pollfd.
    syscall!(poll(&mut pfd, 1, timeout_ms))?;
    Ok(pfd.revents)
}

/// One `select(2)` on one fd (below `FD_SETSIZE`) with only the
/// exceptfds set: whether the fd has an "exceptional condition", which for
/// a TCP socket means urgent data is pending.
pub fn select_exceptional(fd: BorrowedFd<'_>, timeout_ms: i32) -> io::Result<bool> {
    let raw = fd.as_raw_fd();
    if raw as usize >= libc::FD_SETSIZE {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: all-zero bytes are an empty fd_set.
    let mut except: libc::fd_set = unsafe { mem::zeroed() };
    // SAFETY: `raw` is below FD_SETSIZE (checked), `except` is a valid set.
    unsafe { libc::FD_SET(raw, &mut except) };
    let mut tv =
        libc::timeval { tv_sec: (timeout_ms / 1000) as _, tv_usec: ((timeout_ms % 1000) * 1000) as _ };
    let null = std::ptr::null_mut();
    // SAFETY: `except` and `tv` are valid for the call; the other sets are null.
    let n = syscall!(select(raw + 1, null, null, &mut except, &mut tv))?;
    // SAFETY: `raw` is below FD_SETSIZE and `except` is initialised.
    Ok(n > 0 && unsafe { libc::FD_ISSET(raw, &except) })
}

/// Signal-driven I/O: asks the kernel to send `SIGIO` to the calling
/// *thread* (`F_SETOWN_EX` with `F_OWNER_TID`) whenever `fd` gets new
/// input or output room (`O_ASYNC`). The signal says only "something
/// happened on some fd you armed": the program still has to find out which
/// and read it, non-blocking. `SIGIO`'s default action terminates the
/// process, so block it (and read it from a signalfd) or catch it first.
/// (Linux.)
#[cfg(muxloop_linux)]
pub fn signal_this_thread_on_io(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: gettid has no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    // `struct f_owner_ex` and its constants (<fcntl.h>), which `libc` lacks.
    #[repr(C)]
    struct OwnerEx {
        kind: libc::c_int,
        pid: libc::pid_t,
    }
    const F_SETOWN_EX: libc::c_int = 15;
    const F_OWNER_TID: libc::c_int = 0;
    let owner = OwnerEx { kind: F_OWNER_TID, pid: tid };
    // SAFETY: `owner` has the layout of struct f_owner_ex and lives across
    // the call; `fd` is borrowed, hence open.
    syscall!(fcntl(fd.as_raw_fd(), F_SETOWN_EX, &owner as *const OwnerEx))?;
    // SAFETY: plain integer arguments.
    let flags = syscall!(fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
    // SAFETY: plain integer arguments.
    syscall!(fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_ASYNC))?;
    Ok(())
}

/// `prctl(PR_SET_CHILD_SUBREAPER)`: orphaned descendants of this process
/// (whose parent exited before them) are re-parented to it instead of to
/// init (pid 1), so it can reap them. Process-wide. (Linux.)
#[cfg(muxloop_linux)]
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: plain integer arguments.
    syscall!(prctl(
        libc::PR_SET_CHILD_SUBREAPER,
        1 as libc::c_ulong,
        0 as libc::c_ulong,
        0 as libc::c_ulong,
        0 as libc::c_ulong
    ))?;
    Ok(())
}

/// `SO_SNDLOWAT`, the send low-water mark (POSIX: writable only when this
/// much room is free). Linux does not let it be set: `ENOPROTOOPT`; its
/// sockets are writable once the free space is at least a third of the
/// send buffer in use (`sk_stream_wspace`).
pub fn set_send_lowat(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    let value = bytes.min(i32::MAX as usize) as libc::c_int;
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_SNDLOWAT, value)
}

/// `SO_REUSEADDR` on any socket: here, for a client that binds a chosen
/// local port (to show that a 4-tuple, not a port, is what must be unique).
pub fn set_reuse_addr(fd: BorrowedFd<'_>) -> io::Result<()> {
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)
}
