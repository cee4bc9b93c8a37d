//! Forwarding a stray signal to the thread that reads it from a signalfd.
//!
//! A signalfd only sees a signal that stays pending, and a process-directed
//! signal (`kill`) stays pending only if *every* thread blocks it: the kernel
//! hands it to any thread that does not, where it takes its disposition (for
//! SIGTERM: the process dies). A thread the program started before the loop
//! blocked the signal (a logger, a worker pool, the test harness) is such a
//! thread. So, beside blocking the signal in its own thread, the signalfd
//! mechanism installs this handler: if the signal lands on another thread,
//! the handler sends it on to the loop's thread, where it is blocked, stays
//! pending and is read from the signalfd like any other.
//!
//! The handler re-queues the original `siginfo` with `rt_tgsigqueueinfo(2)`,
//! so the record the loop reads keeps the sender's pid and uid. The kernel
//! lets a thread queue a signal to another thread only with a negative
//! `si_code` (no thread may pretend to be `kill` or the kernel), so the
//! forwarded record says `SI_QUEUE`. If that call fails (a full real-time
//! queue), `tgkill(2)` sends the bare signal, and the record names this
//! process as the sender.

use std::io;
use std::sync::atomic::{AtomicI32, Ordering::SeqCst};

use super::{MAX_SIGNAL, SignalAction, check_signal, errno, set_errno};

/// Per signal, the kernel thread id (`gettid`) of the thread it is forwarded
/// to, or 0.
static FORWARD_TO: [AtomicI32; MAX_SIGNAL as usize + 1] =
    [const { AtomicI32::new(0) }; MAX_SIGNAL as usize + 1];

fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// The `sigaction` handler: async-signal-safe (an atomic load and raw
/// system calls only), and `errno` is put back before it returns.
extern "C" fn forward_handler(signal: libc::c_int, info: *mut libc::siginfo_t, _context: *mut libc::c_void) {
    let Some(target) = usize::try_from(signal).ok().and_then(|i| FORWARD_TO.get(i)) else { return };
    let target = target.load(SeqCst);
    let here = gettid();
    // Landing on the target itself (its mask changed, or the forwarding
    // thread is gone and its id was reused) would forward forever: drop it.
    if target <= 0 || target == here {
        return;
    }
    let saved_errno = errno();
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() };
    let queued = !info.is_null() && {
        // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler,
        // ours to modify for the duration of the call.
        unsafe { (*info).si_code = libc::SI_QUEUE };
        // SAFETY: `info` is a valid siginfo; pid, tid and signal are plain integers.
        unsafe { libc::syscall(libc::SYS_rt_tgsigqueueinfo, pid, target, signal, info) == 0 }
    };
    if !queued {
        // SAFETY: plain integer arguments; a tid that has gone fails with ESRCH.
        unsafe { libc::syscall(libc::SYS_tgkill, pid, target, signal) };
    }
    set_errno(saved_errno);
}

/// Forwards `signal` to the calling thread from whatever thread it is
/// delivered to, by installing a handler for it. Returns the action it
/// replaced, to give back to [`stop_forwarding_signal`], or `None` if the
/// signal is already forwarded (to this thread or another: the first thread
/// that asked keeps it).
///
/// The calling thread must keep `signal` blocked while it is forwarded,
/// else the handler runs there and drops the signal.
pub(crate) fn forward_signal_here(signal: i32) -> io::Result<Option<SignalAction>> {
    check_signal(signal)?;
    if FORWARD_TO[signal as usize].compare_exchange(0, gettid(), SeqCst, SeqCst).is_err() {
        return Ok(None);
    }
    // SAFETY: all-zero bytes are a valid sigaction (empty mask, no flags).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = forward_handler as *const () as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
    match super::signal::swap_action(signal, &action) {
        Ok(previous) => Ok(Some(previous)),
        Err(e) => {
            FORWARD_TO[signal as usize].store(0, SeqCst);
            Err(e)
        }
    }
}

/// Stops forwarding `signal` to the calling thread and puts back `previous`
/// (what [`forward_signal_here`] returned) unless another handler has been
/// installed over ours. Does nothing if the signal is forwarded to another
/// thread.
pub(crate) fn stop_forwarding_signal(signal: i32, previous: &SignalAction) -> io::Result<()> {
    check_signal(signal)?;
    if FORWARD_TO[signal as usize].load(SeqCst) != gettid() {
        return Ok(());
    }
    // A handler installed over ours since (a self-pipe loop) stays.
    let ours = super::Disposition::Handler(forward_handler as *const () as usize);
    if super::signal_disposition(signal)? == ours {
        super::restore_signal_action(signal, previous)?;
    }
    FORWARD_TO[signal as usize].store(0, SeqCst);
    Ok(())
}
