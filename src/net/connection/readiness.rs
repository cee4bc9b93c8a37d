//! What a [`Connection`] does with its readiness events: reading (once per
//! report level-triggered, draining edge-triggered, within the pass
//! budget), writing queued output, the interest it asks the backend for,
//! and the continuation tasks that keep an edge-triggered connection fair.

use std::io;
use std::net::Shutdown;

use log::{debug, trace, warn};

use super::*;
use crate::buffer::SPILL_SIZE;
use crate::dispatcher::{Dispatcher, Event, Interest};
use crate::event_loop::EventLoop;
use crate::sys;

impl<D: Dispatcher + 'static> Connection<D> {
    pub(super) fn reads_wanted(&self) -> bool {
        matches!(self.inner.life.get(), Life::Open | Life::HalfClosing { .. })
            && self.inner.stops.get() == ReadStops::default()
    }

    /// Puts the interest the state calls for into the loop, if it changed.
    /// Edge-triggered, the interest stays readable + writable: "writable"
    /// is then reported once per change, not forever, and a paused
    /// connection just ignores reports (resuming schedules a read), so no
    /// pause, resume or write burst costs an `epoll_ctl`.
    pub(super) fn update_interest(&self, ev: &mut EventLoop<D>) {
        if self.inner.life.get() == Life::Closed || self.inner.edge {
            return;
        }
        let mut interest = Interest::NONE;
        if self.reads_wanted() {
            interest = interest | Interest::READABLE;
        }
        let queued = self.queued_output();
        if queued > 0 {
            interest = interest | Interest::WRITABLE;
        }
        let Some(current) = ev.interest(self.inner.fd) else { return };
        if current == interest {
            return;
        }
        let why = if queued > 0 { format!("{queued} bytes queued") } else { "drained".to_owned() };
        trace!(
            "[{}] connection {}: fd {} {current:?} -> {interest:?} ({why})",
            ev.name(),
            self.id(),
            self.inner.fd
        );
        if let Err(e) = ev.set_interest(self.inner.fd, interest) {
            warn!("connection {}: cannot change interest to {interest:?}: {e}", self.id());
            self.close(ev, "interest change failed");
        }
    }

    pub(super) fn handle_event(&self, ev: &mut EventLoop<D>, event: Event) {
        // A queued continuation (edge) will read or write anyway: doing it
        // here as well would give this connection two budgets in one pass.
        if event.is_readable() && self.reads_wanted() && !self.inner.queued.get().read {
            // Edge: a short read proves the socket drained only if no
            // end-of-file, hang-up or error was pending when the event was
            // taken (those raise no further edge once read past), and only
            // on TCP: a Unix socket's read also stops short where passed fds
            // begin, with more data queued behind them.
            let clean = !(event.is_read_closed()
                || event.is_hangup()
                || event.is_error()
                || event.is_invalid()
                || self.inner.peer.is_unix());
            self.handle_read(ev, clean);
        }
        if event.is_writable()
            && self.queued_output() > 0
            && self.inner.life.get() != Life::Closed
            && !self.inner.queued.get().write
        {
            self.handle_write(ev);
        }
    }

    /// One read of at most `max` bytes into the input buffer; on a Unix
    /// socket, fds passed with the data go to the handler's `on_fds` at once.
    pub(super) fn read_once(&self, ev: &mut EventLoop<D>, max: usize) -> io::Result<usize> {
        if !self.inner.peer.is_unix() {
            return self.with_fd(|fd| self.inner.input.borrow_mut().recv_fd_max(fd, max));
        }
        let mut fds = Vec::new();
        let result = self.with_fd(|fd| self.inner.input.borrow_mut().recv_fd_with_fds(fd, max, &mut fds));
        if !fds.is_empty() {
            trace!("[{}] connection {}: received {} fd(s)", ev.name(), self.id(), fds.len());
            self.with_handler(|h| h.on_fds(ev, self, fds));
        }
        result
    }

    /// Reads what arrived and hands it to the handler after each read.
    /// Level: one read of at most the pass budget (the backend reports again
    /// while data is left). Edge: reads until `WouldBlock`, EOF or a pause
    /// (reading paused, output over the limit, closing: whatever resumes
    /// reading schedules a read), or until the pass budget is spent, when
    /// the rest waits for a continuation after the current batch.
    ///
    /// `short_read_drains` (edge, from a clean event): a read that returned
    /// less than the space offered found the receive queue empty, and any
    /// byte queued after that raises a new edge, so it ends the drain
    /// without the extra read that would say `WouldBlock` (one system call
    /// per request saved). Not when end of file may be pending: the FIN
    /// raised its edge already, and reading up to it leaves nothing to say
    /// so; nor for continuations, which have no event to go by.
    pub(super) fn handle_read(&self, ev: &mut EventLoop<D>, short_read_drains: bool) {
        let budget = self.inner.options.pass_budget.max(1);
        let mut taken = 0;
        loop {
            // At least this much space is offered (a spill block, or the rest
            // of the budget): fewer bytes back means a short read.
            let surely_offered = (budget - taken).min(SPILL_SIZE);
            let result = self.read_once(ev, budget - taken);
            match result {
                Ok(0) if self.inner.queued.get().offer && !self.inner.input.borrow().is_empty() => {
                    // The handler stopped at a budget and asked for the input
                    // it left (`offer_input`): that input comes before the
                    // end of file, which stays. Level-triggered it is
                    // reported again; edge-triggered a read goes behind the offer.
                    trace!(
                        "[{}] connection {}: end of file waits for the input offered",
                        ev.name(),
                        self.id()
                    );
                    self.schedule_read(ev);
                    return;
                }
                Ok(0) => return self.handle_peer_eof(ev),
                Ok(n) => {
                    taken += n;
                    trace!("[{}] connection {}: read {n} bytes", ev.name(), self.id());
                    self.touch(ev);
                    self.deliver_input(ev);
                    if !self.inner.edge || !self.reads_wanted() {
                        return;
                    }
                    if taken >= budget {
                        trace!(
                            "[{}] connection {}: read budget spent, continuing later",
                            ev.name(),
                            self.id()
                        );
                        self.schedule_read(ev);
                        return;
                    }
                    if short_read_drains && n < surely_offered {
                        return;
                    }
                }
                // Edge: an interrupted read proves nothing, try again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted && self.inner.edge => {}
                Err(e) if interrupted_or_would_block(&e) => return,
                Err(e) => {
                    debug!("connection {}: read failed: {e}", self.id());
                    self.close(ev, "read failed");
                    return;
                }
            }
        }
    }

    /// Edge: data already waiting raises no new edge, so a read that stopped
    /// at the budget, or reading that resumes after a pause, goes on in a
    /// task after the current batch (once, however often it is asked).
    pub(super) fn schedule_read(&self, ev: &mut EventLoop<D>) {
        if !self.inner.edge || swap_flag(&self.inner.queued, |q| &mut q.read, true) {
            return;
        }
        let conn = self.clone();
        ev.defer(move |ev| {
            swap_flag(&conn.inner.queued, |q| &mut q.read, false);
            if conn.reads_wanted() {
                conn.handle_read(ev, false);
            }
        });
    }

    /// Edge: the write side of [`schedule_read`](Self::schedule_read), for a
    /// write that stopped at the budget with room still in the socket.
    pub(super) fn schedule_write(&self, ev: &mut EventLoop<D>) {
        if swap_flag(&self.inner.queued, |q| &mut q.write, true) {
            return;
        }
        let conn = self.clone();
        ev.defer(move |ev| {
            swap_flag(&conn.inner.queued, |q| &mut q.write, false);
            if conn.queued_output() > 0 && conn.inner.life.get() != Life::Closed {
                conn.handle_write(ev);
            }
        });
    }

    /// Hands the input buffer to the handler.
    pub(super) fn deliver_input(&self, ev: &mut EventLoop<D>) {
        // Take the buffer out so the handler can do anything with the
        // connection (even close it) without a RefCell conflict.
        let mut input = self.inner.input.take();
        self.with_handler(|h| h.on_message(ev, self, &mut input));
        if self.inner.life.get() == Life::Draining {
            input.consume_all(); // nothing more will be delivered
        }
        if self.inner.life.get() != Life::Closed {
            input.settle(); // a partial message should not pin a large block
            *self.inner.input.borrow_mut() = input;
        }
    }

    /// The peer sent FIN: stop reading, and let the handler decide when to
    /// close (by default once our queued output is out).
    pub(super) fn handle_peer_eof(&self, ev: &mut EventLoop<D>) {
        debug!(
            "connection {}: peer closed its side ({} bytes still queued)",
            self.id(),
            self.queued_output()
        );
        swap_flag(&self.inner.stops, |s| &mut s.peer_eof, true);
        let mut asked = false;
        self.with_handler(|h| {
            asked = true;
            h.on_peer_closed(ev, self);
        });
        if !asked {
            self.close_after_flush(ev);
        }
        self.update_interest(ev);
    }

    /// One write of at most `max` bytes from the output queue (the kernel
    /// may take less; a file region at least [`FILE_PASS_MIN`]), uncorking
    /// the socket once the last queued file is out.
    pub(super) fn send_queued(&self, max: usize) -> io::Result<usize> {
        let mut output = self.inner.output.borrow_mut();
        let had_files = output.files() > 0;
        let n = self.with_fd(|fd| output.write_to(&mut SocketSink(fd), max, FILE_PASS_MIN))?;
        let uncork = had_files && output.files() == 0;
        drop(output);
        if uncork {
            self.cork(false);
        }
        Ok(n)
    }

    /// Writes queued output, at most the pass budget. Level: one write per
    /// report (the backend reports again while there is room and interest).
    /// Edge: writes until `WouldBlock` or the queue is empty; at the budget,
    /// with the socket not known to be full, a continuation after the
    /// current batch (TCP would raise a new edge after a short write, but
    /// not after a full one that merely spent the budget).
    pub(super) fn handle_write(&self, ev: &mut EventLoop<D>) {
        let budget = self.inner.options.pass_budget.max(1);
        let mut written = 0;
        let mut blocked = false;
        loop {
            match self.send_queued(budget - written) {
                Ok(n) => {
                    written += n;
                    if !self.inner.edge || self.queued_output() == 0 || written >= budget {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted && self.inner.edge => {}
                Err(e) if interrupted_or_would_block(&e) => {
                    blocked = true;
                    break;
                }
                Err(e) => {
                    debug!("connection {}: write failed: {e}", self.id());
                    self.close(ev, "write failed");
                    return;
                }
            }
        }
        if written == 0 {
            return;
        }
        trace!(
            "[{}] connection {}: wrote {written} queued bytes, {} left",
            ev.name(),
            self.id(),
            self.queued_output()
        );
        self.touch(ev);
        let left = self.queued_output();
        let below_half = self.below_resume_mark(left);
        if self.inner.stops.get().output_full && below_half {
            swap_flag(&self.inner.stops, |s| &mut s.output_full, false);
            debug!("connection {}: output down to {left} bytes, reading again", self.id());
            self.offer_input(ev);
            // Edge: input that waited in the socket raised its edge long ago.
            self.schedule_read(ev);
        }
        if left == 0 {
            self.write_completed(ev);
            self.output_drained(ev);
        } else {
            self.update_interest(ev);
            if self.inner.edge && !blocked {
                self.schedule_write(ev);
            }
        }
    }

    /// The output queue is empty: finish a half-close or a flush-then-close.
    pub(super) fn output_drained(&self, ev: &mut EventLoop<D>) {
        match self.inner.life.get() {
            Life::Draining => self.close(ev, "output flushed"),
            Life::HalfClosing { fin_sent: false } => {
                match self.with_fd(|fd| sys::shutdown(fd, Shutdown::Write)) {
                    Ok(()) => {
                        trace!("[{}] connection {}: output flushed, FIN sent", ev.name(), self.id());
                        self.inner.life.set(Life::HalfClosing { fin_sent: true });
                        self.update_interest(ev);
                    }
                    Err(e) => {
                        debug!("connection {}: shutdown failed: {e}", self.id());
                        self.close(ev, "shutdown failed");
                    }
                }
            }
            _ => self.update_interest(ev),
        }
    }

    /// Whether a throttled connection may read again: queued output at or
    /// below half the limit and room for another file region.
    pub(super) fn below_resume_mark(&self, left: usize) -> bool {
        self.queued_files() < MAX_QUEUED_FILES
            && self.inner.options.output_limit.is_none_or(|limit| left <= limit / 2)
    }
}
