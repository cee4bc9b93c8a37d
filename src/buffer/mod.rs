//! `Buffer`: the per-connection byte queue between the socket and the
//! protocol code (muduo's `Buffer`).
//!
//! A reactor needs one on each side of every connection. A non-blocking read
//! returns whatever has arrived: half a message, or three and a half, so input
//! collects here until the protocol code can take whole messages. A
//! non-blocking write may be partial, so what the kernel did not take waits
//! here until the socket is writable again.
//!
//! The module does three jobs, one file each:
//!
//! * **The byte queue** (this file): three regions of one storage.
//!
//!   ```text
//!   +-------------+------------------+------------------+
//!   | prependable |     readable     |     writable     |
//!   +-------------+------------------+------------------+
//!   0          read_index       write_index          capacity
//!   ```
//!
//!   Reading moves `read_index` forward; writing moves `write_index`. Space
//!   freed at the front is reused by moving the readable bytes back
//!   (compaction) before the storage is ever grown. The prependable area lets
//!   a length header be written *after* the body (`append(body);
//!   prepend_u32(len)`) without moving the body. A new `Buffer` allocates
//!   nothing; [`Buffer::from_vec`] adopts a `Vec` without copying it.
//! * **fd I/O** (`io_fd.rs`): [`read_fd`](Buffer::read_fd) (`readv`) and
//!   [`recv_fd`](Buffer::recv_fd) (`recvmsg`, what connections use) read
//!   into the writable space plus a [`SPILL_SIZE`] spill area in one system
//!   call. The spill is a heap block allocated once per thread, so one call
//!   can take a lot, yet an idle connection does not keep 64 KiB allocated
//!   (yolanda allocates that per connection). [`write_fd`](Buffer::write_fd)
//!   and [`send_fd`](Buffer::send_fd) consume exactly what the kernel took.
//! * **The block policy** (`recycle.rs`): memory follows activity, not
//!   connections. Each thread keeps one recycled 64 KiB block. An empty
//!   buffer that reads adopts it (the first one creates it) and the kernel
//!   writes straight into it (no copy from the spill);
//!   [`consume_all`](Buffer::consume_all) (also reached by consuming
//!   everything) hands storage above [`SHRINK_THRESHOLD`] back, and
//!   [`settle`](Buffer::settle) moves a small leftover (half a message) out
//!   of a large block. So an echo or HTTP server passes one block from
//!   connection to connection, and a connection at rest holds only the bytes
//!   it has not processed.
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

use std::fmt;
use std::io;

mod io_fd;
mod recycle;

/// Bytes reserved in front of the data once storage exists, for headers.
pub const CHEAP_PREPEND: usize = 8;
/// Size of the spill area [`read_fd`](Buffer::read_fd) and
/// [`recv_fd`](Buffer::recv_fd) read into past the writable space: a heap
/// block allocated once per thread (muduo uses a stack array), not per buffer.
pub const SPILL_SIZE: usize = 64 * 1024;
/// A drained buffer whose storage is larger than this gives it up (to the
/// thread's recycled block, or to the allocator); see
/// [`consume_all`](Buffer::consume_all).
pub const SHRINK_THRESHOLD: usize = 4 * 1024;

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

    /// Drops the first `n` readable bytes (all of them if `n >= len()`, which
    /// is [`consume_all`](Self::consume_all), memory policy included).
    pub fn consume(&mut self, n: usize) {
        if n < self.len() {
            self.read_index += n;
        } else {
            self.consume_all();
        }
    }

    /// Drops everything readable.
    ///
    /// It also applies the memory policy (see the module docs): storage
    /// larger than [`SHRINK_THRESHOLD`] is given up, to become this thread's
    /// recycled block or be freed, and the buffer is then like a new one
    /// (capacity 0), so an idle connection holds no memory. Smaller storage
    /// is kept for reuse. [`consume`](Self::consume) of everything does the
    /// same.
    pub fn consume_all(&mut self) {
        if self.storage.len() > SHRINK_THRESHOLD {
            self.release_storage();
        } else {
            let start = self.storage.len().min(CHEAP_PREPEND);
            self.read_index = start;
            self.write_index = start;
        }
    }

    /// Removes and returns the first `n` readable bytes (fewer if fewer exist).
    ///
    /// With `std::io::Read` in scope, `buf.take(n)` means `Read::take`
    /// (which takes the buffer by value); write `Buffer::take(&mut buf, n)`.
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
