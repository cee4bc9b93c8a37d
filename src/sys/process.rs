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
