//! `Buffer`: the per-connection byte queue between the socket and the
//! protocol code (muduo's `Buffer`).
//!
//! A reactor needs one on each side of every connection. A non-blocking read
//! returns whatever has arrived: half a message, or three and a half, so input
//! collects here until the protocol code can take whole messages. A
//! non-blocking write may be partial, so what the kernel did not take waits
//! here until the socket is writable again.
//!
//! ```text
//! +-------------+------------------+------------------+
//! | prependable |     readable     |     writable     |
//! +-------------+------------------+------------------+
//! 0          read_index       write_index          capacity
//! ```
//!
//! * Reading moves `read_index` forward; writing moves `write_index`. Space
//!   freed at the front is reused by moving the readable bytes back (compaction)
//!   before the storage is ever grown.
//! * The prependable area lets a length header be written *after* the body
//!   (`append(body); prepend_u32(len)`), with no copy of the body.
//! * [`read_fd`](Buffer::read_fd) uses `readv` into the writable space plus a
//!   64 KiB spill area (one per thread): one system call can take a lot, yet an
//!   idle connection does not keep 64 KiB allocated (yolanda allocates that
//!   per connection). A new `Buffer` allocates nothing.
//! * Memory follows activity, not connections: each thread keeps one
//!   recycled 64 KiB block. An empty buffer that reads adopts it (the first
//!   one creates it) and the
//!   kernel writes straight into it (no copy from the spill); a buffer that
//!   drains hands its large storage back, and [`settle`](Buffer::settle)
//!   moves a small leftover (half a message) out of a large block. So an echo
//!   or HTTP server passes one block from connection to connection, and a
//!   connection at rest holds only the bytes it has not processed.
//!
//! # Parsing: peek, then consume
//!
//! Protocol code looks at the readable bytes ([`peek`](Buffer::peek),
//! [`peek_u32`](Buffer::peek_u32), the `find*` searches) without removing
//! anything, and consumes only once a whole message is there; an incomplete
//! message simply stays for the next read. A parser that searched from the
//! start on every read would cost O(n²) for a message that trickles in one
//! byte at a time, so it remembers how far it has looked and resumes there
//! with the `*_from` searches (offsets count from the first readable byte,
//! so the mark restarts at 0 whenever the parser consumes):
//!
//! ```
//! use muxloop::Buffer;
//!
//! /// A line protocol: commands end with "\r\n".
//! #[derive(Default)]
//! struct Lines {
//!     /// How much of the buffered, unfinished line holds no line end.
//!     scanned: usize,
//! }
//!
//! impl Lines {
//!     /// The next complete line (without its "\r\n"), removed from `input`.
//!     fn next(&mut self, input: &mut Buffer) -> Option<Vec<u8>> {
//!         match input.find_crlf_from(self.scanned) {
//!             Some(end) => {
//!                 let line = input.take(end);
//!                 input.consume(2);
//!                 self.scanned = 0; // offsets now start at the next line
//!                 Some(line)
//!             }
//!             None => {
//!                 // The last byte may be the '\r' of a "\r\n" cut by a read.
//!                 self.scanned = input.len().saturating_sub(1);
//!                 None
//!             }
//!         }
//!     }
//! }
//!
//! let (mut input, mut lines, mut got) = (Buffer::new(), Lines::default(), Vec::new());
//! // The worst case for a parser that rescans: one byte per read.
//! for &byte in b"PING\r\nECHO hello\r\nQU" {
//!     input.append(&[byte]); // what `read_fd` does when a byte arrives
//!     while let Some(line) = lines.next(&mut input) {
//!         got.push(line);
//!     }
//! }
//! assert_eq!(got, [&b"PING"[..], b"ECHO hello"]);
//! assert_eq!(input.peek(), b"QU", "an incomplete line waits for more input");
//! ```

use std::cell::RefCell;
use std::fmt;
use std::io::{self, IoSliceMut};
use std::os::fd::RawFd;

use crate::sys;

/// Bytes reserved in front of the data once storage exists, for headers.
pub const CHEAP_PREPEND: usize = 8;
/// Size of the stack spill area `read_fd` reads into past the writable space.
pub const SPILL_SIZE: usize = 64 * 1024;
/// A drained buffer whose storage is larger than this gives it up (to the
/// thread's recycled block, or to the allocator).
pub const SHRINK_THRESHOLD: usize = 4 * 1024;
/// Storage up to this size may be kept as the thread's recycled block.
const RECYCLE_MAX: usize = 1024 * 1024;
/// The size of a recycled block: a spill's worth after the prepend area.
const BLOCK_SIZE: usize = CHEAP_PREPEND + SPILL_SIZE;

thread_local! {
    /// The spill area of `read_fd`. muduo puts it on the stack; in safe Rust a
    /// stack array would be zeroed (64 KiB of memset) on every read, so each
    /// thread keeps one, initialised once.
    static SPILL: RefCell<Box<[u8]>> = RefCell::new(vec![0; SPILL_SIZE].into_boxed_slice());
    /// Storage a drained buffer gave up, for the next empty buffer that reads.
    static RECYCLED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Keeps `storage` as this thread's recycled block if the slot is free and
/// the size is sensible; otherwise frees it.
fn recycle(storage: Vec<u8>) {
    if (BLOCK_SIZE..=RECYCLE_MAX).contains(&storage.len()) {
        let _ = RECYCLED.try_with(|slot| {
            let mut slot = slot.borrow_mut();
            if slot.is_empty() {
                *slot = storage;
            }
        });
    }
}

/// This thread's recycled block, if there is one.
fn take_recycled() -> Option<Vec<u8>> {
    RECYCLED.try_with(|slot| std::mem::take(&mut *slot.borrow_mut())).ok().filter(|block| !block.is_empty())
}

/// `readv` or `recvmsg`: fills the buffers in order, returns the byte count.
type ReadVectored = fn(RawFd, &mut [IoSliceMut<'_>]) -> io::Result<usize>;

/// A growable byte queue with cheap prepend; see the [module docs](self).
#[derive(Default, Clone)]
pub struct Buffer {
    storage: Vec<u8>,
    read_index: usize,
    write_index: usize,
}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("readable", &self.len())
            .field("writable", &self.writable_bytes())
            .field("prependable", &self.prependable_bytes())
            .finish()
    }
}

impl Buffer {
    /// An empty buffer; allocates nothing until data arrives.
    pub fn new() -> Buffer {
        Buffer::default()
    }

    /// An empty buffer with room for `capacity` bytes after the prepend area.
    /// Storage above [`SHRINK_THRESHOLD`] is still released on the first drain.
    pub fn with_capacity(capacity: usize) -> Buffer {
        Buffer {
            storage: vec![0; CHEAP_PREPEND.saturating_add(capacity)],
            read_index: CHEAP_PREPEND,
            write_index: CHEAP_PREPEND,
        }
    }

    /// A buffer whose readable bytes are `data[start..]`, taking ownership
    /// of `data` without copying it (`start > data.len()` clamps: nothing is
    /// readable). `data[..start]` becomes the prependable area; there is no
    /// writable space until the first append grows or compacts the storage.
    pub fn from_vec(data: Vec<u8>, start: usize) -> Buffer {
        let len = data.len();
        Buffer { storage: data, read_index: start.min(len), write_index: len }
    }

    /// Readable bytes.
    pub fn len(&self) -> usize {
        self.write_index - self.read_index
    }

    /// Whether there is nothing to read.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes that can be appended without compaction or growth.
    pub fn writable_bytes(&self) -> usize {
        self.storage.len() - self.write_index
    }

    /// Bytes that can be prepended without moving data.
    pub fn prependable_bytes(&self) -> usize {
        self.read_index
    }

    /// Size of the storage (0 for a new or released buffer).
    pub fn capacity(&self) -> usize {
        self.storage.len()
    }

    /// The readable bytes.
    pub fn peek(&self) -> &[u8] {
        &self.storage[self.read_index..self.write_index]
    }

    /// Drops the first `n` readable bytes (all of them if `n >= len()`).
    pub fn consume(&mut self, n: usize) {
        if n < self.len() {
            self.read_index += n;
        } else {
            self.consume_all();
        }
    }

    /// Drops everything readable; gives up large storage so an idle
    /// connection holds no memory.
    pub fn consume_all(&mut self) {
        if self.storage.len() > SHRINK_THRESHOLD {
            recycle(std::mem::take(&mut self.storage));
            *self = Buffer::new();
        } else {
            let start = self.storage.len().min(CHEAP_PREPEND);
            self.read_index = start;
            self.write_index = start;
        }
    }

    /// Removes and returns the first `n` readable bytes (fewer if fewer exist).
    pub fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.len());
        let bytes = self.peek()[..n].to_vec();
        self.consume(n);
        bytes
    }

    /// Removes and returns all readable bytes.
    pub fn take_all(&mut self) -> Vec<u8> {
        self.take(self.len())
    }

    /// Appends `data`.
    pub fn append(&mut self, data: &[u8]) {
        self.ensure_writable(data.len());
        self.storage[self.write_index..self.write_index + data.len()].copy_from_slice(data);
        self.write_index += data.len();
    }

    /// Makes room for at least `n` more bytes: first by moving the readable
    /// bytes to the front (reusing consumed space, muduo's `makeSpace`),
    /// growing only if that is not enough.
    ///
    /// Like `Vec::reserve`, it panics only if the memory cannot be allocated.
    pub fn ensure_writable(&mut self, n: usize) {
        if self.writable_bytes() >= n {
            return;
        }
        let needed = CHEAP_PREPEND.saturating_add(self.len()).saturating_add(n);
        if self.storage.len() >= needed {
            self.move_readable_to(CHEAP_PREPEND);
        } else {
            // Grow geometrically so repeated appends stay amortised O(1).
            self.reallocate(needed.max(self.storage.len().saturating_mul(2)), CHEAP_PREPEND);
        }
    }

    /// Moves the readable bytes within the storage to start at `offset`
    /// (the caller checked that they fit).
    fn move_readable_to(&mut self, offset: usize) {
        let len = self.len();
        self.storage.copy_within(self.read_index..self.write_index, offset);
        self.read_index = offset;
        self.write_index = offset + len;
    }

    /// Replaces the storage with `size` bytes holding the readable bytes at
    /// `offset`. Only they are copied: consumed and unwritten bytes are not.
    fn reallocate(&mut self, size: usize, offset: usize) {
        let len = self.len();
        let mut storage = vec![0; size];
        storage[offset..offset + len].copy_from_slice(self.peek());
        self.storage = storage;
        self.read_index = offset;
        self.write_index = offset + len;
    }

    /// The writable space, to fill directly (after
    /// [`ensure_writable`](Self::ensure_writable)); then call [`commit`](Self::commit).
    pub fn writable_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.write_index..]
    }

    /// Marks `n` bytes of [`writable_mut`](Self::writable_mut) as written
    /// (clamped to the writable space).
    pub fn commit(&mut self, n: usize) {
        self.write_index += n.min(self.writable_bytes());
    }

    /// Puts `data` in front of the readable bytes. It always succeeds: the
    /// prependable area is used when it is large enough (the cheap, usual
    /// case: a header of up to [`CHEAP_PREPEND`] bytes); otherwise the
    /// readable bytes are shifted towards the back of the storage, which
    /// grows only if it is too small for both.
    pub fn prepend(&mut self, data: &[u8]) {
        if data.len() > self.prependable_bytes() {
            self.make_prepend_room(data.len());
        }
        self.read_index -= data.len();
        self.storage[self.read_index..self.read_index + data.len()].copy_from_slice(data);
    }

    /// Moves the readable bytes so that exactly `n` bytes lie in front of them.
    fn make_prepend_room(&mut self, n: usize) {
        // Both are lengths of slices in memory, so the sum cannot overflow.
        let needed = n + self.len();
        if self.storage.len() >= needed {
            self.move_readable_to(n);
        } else {
            self.reallocate(needed.saturating_add(self.writable_bytes().max(CHEAP_PREPEND)), n);
        }
    }

    /// Offset of the first `"\r\n"` in the readable bytes.
    pub fn find_crlf(&self) -> Option<usize> {
        self.find(b"\r\n")
    }

    /// Offset of the first `'\n'` in the readable bytes.
    pub fn find_eol(&self) -> Option<usize> {
        self.find_byte(b'\n')
    }

    /// Offset of the first `byte` in the readable bytes.
    pub fn find_byte(&self, byte: u8) -> Option<usize> {
        self.find_byte_from(byte, 0)
    }

    /// Offset of the first occurrence of `needle` in the readable bytes (an
    /// empty needle is found at 0).
    pub fn find(&self, needle: &[u8]) -> Option<usize> {
        self.find_from(needle, 0)
    }

    /// Offset of the first `"\r\n"` starting at or after `from`. To resume
    /// a scan that found nothing, pass `len() - 1`: the `'\r'` may be the
    /// last byte seen.
    pub fn find_crlf_from(&self, from: usize) -> Option<usize> {
        self.find_from(b"\r\n", from)
    }

    /// Offset of the first `'\n'` at or after `from`.
    pub fn find_eol_from(&self, from: usize) -> Option<usize> {
        self.find_byte_from(b'\n', from)
    }

    /// Offset of the first `byte` at or after `from`.
    ///
    /// Offsets, `from` and the result alike, count from the start of the
    /// readable bytes; `from > len()` finds nothing.
    pub fn find_byte_from(&self, byte: u8, from: usize) -> Option<usize> {
        let haystack = self.peek().get(from..)?;
        haystack.iter().position(|&b| b == byte).map(|i| from + i)
    }

    /// Offset of the first occurrence of `needle` that starts at or after
    /// `from` (see the [module docs](self) for resuming a scan). Offsets
    /// count from the start of the readable bytes; `from > len()` finds
    /// nothing, an empty needle is found at `from`.
    pub fn find_from(&self, needle: &[u8], from: usize) -> Option<usize> {
        let haystack = self.peek();
        if from > haystack.len() {
            return None;
        }
        let Some((&first, rest)) = needle.split_first() else { return Some(from) };
        let mut from = from;
        while let Some(i) = haystack[from..].iter().position(|&b| b == first) {
            let at = from + i;
            if haystack[at + 1..].starts_with(rest) {
                return Some(at);
            }
            from = at + 1;
        }
        None
    }

    fn peek_array<const N: usize>(&self) -> Option<[u8; N]> {
        self.peek().get(..N)?.try_into().ok()
    }

    /// The first 2 readable bytes as a big-endian `u16`, if there are 2.
    pub fn peek_u16(&self) -> Option<u16> {
        self.peek_array().map(u16::from_be_bytes)
    }

    /// The first 4 readable bytes as a big-endian `u32`, if there are 4.
    pub fn peek_u32(&self) -> Option<u32> {
        self.peek_array().map(u32::from_be_bytes)
    }

    /// The first 8 readable bytes as a big-endian `u64`, if there are 8.
    pub fn peek_u64(&self) -> Option<u64> {
        self.peek_array().map(u64::from_be_bytes)
    }

    /// Like [`peek_u16`](Self::peek_u16), and consumes the bytes.
    pub fn read_u16(&mut self) -> Option<u16> {
        let value = self.peek_u16()?;
        self.consume(2);
        Some(value)
    }

    /// Like [`peek_u32`](Self::peek_u32), and consumes the bytes.
    pub fn read_u32(&mut self) -> Option<u32> {
        let value = self.peek_u32()?;
        self.consume(4);
        Some(value)
    }

    /// Like [`peek_u64`](Self::peek_u64), and consumes the bytes.
    pub fn read_u64(&mut self) -> Option<u64> {
        let value = self.peek_u64()?;
        self.consume(8);
        Some(value)
    }

    /// Appends `value` big-endian.
    pub fn append_u16(&mut self, value: u16) {
        self.append(&value.to_be_bytes());
    }

    /// Appends `value` big-endian.
    pub fn append_u32(&mut self, value: u32) {
        self.append(&value.to_be_bytes());
    }

    /// Appends `value` big-endian.
    pub fn append_u64(&mut self, value: u64) {
        self.append(&value.to_be_bytes());
    }

    /// Prepends `value` big-endian.
    pub fn prepend_u16(&mut self, value: u16) {
        self.prepend(&value.to_be_bytes());
    }

    /// Prepends `value` big-endian.
    pub fn prepend_u32(&mut self, value: u32) {
        self.prepend(&value.to_be_bytes());
    }

    /// Prepends `value` big-endian.
    pub fn prepend_u64(&mut self, value: u64) {
        self.prepend(&value.to_be_bytes());
    }

    /// Moves a small leftover out of large storage and gives the storage up
    /// (see the module docs). Owners call it when they are done with the
    /// input for now, e.g. after the message callback.
    pub fn settle(&mut self) {
        if self.storage.len() > SHRINK_THRESHOLD && self.len() <= self.storage.len() / 4 {
            let mut small = Buffer::with_capacity(self.len());
            small.append(self.peek());
            recycle(std::mem::replace(self, small).storage);
        }
    }

    /// Reads from `fd` with one `readv` into the writable space and a 64 KiB
    /// spill area; what lands in the spill is appended. An empty buffer first
    /// adopts the thread's recycled block (creating it the first time), so the
    /// data lands in place. Returns the bytes read (`Ok(0)`: end of file); errors,
    /// `WouldBlock` included, are returned as they are.
    pub fn read_fd(&mut self, fd: RawFd) -> io::Result<usize> {
        self.fill_from(fd, sys::readv)
    }

    /// [`read_fd`](Self::read_fd) for sockets: `recvmsg(2)` with the same two
    /// buffers, which skips the VFS layer `readv` goes through.
    pub fn recv_fd(&mut self, fd: RawFd) -> io::Result<usize> {
        self.fill_from(fd, sys::recv_vectored)
    }

    fn fill_from(&mut self, fd: RawFd, read: ReadVectored) -> io::Result<usize> {
        if self.storage.is_empty() {
            let block = take_recycled().unwrap_or_else(|| vec![0; BLOCK_SIZE]);
            *self = Buffer { storage: block, read_index: CHEAP_PREPEND, write_index: CHEAP_PREPEND };
        }
        let result = SPILL.with(|spill| self.read_with_spill(fd, &mut spill.borrow_mut(), read));
        if self.is_empty() {
            self.consume_all(); // nothing arrived: do not sit on the block
        }
        result
    }

    fn read_with_spill(&mut self, fd: RawFd, spill: &mut [u8], read: ReadVectored) -> io::Result<usize> {
        let writable = self.writable_bytes();
        let n = {
            let (_, space) = self.storage.split_at_mut(self.write_index);
            let mut slices = [IoSliceMut::new(space), IoSliceMut::new(spill)];
            // With no space (e.g. a new buffer), read into the spill alone.
            let first = if writable == 0 { 1 } else { 0 };
            read(fd, &mut slices[first..])?
        };
        if n <= writable {
            self.write_index += n;
        } else {
            self.write_index = self.storage.len();
            self.append(&spill[..n - writable]);
        }
        Ok(n)
    }

    /// Writes the readable bytes to `fd` with `write(2)` and consumes what was
    /// written, which may be less than [`len`](Self::len) (a partial write).
    /// An empty buffer returns `Ok(0)` without a system call.
    pub fn write_fd(&mut self, fd: RawFd) -> io::Result<usize> {
        if self.is_empty() {
            return Ok(0);
        }
        let n = sys::write(fd, self.peek())?;
        self.consume(n);
        Ok(n)
    }

    /// Sends the readable bytes on socket `fd` with `MSG_NOSIGNAL` (no
    /// `SIGPIPE` if the peer is gone) and consumes what was sent, which may
    /// be less than [`len`](Self::len). An empty buffer returns `Ok(0)`
    /// without a system call.
    pub fn send_fd(&mut self, fd: RawFd) -> io::Result<usize> {
        if self.is_empty() {
            return Ok(0);
        }
        let n = sys::send(fd, self.peek())?;
        self.consume(n);
        Ok(n)
    }
}

impl io::Write for Buffer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.append(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Read for Buffer {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = out.len().min(self.len());
        out[..n].copy_from_slice(&self.peek()[..n]);
        self.consume(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::os::fd::AsRawFd;

    #[test]
    fn append_consume_take_round_trip() {
        let mut buf = Buffer::new();
        assert_eq!(buf.capacity(), 0, "a new buffer allocates nothing");
        buf.append(b"hello, ");
        buf.append(b"world");
        assert_eq!(buf.peek(), b"hello, world");
        buf.consume(7);
        assert_eq!(buf.peek(), b"world");
        assert_eq!(buf.take(3), b"wor");
        assert_eq!(buf.take(100), b"ld", "take clamps to what is there");
        assert!(buf.is_empty());
        buf.consume(5); // more than there is: no panic
        assert_eq!(buf.len(), 0);
    }

    #[test]
    fn compacts_before_growing() {
        let mut buf = Buffer::with_capacity(100);
        let capacity = buf.capacity();
        buf.append(&[1; 90]);
        buf.consume(80);
        buf.append(&[2; 80]); // 10 left + 80 fits once the 80 consumed bytes are reused
        assert_eq!(buf.capacity(), capacity, "compaction, not growth");
        assert_eq!(buf.len(), 90);
        assert_eq!(&buf.peek()[..10], &[1; 10]);
        assert_eq!(&buf.peek()[10..], &[2; 80]);
        assert_eq!(buf.prependable_bytes(), CHEAP_PREPEND);
        buf.append(&[3; 100]);
        assert!(buf.capacity() > capacity, "growth when compaction is not enough");
        assert_eq!(buf.len(), 190);
    }

    #[test]
    fn drained_large_buffer_releases_its_memory() {
        let mut buf = Buffer::new();
        buf.append(&vec![7; 100_000]);
        assert!(buf.capacity() >= 100_000);
        buf.consume(99_999);
        assert!(buf.capacity() >= 100_000, "still holding a byte");
        buf.consume(1);
        assert_eq!(buf.capacity(), 0);
        let mut small = Buffer::new();
        small.append(b"abc");
        let kept = small.capacity();
        small.consume_all();
        assert_eq!(small.capacity(), kept, "small storage is kept for reuse");
    }

    #[test]
    fn find_at_boundaries() {
        let mut buf = Buffer::new();
        assert_eq!(buf.find_crlf(), None);
        assert_eq!(buf.find_eol(), None);
        buf.append(b"GET / HTTP/1.1\r");
        assert_eq!(buf.find_crlf(), None, "a lone CR is not a line end");
        buf.append(b"\n");
        assert_eq!(buf.find_crlf(), Some(14));
        assert_eq!(buf.find_eol(), Some(15));
        assert_eq!(buf.find_byte(b'G'), Some(0));
        assert_eq!(buf.find(b"HTTP"), Some(6));
        assert_eq!(buf.find(b"\r\n"), Some(buf.len() - 2));
        assert_eq!(buf.find(b"HTTPX"), None);
        assert_eq!(buf.find(b""), Some(0));
        buf.consume(15);
        assert_eq!(buf.find_eol(), Some(0));
        let mut crs = Buffer::new();
        crs.append(b"\r\r\r\n");
        assert_eq!(crs.find_crlf(), Some(2));
        assert_eq!(crs.find_byte(b'\n'), Some(3), "match on the last byte");
        crs.consume(2);
        assert_eq!(crs.find_crlf(), Some(0), "match at offset 0");
        assert_eq!(crs.find(b"\r\n\r"), None, "needle longer than what is left");
    }

    #[test]
    fn a_drained_block_is_reused_by_the_next_read_in_place() {
        let (reader, writer) = sys::socketpair().unwrap();
        let mut first = Buffer::new();
        first.append(&vec![1; 10_000]); // larger than SHRINK_THRESHOLD
        first.ensure_writable(SPILL_SIZE);
        first.consume_all(); // gives the storage back to this thread
        assert_eq!(first.capacity(), 0);
        let recycled = take_recycled().expect("kept as the recycled block");
        let block_at = recycled.as_ptr();
        recycle(recycled);

        let mut second = Buffer::new();
        assert_eq!(second.read_fd(reader.as_raw_fd()).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        assert_eq!(second.capacity(), 0, "a read that got nothing does not keep the block");
        sys::write(writer.as_raw_fd(), b"straight into the block").unwrap();
        assert_eq!(second.read_fd(reader.as_raw_fd()).unwrap(), 23);
        assert_eq!(second.peek(), b"straight into the block");
        assert_eq!(second.storage.as_ptr(), block_at, "adopted, not allocated");
        assert!(take_recycled().is_none(), "one block, one owner");
        second.consume_all();
        assert!(take_recycled().is_some(), "and back again");
    }

    #[test]
    fn settle_moves_a_small_leftover_out_of_a_large_block() {
        let mut buf = Buffer::with_capacity(SPILL_SIZE);
        buf.append(b"half a mess");
        buf.settle();
        assert_eq!(buf.peek(), b"half a mess");
        assert!(buf.capacity() < 64, "at rest it holds only its bytes ({})", buf.capacity());
        assert!(take_recycled().is_some(), "the large block went back to the thread");
        let mut full = Buffer::new();
        full.append(&vec![5; 20_000]);
        let capacity = full.capacity();
        full.settle();
        assert_eq!(full.capacity(), capacity, "a mostly full buffer is left alone");
    }

    #[test]
    fn recv_fd_reads_sockets_and_refuses_pipes() {
        let (reader, writer) = sys::socketpair().unwrap();
        let mut buf = Buffer::new();
        assert_eq!(buf.recv_fd(reader.as_raw_fd()).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        sys::write(writer.as_raw_fd(), b"over a socket").unwrap();
        assert_eq!(buf.recv_fd(reader.as_raw_fd()).unwrap(), 13);
        assert_eq!(buf.peek(), b"over a socket");
        drop(writer);
        assert_eq!(buf.recv_fd(reader.as_raw_fd()).unwrap(), 0, "EOF");
        let (pipe_reader, pipe_writer) = sys::pipe().unwrap();
        sys::write(pipe_writer.as_raw_fd(), b"x").unwrap();
        let err = Buffer::new().recv_fd(pipe_reader.as_raw_fd()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTSOCK), "use read_fd for pipes");
    }

    #[test]
    fn find_from_offsets() {
        let mut buf = Buffer::new();
        assert_eq!(buf.find_from(b"", 0), Some(0));
        assert_eq!(buf.find_byte_from(b'a', 1), None, "past the end: none, no panic");
        buf.append(b"xxa\r\nb\r\n\n");
        buf.consume(2);
        // readable: "a\r\nb\r\n\n"
        assert_eq!(buf.find_crlf_from(0), Some(1));
        assert_eq!(buf.find_crlf_from(1), Some(1), "a match at `from`");
        assert_eq!(buf.find_crlf_from(2), Some(4));
        assert_eq!(buf.find_crlf_from(5), None, "a needle starting before `from` does not count");
        assert_eq!(buf.find_eol_from(2), Some(2));
        assert_eq!(buf.find_eol_from(3), Some(5));
        assert_eq!(buf.find_eol_from(6), Some(6), "the last byte");
        assert_eq!(buf.find_eol_from(7), None, "from == len");
        assert_eq!(buf.find_byte_from(b'a', 1), None);
        assert_eq!(buf.find_from(b"b\r", 0), Some(3));
        assert_eq!(buf.find_from(b"", 7), Some(7));
        assert_eq!(buf.find_from(b"", 8), None);
        assert_eq!(buf.find_from(b"\n", usize::MAX), None);
        assert_eq!(buf.find_crlf_from(usize::MAX), None);
    }

    #[test]
    fn from_vec_adopts_without_copying() {
        let data = b"HTTP/1.1 200 OK\r\n".to_vec();
        let at = data.as_ptr();
        let mut buf = Buffer::from_vec(data, 9);
        assert_eq!(buf.peek(), b"200 OK\r\n");
        assert_eq!(buf.peek().as_ptr(), at.wrapping_add(9), "the same allocation");
        assert_eq!((buf.prependable_bytes(), buf.writable_bytes()), (9, 0));
        buf.prepend(b"1.1 ");
        buf.append(b"more");
        assert_eq!(buf.peek(), b"1.1 200 OK\r\nmore");
        assert!(Buffer::from_vec(b"abc".to_vec(), 4).is_empty(), "start past the end clamps");
        assert_eq!(Buffer::from_vec(Vec::new(), 0).capacity(), 0);
    }

    #[test]
    fn big_endian_integers() {
        let mut buf = Buffer::new();
        assert_eq!(buf.peek_u16(), None);
        buf.append_u16(0x0102);
        assert_eq!(buf.peek_u32(), None, "too short");
        buf.append_u32(0x0304_0506);
        buf.append_u64(0x0708_090a_0b0c_0d0e);
        assert_eq!(buf.peek(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
        assert_eq!(buf.read_u16(), Some(0x0102));
        assert_eq!(buf.read_u32(), Some(0x0304_0506));
        assert_eq!(buf.peek_u64(), Some(0x0708_090a_0b0c_0d0e));
        assert_eq!(buf.read_u64(), Some(0x0708_090a_0b0c_0d0e));
        assert_eq!(buf.read_u16(), None);
    }

    #[test]
    fn length_prefixed_frame_built_with_prepend() {
        let mut frame = Buffer::new();
        frame.append(b"payload");
        frame.prepend_u32(7);
        assert_eq!(frame.peek(), b"\0\0\0\x07payload");
        frame.prepend_u64(1);
        frame.prepend_u16(2); // past the 8 reserved bytes: data moves, nothing lost
        assert_eq!(frame.read_u16(), Some(2));
        assert_eq!(frame.read_u64(), Some(1));
        assert_eq!(frame.read_u32(), Some(7));
        assert_eq!(frame.take_all(), b"payload");
        let mut empty = Buffer::new();
        empty.prepend(b"xy");
        assert_eq!(empty.peek(), b"xy");
    }

    #[test]
    fn io_traits() {
        let mut buf = Buffer::new();
        write!(buf, "{}-{}", 1, 2).unwrap();
        let mut out = [0u8; 2];
        assert_eq!(io::Read::read(&mut buf, &mut out).unwrap(), 2);
        assert_eq!(&out, b"1-");
        assert_eq!(buf.peek(), b"2");
        buf.ensure_writable(1);
        buf.writable_mut()[0] = b'!';
        buf.commit(1);
        assert_eq!(buf.peek(), b"2!");
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 256) as u8).collect()
    }

    #[test]
    fn read_fd_spills_and_reports_eof_and_would_block() {
        let (reader, writer) = sys::socketpair().unwrap();
        let mut buf = Buffer::new();
        let err = buf.read_fd(reader.as_raw_fd()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        let data = pattern(200 * 1024);
        let sent = data.clone();
        let writer_thread = std::thread::spawn(move || {
            sys::set_nonblocking(writer.as_raw_fd(), false).unwrap();
            let mut off = 0;
            while off < sent.len() {
                off += sys::write(writer.as_raw_fd(), &sent[off..(off + 3000).min(sent.len())]).unwrap();
            }
        });
        let mut received = 0;
        while received < data.len() {
            match buf.read_fd(reader.as_raw_fd()) {
                Ok(n) => {
                    assert!(n > 0);
                    received += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("read_fd: {e}"),
            }
        }
        writer_thread.join().unwrap();
        assert_eq!(buf.peek(), &data[..]);
        loop {
            match buf.read_fd(reader.as_raw_fd()) {
                Ok(n) => {
                    assert_eq!(n, 0, "EOF after the writer closed");
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("read_fd: {e}"),
            }
        }
    }

    /// Queues more than `min` bytes in `writer` without blocking (the socket
    /// buffer is enlarged so this holds on small-default systems too);
    /// returns what is queued.
    fn queue_at_least(writer: RawFd, min: usize) -> Vec<u8> {
        sys::set_buffer_sizes(writer, Some(4 * min), None).unwrap();
        let data = pattern(4 * min);
        let mut queued = 0;
        loop {
            match sys::send(writer, &data[queued..]) {
                Ok(0) => break,
                Ok(n) => queued += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        assert!(queued > min, "only {queued} bytes queued, wanted more than {min}");
        data[..queued].to_vec()
    }

    #[test]
    fn one_read_on_an_empty_buffer_fills_the_block_and_the_spill() {
        let (reader, writer) = sys::socketpair().unwrap();
        let queued = queue_at_least(writer.as_raw_fd(), 2 * SPILL_SIZE);
        let mut buf = Buffer::new();
        let n = buf.read_fd(reader.as_raw_fd()).unwrap();
        // An empty buffer adopts a 64 KiB block; with more than that queued,
        // one readv fills the block and the spill behind it.
        assert_eq!(n, 2 * SPILL_SIZE, "block + spill in one system call");
        assert_eq!(buf.peek(), &queued[..n]);
        let mut total = n;
        while total < queued.len() {
            let limit = buf.writable_bytes() + SPILL_SIZE;
            let n = buf.read_fd(reader.as_raw_fd()).unwrap();
            assert_eq!(n, limit.min(queued.len() - total), "one readv fills writable space + spill");
            total += n;
        }
        assert_eq!(buf.peek(), &queued[..], "nothing lost across spills");
        let err = buf.read_fd(reader.as_raw_fd()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn read_splits_between_writable_space_and_spill() {
        let (reader, writer) = sys::socketpair().unwrap();
        let data = pattern(40);
        assert_eq!(sys::write(writer.as_raw_fd(), &data).unwrap(), 40);
        let mut buf = Buffer::with_capacity(10);
        buf.append(b"ab");
        let mut spill = [0u8; 16];
        // 8 bytes of writable space + 16 of spill: one readv takes 24 of the 40.
        assert_eq!(buf.read_with_spill(reader.as_raw_fd(), &mut spill, sys::readv).unwrap(), 24);
        assert_eq!(&buf.peek()[..2], b"ab");
        assert_eq!(&buf.peek()[2..], &data[..24]);
        assert_eq!(buf.read_with_spill(reader.as_raw_fd(), &mut spill, sys::readv).unwrap(), 16);
        assert_eq!(&buf.peek()[2..], &data[..]);
    }

    #[test]
    fn partial_writes_consume_exactly_what_was_written() {
        let (reader, writer) = sys::socketpair().unwrap();
        let mut buf = Buffer::new();
        let data = pattern(4 * 1024 * 1024);
        buf.append(&data);
        let mut written = 0;
        loop {
            match buf.send_fd(writer.as_raw_fd()) {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("send_fd: {e}"),
            }
        }
        assert!(written > 0 && written < data.len(), "the socket buffer filled up");
        assert_eq!(buf.len(), data.len() - written);
        assert_eq!(buf.peek(), &data[written..]);
        let mut sink = vec![0u8; written];
        let mut got = 0;
        while got < written {
            got += sys::read(reader.as_raw_fd(), &mut sink[got..]).unwrap();
        }
        assert_eq!(sink, &data[..written]);
        assert_eq!(Buffer::new().send_fd(writer.as_raw_fd()).unwrap(), 0);
        let mut pipe_buf = Buffer::new();
        pipe_buf.append(b"through a pipe");
        let (pipe_reader, pipe_writer) = sys::pipe().unwrap();
        assert_eq!(pipe_buf.write_fd(pipe_writer.as_raw_fd()).unwrap(), 14);
        assert!(pipe_buf.is_empty());
        let mut out = [0u8; 14];
        assert_eq!(sys::read(pipe_reader.as_raw_fd(), &mut out).unwrap(), 14);
        assert_eq!(&out, b"through a pipe");
    }

    #[test]
    fn partial_write_fd_consumes_exactly_what_was_written() {
        let (reader, writer) = sys::socketpair().unwrap();
        let data = pattern(4 * 1024 * 1024);
        let mut buf = Buffer::new();
        buf.append(&data);
        let mut written = 0;
        loop {
            let before = buf.len();
            match buf.write_fd(writer.as_raw_fd()) {
                Ok(n) => {
                    assert_eq!(buf.len(), before - n);
                    written += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("write_fd: {e}"),
            }
        }
        assert!(written > 0 && written < data.len(), "the socket buffer filled up");
        assert_eq!(buf.peek(), &data[written..]);
        let mut received = Buffer::new();
        while received.len() < written {
            received.read_fd(reader.as_raw_fd()).unwrap();
        }
        assert_eq!(received.peek(), &data[..written]);
    }

    #[test]
    fn prepend_past_the_reserve_shifts_in_place_when_there_is_room() {
        let mut buf = Buffer::with_capacity(64);
        buf.append(b"body");
        let capacity = buf.capacity();
        buf.prepend(b"a header longer than eight bytes: ");
        assert_eq!(buf.capacity(), capacity, "shifted, not reallocated");
        assert_eq!(buf.peek(), b"a header longer than eight bytes: body");
        assert_eq!(buf.prependable_bytes(), 0);
        buf.append(&[b'!'; 100]);
        assert_eq!(buf.len(), 38 + 100);
        assert!(buf.peek().starts_with(b"a header"));
    }
}
