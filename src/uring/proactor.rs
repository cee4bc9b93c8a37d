//! The proactor: io_uring used for what it was made for, completions.
//!
//! This module teaches the other half of the I/O-models chapter. A
//! **reactor** (everything else in this crate) asks the kernel "is this fd
//! ready?" and then does the I/O itself: readiness arrives, the handler calls
//! `recv`, which copies into a buffer the handler owns. A **proactor** asks
//! the kernel to *do* the I/O and tell it when it is done:
//!
//! | | reactor (readiness) | proactor (completion) |
//! |---|---|---|
//! | who reads | the handler, after a readiness event | the kernel, before the completion |
//! | whose buffer | the handler's, lent for the length of one `recv` call | while a receive is pending: the kernel picks one from a ring of buffers we provided; while a send is pending: ours, but lent to the kernel until its completion |
//! | how many system calls per message | wait + `recv` + `send` | one `io_uring_enter` for many messages |
//! | cancellation | stop watching; nothing is in flight | ask the kernel to cancel, then *wait for the completion*: until it arrives, the buffer is still the kernel's |
//!
//! The last row is why this API hands buffers over by value: [`Proactor::send`]
//! takes a `Vec<u8>` and [`Completion::Sent`] gives it back, whether the send
//! worked, failed or was cancelled. Nothing of ours can be freed or reused
//! while the kernel may still read it; dropping a `Proactor` cancels
//! everything and waits for those completions (and leaks, rather than
//! frees, what the kernel never gave back).
//!
//! Receives are multishot (`IORING_OP_RECV` with `IORING_RECV_MULTISHOT`):
//! one request yields a completion per message, each in a buffer the kernel
//! took from our provided-buffer ring (`IORING_REGISTER_PBUF_RING`). The
//! bytes are copied out into a `Vec` and the buffer goes straight back into
//! the ring, so a slow consumer never starves the ring.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use io_uring::types::{BufRingEntry, CancelBuilder, Fd};
use io_uring::{IoUring, cqueue, opcode, squeue};

use super::ring;

/// The provided-buffer group this proactor uses.
const GROUP: u16 = 0;

/// `user_data`: the kind of operation in the top byte, then an fd or a slot.
const KIND_SHIFT: u32 = 56;
const ACCEPT: u64 = 1 << KIND_SHIFT;
const RECV: u64 = 2 << KIND_SHIFT;
const SEND: u64 = 3 << KIND_SHIFT;
const CANCEL: u64 = 4 << KIND_SHIFT;
const PAYLOAD: u64 = (1 << KIND_SHIFT) - 1;

/// What the kernel finished.
#[derive(Debug)]
pub enum Completion {
    /// `listener` accepted a connection (or failed to). `more == false`: the
    /// multishot accept ended; call [`Proactor::accept_multishot`] again.
    Accepted {
        /// The listening socket.
        listener: RawFd,
        /// The new connection, now owned by the caller.
        result: io::Result<OwnedFd>,
        /// Whether the multishot accept is still armed.
        more: bool,
    },
    /// Bytes arrived on `fd`; an empty `Vec` is end of file. `more == false`:
    /// the multishot receive ended (EOF, error, cancelled, or `ENOBUFS` when
    /// the buffer ring ran dry); call [`Proactor::recv_multishot`] to go on.
    Received {
        /// The connection.
        fd: RawFd,
        /// The bytes, or the receive's error.
        result: io::Result<Vec<u8>>,
        /// Whether the multishot receive is still armed.
        more: bool,
    },
    /// A send finished: `result` says how many bytes of `buf[offset..]` went
    /// out, and `buf` is the caller's again.
    Sent {
        /// The connection.
        fd: RawFd,
        /// Bytes sent, or the error (`ECANCELED` after a cancel).
        result: io::Result<usize>,
        /// The buffer handed to [`Proactor::send`].
        buf: Vec<u8>,
        /// Where in `buf` this send started.
        offset: usize,
    },
}

/// Buffers we lend to the kernel for receives, in a ring it takes them from.
///
/// Both the ring and the buffers are raw allocations, never borrowed as a
/// whole: the kernel writes into buffers we do not own at that moment, so
/// Rust references are only ever made to one buffer the kernel gave back.
struct BufRing {
    entries: *mut BufRingEntry,
    entries_layout: Layout,
    memory: *mut u8,
    memory_layout: Layout,
    count: u16,
    tail: u16,
    size: usize,
}

impl BufRing {
    fn new(count: u16, size: usize) -> io::Result<BufRing> {
        if !count.is_power_of_two() || size == 0 || size > u32::MAX as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the buffer count must be a power of two and the size in 1..4 GiB",
            ));
        }
        let invalid = |e: std::alloc::LayoutError| io::Error::new(io::ErrorKind::InvalidInput, e.to_string());
        let entries_layout =
            Layout::from_size_align(count as usize * size_of::<BufRingEntry>(), 4096).map_err(invalid)?;
        let memory_layout = Layout::from_size_align(count as usize * size, 64).map_err(invalid)?;
        // SAFETY: both layouts have a non-zero size (count >= 1, size >= 1).
        let (entries, memory) = unsafe { (alloc_zeroed(entries_layout), alloc_zeroed(memory_layout)) };
        if entries.is_null() || memory.is_null() {
            // SAFETY: whichever was allocated, with its own layout.
            unsafe {
                if !entries.is_null() {
                    dealloc(entries, entries_layout);
                }
                if !memory.is_null() {
                    dealloc(memory, memory_layout);
                }
            }
            return Err(io::Error::new(io::ErrorKind::OutOfMemory, "buffer ring allocation failed"));
        }
        Ok(BufRing { entries: entries.cast(), entries_layout, memory, memory_layout, count, tail: 0, size })
    }

    /// Hands buffer `bid` (back) to the kernel.
    fn provide(&mut self, bid: u16) {
        let index = (self.tail & (self.count - 1)) as usize;
        // SAFETY: `index < count`, the ring holds `count` entries, and the
        // kernel only reads entries up to the tail we publish below.
        let entry = unsafe { &mut *self.entries.add(index) };
        // SAFETY: `bid < count`, so the offset stays inside the allocation.
        let addr = unsafe { self.memory.add(bid as usize * self.size) };
        entry.set_addr(addr as u64);
        entry.set_len(self.size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail is a u16 inside the ring's first entry, suitably
        // aligned; the kernel reads it concurrently, hence the atomic store
        // (Release: the entry above is written before the kernel sees it).
        unsafe {
            (*BufRingEntry::tail(self.entries).cast::<AtomicU16>()).store(self.tail, Ordering::Release)
        };
    }

    /// The first `len` bytes of buffer `bid`, which the kernel has handed back.
    fn bytes(&self, bid: u16, len: usize) -> &[u8] {
        assert!(bid < self.count, "the kernel returned buffer {bid} of {}", self.count);
        // SAFETY: in bounds (checked above, `len` clamped); the kernel wrote
        // this buffer before posting the completion that named it and does not
        // touch it again until `provide` returns it.
        unsafe { std::slice::from_raw_parts(self.memory.add(bid as usize * self.size), len.min(self.size)) }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with these layouts; the owner makes sure
        // the kernel no longer uses them (see `Proactor`'s drop).
        unsafe {
            dealloc(self.entries.cast(), self.entries_layout);
            dealloc(self.memory, self.memory_layout);
        }
    }
}

/// A completion-style I/O engine on one io_uring: multishot accepts and
/// receives, sends of owned buffers, cancellation. Linux 6.0 or later.
pub struct Proactor {
    ring: IoUring,
    /// `None` once it had to be leaked (the kernel kept a receive in flight).
    bufs: Option<BufRing>,
    /// Sends in flight: (fd, buffer, offset), indexed by the slot in `user_data`.
    sends: Vec<Option<(RawFd, Vec<u8>, usize)>>,
    free_slots: Vec<usize>,
    /// Multishot receives and accepts in flight.
    multishots: usize,
    ready: VecDeque<Completion>,
    /// Completions moved aside to make room in a full submission queue.
    spilled: Vec<cqueue::Entry>,
}

impl std::fmt::Debug for Proactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proactor").field("sends_in_flight", &self.sends_in_flight()).finish()
    }
}

impl Proactor {
    /// A proactor with `entries` submission slots and `buffers` receive
    /// buffers (a power of two) of `buffer_size` bytes each.
    pub fn new(entries: u32, buffers: u16, buffer_size: usize) -> io::Result<Proactor> {
        let entries = entries.clamp(1, 4096);
        let ring = ring::setup(entries, entries * 8)?;
        let mut bufs = BufRing::new(buffers, buffer_size)?;
        // SAFETY: the ring memory stays allocated and unmoved until it is
        // unregistered (in `drop`, before it is freed).
        unsafe { ring.submitter().register_buf_ring_with_flags(bufs.entries as u64, buffers, GROUP, 0) }
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot register a buffer ring (Linux 5.19+): {e}"))
            })?;
        for bid in 0..buffers {
            bufs.provide(bid);
        }
        Ok(Proactor {
            ring,
            bufs: Some(bufs),
            sends: Vec::new(),
            free_slots: Vec::new(),
            multishots: 0,
            ready: VecDeque::new(),
            spilled: Vec::new(),
        })
    }

    fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        // SAFETY: every SQE we push refers only to memory that outlives its
        // completion: send buffers are kept in `sends` until then, receive
        // buffers belong to the registered ring.
        unsafe { ring::push(&mut self.ring, entry, &mut self.spilled) }
    }

    /// Accepts connections on `listener` until cancelled or an error ends it.
    pub fn accept_multishot(&mut self, listener: RawFd) -> io::Result<()> {
        let entry = opcode::AcceptMulti::new(Fd(listener)).flags(libc::SOCK_CLOEXEC).build();
        self.push(&entry.user_data(ACCEPT | listener as u32 as u64))?;
        self.multishots += 1;
        Ok(())
    }

    /// Receives on `fd` into the buffer ring until cancelled, EOF or error.
    pub fn recv_multishot(&mut self, fd: RawFd) -> io::Result<()> {
        let entry = opcode::RecvMulti::new(Fd(fd), GROUP).build();
        self.push(&entry.user_data(RECV | fd as u32 as u64))?;
        self.multishots += 1;
        Ok(())
    }

    /// Sends `buf[offset..]` on `fd`; `buf` comes back in [`Completion::Sent`].
    pub fn send(&mut self, fd: RawFd, buf: Vec<u8>, offset: usize) -> io::Result<()> {
        let offset = offset.min(buf.len());
        let len = (buf.len() - offset).min(u32::MAX as usize) as u32;
        // The Vec's heap block does not move when the Vec does: the pointer
        // stays valid while the Vec sits in `sends`.
        let ptr = buf[offset..].as_ptr();
        let slot = self.free_slots.pop().unwrap_or_else(|| {
            self.sends.push(None);
            self.sends.len() - 1
        });
        self.sends[slot] = Some((fd, buf, offset));
        let entry = opcode::Send::new(Fd(fd), ptr, len).flags(libc::MSG_NOSIGNAL).build();
        self.push(&entry.user_data(SEND | slot as u64))
    }

    /// Asks the kernel to cancel every request on `fd`. Their completions
    /// (with `ECANCELED`, or their result if they finished first) still come,
    /// and only then are the buffers free and the fd safe to close.
    pub fn cancel(&mut self, fd: RawFd) -> io::Result<()> {
        let entry = opcode::AsyncCancel2::new(CancelBuilder::fd(Fd(fd)).all()).build();
        self.push(&entry.user_data(CANCEL))
    }

    /// Asks the kernel to cancel the multishot receive on `fd` only.
    pub fn cancel_recv(&mut self, fd: RawFd) -> io::Result<()> {
        let entry = opcode::AsyncCancel::new(RECV | fd as u32 as u64).build();
        self.push(&entry.user_data(CANCEL))
    }

    /// How many sends the kernel has not finished.
    pub fn sends_in_flight(&self) -> usize {
        self.sends.len() - self.free_slots.len()
    }

    /// Submits what is queued and waits (at most `timeout`; rounded up to
    /// whole ms) until at least one completion is there; then returns them.
    /// `EINTR` and a timeout return an empty batch.
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<Vec<Completion>> {
        if self.ready.is_empty() {
            match ring::enter(&mut self.ring, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            self.harvest();
        }
        Ok(self.ready.drain(..).collect())
    }

    fn harvest(&mut self) {
        for cqe in std::mem::take(&mut self.spilled) {
            self.complete(cqe);
        }
        loop {
            let cqes: Vec<cqueue::Entry> = self.ring.completion().collect();
            for cqe in cqes {
                self.complete(cqe);
            }
            // Completions the queue could not hold wait in the kernel until an enter fetches them.
            if !self.ring.submission().cq_overflow() || self.ring.submit().is_err() {
                return;
            }
        }
    }

    fn complete(&mut self, cqe: cqueue::Entry) {
        let (data, res, flags) = (cqe.user_data(), cqe.result(), cqe.flags());
        let more = cqueue::more(flags);
        let error = || io::Error::from_raw_os_error(-res);
        let completion = match data & !PAYLOAD {
            ACCEPT => {
                let listener = (data & PAYLOAD) as RawFd;
                // SAFETY: a successful accept's result is a new fd nobody else owns.
                let result = if res >= 0 { Ok(unsafe { OwnedFd::from_raw_fd(res) }) } else { Err(error()) };
                Completion::Accepted { listener, result, more }
            }
            RECV => {
                let fd = (data & PAYLOAD) as RawFd;
                let result = match (res, cqueue::buffer_select(flags)) {
                    (n, Some(bid)) if n >= 0 => {
                        let bufs = self.bufs.as_mut().expect("receives run only with the ring");
                        let bytes = bufs.bytes(bid, n as usize).to_vec();
                        bufs.provide(bid); // copied out: the kernel may reuse it at once
                        Ok(bytes)
                    }
                    (n, None) if n >= 0 => Ok(Vec::new()), // EOF takes no buffer
                    _ => Err(error()),
                };
                Completion::Received { fd, result, more }
            }
            SEND => {
                let slot = (data & PAYLOAD) as usize;
                let Some((fd, buf, offset)) = self.sends.get_mut(slot).and_then(Option::take) else { return };
                self.free_slots.push(slot);
                let result = if res >= 0 { Ok(res as usize) } else { Err(error()) };
                Completion::Sent { fd, result, buf, offset }
            }
            _ => return, // a cancel request's own completion
        };
        if matches!(
            completion,
            Completion::Accepted { more: false, .. } | Completion::Received { more: false, .. }
        ) {
            self.multishots = self.multishots.saturating_sub(1);
        }
        self.ready.push_back(completion);
    }
}

impl Drop for Proactor {
    fn drop(&mut self) {
        // Cancel everything and wait for the completions: until they arrive,
        // the kernel may still read send buffers and write receive buffers.
        let all = opcode::AsyncCancel2::new(CancelBuilder::any().all()).build().user_data(CANCEL);
        let _ = self.push(&all);
        let deadline = Instant::now() + Duration::from_secs(2);
        while (self.sends_in_flight() > 0 || self.multishots > 0) && Instant::now() < deadline {
            if self.wait(Some(Duration::from_millis(10))).is_err() {
                break;
            }
        }
        let _ = self.ring.submitter().unregister_buf_ring(GROUP);
        if self.sends_in_flight() > 0 || self.multishots > 0 {
            // The kernel never answered: leaking is the only sound choice.
            std::mem::forget(std::mem::take(&mut self.sends));
            std::mem::forget(self.bufs.take());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    /// Hands every completion, in order, to `on` until it returns `Some`
    /// (panics with `what` after `patience`).
    fn until<T>(
        p: &mut Proactor,
        patience: Duration,
        what: &str,
        mut on: impl FnMut(Completion) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            for completion in p.wait(Some(Duration::from_millis(50))).unwrap() {
                if let Some(done) = on(completion) {
                    return done;
                }
            }
        }
        panic!("{what}");
    }

    fn next_sent(p: &mut Proactor) -> (io::Result<usize>, Vec<u8>, usize) {
        until(p, Duration::from_secs(10), "no send completed", |completion| match completion {
            Completion::Sent { result, buf, offset, .. } => Some((result, buf, offset)),
            _ => None,
        })
    }

    /// The ownership rule of the module docs: a send's buffer is the kernel's
    /// until its completion, which gives it back even when cancelled.
    #[test]
    fn a_cancelled_send_gives_its_buffer_back() {
        let mut p = match Proactor::new(8, 8, 4096) {
            Ok(p) => p,
            Err(e) => return eprintln!("skipped: io_uring unavailable ({e})"),
        };
        let (a, mut b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        let data: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
        p.send(fd, data, 0).unwrap();
        let (result, buf, offset) = next_sent(&mut p);
        let n = result.unwrap();
        assert!(offset == 0 && n > 0 && n < buf.len(), "a partial send: {n}");

        p.send(fd, buf, n).unwrap(); // the peer does not read: it stays in flight
        assert!(p.wait(Some(Duration::from_millis(50))).unwrap().is_empty());
        assert_eq!(p.sends_in_flight(), 1);
        p.cancel(fd).unwrap();
        let (result, buf, offset) = next_sent(&mut p);
        assert_eq!(result.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
        assert_eq!((buf.len(), offset), (4 << 20, n), "the same buffer came back");
        assert_eq!(p.sends_in_flight(), 0);

        drop(a);
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        assert_eq!(got, buf[..n], "exactly the first, completed send arrived");
    }

    fn proactor() -> Option<Proactor> {
        Proactor::new(8, 8, 4096).map_err(|e| eprintln!("skipped: io_uring unavailable ({e})")).ok()
    }

    #[test]
    fn a_send_from_an_offset_sends_only_the_rest() {
        let Some(mut p) = proactor() else { return };
        let (a, mut b) = UnixStream::pair().unwrap();
        p.send(a.as_raw_fd(), b"hello world".to_vec(), 6).unwrap();
        let (result, buf, offset) = next_sent(&mut p);
        assert_eq!((result.unwrap(), buf.len(), offset), (5, 11, 6));
        assert_eq!(format!("{p:?}"), "Proactor { sends_in_flight: 0 }");
        drop(a);
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"world");
    }

    /// A multishot receive delivers data, then end of file as an empty
    /// `Ok` that ends it.
    #[test]
    fn a_multishot_receive_reports_data_then_eof() {
        let Some(mut p) = proactor() else { return };
        let (a, b) = UnixStream::pair().unwrap();
        p.recv_multishot(a.as_raw_fd()).unwrap();
        (&b).write_all(b"ping").unwrap();
        drop(b);
        let mut got = Vec::new();
        until(&mut p, Duration::from_secs(5), "no end of file", |completion| {
            let Completion::Received { fd, result, more } = completion else { return None };
            assert_eq!(fd, a.as_raw_fd());
            let bytes = result.unwrap();
            if more {
                got.extend(bytes);
                return None;
            }
            assert!(bytes.is_empty(), "end of file carries no bytes");
            Some(())
        });
        assert_eq!(got, b"ping");
    }

    /// A multishot accept names its listener in every completion and keeps going.
    #[test]
    fn accepts_name_their_listener() {
        let Some(mut p) = proactor() else { return };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        p.accept_multishot(listener.as_raw_fd()).unwrap();
        let _clients: Vec<_> =
            (0..2).map(|_| std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap()).collect();
        let mut accepted = 0;
        until(&mut p, Duration::from_secs(5), "fewer than 2 accepts", |completion| {
            let Completion::Accepted { listener: fd, result, more } = completion else { return None };
            assert_eq!(fd, listener.as_raw_fd());
            assert!(result.is_ok() && more, "a live multishot accept");
            accepted += 1;
            (accepted == 2).then_some(())
        });
    }

    /// Sub-second parts of the timeout count (seconds and nanoseconds are
    /// split for the kernel's timespec).
    #[test]
    fn wait_honours_a_fractional_timeout() {
        let Some(mut p) = proactor() else { return };
        let t0 = Instant::now();
        assert!(p.wait(Some(Duration::from_millis(1500))).unwrap().is_empty());
        let waited = t0.elapsed();
        assert!(waited >= Duration::from_millis(1450), "returned early: {waited:?}");
        assert!(waited < Duration::from_secs(5), "returned late: {waited:?}");
    }

    /// `cancel_recv` ends a multishot receive on that fd: its last
    /// completion says so (`more == false`, `ECANCELED`).
    #[test]
    fn cancel_recv_ends_the_multishot_receive() {
        let Some(mut p) = proactor() else { return };
        let (a, _b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        p.recv_multishot(fd).unwrap();
        assert!(p.wait(Some(Duration::from_millis(50))).unwrap().is_empty(), "nothing to receive yet");
        p.cancel_recv(fd).unwrap();
        let (got, result, more) =
            until(&mut p, Duration::from_secs(5), "the multishot receive was not cancelled", |completion| {
                match completion {
                    Completion::Received { fd, result, more } => Some((fd, result, more)),
                    _ => None,
                }
            });
        assert_eq!(got, fd);
        assert!(!more, "the receive is over");
        assert_eq!(result.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
    }
}
