//! The sending side of a [`Connection`]: writing straight to the socket
//! while nothing is queued, queueing the rest in stream order
//! ([`OutputQueue`](super::super::output)), files by `sendfile`, fds with
//! their byte.

use std::cell::Cell;
use std::io::{self, IoSlice};
use std::os::fd::BorrowedFd;
use std::sync::Arc;

use log::{debug, trace};

use super::*;
use crate::dispatcher::Dispatcher;
use crate::event_loop::EventLoop;
use crate::sys;

thread_local! {
    /// The reusable reply buffer of [`Connection::send_with`].
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Reply buffers larger than this are not kept for reuse.
const SCRATCH_KEEP: usize = 64 * 1024;

impl<D: Dispatcher + 'static> Connection<D> {
    /// Sends `data`: written at once if nothing is queued, the rest copied to
    /// the output queue and written when the socket has room. Fails with
    /// `NotConnected` after `shutdown`/close, `InvalidInput` on another loop;
    /// a socket error closes the connection at once (its `on_close` runs
    /// after the current batch) and is returned.
    pub fn send(&self, ev: &mut EventLoop<D>, data: &[u8]) -> io::Result<()> {
        self.send_slices(ev, &[IoSlice::new(data)])
    }

    /// [`send`](Self::send) unless the output is full: with
    /// [`queued_output`](Self::queued_output) at or above
    /// [`ConnectionOptions::output_limit`](crate::ConnectionOptions::output_limit),
    /// nothing is sent and the error is `WouldBlock`, so what the connection
    /// holds stays under the limit plus one message. With no output limit it
    /// never refuses. A broadcast uses it to find the slow receivers.
    pub fn try_send(&self, ev: &mut EventLoop<D>, data: &[u8]) -> io::Result<()> {
        if let Some(limit) = self.inner.options.output_limit {
            let queued = self.queued_output();
            if queued >= limit {
                return Err(crate::net::handle::output_full(self.id(), queued, limit));
            }
        }
        self.send(ev, data)
    }

    /// Sends several slices with one `sendmsg` (a `writev`) when nothing is
    /// queued; like [`send`](Self::send) otherwise.
    pub fn send_vectored(&self, ev: &mut EventLoop<D>, slices: &[IoSlice<'_>]) -> io::Result<()> {
        self.send_slices(ev, slices)
    }

    /// Sends `data`, taking ownership: what the kernel does not take at once
    /// is queued without a copy when the queue was empty.
    pub fn send_owned(&self, ev: &mut EventLoop<D>, data: Vec<u8>) -> io::Result<()> {
        let (len, written) = (data.len(), self.write_now(ev, &[IoSlice::new(&data)])?);
        if written < len {
            self.inner.output.borrow_mut().push_vec(data, written);
        }
        self.after_send(ev, written, len - written);
        Ok(())
    }

    /// Builds a reply in a reusable per-thread buffer and sends it with one
    /// system call: the way to answer a batch of pipelined requests (append
    /// every reply, send once). Returns what `build` returns.
    ///
    /// ```no_run
    /// # use muxloop::{EventLoop, Connection, Buffer};
    /// # fn on_message(ev: &mut EventLoop, conn: &Connection, input: &mut Buffer) -> std::io::Result<()> {
    /// conn.send_with(ev, |out| {
    ///     while let Some(eol) = input.find_eol() {
    ///         out.extend_from_slice(b"+OK\r\n");
    ///         input.consume(eol + 1);
    ///     }
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn send_with<R>(
        &self,
        ev: &mut EventLoop<D>,
        build: impl FnOnce(&mut Vec<u8>) -> R,
    ) -> io::Result<R> {
        let mut out = SCRATCH.take();
        out.clear();
        let result = build(&mut out);
        let sent = if out.is_empty() { Ok(()) } else { self.send(ev, &out) };
        if out.capacity() <= SCRATCH_KEEP {
            out.clear();
            SCRATCH.set(out);
        }
        sent.map(|()| result)
    }

    /// Passes file descriptors to the peer of a Unix socket connection
    /// (`SCM_RIGHTS`) together with `data`, which must not be empty: the fds
    /// travel with its first byte, and the peer's
    /// [`Handler::on_fds`] receives them before the `on_message` that sees
    /// that byte. The peer gets its own duplicates; `fds` stay open here.
    /// Order with other sends is kept (queued fds wait for their byte).
    /// `Unsupported` on TCP; `InvalidInput` for empty `data` or more than 253
    /// fds; `WouldBlock` if 1,024 passed fds are already queued.
    pub fn send_fds(&self, ev: &mut EventLoop<D>, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        self.check_loop(ev)?;
        if !self.inner.peer.is_unix() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "fds can only be passed over a unix socket",
            ));
        }
        if data.is_empty() || fds.len() > sys::MAX_FDS_PER_MESSAGE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} fd(s) with {} byte(s): 1-253 fds go with at least one byte",
                    fds.len(),
                    data.len()
                ),
            ));
        }
        if self.inner.life.get() != Life::Open {
            return Err(not_connected(self.id()));
        }
        if self.queued_output() == 0 {
            match self.with_fd(|fd| sys::send_with_fds(fd, &[IoSlice::new(data)], fds)) {
                Ok(n) => {
                    let mut output = self.inner.output.borrow_mut();
                    output.wrote_directly(n);
                    output.push_slices(&[IoSlice::new(data)], n);
                    drop(output);
                    self.after_send(ev, n, data.len() - n);
                    return Ok(());
                }
                Err(e) if interrupted_or_would_block(&e) => {}
                Err(e) => {
                    debug!("connection {}: sending fds failed: {e}", self.id());
                    self.close(ev, "send failed");
                    return Err(e);
                }
            }
        }
        let queued = self.inner.output.borrow().queued_fds();
        if queued + fds.len() > MAX_QUEUED_FDS {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{queued} passed fds already wait for the peer to read"),
            ));
        }
        let fds = fds.iter().map(|fd| fd.try_clone_to_owned()).collect::<io::Result<Vec<_>>>()?;
        self.inner.output.borrow_mut().push_fds(fds, data);
        self.after_send(ev, 0, data.len());
        Ok(())
    }

    pub(super) fn send_slices(&self, ev: &mut EventLoop<D>, slices: &[IoSlice<'_>]) -> io::Result<()> {
        let total: usize = slices.iter().map(|s| s.len()).sum();
        let written = self.write_now(ev, slices)?;
        if written < total {
            self.inner.output.borrow_mut().push_slices(slices, written);
        }
        self.after_send(ev, written, total - written);
        Ok(())
    }

    /// Checks the connection can send and writes what the socket takes now
    /// (nothing if output is already queued: order must be kept).
    pub(super) fn write_now(&self, ev: &mut EventLoop<D>, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        self.check_loop(ev)?;
        if self.inner.life.get() != Life::Open {
            return Err(not_connected(self.id()));
        }
        if !self.inner.output.borrow().is_empty() || slices.iter().all(|s| s.is_empty()) {
            return Ok(0);
        }
        match self.with_fd(|fd| sys::send_vectored(fd, slices)) {
            Ok(n) => {
                self.inner.output.borrow_mut().wrote_directly(n);
                Ok(n)
            }
            Err(e) if interrupted_or_would_block(&e) => Ok(0),
            Err(e) => {
                debug!("connection {}: send failed: {e}", self.id());
                self.close(ev, "send failed");
                Err(e)
            }
        }
    }

    /// Bookkeeping after a send wrote `written` bytes and queued `queued`.
    pub(super) fn after_send(&self, ev: &mut EventLoop<D>, written: usize, queued: usize) {
        if written > 0 {
            self.touch(ev);
        }
        if queued == 0 {
            trace!("[{}] connection {}: sent {written}/{written}", ev.name(), self.id());
            if written > 0 {
                self.write_completed(ev);
            }
            return;
        }
        let after = self.queued_output();
        let before = after - queued;
        trace!(
            "[{}] connection {}: sent {written}/{}, {after} bytes queued",
            ev.name(),
            self.id(),
            written + queued
        );
        let mark = self.inner.options.high_water_mark;
        if before < mark && after >= mark {
            let conn = self.clone();
            ev.defer(move |ev| conn.with_handler(|h| h.on_high_water_mark(ev, &conn, after)));
        }
        if self.is_output_full() && !swap_flag(&self.inner.stops, |s| &mut s.output_full, true) {
            debug!("connection {}: {after} bytes queued, pausing reads until they drain", self.id());
        }
        self.update_interest(ev);
        // Edge: a write that stopped short without `WouldBlock` is not
        // promised a new edge (TCP gives one, other sockets need not), so go
        // on writing until the socket says `WouldBlock` or the queue is empty.
        if self.inner.edge && written > 0 {
            self.handle_write(ev);
        }
    }

    pub(super) fn write_completed(&self, ev: &mut EventLoop<D>) {
        if self.inner.wants_write_complete.get() {
            let conn = self.clone();
            ev.defer(move |ev| {
                if conn.inner.life.get() != Life::Closed {
                    conn.with_handler(|h| h.on_write_complete(ev, &conn));
                }
            });
        }
    }

    /// Queues `len` bytes of `file`, from `offset`, after everything already
    /// queued; later sends go out after it. The region is sent with
    /// `sendfile(2)`: the kernel copies from the page cache to the socket and
    /// the file is never read into memory. Written at once as far as the
    /// socket takes it when nothing else is queued.
    ///
    /// The region's unsent bytes count toward [`queued_output`](Self::queued_output)
    /// (so toward [`ConnectionOptions::output_limit`]: a large file pauses
    /// reading until it has mostly gone out). Each queued region holds the
    /// file open; a connection takes at most
    /// [`MAX_QUEUED_FILES`] and fails with
    /// `QuotaExceeded` beyond that (check [`is_output_full`](Self::is_output_full)
    /// first). If the file turns out shorter than `offset + len` when its
    /// turn comes, the connection is closed (the peer was promised bytes that
    /// do not exist). Errors as for [`send`](Self::send); `file` is dropped
    /// (closed, unless shared) once sent or when the connection closes. On
    /// TCP the socket is corked (`TCP_CORK`) while files are queued, like
    /// nginx's `tcp_nopush`: a transfer the peer's window throttles then goes
    /// out in full segments, not in many small ones.
    pub fn send_file(
        &self,
        ev: &mut EventLoop<D>,
        file: impl Into<Arc<std::fs::File>>,
        offset: u64,
        len: u64,
    ) -> io::Result<()> {
        self.check_loop(ev)?;
        if self.inner.life.get() != Life::Open {
            return Err(not_connected(self.id()));
        }
        let total = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file region larger than usize"))?;
        if total == 0 {
            return Ok(());
        }
        if self.queued_files() >= MAX_QUEUED_FILES {
            return Err(io::Error::new(
                io::ErrorKind::QuotaExceeded,
                format!("connection {}: {MAX_QUEUED_FILES} files already queued", self.id()),
            ));
        }
        let first = self.inner.output.borrow().is_empty();
        if self.queued_files() == 0 {
            self.cork(true);
        }
        self.inner.output.borrow_mut().push_file(file.into(), offset, len);
        let mut written = 0;
        if first {
            match self.send_queued(self.inner.options.pass_budget) {
                Ok(n) => written = n,
                Err(e) if interrupted_or_would_block(&e) => {}
                Err(e) => {
                    debug!("connection {}: sendfile failed: {e}", self.id());
                    self.close(ev, "sendfile failed");
                    return Err(e);
                }
            }
        }
        self.after_send(ev, written, total - written);
        Ok(())
    }

    /// TCP only: corked while files stream out, so a flow limited by the
    /// peer's window goes out in full segments, not in the slivers each
    /// window update allows (fewer packets for the peer to process); uncorking
    /// sends the last partial segment at once. A failure only costs that.
    /// Without `muxloop_linux` (no `TCP_CORK`) it does nothing.
    pub(super) fn cork(&self, on: bool) {
        #[cfg(muxloop_linux)]
        if !self.inner.peer.is_unix()
            && let Err(e) = self.with_fd(|fd| sys::set_cork(fd, on))
        {
            trace!("connection {}: TCP_CORK {on}: {e}", self.id());
        }
        #[cfg(not(muxloop_linux))]
        let _ = on;
    }
}
