//! File descriptors: non-blocking mode, pipes and eventfd, plain reads and
//! writes, duplication, and the per-process fd limit.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use super::*;

/// Turns `O_NONBLOCK` on or off.
pub fn set_nonblocking(fd: BorrowedFd<'_>, nonblocking: bool) -> io::Result<()> {
    simulated!(fd, |_k, _id| if nonblocking { Ok(()) } else { Err(not_simulated("blocking mode")) });
    let fd = fd.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL take and return plain integers; `fd` is borrowed, hence open.
    let flags = syscall!(fcntl(fd, libc::F_GETFL))?;
    let wanted = if nonblocking { flags | libc::O_NONBLOCK } else { flags & !libc::O_NONBLOCK };
    if wanted != flags {
        // SAFETY: as above.
        syscall!(fcntl(fd, libc::F_SETFL, wanted))?;
    }
    Ok(())
}

/// Returns true if `fd` is an open descriptor of this process. It takes a
/// `RawFd` because it only asks about a number (the answer can be stale at
/// once if another thread opens or closes descriptors).
pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD on any integer is harmless; EBADF means "not open".
    fd >= 0 && syscall!(fcntl(fd, libc::F_GETFD)).is_ok()
}

/// Sets `FD_CLOEXEC` on a descriptor this module just created (the POSIX
/// path, where the creating call cannot set it atomically; a `fork` + `exec`
/// on another thread in between would leak it into the child).
#[cfg(not(muxloop_linux))]
pub(super) fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: F_GETFD/F_SETFD take and return plain integers; `fd` is borrowed, hence open.
    let flags = syscall!(fcntl(fd, libc::F_GETFD))?;
    // SAFETY: as above.
    syscall!(fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC))?;
    Ok(())
}

/// Makes a descriptor this module just created non-blocking and
/// close-on-exec with `fcntl` (the POSIX path; see [`set_cloexec`]).
#[cfg(not(muxloop_linux))]
pub(super) fn nonblocking_cloexec(fd: OwnedFd) -> io::Result<OwnedFd> {
    use std::os::fd::AsFd;
    set_nonblocking(fd.as_fd(), true)?;
    set_cloexec(fd.as_fd())?;
    Ok(fd)
}

/// A non-blocking, close-on-exec pipe: `(read end, write end)`.
/// `pipe2(2)` with `muxloop_linux`, else `pipe(2)` + `fcntl`. Under a
/// simulated kernel: a simulated stream pair (first end read, second written).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    simulated_new!(|k| k.socketpair());
    real_pipe()
}

/// A real pipe, whatever the thread (the simulated kernel's own placeholders).
pub(crate) fn real_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    #[cfg(muxloop_linux)]
    {
        // SAFETY: `fds` has room for the two descriptors the kernel writes.
        syscall!(pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC))?;
        Ok((owned(fds[0]), owned(fds[1])))
    }
    #[cfg(not(muxloop_linux))]
    {
        // SAFETY: `fds` has room for the two descriptors the kernel writes.
        syscall!(pipe(fds.as_mut_ptr()))?;
        let (read, write) = (owned(fds[0]), owned(fds[1]));
        Ok((nonblocking_cloexec(read)?, nonblocking_cloexec(write)?))
    }
}

/// A non-blocking, close-on-exec eventfd (the loop's waker on Linux).
#[cfg(muxloop_linux)]
pub fn eventfd() -> io::Result<OwnedFd> {
    simulated_new!(|k| k.counter());
    // SAFETY: plain integer arguments.
    let fd = syscall!(eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC))?;
    Ok(owned(fd))
}

/// Which of these pipe write ends have lost their reader (`poll` reports
/// `POLLERR` on a write end with no reader left), as indices; one call.
pub(crate) fn closed_readers(write_ends: &[BorrowedFd<'_>]) -> Vec<usize> {
    let mut pfds: Vec<libc::pollfd> =
        write_ends.iter().map(|fd| libc::pollfd { fd: fd.as_raw_fd(), events: 0, revents: 0 }).collect();
    // SAFETY: `pfds` is a valid array of `pfds.len()` pollfds; timeout 0: the call never blocks.
    if pfds.is_empty() || syscall!(poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 0)).is_err() {
        return Vec::new();
    }
    pfds.iter().enumerate().filter(|(_, p)| p.revents & libc::POLLERR != 0).map(|(i, _)| i).collect()
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
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    simulated!(fd, |k, id| k.read(id, &mut [IoSliceMut::new(buf)], true));
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let n = syscall!(read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()))?;
    Ok(n as usize)
}

/// `readv(2)`: one system call that fills several buffers in order.
pub fn readv(fd: BorrowedFd<'_>, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
    simulated!(fd, |k, id| k.read(id, bufs, true));
    let count = bufs.len().min(libc::c_int::MAX as usize) as libc::c_int;
    // SAFETY: `IoSliceMut` is ABI-compatible with `struct iovec` and each one
    // points to writable memory of its stated length.
    let n = syscall!(readv(fd.as_raw_fd(), bufs.as_mut_ptr().cast(), count))?;
    Ok(n as usize)
}

/// `write(2)` from `buf`.
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    simulated!(fd, |k, id| k.write(id, &[IoSlice::new(buf)], true));
    // SAFETY: the kernel reads at most `buf.len()` bytes from `buf`.
    let n = syscall!(write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()))?;
    Ok(n as usize)
}

/// `writev(2)`: one system call that writes several buffers in order.
pub fn writev(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    simulated!(fd, |k, id| k.write(id, bufs, true));
    let count = bufs.len().min(libc::c_int::MAX as usize) as libc::c_int;
    // SAFETY: `IoSlice` is ABI-compatible with `struct iovec`; the kernel only reads.
    let n = syscall!(writev(fd.as_raw_fd(), bufs.as_ptr().cast(), count))?;
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

/// Opens `/dev/null` read-only: the acceptor's spare fd for the EMFILE trick.
pub fn open_dev_null() -> io::Result<OwnedFd> {
    // SAFETY: the path is a NUL-terminated C string literal.
    let fd = syscall!(open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC))?;
    Ok(owned(fd))
}

/// How many fds this process has open: counts `/proc/self/fd` with
/// `muxloop_linux`, else asks `fcntl(F_GETFD)` about every number below the
/// soft `RLIMIT_NOFILE` (POSIX, slower).
// A test fixture, not API: public only for tests and examples.
#[doc(hidden)]
pub fn open_fd_count() -> io::Result<usize> {
    #[cfg(muxloop_linux)]
    {
        // One of the entries is the directory handle read_dir itself holds.
        Ok(std::fs::read_dir("/proc/self/fd")?.count().saturating_sub(1))
    }
    #[cfg(not(muxloop_linux))]
    {
        let (soft, _) = nofile_limit()?;
        let top = RawFd::try_from(soft).unwrap_or(RawFd::MAX);
        Ok((0..top).filter(|&fd| is_open(fd)).count())
    }
}

/// Whether `O_NONBLOCK` is set on `fd`.
pub fn is_nonblocking(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: F_GETFL takes and returns plain integers; `fd` is borrowed, hence open.
    Ok(syscall!(fcntl(fd.as_raw_fd(), libc::F_GETFL))? & libc::O_NONBLOCK != 0)
}

/// `dup2(2)` (close-on-exec off on the copy, as for stdin): makes `target`
/// refer to what `fd` refers to. Tests use it to put a pipe on stdin.
///
/// # Safety
///
/// `dup2` first closes whatever `target` refers to. The caller must own
/// `target` (or it must be closed): no `OwnedFd`, `File` or other owner
/// elsewhere in the program may hold that number, or that owner would then
/// read, write or close a file it never opened. Stdin (0) qualifies when
/// the program does not use it concurrently.
pub unsafe fn dup_onto(fd: BorrowedFd<'_>, target: RawFd) -> io::Result<()> {
    // SAFETY: plain integer arguments; `fd` is borrowed, hence open; the
    // caller guarantees nothing else owns `target`.
    syscall!(dup2(fd.as_raw_fd(), target))?;
    Ok(())
}

/// A duplicate of `fd` *without* close-on-exec, so a child started with
/// `std::process::Command` inherits it (the herd example's accept processes).
pub fn dup_inheritable(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD takes an integer; `fd` is borrowed, hence open.
    let new = syscall!(fcntl(fd.as_raw_fd(), libc::F_DUPFD, 3))?;
    Ok(owned(new))
}

/// Whether `fd` is a pipe or a FIFO (`fstat(2)`, `S_ISFIFO`): `splice(2)`
/// needs one on one side of every move, so a program checks its stdin
/// before choosing splice over read + write.
pub fn is_fifo(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut stat = mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `stat` is a writable `struct stat` the kernel fills on success.
    syscall!(fstat(fd.as_raw_fd(), stat.as_mut_ptr()))?;
    // SAFETY: fstat succeeded, so the kernel initialised `stat`.
    let mode = unsafe { stat.assume_init() }.st_mode;
    Ok(mode & libc::S_IFMT == libc::S_IFIFO)
}

/// A second close-on-exec descriptor for the file `fd` refers to
/// (`F_DUPFD_CLOEXEC`): a loop can then watch the same socket for another
/// interest than its owner's registration (the chat client waits on it for
/// room while splicing into it).
pub fn dup(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer; `fd` is borrowed, hence open.
    let new = syscall!(fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0))?;
    Ok(owned(new))
}
