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
//!   64 KiB spill area (one per thread): one system call can take a lot, yet an idle
//!   connection does not keep 64 KiB allocated (yolanda allocates that per
//!   connection). A new `Buffer` allocates nothing, and a drained large one
//!   gives its memory back.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, IoSliceMut};
use std::os::fd::RawFd;

use crate::sys;

/// Bytes reserved in front of the data once storage exists, for headers.
pub const CHEAP_PREPEND: usize = 8;
/// Size of the stack spill area `read_fd` reads into past the writable space.
pub const SPILL_SIZE: usize = 64 * 1024;
/// A drained buffer whose storage is larger than this frees it.
pub const SHRINK_THRESHOLD: usize = 4 * 1024;

thread_local! {
    /// The spill area of `read_fd`. muduo puts it on the stack; in safe Rust a
    /// stack array would be zeroed (64 KiB of memset) on every read, so each
    /// thread keeps one, initialised once.
    static SPILL: RefCell<Box<[u8]>> = RefCell::new(vec![0; SPILL_SIZE].into_boxed_slice());
}

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
    pub fn with_capacity(capacity: usize) -> Buffer {
        Buffer {
            storage: vec![0; CHEAP_PREPEND + capacity],
            read_index: CHEAP_PREPEND,
            write_index: CHEAP_PREPEND,
        }
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

    /// Drops everything readable; frees large storage so an idle connection
    /// holds no memory.
    pub fn consume_all(&mut self) {
        if self.storage.len() > SHRINK_THRESHOLD {
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
    /// bytes to the front (reusing consumed space), growing only if that is
    /// not enough.
    pub fn ensure_writable(&mut self, n: usize) {
        if self.writable_bytes() >= n {
            return;
        }
        let len = self.len();
        if self.storage.len() >= CHEAP_PREPEND + len + n {
            self.storage.copy_within(self.read_index..self.write_index, CHEAP_PREPEND);
        } else {
            // Grow geometrically so repeated appends stay amortised O(1).
            let wanted = (CHEAP_PREPEND + len + n).max(self.storage.len() * 2);
            let mut grown = vec![0; wanted];
            grown[CHEAP_PREPEND..CHEAP_PREPEND + len].copy_from_slice(self.peek());
            self.storage = grown;
        }
        self.read_index = CHEAP_PREPEND;
        self.write_index = CHEAP_PREPEND + len;
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

    /// Puts `data` in front of the readable bytes. Uses the prependable area
    /// when it is large enough, otherwise moves the data to make room.
    pub fn prepend(&mut self, data: &[u8]) {
        if data.len() > self.read_index {
            let len = self.len();
            let mut grown = vec![0; data.len() + len + self.writable_bytes().max(CHEAP_PREPEND)];
            grown[data.len()..data.len() + len].copy_from_slice(self.peek());
            self.storage = grown;
            self.read_index = data.len();
            self.write_index = data.len() + len;
        }
        self.read_index -= data.len();
        self.storage[self.read_index..self.read_index + data.len()].copy_from_slice(data);
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
        self.peek().iter().position(|&b| b == byte)
    }

    /// Offset of the first occurrence of `needle` in the readable bytes (an
    /// empty needle is found at 0).
    pub fn find(&self, needle: &[u8]) -> Option<usize> {
        let Some((&first, rest)) = needle.split_first() else { return Some(0) };
        let haystack = self.peek();
        let mut from = 0;
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

    /// Reads from `fd` with one `readv` into the writable space and a 64 KiB
    /// spill area; what lands in the spill is appended. Returns the bytes
    /// read (`Ok(0)`: end of file); errors, `WouldBlock` included, are
    /// returned as they are.
    pub fn read_fd(&mut self, fd: RawFd) -> io::Result<usize> {
        SPILL.with(|spill| self.read_fd_with_spill(fd, &mut spill.borrow_mut()))
    }

    fn read_fd_with_spill(&mut self, fd: RawFd, spill: &mut [u8]) -> io::Result<usize> {
        let writable = self.writable_bytes();
        let n = {
            let (_, space) = self.storage.split_at_mut(self.write_index);
            let mut slices = [IoSliceMut::new(space), IoSliceMut::new(spill)];
            // With no space (e.g. a new buffer), read into the spill alone.
            let first = if writable == 0 { 1 } else { 0 };
            sys::readv(fd, &mut slices[first..])?
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
    /// written.
    pub fn write_fd(&mut self, fd: RawFd) -> io::Result<usize> {
        let n = sys::write(fd, self.peek())?;
        self.consume(n);
        Ok(n)
    }

    /// Sends the readable bytes on socket `fd` with `MSG_NOSIGNAL` (no
    /// `SIGPIPE` if the peer is gone) and consumes what was sent.
    pub fn send_fd(&mut self, fd: RawFd) -> io::Result<usize> {
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

    #[test]
    fn one_read_takes_at_most_writable_plus_spill() {
        let (reader, writer) = sys::socketpair().unwrap();
        sys::set_nonblocking(writer.as_raw_fd(), false).unwrap();
        let data = pattern(150 * 1024);
        // A Unix socket buffer may not hold 150 KiB; write what fits.
        let mut pending = 0;
        while pending < data.len() {
            match sys::send(writer.as_raw_fd(), &data[pending..]) {
                Ok(n) => pending += n,
                Err(_) => break,
            }
            sys::set_nonblocking(writer.as_raw_fd(), true).unwrap();
        }
        let mut buf = Buffer::new();
        let n = buf.read_fd(reader.as_raw_fd()).unwrap();
        assert!(n <= SPILL_SIZE, "an empty buffer reads into the spill only");
        assert_eq!(buf.peek(), &data[..n]);
        let mut total = n;
        while total < pending {
            let before = buf.writable_bytes();
            let n = buf.read_fd(reader.as_raw_fd()).unwrap();
            assert!(n <= before + SPILL_SIZE);
            total += n;
        }
        assert_eq!(buf.peek(), &data[..pending], "nothing lost across spills");
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
        let mut pipe_buf = Buffer::new();
        pipe_buf.append(b"through a pipe");
        let (pipe_reader, pipe_writer) = sys::pipe().unwrap();
        assert_eq!(pipe_buf.write_fd(pipe_writer.as_raw_fd()).unwrap(), 14);
        assert!(pipe_buf.is_empty());
        let mut out = [0u8; 14];
        assert_eq!(sys::read(pipe_reader.as_raw_fd(), &mut out).unwrap(), 14);
        assert_eq!(&out, b"through a pipe");
    }
}
