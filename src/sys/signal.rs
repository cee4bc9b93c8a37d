//! Signals: masks (`pthread_sigmask`), dispositions (`sigaction`),
//! `signalfd` on Linux, thread-directed signals and `errno` around a handler.

use std::io;
use std::mem;
use std::os::fd::{OwnedFd, RawFd};

use super::*;

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

/// Installs `action` for `signal`; returns the previous one.
pub(super) fn swap_action(signal: i32, action: &libc::sigaction) -> io::Result<SignalAction> {
    Ok(SignalAction(sigaction_swap(signal, Some(action))?))
}

/// Puts back an action saved by [`set_signal_handler`] or [`set_signal_disposition`].
pub fn restore_signal_action(signal: i32, saved: &SignalAction) -> io::Result<()> {
    sigaction_swap(signal, Some(&saved.0)).map(drop)
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
