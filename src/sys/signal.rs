//! Signals: masks (`pthread_sigmask`), dispositions (`sigaction`),
//! `signalfd` on Linux, thread-directed signals, `errno` around a handler,
//! and the self-pipe's handler (what may run inside a signal handler, and
//! why installing one is `unsafe`).

use std::io;
use std::mem;
#[cfg(muxloop_linux)]
use std::os::fd::BorrowedFd;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering::SeqCst};

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
/// pending for that thread only.
///
/// # Safety
///
/// The thread `thread` names must not have finished: a `pthread_t` of a
/// thread that exited (and was joined or detached) may be freed or reused,
/// and `pthread_kill` on it is undefined behaviour. The caller keeps it
/// running, e.g. the thread waits for the signal, or it is joined only
/// after this call. For the calling thread use [`signal_current_thread`].
pub unsafe fn signal_thread(thread: ThreadTarget, signal: i32) -> io::Result<()> {
    // SAFETY: the caller guarantees that the thread `thread.0` names is still running.
    pthread_call!(pthread_kill(thread.0, signal))
}

/// Sends `signal` to the calling thread (`pthread_kill(pthread_self())`):
/// it stays pending for this thread only.
pub fn signal_current_thread(signal: i32) -> io::Result<()> {
    // SAFETY: the calling thread is running.
    unsafe { signal_thread(current_thread(), signal) }
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
/// `Disposition::Handler` is `InvalidInput` (use [`set_signal_handler`]),
/// and so is ignoring a fault signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL): after
/// a real fault, POSIX leaves what happens next undefined.
pub fn set_signal_disposition(signal: i32, disposition: Disposition) -> io::Result<SignalAction> {
    let handler = match disposition {
        Disposition::Default => libc::SIG_DFL,
        Disposition::Ignore
            if [libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL].contains(&signal) =>
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("ignoring fault signal {signal} is undefined behaviour after a real fault"),
            ));
        }
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
/// action.
///
/// # Safety
///
/// `handler` must be async-signal-safe (see `signal-safety(7)`): it runs on
/// any thread, between any two instructions, maybe while that thread holds
/// the allocator's lock. It may only use atomics and async-signal-safe
/// calls (`write`, `kill`, ...): no allocation, locking, logging or
/// formatting, and it must save and restore `errno` ([`errno`],
/// [`set_errno`]) if it makes a call that can change it.
pub unsafe fn set_signal_handler(
    signal: i32,
    handler: extern "C" fn(libc::c_int),
) -> io::Result<SignalAction> {
    // SAFETY: all-zero bytes are a valid sigaction (empty mask, no flags).
    let mut action: libc::sigaction = unsafe { mem::zeroed() };
    action.sa_sigaction = handler as usize;
    action.sa_flags = libc::SA_RESTART;
    Ok(SignalAction(sigaction_swap(signal, Some(&action))?))
}

/// Installs `action` for `signal`; returns the previous one.
#[cfg(muxloop_linux)]
pub(super) fn swap_action(signal: i32, action: &libc::sigaction) -> io::Result<SignalAction> {
    Ok(SignalAction(sigaction_swap(signal, Some(action))?))
}

/// Puts back an action saved by [`set_signal_handler`] or [`set_signal_disposition`].
pub fn restore_signal_action(signal: i32, saved: &SignalAction) -> io::Result<()> {
    sigaction_swap(signal, Some(&saved.0)).map(drop)
}

/// One record read from a signalfd.
#[cfg(muxloop_linux)]
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
#[cfg(muxloop_linux)]
pub fn signalfd(existing: Option<BorrowedFd<'_>>, signals: &[i32]) -> io::Result<Option<OwnedFd>> {
    let set = sigset(signals)?;
    let flags = libc::SFD_NONBLOCK | libc::SFD_CLOEXEC;
    let existing_fd = existing.map_or(-1, |fd| fd.as_raw_fd());
    // SAFETY: `set` is initialised; -1 asks for a new fd, else `existing` is
    // borrowed, hence open.
    let fd = syscall!(signalfd(existing_fd, &set, flags))?;
    Ok(existing.is_none().then(|| owned(fd)))
}

/// Reads every pending record from a non-blocking signalfd into `out`.
/// Returns how many were read (0 if none was pending).
#[cfg(muxloop_linux)]
pub fn read_signalfd(fd: BorrowedFd<'_>, out: &mut Vec<SignalRecord>) -> io::Result<usize> {
    const SIZE: usize = mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: all-zero bytes are a valid signalfd_siginfo.
    let mut records: [libc::signalfd_siginfo; 16] = unsafe { mem::zeroed() };
    let mut total = 0;
    loop {
        let bytes = SIZE * records.len();
        // SAFETY: the kernel writes at most `bytes` bytes, the size of `records`.
        let n = match syscall!(read(fd.as_raw_fd(), records.as_mut_ptr().cast(), bytes)) {
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
#[cfg(muxloop_linux)]
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

// ---- the self-pipe's process-wide half: everything its handler touches ----

/// One signal's slot: the write end of the pipe of the [`SelfPipeWriter`]
/// that watches it (or -1), and the handler runs not yet reported.
struct Slot {
    fd: AtomicI32,
    count: AtomicU64,
}

static SLOTS: [Slot; MAX_SIGNAL as usize + 1] =
    [const { Slot { fd: AtomicI32::new(-1), count: AtomicU64::new(0) } }; MAX_SIGNAL as usize + 1];

/// Handlers currently running, so a slot's fd is not closed under one.
static IN_HANDLER: AtomicUsize = AtomicUsize::new(0);

/// The self-pipe's `sigaction` handler: async-signal-safe (atomics and
/// `write` only, `errno` saved and restored).
extern "C" fn self_pipe_handler(signal: libc::c_int) {
    let saved_errno = errno();
    IN_HANDLER.fetch_add(1, SeqCst);
    if let Some(slot) = usize::try_from(signal).ok().and_then(|i| SLOTS.get(i)) {
        let fd = slot.fd.load(SeqCst);
        if fd >= 0 {
            // Count first: the loop drains the pipe before reading counts, so
            // every byte it drained has its count visible.
            slot.count.fetch_add(1, SeqCst);
            let byte = signal as u8;
            // SAFETY: `fd` is the write end a live `SelfPipeWriter` owns: it
            // resets the slot and waits for `IN_HANDLER` to drop to zero
            // before its pipe closes. EAGAIN (pipe full) is fine: the loop is
            // already awake.
            let _ = syscall!(write(fd, (&byte as *const u8).cast(), 1));
        }
    }
    IN_HANDLER.fetch_sub(1, SeqCst);
    set_errno(saved_errno);
}

/// The write end of a self-pipe and the signals it watches: while a signal
/// is watched, a process-wide handler counts each delivery and writes the
/// signal number as one byte to this pipe (see `event_loop::signal`). A
/// signal has at most one watcher in a process. Dropping it restores the
/// previous actions and frees the slots before the pipe is closed, so the
/// handler never writes to a closed (or reused) fd number.
pub(crate) struct SelfPipeWriter {
    write: OwnedFd,
    watched: Vec<(i32, SignalAction)>,
}

impl SelfPipeWriter {
    /// Takes over the write end of a non-blocking pipe.
    pub(crate) fn new(write: OwnedFd) -> SelfPipeWriter {
        SelfPipeWriter { write, watched: Vec::new() }
    }

    /// Points `signal`'s slot at this pipe and installs the handler.
    /// `AlreadyExists` if another writer watches it.
    pub(crate) fn watch(&mut self, signal: i32) -> io::Result<()> {
        check_signal(signal)?;
        let slot = &SLOTS[signal as usize];
        if slot.fd.compare_exchange(-1, self.write.as_raw_fd(), SeqCst, SeqCst).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("signal {signal} is already watched by another event loop's self-pipe"),
            ));
        }
        slot.count.store(0, SeqCst);
        // SAFETY: `self_pipe_handler` is async-signal-safe (atomics and `write`).
        match unsafe { set_signal_handler(signal, self_pipe_handler) } {
            Ok(previous) => {
                self.watched.push((signal, previous));
                Ok(())
            }
            Err(e) => {
                slot.fd.store(-1, SeqCst);
                Err(e)
            }
        }
    }

    /// Stops watching `signal`: puts back the action it replaced.
    pub(crate) fn unwatch(&mut self, signal: i32) -> io::Result<()> {
        let Some(index) = self.watched.iter().position(|(s, _)| *s == signal) else { return Ok(()) };
        let (_, previous) = self.watched.remove(index);
        release_slot(signal, &previous)
    }

    /// The signals watched, in the order they were added.
    pub(crate) fn watched(&self) -> Vec<i32> {
        self.watched.iter().map(|(s, _)| *s).collect()
    }

    /// Handler runs for `signal` since the last call (0 if not watched here).
    pub(crate) fn take_count(&self, signal: i32) -> u64 {
        if self.watched.iter().any(|(s, _)| *s == signal) {
            SLOTS[signal as usize].count.swap(0, SeqCst)
        } else {
            0
        }
    }
}

/// Restores the previous action, then frees the slot once no handler can still be using its fd.
fn release_slot(signal: i32, previous: &SignalAction) -> io::Result<()> {
    let result = restore_signal_action(signal, previous);
    SLOTS[signal as usize].fd.store(-1, SeqCst);
    // A handler on another thread may have loaded the old fd just before; it
    // finishes in microseconds. (One on this thread cannot be mid-way: it
    // would have run to completion before we resumed.)
    while IN_HANDLER.load(SeqCst) != 0 {
        std::thread::yield_now();
    }
    SLOTS[signal as usize].count.store(0, SeqCst);
    result
}

impl Drop for SelfPipeWriter {
    /// Frees the slots before the pipe's fd number can be reused (the field
    /// `write` is closed after this body), and puts the previous actions back.
    fn drop(&mut self) {
        for (signal, previous) in self.watched.drain(..) {
            if let Err(e) = release_slot(signal, &previous) {
                log::warn!("restoring signal {signal} failed: {e}");
            }
        }
    }
}
