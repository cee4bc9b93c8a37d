//! Processes: `fork` (refused in a threaded process), reaping one child
//! without blocking, and the parent-death signal of a worker.

use std::io;

use super::*;

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
///
/// Counting threads needs `/proc/self/status` (`muxloop_linux`); without it
/// `fork` always refuses: POSIX has no call that counts a process's threads.
pub fn fork() -> io::Result<Forked> {
    check_single_threaded()?;
    // SAFETY: the process is single-threaded (checked above; only this thread
    // could start another), so the child's copy of every lock is consistent.
    let pid = syscall!(fork())?;
    Ok(if pid == 0 { Forked::Child } else { Forked::Parent(pid) })
}

/// `Unsupported` unless the process has exactly one thread (counted in
/// `/proc/self/status`, so always `Unsupported` without `muxloop_linux`).
pub(crate) fn check_single_threaded() -> io::Result<()> {
    #[cfg(muxloop_linux)]
    let threads = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|n| n.trim().parse::<usize>().ok())
    });
    #[cfg(not(muxloop_linux))]
    let threads: Option<usize> = None;
    match threads {
        Some(1) => Ok(()),
        Some(n) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "fork refused: a process must fork before any thread exists, but this one has {n} threads \
                 (a forked child would inherit locks held by threads it does not have)"
            ),
        )),
        None => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "fork refused: cannot count this process's threads (no /proc/self/status), so forking is not \
             known to be safe",
        )),
    }
}

/// The process id (`getpid`).
pub fn getpid() -> i32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

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
/// (`prctl(PR_SET_PDEATHSIG)`, `muxloop_linux`): a worker then cannot
/// outlive a master killed with SIGKILL. Elsewhere `Unsupported`.
pub fn set_parent_death_signal(signal: i32) -> io::Result<()> {
    check_signal(signal)?;
    #[cfg(muxloop_linux)]
    {
        // SAFETY: PR_SET_PDEATHSIG takes the signal number as an integer.
        syscall!(prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0))?;
        Ok(())
    }
    #[cfg(not(muxloop_linux))]
    Err(io::Error::new(io::ErrorKind::Unsupported, "no parent-death signal on this system"))
}

/// The parent's pid (`getppid`).
pub fn getppid() -> i32 {
    // SAFETY: getppid cannot fail.
    unsafe { libc::getppid() }
}
