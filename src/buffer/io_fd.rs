//! Buffer fd I/O: reading what arrived on a non-blocking fd in one system
//! call, and writing what the kernel will take.
//!
//! A read goes into the buffer's writable space plus a [`SPILL_SIZE`] spill
//! area in one vectored call (`readv(2)` for [`read_fd`](Buffer::read_fd),
//! `recvmsg(2)` for [`recv_fd`](Buffer::recv_fd), which connections use);
//! whatever lands in the spill is then appended. So one call can take a lot
//! while a buffer only grows when data really arrives. muduo keeps the spill
//! on the stack; here it is a heap block allocated once per thread (a stack
//! array in safe Rust would be zeroed on every read). A buffer without
//! storage first adopts the thread's recycled block (see `recycle.rs`).
//!
//! Writes ([`write_fd`](Buffer::write_fd), [`send_fd`](Buffer::send_fd)) may
//! be partial; exactly what the kernel took is consumed.

use std::cell::RefCell;
use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use super::{Buffer, SPILL_SIZE};
use crate::sys;

thread_local! {
    /// The spill area of `read_fd`/`recv_fd`: one heap block per thread,
    /// zeroed once when the thread first reads.
    static SPILL: RefCell<Box<[u8]>> = RefCell::new(vec![0; SPILL_SIZE].into_boxed_slice());
}

// Reading from an fd and writing to one, without a copy through an extra buffer.
impl Buffer {
    /// Reads from `fd` with one `readv(2)` into the writable space and the
    /// thread's 64 KiB spill area; what lands in the spill is appended. An
    /// empty buffer without storage first adopts the thread's recycled block
    /// (creating it the first time), so the data lands in place, and gives
    /// it back if nothing arrived. Returns the bytes read (`Ok(0)`: end of
    /// file); errors, `WouldBlock` included, are returned as they are.
    pub fn read_fd(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        self.fill_from(fd, sys::readv, usize::MAX)
    }

    /// [`read_fd`](Self::read_fd) for sockets: `recvmsg(2)` with the same two
    /// buffers, which skips the VFS layer `readv` goes through. Connections
    /// read with this.
    pub fn recv_fd(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        self.fill_from(fd, sys::recv_vectored, usize::MAX)
    }

    /// [`recv_fd`](Self::recv_fd) taking at most `max` bytes (at least 1):
    /// connections bound what one peer may read per loop pass with it.
    pub fn recv_fd_max(&mut self, fd: BorrowedFd<'_>, max: usize) -> io::Result<usize> {
        self.fill_from(fd, sys::recv_vectored, max.max(1))
    }

    /// [`recv_fd_max`](Self::recv_fd_max) on a Unix socket, also taking the
    /// fds that were passed with the data (`SCM_RIGHTS`, close-on-exec) into `fds`.
    pub fn recv_fd_with_fds(
        &mut self,
        fd: BorrowedFd<'_>,
        max: usize,
        fds: &mut Vec<OwnedFd>,
    ) -> io::Result<usize> {
        let read = |fd: BorrowedFd<'_>, bufs: &mut [IoSliceMut<'_>]| {
            let got = sys::recv_with_fds(fd, bufs, fds)?;
            if got.truncated {
                log::warn!(
                    "fd {}: more fds arrived than one message may carry; the kernel closed the rest",
                    fd.as_raw_fd()
                );
            }
            Ok(got.bytes)
        };
        self.fill_from(fd, read, max.max(1))
    }

    fn fill_from<R>(&mut self, fd: BorrowedFd<'_>, read: R, max: usize) -> io::Result<usize>
    where
        R: FnOnce(BorrowedFd<'_>, &mut [IoSliceMut<'_>]) -> io::Result<usize>,
    {
        if self.storage.is_empty() {
            self.adopt_block();
        }
        let result = SPILL.with(|spill| self.read_with_spill(fd, &mut spill.borrow_mut(), read, max));
        if self.is_empty() {
            self.consume_all(); // nothing arrived: do not sit on the block
        }
        result
    }

    fn read_with_spill<R>(
        &mut self,
        fd: BorrowedFd<'_>,
        spill: &mut [u8],
        read: R,
        max: usize,
    ) -> io::Result<usize>
    where
        R: FnOnce(BorrowedFd<'_>, &mut [IoSliceMut<'_>]) -> io::Result<usize>,
    {
        // `max` caps the space first, then the spill.
        let in_place = self.writable_bytes().min(max);
        let spilled = (max - in_place).min(spill.len());
        let n = {
            let (_, space) = self.storage.split_at_mut(self.write_index);
            let mut slices =
                [IoSliceMut::new(&mut space[..in_place]), IoSliceMut::new(&mut spill[..spilled])];
            // With no space (e.g. a new buffer), read into the spill alone.
            let first = if in_place == 0 { 1 } else { 0 };
            read(fd, &mut slices[first..])?
        };
        if n <= in_place {
            self.write_index += n;
        } else {
            self.write_index += in_place;
            self.append(&spill[..n - in_place]);
        }
        Ok(n)
    }

    /// Writes the readable bytes to `fd` with `write(2)` and consumes what was
    /// written, which may be less than [`len`](Self::len) (a partial write).
    /// An empty buffer returns `Ok(0)` without a system call.
    pub fn write_fd(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
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
    pub fn send_fd(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        self.send_fd_max(fd, usize::MAX)
    }

    /// [`send_fd`](Self::send_fd) offering at most `max` bytes: connections
    /// bound what they write per loop pass with it.
    pub fn send_fd_max(&mut self, fd: BorrowedFd<'_>, max: usize) -> io::Result<usize> {
        if self.is_empty() {
            return Ok(0);
        }
        let readable = self.peek();
        let n = sys::send(fd, &readable[..readable.len().min(max)])?;
        self.consume(n);
        Ok(n)
    }

    /// Sends at most `max` readable bytes on Unix socket `fd` with `fds`
    /// attached to the first of them (`SCM_RIGHTS`), and consumes what was
    /// sent. With `fds` empty it is a [`send_fd`](Self::send_fd) of at most
    /// `max` bytes.
    pub fn send_fd_with_fds(
        &mut self,
        fd: BorrowedFd<'_>,
        max: usize,
        fds: &[BorrowedFd<'_>],
    ) -> io::Result<usize> {
        let len = self.len().min(max);
        if len == 0 {
            return Ok(0);
        }
        let n = sys::send_with_fds(fd, &[std::io::IoSlice::new(&self.peek()[..len])], fds)?;
        self.consume(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn recv_fd_reads_sockets_and_refuses_pipes() {
        let (reader, writer) = sys::socketpair().unwrap();
        let mut buf = Buffer::new();
        assert_eq!(buf.recv_fd(reader.as_fd()).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        sys::write(writer.as_fd(), b"over a socket").unwrap();
        assert_eq!(buf.recv_fd(reader.as_fd()).unwrap(), 13);
        assert_eq!(buf.peek(), b"over a socket");
        drop(writer);
        assert_eq!(buf.recv_fd(reader.as_fd()).unwrap(), 0, "EOF");
        let (pipe_reader, pipe_writer) = sys::pipe().unwrap();
        sys::write(pipe_writer.as_fd(), b"x").unwrap();
        let err = Buffer::new().recv_fd(pipe_reader.as_fd()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTSOCK), "use read_fd for pipes");
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 256) as u8).collect()
    }

    #[test]
    fn read_fd_spills_and_reports_eof_and_would_block() {
        let (reader, writer) = sys::socketpair().unwrap();
        let mut buf = Buffer::new();
        let err = buf.read_fd(reader.as_fd()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        let data = pattern(200 * 1024);
        let sent = data.clone();
        let writer_thread = std::thread::spawn(move || {
            sys::set_nonblocking(writer.as_fd(), false).unwrap();
            let mut off = 0;
            while off < sent.len() {
                off += sys::write(writer.as_fd(), &sent[off..(off + 3000).min(sent.len())]).unwrap();
            }
        });
        let mut received = 0;
        while received < data.len() {
            match buf.read_fd(reader.as_fd()) {
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
            match buf.read_fd(reader.as_fd()) {
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
    fn queue_at_least(writer: BorrowedFd<'_>, min: usize) -> Vec<u8> {
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
        let queued = queue_at_least(writer.as_fd(), 2 * SPILL_SIZE);
        let mut buf = Buffer::new();
        let n = buf.read_fd(reader.as_fd()).unwrap();
        // An empty buffer adopts a 64 KiB block; with more than that queued,
        // one readv fills the block and the spill behind it.
        assert_eq!(n, 2 * SPILL_SIZE, "block + spill in one system call");
        assert_eq!(buf.peek(), &queued[..n]);
        let mut total = n;
        while total < queued.len() {
            let limit = buf.writable_bytes() + SPILL_SIZE;
            let n = buf.read_fd(reader.as_fd()).unwrap();
            assert_eq!(n, limit.min(queued.len() - total), "one readv fills writable space + spill");
            total += n;
        }
        assert_eq!(buf.peek(), &queued[..], "nothing lost across spills");
        let err = buf.read_fd(reader.as_fd()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn read_splits_between_writable_space_and_spill() {
        let (reader, writer) = sys::socketpair().unwrap();
        let data = pattern(40);
        assert_eq!(sys::write(writer.as_fd(), &data).unwrap(), 40);
        let mut buf = Buffer::with_capacity(10);
        buf.append(b"ab");
        let mut spill = [0u8; 16];
        // 8 bytes of writable space + 16 of spill: one readv takes 24 of the 40.
        assert_eq!(buf.read_with_spill(reader.as_fd(), &mut spill, sys::readv, usize::MAX).unwrap(), 24);
        assert_eq!(&buf.peek()[..2], b"ab");
        assert_eq!(&buf.peek()[2..], &data[..24]);
        assert_eq!(buf.read_with_spill(reader.as_fd(), &mut spill, sys::readv, usize::MAX).unwrap(), 16);
        assert_eq!(&buf.peek()[2..], &data[..]);
    }

    #[test]
    fn a_capped_read_takes_at_most_max_bytes() {
        let (reader, writer) = sys::socketpair().unwrap();
        let data = pattern(40);
        assert_eq!(sys::write(writer.as_fd(), &data).unwrap(), 40);
        let mut buf = Buffer::with_capacity(10);
        buf.append(b"ab");
        let mut spill = [0u8; 16];
        // The cap falls inside the space, then inside the spill.
        assert_eq!(buf.read_with_spill(reader.as_fd(), &mut spill, sys::readv, 5).unwrap(), 5);
        assert_eq!(buf.read_with_spill(reader.as_fd(), &mut spill, sys::readv, 10).unwrap(), 10);
        assert_eq!(&buf.peek()[2..], &data[..15]);
        assert_eq!(
            buf.recv_fd_max(reader.as_fd(), 0).unwrap(),
            1,
            "a cap of 0 still reads (0 would mean EOF)"
        );
        assert_eq!(&buf.peek()[2..], &data[..16]);
    }

    #[test]
    fn partial_writes_consume_exactly_what_was_written() {
        let (reader, writer) = sys::socketpair().unwrap();
        let mut buf = Buffer::new();
        let data = pattern(4 * 1024 * 1024);
        buf.append(&data);
        let mut written = 0;
        loop {
            match buf.send_fd(writer.as_fd()) {
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
            got += sys::read(reader.as_fd(), &mut sink[got..]).unwrap();
        }
        assert_eq!(sink, &data[..written]);
        assert_eq!(Buffer::new().send_fd(writer.as_fd()).unwrap(), 0);
        let mut pipe_buf = Buffer::new();
        pipe_buf.append(b"through a pipe");
        let (pipe_reader, pipe_writer) = sys::pipe().unwrap();
        assert_eq!(pipe_buf.write_fd(pipe_writer.as_fd()).unwrap(), 14);
        assert!(pipe_buf.is_empty());
        let mut out = [0u8; 14];
        assert_eq!(sys::read(pipe_reader.as_fd(), &mut out).unwrap(), 14);
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
            match buf.write_fd(writer.as_fd()) {
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
            received.read_fd(reader.as_fd()).unwrap();
        }
        assert_eq!(received.peek(), &data[..written]);
    }
}
