//! The signalfd mechanism (Linux): the watched signals are blocked in the
//! loop's thread and read from a `signalfd(2)`, one record per delivery,
//! with the sender's pid. Unwatching puts the thread's mask back as it was.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use log::{debug, warn};

use super::{Mechanism, SignalInfo};
use crate::sys;

/// A signalfd and, per watched signal, whether the thread blocked it before.
pub(super) struct Signalfd {
    fd: OwnedFd,
    watched: Vec<(i32, bool)>,
}

impl Signalfd {
    pub(super) fn new() -> io::Result<Signalfd> {
        let fd = sys::signalfd(None, &[])?.ok_or_else(|| io::Error::other("signalfd returned no fd"))?;
        Ok(Signalfd { fd, watched: Vec::new() })
    }

    fn set(&self) -> Vec<i32> {
        self.watched.iter().map(|(s, _)| *s).collect()
    }
}

impl Mechanism for Signalfd {
    fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn watch(&mut self, signal: i32) -> io::Result<()> {
        let was_blocked = sys::is_signal_blocked(signal)?;
        sys::block_signals(&[signal])?;
        let mut set = self.set();
        set.push(signal);
        if let Err(e) = sys::signalfd(Some(self.fd.as_fd()), &set) {
            if !was_blocked {
                let _ = sys::unblock_signals(&[signal]);
            }
            return Err(e);
        }
        self.watched.push((signal, was_blocked));
        Ok(())
    }

    fn unwatch(&mut self, signal: i32) -> io::Result<()> {
        let Some(index) = self.watched.iter().position(|(s, _)| *s == signal) else { return Ok(()) };
        let (_, was_blocked) = self.watched.remove(index);
        sys::signalfd(Some(self.fd.as_fd()), &self.set())
            .map(drop)
            .and_then(|()| restore_mask(signal, was_blocked))
    }

    fn watched(&self) -> Vec<i32> {
        self.set()
    }

    fn collect(&mut self, arrived: &mut Vec<SignalInfo>) -> io::Result<()> {
        let mut records = Vec::new();
        sys::read_signalfd(self.fd.as_fd(), &mut records)?;
        for r in records {
            match arrived.iter_mut().find(|i| i.signal == r.signal) {
                Some(info) => {
                    info.count += 1;
                    info.pid = Some(r.pid);
                }
                None => arrived.push(SignalInfo { signal: r.signal, count: 1, pid: Some(r.pid) }),
            }
        }
        Ok(())
    }
}

/// Unblocks `signal` unless the thread had blocked it before we did.
fn restore_mask(signal: i32, was_blocked: bool) -> io::Result<()> {
    if was_blocked {
        return Ok(());
    }
    // A pending instance would take the default action the moment it is unblocked.
    let dropped = sys::discard_pending_signal(signal)?;
    if dropped > 0 {
        debug!("signal {signal}: {dropped} pending instance(s) discarded with its last handler");
    }
    sys::unblock_signals(&[signal])
}

impl Drop for Signalfd {
    /// The loop is going away (on its own thread): put the mask back.
    fn drop(&mut self) {
        for (signal, was_blocked) in self.watched.drain(..) {
            if let Err(e) = restore_mask(signal, was_blocked) {
                warn!("restoring signal {signal} failed: {e}");
            }
        }
    }
}
