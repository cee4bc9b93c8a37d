//! A connection's outgoing byte stream, in the order it was sent: bytes,
//! file regions (sent with `sendfile(2)`, never read into memory) and file
//! descriptors passed with the byte they go with (`SCM_RIGHTS`).
//!
//! It teaches why a non-blocking writer needs a queue at all: the kernel
//! takes what fits in the socket's send buffer and no more, so whatever a
//! `send` could not write waits here, and everything sent after it must wait
//! behind it or the stream would be reordered. One queue owns that order for
//! every kind of output, so "bytes, then a file, then more bytes, then fds
//! with a message" goes out exactly so, one system call at a time
//! ([`OutputQueue::write_to`]).
//!
//! A file region is never read into user memory: `sendfile` asks the kernel
//! to copy from the file's page cache straight into the socket's send
//! buffer, so one system call replaces a `read` into a buffer plus a `write`
//! out of it (two copies across the user/kernel boundary become none).
//!
//! Bounds: the queue's length counts file regions' unsent bytes too (the
//! connection's output limit applies to both); at most [`MAX_QUEUED_FILES`]
//! regions (each holds an open file) and [`MAX_QUEUED_FDS`] passed fds wait
//! at once.
//!
//! While a file streams out over TCP the connection corks the socket
//! (`TCP_CORK`): when the reader, not the network, sets the pace, each window
//! update would otherwise release a small segment, and the reader pays per
//! packet; corked, only full segments go out (measured on loopback against
//! nginx with `tcp_nopush`: 0.78x its MiB/s uncorked, 0.88-1.0x corked).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::buffer::Buffer;
use crate::sys;

/// Most file regions one connection may have queued at once (each holds an
/// open file); [`Connection::send_file`](super::Connection::send_file)
/// refuses more.
pub const MAX_QUEUED_FILES: usize = 16;

/// At most this many passed fds wait in one connection's queue;
/// [`Connection::send_fds`](super::Connection::send_fds) refuses more.
pub const MAX_QUEUED_FDS: usize = 1024;

/// Linux sends at most this much per `sendfile` call.
const SENDFILE_MAX: u64 = 0x7fff_f000;

/// Where queued output goes: a socket, or (in tests) anything that takes
/// bytes the way a socket does, a part at a time.
pub(crate) trait Sink {
    /// Writes from `bufs`, with `fds` passed along with the first byte (none
    /// if empty); the bytes taken.
    fn send(&mut self, bufs: &[IoSlice<'_>], fds: &[BorrowedFd<'_>]) -> io::Result<usize>;
    /// Sends up to `count` bytes of `file` from `*offset`, advancing it; the
    /// bytes taken (0: the file ended).
    fn send_file(&mut self, file: &File, offset: &mut u64, count: usize) -> io::Result<usize>;
}

/// A connected socket as a [`Sink`].
pub(crate) struct SocketSink<'a>(pub(crate) BorrowedFd<'a>);

impl Sink for SocketSink<'_> {
    fn send(&mut self, bufs: &[IoSlice<'_>], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        if fds.is_empty() { sys::send_vectored(self.0, bufs) } else { sys::send_with_fds(self.0, bufs, fds) }
    }

    fn send_file(&mut self, file: &File, offset: &mut u64, count: usize) -> io::Result<usize> {
        sys::send_file(self.0, file.as_fd(), offset, count)
    }
}

/// One piece of the stream.
enum Segment {
    Bytes(Buffer),
    File { file: Arc<File>, offset: u64, left: u64 },
}

/// Fds to pass with the byte at stream offset `at`.
struct FdBatch {
    at: u64,
    fds: Vec<OwnedFd>,
}

/// What other threads can see of a connection's output: the bytes queued
/// (as of the loop's last change to the queue) and the bytes handles have
/// sent that the loop has not queued yet. `ConnectionHandle::try_send`
/// bounds their sum.
#[derive(Debug, Default)]
pub(crate) struct OutputGauge {
    pub(crate) queued: AtomicUsize,
    pub(crate) in_flight: AtomicUsize,
}

impl OutputGauge {
    /// Bytes queued or on their way to the queue.
    pub(crate) fn total(&self) -> usize {
        self.queued.load(Relaxed).saturating_add(self.in_flight.load(Relaxed))
    }
}

/// The queued part of a connection's outgoing stream.
#[derive(Default)]
pub(crate) struct OutputQueue {
    segments: VecDeque<Segment>,
    /// Stream bytes the kernel has taken: the offset of the front byte.
    sent: u64,
    /// Bytes queued, file regions' unsent bytes included.
    len: usize,
    files: usize,
    fd_batches: VecDeque<FdBatch>,
    fds: usize,
    /// `len`, published for other threads.
    gauge: Arc<OutputGauge>,
}

impl OutputQueue {
    /// Bytes queued (file regions' unsent bytes included).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn set_len(&mut self, len: usize) {
        self.len = len;
        self.gauge.queued.store(len, Relaxed);
    }

    /// The queue's length as other threads see it.
    pub(crate) fn gauge(&self) -> &Arc<OutputGauge> {
        &self.gauge
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// File regions queued.
    pub(crate) fn files(&self) -> usize {
        self.files
    }

    /// Passed fds waiting for their byte.
    pub(crate) fn queued_fds(&self) -> usize {
        self.fds
    }

    /// Counts `n` bytes written straight to the socket, past an empty queue
    /// (so fds queued later know where in the stream they go).
    pub(crate) fn wrote_directly(&mut self, n: usize) {
        debug_assert!(self.is_empty(), "a direct write past queued output reorders the stream");
        self.sent += n as u64;
    }

    /// The bytes segment at the back, new if the back is a file.
    fn tail(&mut self) -> &mut Buffer {
        if !matches!(self.segments.back(), Some(Segment::Bytes(_))) {
            self.segments.push_back(Segment::Bytes(Buffer::new()));
        }
        match self.segments.back_mut() {
            Some(Segment::Bytes(buffer)) => buffer,
            _ => unreachable!("a bytes segment was just pushed"),
        }
    }

    /// Queues the bytes of `slices` after the first `skip` (which went out
    /// already).
    pub(crate) fn push_slices(&mut self, slices: &[IoSlice<'_>], mut skip: usize) {
        if slices.iter().map(|s| s.len()).sum::<usize>() <= skip {
            return; // nothing left: no empty segment
        }
        let tail = self.tail();
        let mut added = 0;
        for slice in slices {
            let part = &slice[skip.min(slice.len())..];
            skip = skip.saturating_sub(slice.len());
            tail.append(part);
            added += part.len();
        }
        self.set_len(self.len + added);
    }

    /// Queues `data` after its first `skip` bytes, without a copy when it
    /// becomes a segment of its own.
    pub(crate) fn push_vec(&mut self, data: Vec<u8>, skip: usize) {
        let added = data.len() - skip;
        match self.segments.back_mut() {
            Some(Segment::Bytes(tail)) if !tail.is_empty() => tail.append(&data[skip..]),
            _ => self.segments.push_back(Segment::Bytes(Buffer::from_vec(data, skip))),
        }
        self.set_len(self.len + added);
    }

    /// Queues `len` bytes of `file` from `offset`.
    pub(crate) fn push_file(&mut self, file: Arc<File>, offset: u64, len: u64) {
        self.segments.push_back(Segment::File { file, offset, left: len });
        self.set_len(self.len.saturating_add(usize::try_from(len).unwrap_or(usize::MAX)));
        self.files += 1;
    }

    /// Queues `data` (not empty) with `fds` passed along with its first byte.
    pub(crate) fn push_fds(&mut self, fds: Vec<OwnedFd>, data: &[u8]) {
        debug_assert!(!data.is_empty(), "fds travel with a byte");
        let at = self.sent + self.len as u64;
        self.fds += fds.len();
        self.fd_batches.push_back(FdBatch { at, fds });
        self.push_slices(&[IoSlice::new(data)], 0);
    }

    /// One write from the front of the queue to `sink`: at most `max` bytes
    /// (a file region, which costs no copy in user space, at least
    /// `file_min`); bytes stop where the next passed fds begin, and those go
    /// with their byte. Returns the bytes the sink took. A file that ends
    /// early (it shrank after it was queued) is `UnexpectedEof`: the peer was
    /// promised bytes that do not exist.
    pub(crate) fn write_to(
        &mut self,
        sink: &mut impl Sink,
        max: usize,
        file_min: usize,
    ) -> io::Result<usize> {
        let Some(front) = self.segments.front_mut() else { return Ok(0) };
        let n = match front {
            Segment::File { file, offset, left } => {
                let count = (*left).min(SENDFILE_MAX).min(max.max(file_min).max(1) as u64) as usize;
                let n = sink.send_file(file, offset, count)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("file ended {left} bytes early (it shrank after it was queued)"),
                    ));
                }
                *left -= n as u64;
                if *left == 0 {
                    self.segments.pop_front();
                    self.files -= 1;
                }
                n
            }
            Segment::Bytes(buffer) => {
                let mut limit = max.max(1).min(buffer.len());
                let mut fds: Vec<BorrowedFd<'_>> = Vec::new();
                match self.fd_batches.front() {
                    Some(batch) if batch.at == self.sent => {
                        fds = batch.fds.iter().map(AsFd::as_fd).collect();
                        if let Some(next) = self.fd_batches.get(1) {
                            limit = limit.min((next.at - self.sent) as usize);
                        }
                    }
                    Some(batch) => limit = limit.min((batch.at - self.sent) as usize),
                    None => {}
                }
                let n = sink.send(&[IoSlice::new(&buffer.peek()[..limit])], &fds)?;
                if n > 0 && !fds.is_empty() {
                    // The peer has its copies; ours close.
                    if let Some(batch) = self.fd_batches.pop_front() {
                        self.fds -= batch.fds.len();
                    }
                }
                buffer.consume(n);
                if buffer.is_empty() {
                    self.segments.pop_front();
                }
                n
            }
        };
        self.sent += n as u64;
        self.set_len(self.len - n);
        Ok(n)
    }

    /// Drops everything queued (closing the files and fds nobody else
    /// holds); the bytes dropped.
    pub(crate) fn clear(&mut self) -> usize {
        let dropped = self.len;
        let gauge = Arc::clone(&self.gauge);
        *self = OutputQueue { sent: self.sent, gauge, ..OutputQueue::default() };
        self.set_len(0);
        dropped
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsFd;

    use super::*;

    /// A socket that takes at most `per_call` bytes per call and records
    /// what it got: the stream, and at which offsets fds arrived.
    #[derive(Default)]
    struct Recorder {
        per_call: usize,
        stream: Vec<u8>,
        fds_at: Vec<(usize, usize)>,
        calls: usize,
    }

    impl Sink for Recorder {
        fn send(&mut self, bufs: &[IoSlice<'_>], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
            self.calls += 1;
            let data: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            let n = data.len().min(self.per_call);
            if n > 0 && !fds.is_empty() {
                self.fds_at.push((self.stream.len(), fds.len()));
            }
            self.stream.extend_from_slice(&data[..n]);
            Ok(n)
        }

        fn send_file(&mut self, file: &File, offset: &mut u64, count: usize) -> io::Result<usize> {
            use std::os::unix::fs::FileExt;
            self.calls += 1;
            let mut buf = vec![0; count.min(self.per_call)];
            let n = file.read_at(&mut buf, *offset)?;
            *offset += n as u64;
            self.stream.extend_from_slice(&buf[..n]);
            Ok(n)
        }
    }

    fn temp_file(contents: &[u8]) -> Arc<File> {
        // Unique per call: tests run in parallel threads of one process.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("muxloop-output-{}-{n}", std::process::id()));
        std::fs::File::create(&path).unwrap().write_all(contents).unwrap();
        let file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        Arc::new(file)
    }

    fn drain(queue: &mut OutputQueue, sink: &mut Recorder, max: usize) {
        for _ in 0..10_000 {
            if queue.is_empty() {
                return;
            }
            queue.write_to(sink, max, 0).unwrap();
        }
        panic!("the queue did not drain");
    }

    /// Bytes, a file region, more bytes, fds with a message, a vector:
    /// whatever sizes the sink takes, the stream comes out in the order it
    /// was queued, the fds with the first byte of their message, and the
    /// length counts down to zero.
    #[test]
    fn the_stream_keeps_its_order_whatever_the_sink_takes() {
        let file = temp_file(b"FILE-CONTENTS");
        let (a, b) = sys::socketpair().unwrap();
        for per_call in [1, 2, 3, 5, 7, 64, 1 << 20] {
            for max in [1, 4, 1 << 20] {
                let mut queue = OutputQueue::default();
                queue.wrote_directly(3); // "abc" went out before anything was queued
                queue.push_slices(&[IoSlice::new(b"head-"), IoSlice::new(b"more-")], 2);
                queue.push_file(Arc::clone(&file), 5, 8); // "CONTENTS"
                queue.push_slices(&[IoSlice::new(b"-tail")], 0);
                queue.push_fds(vec![a.as_fd().try_clone_to_owned().unwrap()], b"<fds>");
                queue.push_fds(
                    vec![a.as_fd().try_clone_to_owned().unwrap(), b.as_fd().try_clone_to_owned().unwrap()],
                    b"<two>",
                );
                queue.push_vec(b"xxvec".to_vec(), 2);
                assert_eq!((queue.len(), queue.files(), queue.queued_fds()), (34, 1, 3));
                let mut sink = Recorder { per_call, ..Recorder::default() };
                drain(&mut queue, &mut sink, max);
                let label = format!("per call {per_call}, max {max}");
                assert_eq!(sink.stream, b"ad-more-CONTENTS-tail<fds><two>vec", "{label}");
                assert_eq!(sink.fds_at, [(21, 1), (26, 2)], "{label}: fds arrive with their byte");
                assert_eq!((queue.len(), queue.files(), queue.queued_fds()), (0, 0, 0), "{label}");
            }
        }
    }

    /// One call never mixes two messages' fds, and never sends past `max`.
    #[test]
    fn a_write_stops_where_the_next_fds_begin_and_at_max() {
        let (a, _b) = sys::socketpair().unwrap();
        let mut queue = OutputQueue::default();
        queue.push_slices(&[IoSlice::new(b"0123456789")], 0);
        queue.push_fds(vec![a.as_fd().try_clone_to_owned().unwrap()], b"abc");
        let mut sink = Recorder { per_call: 1 << 20, ..Recorder::default() };
        assert_eq!(queue.write_to(&mut sink, 4, 0).unwrap(), 4, "max");
        assert_eq!(queue.write_to(&mut sink, 100, 0).unwrap(), 6, "up to the fds' byte");
        assert!(sink.fds_at.is_empty());
        assert_eq!(queue.write_to(&mut sink, 100, 0).unwrap(), 3);
        assert_eq!(sink.fds_at, [(10, 1)]);
    }

    /// A file region goes at least `file_min` per call (sendfile costs no
    /// copy), and a file that shrank is an error, not a short stream.
    #[test]
    fn files_take_at_least_file_min_and_a_short_file_fails() {
        let mut queue = OutputQueue::default();
        queue.push_file(temp_file(&[7u8; 100]), 0, 100);
        let mut sink = Recorder { per_call: 1 << 20, ..Recorder::default() };
        assert_eq!(queue.write_to(&mut sink, 10, 64).unwrap(), 64);
        assert_eq!(queue.write_to(&mut sink, 10, 64).unwrap(), 36);
        assert!(queue.is_empty());
        queue.push_file(temp_file(&[1u8; 10]), 0, 20);
        assert_eq!(queue.write_to(&mut sink, 100, 0).unwrap(), 10);
        let err = queue.write_to(&mut sink, 100, 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    /// Clearing drops what is queued and keeps the stream position.
    #[test]
    fn clear_reports_what_it_dropped() {
        let (a, _b) = sys::socketpair().unwrap();
        let mut queue = OutputQueue::default();
        queue.wrote_directly(5);
        queue.push_slices(&[IoSlice::new(b"abc")], 0);
        queue.push_file(temp_file(b"0123456789"), 0, 10);
        queue.push_fds(vec![a.as_fd().try_clone_to_owned().unwrap()], b"x");
        assert_eq!(queue.clear(), 14);
        assert_eq!((queue.len(), queue.files(), queue.queued_fds()), (0, 0, 0));
        assert!(queue.is_empty());
        queue.push_fds(vec![a.as_fd().try_clone_to_owned().unwrap()], b"y");
        let mut sink = Recorder { per_call: 10, ..Recorder::default() };
        queue.write_to(&mut sink, 10, 0).unwrap();
        assert_eq!(sink.fds_at, [(0, 1)], "fds queued after a clear still go with their byte");
    }
}
