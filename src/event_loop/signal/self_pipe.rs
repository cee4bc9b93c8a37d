//! The self-pipe mechanism (every Unix): a `sigaction` handler counts the
//! signal in a process-wide atomic and writes one byte to the watching
//! loop's pipe; the loop drains the pipe and reads the counts. A signal has
//! at most one self-pipe loop in a process.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering::SeqCst};

use log::warn;

use super::{Mechanism, SignalInfo};
use crate::sys;

// ---- the process-wide half: everything the handler touches ----

struct Slot {
    /// The write end of the pipe of the loop that owns this signal, or -1.
    fd: AtomicI32,
    /// Handler runs not yet reported to the loop.
    count: AtomicU64,
}

static SLOTS: [Slot; sys::MAX_SIGNAL as usize + 1] =
    [const { Slot { fd: AtomicI32::new(-1), count: AtomicU64::new(0) } }; sys::MAX_SIGNAL as usize + 1];

/// Handlers currently running, so a slot's fd is not closed under one.
static IN_HANDLER: AtomicUsize = AtomicUsize::new(0);

/// The `sigaction` handler: async-signal-safe (atomics and `write` only).
extern "C" fn self_pipe_handler(signal: libc::c_int) {
    let saved_errno = sys::errno();
    IN_HANDLER.fetch_add(1, SeqCst);
    if let Some(slot) = usize::try_from(signal).ok().and_then(|i| SLOTS.get(i)) {
        let fd = slot.fd.load(SeqCst);
        if fd >= 0 {
            // Count first: the loop drains the pipe before reading counts, so
            // every byte it drained has its count visible.
            slot.count.fetch_add(1, SeqCst);
            // EAGAIN (pipe full) is fine: the loop is already awake.
            let _ = sys::write(fd, &[signal as u8]);
        }
    }
    IN_HANDLER.fetch_sub(1, SeqCst);
    sys::set_errno(saved_errno);
}

/// A pipe and, per watched signal, the `sigaction` it replaced.
pub(super) struct SelfPipe {
    read: OwnedFd,
    write: OwnedFd,
    watched: Vec<(i32, sys::SignalAction)>,
}

impl SelfPipe {
    pub(super) fn new() -> io::Result<SelfPipe> {
        let (read, write) = sys::pipe()?;
        Ok(SelfPipe { read, write, watched: Vec::new() })
    }
}

impl Mechanism for SelfPipe {
    fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    fn watch(&mut self, signal: i32) -> io::Result<()> {
        let slot = &SLOTS[signal as usize];
        if slot.fd.compare_exchange(-1, self.write.as_raw_fd(), SeqCst, SeqCst).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("signal {signal} is already watched by another event loop's self-pipe"),
            ));
        }
        slot.count.store(0, SeqCst);
        match sys::set_signal_handler(signal, self_pipe_handler) {
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

    fn unwatch(&mut self, signal: i32) -> io::Result<()> {
        let Some(index) = self.watched.iter().position(|(s, _)| *s == signal) else { return Ok(()) };
        let (_, previous) = self.watched.remove(index);
        release_slot(signal, &previous)
    }

    fn watched(&self) -> Vec<i32> {
        self.watched.iter().map(|(s, _)| *s).collect()
    }

    fn collect(&mut self, arrived: &mut Vec<SignalInfo>) -> io::Result<()> {
        // Drain first, then read the counters (the handler counts first, then writes).
        let mut order = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            match sys::read(self.read.as_raw_fd(), &mut buf) {
                Ok(0) => break,
                Ok(n) => buf[..n].iter().for_each(|&b| {
                    if !order.contains(&b) {
                        order.push(b)
                    }
                }),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // Bytes give the order; every watched counter is checked (a byte may
        // have been drained by an earlier wake-up whose count we now see).
        let watched = self.watched();
        let mut signals: Vec<i32> = order.iter().map(|&b| b as i32).collect();
        signals.extend(watched.iter().copied().filter(|s| !order.contains(&(*s as u8))));
        for signal in signals {
            if !watched.contains(&signal) {
                continue;
            }
            let count = SLOTS[signal as usize].count.swap(0, SeqCst);
            if count > 0 {
                arrived.push(SignalInfo { signal, count, pid: None });
            }
        }
        Ok(())
    }
}

/// Restores the previous action, then frees the slot once no handler can still be using its fd.
fn release_slot(signal: i32, previous: &sys::SignalAction) -> io::Result<()> {
    let result = sys::restore_signal_action(signal, previous);
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

impl Drop for SelfPipe {
    /// The loop is going away: free the slots before the pipe's fd number
    /// can be reused, and put the previous actions back.
    fn drop(&mut self) {
        for (signal, previous) in self.watched.drain(..) {
            if let Err(e) = release_slot(signal, &previous) {
                warn!("restoring signal {signal} failed: {e}");
            }
        }
    }
}
