//! Helpers only the examples use, kept apart from the library's own:
//! the `SIGCHLD` flag and `waitpid` loop of ladder rung 03 (a process per
//! connection) and the bare `epoll_*` calls of the `herd` lab (with
//! `muxloop_linux` only). The library itself never calls them, and
//! `sys` does not re-export them: the path is `sys::teaching::name`.

use std::io;
use std::mem;
#[cfg(muxloop_linux)]
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

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
