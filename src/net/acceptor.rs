//! The acceptor: a listening socket registered for reading, which accepts
//! every pending connection each time it is readable.
//!
//! What it teaches is the failure handling a real server needs:
//! `ECONNABORTED` (the client reset before we accepted) and `EINTR` are
//! skipped; at the fd limit (`EMFILE`/`ENFILE`) the listener stays readable,
//! so a naive loop spins at 100% CPU. We use libev's spare-fd trick: close a
//! reserved fd, accept, close the new connection at once (the client sees its
//! connection closed instead of hanging), reopen the reserve. If even that is
//! impossible, the listener is paused for a moment with a timer.

use crate::event_loop::clock;
use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use log::{debug, error, trace, warn};

use super::addr::StreamAddr;
use crate::dispatcher::{Dispatcher, Interest, Mode};
use crate::event_loop::EventLoop;
use crate::sys;

/// What to do with each accepted connection.
pub(crate) type AcceptFn<D> = Box<dyn FnMut(&mut EventLoop<D>, OwnedFd, StreamAddr)>;

/// How long the listener rests when it cannot accept at all.
const PAUSE: Duration = Duration::from_millis(100);

struct Acceptor<D: Dispatcher + 'static> {
    listener: OwnedFd,
    /// Reserved so that at the fd limit we can still accept-and-close.
    spare: RefCell<Option<OwnedFd>>,
    on_accept: RefCell<AcceptFn<D>>,
    /// Connections shed since the last warning, and when that was: at the
    /// fd limit, one line per interval with a count, not one per batch.
    shed_since_warning: Cell<usize>,
    last_warning: Cell<Option<Instant>>,
}

/// At most one shed warning per listener per this interval.
const WARNING_INTERVAL: Duration = Duration::from_secs(1);

/// Registers `listener` on `ev`; returns its fd (deregistering it stops the
/// acceptor and closes the listener).
pub(crate) fn listen<D: Dispatcher + 'static>(
    ev: &mut EventLoop<D>,
    listener: OwnedFd,
    on_accept: AcceptFn<D>,
) -> io::Result<RawFd> {
    let fd = listener.as_raw_fd();
    let local = StreamAddr::of_socket(listener.as_fd(), false)?;
    let acceptor = Rc::new(Acceptor {
        listener,
        spare: RefCell::new(sys::open_dev_null().ok()),
        on_accept: RefCell::new(on_accept),
        shed_since_warning: Cell::new(0),
        last_warning: Cell::new(None),
    });
    ev.register(fd, Interest::READABLE, Mode::Level, move |ev, _| acceptor.accept_pending(ev))?;
    debug!("listening on {local} (fd {fd}, {})", ev.dispatcher_name());
    Ok(fd)
}

fn is_transient(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ECONNABORTED | libc::EINTR | libc::EPROTO | libc::EPERM))
}

fn is_fd_limit(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

impl<D: Dispatcher + 'static> Acceptor<D> {
    fn fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }

    /// Accepts until the backlog is empty.
    fn accept_pending(self: &Rc<Self>, ev: &mut EventLoop<D>) {
        loop {
            match sys::accept(self.listener.as_fd()) {
                Ok((socket, peer)) => {
                    let peer = match StreamAddr::from_raw_addr(&peer) {
                        Ok(peer) => peer,
                        Err(e) => {
                            debug!("accept: peer address: {e} (connection dropped)");
                            continue;
                        }
                    };
                    trace!("[{}] accepted {peer} as fd {}", ev.name(), socket.as_raw_fd());
                    (self.on_accept.borrow_mut())(ev, socket, peer);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if is_transient(&e) => debug!("accept: {e} (skipped)"),
                Err(e) if is_fd_limit(&e) => return self.shed(ev, &e),
                Err(e) => {
                    error!("accept on fd {} failed: {e}; pausing the listener", self.fd());
                    return self.pause(ev);
                }
            }
        }
    }

    /// At the fd limit: accept and close what is pending, using the spare fd.
    fn shed(self: &Rc<Self>, ev: &mut EventLoop<D>, cause: &io::Error) {
        let Some(spare) = self.spare.borrow_mut().take() else {
            warn!("accept: {cause}; no spare fd, pausing the listener");
            return self.pause(ev);
        };
        drop(spare);
        let mut shed = 0;
        loop {
            match sys::accept(self.listener.as_fd()) {
                Ok((socket, _)) => {
                    drop(socket);
                    shed += 1;
                }
                Err(e) if is_transient(&e) => {}
                Err(_) => break,
            }
        }
        self.warn_shed(cause, shed);
        let reopened = sys::open_dev_null().ok();
        let have_spare = reopened.is_some();
        *self.spare.borrow_mut() = reopened;
        if !have_spare {
            self.pause(ev);
        }
    }

    /// Logs shed connections at most once per [`WARNING_INTERVAL`], with the
    /// count since the last line (a flood at the fd limit must not become a
    /// flood of log lines).
    fn warn_shed(&self, cause: &io::Error, shed: usize) {
        let total = self.shed_since_warning.get() + shed;
        let now = clock::now();
        if self.last_warning.get().is_some_and(|last| now - last < WARNING_INTERVAL) {
            self.shed_since_warning.set(total);
            debug!("accept: {cause}; closed {shed} new connection(s) at once");
            return;
        }
        self.last_warning.set(Some(now));
        self.shed_since_warning.set(0);
        warn!(
            "accept: {cause}; closed {total} new connection(s) at once to stay responsive \
             (at most one such line per {WARNING_INTERVAL:?})"
        );
    }

    /// Stops watching the listener for a moment (no busy loop while nothing
    /// can be accepted); a timer resumes it if the acceptor still exists.
    fn pause(self: &Rc<Self>, ev: &mut EventLoop<D>) {
        let fd = self.fd();
        if ev.set_interest(fd, Interest::NONE).is_err() {
            return;
        }
        let acceptor: Weak<Self> = Rc::downgrade(self);
        ev.run_after(PAUSE, move |ev| {
            if acceptor.upgrade().is_some()
                && let Err(e) = ev.set_interest(fd, Interest::READABLE)
            {
                error!("cannot resume listener fd {fd}: {e}");
            }
        });
    }
}
