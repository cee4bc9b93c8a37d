//! The signalfd mechanism (Linux): the watched signals are blocked in the
//! loop's thread and read from a `signalfd(2)`, one record per delivery,
//! with the sender's pid. A handler forwards a signal that lands on another
//! thread to this one (see `sys/signal_forward.rs`), so threads started
//! before the loop need not block it. Unwatching puts the thread's mask and
//! the signal's action back as they were.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use log::{debug, warn};

use super::{Mechanism, SignalInfo};
use crate::sys;

/// What watching one signal changed, to undo when it is unwatched.
struct Watched {
    signal: i32,
    /// Whether the thread had blocked it before.
    was_blocked: bool,
    /// The action the forwarding handler replaced (`None`: another loop forwards it).
    replaced: Option<sys::SignalAction>,
}

/// A signalfd and what watching each of its signals changed.
pub(super) struct Signalfd {
    fd: OwnedFd,
    watched: Vec<Watched>,
}

impl Signalfd {
    pub(super) fn new() -> io::Result<Signalfd> {
        let fd = sys::signalfd(None, &[])?.ok_or_else(|| io::Error::other("signalfd returned no fd"))?;
        Ok(Signalfd { fd, watched: Vec::new() })
    }

    fn set(&self) -> Vec<i32> {
        self.watched.iter().map(|w| w.signal).collect()
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
        let replaced =
            sys::signalfd(Some(self.fd.as_fd()), &set).and_then(|_| sys::forward_signal_here(signal));
        match replaced {
            Ok(replaced) => {
                self.watched.push(Watched { signal, was_blocked, replaced });
                Ok(())
            }
            Err(e) => {
                let _ = sys::signalfd(Some(self.fd.as_fd()), &self.set());
                if !was_blocked {
                    let _ = sys::unblock_signals(&[signal]);
                }
                Err(e)
            }
        }
    }

    fn unwatch(&mut self, signal: i32) -> io::Result<()> {
        let Some(index) = self.watched.iter().position(|w| w.signal == signal) else { return Ok(()) };
        let watched = self.watched.remove(index);
        sys::signalfd(Some(self.fd.as_fd()), &self.set()).map(drop).and_then(|()| undo(&watched))
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

/// Puts back the signal's action, then unblocks it unless the thread had
/// blocked it before we did.
fn undo(watched: &Watched) -> io::Result<()> {
    let signal = watched.signal;
    if let Some(replaced) = &watched.replaced {
        sys::stop_forwarding_signal(signal, replaced)?;
    }
    if watched.was_blocked {
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
        for watched in self.watched.drain(..) {
            if let Err(e) = undo(&watched) {
                warn!("restoring signal {} failed: {e}", watched.signal);
            }
        }
    }
}
