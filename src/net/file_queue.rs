//! The file regions queued on a [`Connection`](super::Connection)'s output,
//! sent with `sendfile(2)`: zero-copy output.
//!
//! A connection's output is a queue of bytes *and* file regions, in the
//! order they were sent. The bytes before the first file live in the
//! connection's output buffer; each queued file carries the bytes sent after
//! it (`after`), so `send(head) · send_file(f) · send(next)` goes out as
//! head, then the file, then next.
//!
//! A file region is never read into user memory: `sendfile` asks the kernel
//! to copy from the file's page cache straight into the socket's send
//! buffer, so one system call replaces a `read` into a buffer plus a `write`
//! out of it (two copies across the user/kernel boundary become none).
//!
//! While a file streams out over TCP the connection corks the socket
//! (`TCP_CORK`): when the reader, not the network, sets the pace, each window
//! update would otherwise release a small segment, and the reader pays per
//! packet; corked, only full segments go out (measured on loopback against
//! nginx with `tcp_nopush`: 0.78x its MiB/s uncorked, 0.88-1.0x corked).
//!
//! Bounds: each queued region holds an open fd, so a connection holds at
//! most [`MAX_QUEUED_FILES`]; the regions' bytes count toward
//! `queued_output()` and the output limit like queued bytes do.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use crate::buffer::Buffer;
use crate::sys;

/// Most file regions one connection may have queued at once (each holds an
/// fd); [`Connection::send_file`](super::Connection::send_file) refuses more.
pub const MAX_QUEUED_FILES: usize = 16;

/// Linux sends at most this much per `sendfile` call.
const SENDFILE_MAX: u64 = 0x7fff_f000;

/// One queued region and the bytes queued behind it.
struct QueuedFile {
    file: Arc<File>,
    offset: u64,
    left: u64,
    after: Buffer,
}

/// The file regions of one connection, oldest first.
#[derive(Default)]
pub(crate) struct FileQueue {
    files: VecDeque<QueuedFile>,
}

impl FileQueue {
    /// Whether no region is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// How many regions are queued.
    pub(crate) fn count(&self) -> usize {
        self.files.len()
    }

    /// File bytes not yet sent plus the bytes queued behind the files.
    pub(crate) fn bytes(&self) -> usize {
        let total: u64 = self.files.iter().map(|f| f.left + f.after.len() as u64).sum();
        usize::try_from(total).unwrap_or(usize::MAX)
    }

    /// Queues `len` bytes of `file` from `offset`.
    pub(crate) fn push(&mut self, file: Arc<File>, offset: u64, len: u64) {
        self.files.push_back(QueuedFile { file, offset, left: len, after: Buffer::new() });
    }

    /// Where bytes sent now must go to keep order: behind the last file
    /// (`None` if no file is queued: the connection's own buffer).
    pub(crate) fn tail(&mut self) -> Option<&mut Buffer> {
        self.files.back_mut().map(|f| &mut f.after)
    }

    /// One `sendfile` of at most `max` bytes of the oldest region to
    /// `socket` (`max`: the connection's per-pass budget). Returns the bytes
    /// sent and, once the region is complete, the bytes that were queued
    /// behind it (they are next). A file that ends early (it shrank after it
    /// was queued) is an `UnexpectedEof` error: the peer was promised bytes
    /// that do not exist, so the connection cannot continue.
    pub(crate) fn send_front(&mut self, socket: RawFd, max: usize) -> io::Result<(usize, Option<Buffer>)> {
        let Some(front) = self.files.front_mut() else { return Ok((0, None)) };
        let mut sent = 0;
        if front.left > 0 {
            let count = front.left.min(SENDFILE_MAX).min(max.max(1) as u64) as usize;
            sent = sys::sendfile(socket, front.file.as_raw_fd(), &mut front.offset, count)?;
            if sent == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("file ended {} bytes early (it shrank after it was queued)", front.left),
                ));
            }
            front.left -= sent as u64;
        }
        if front.left > 0 {
            return Ok((sent, None));
        }
        let done = self.files.pop_front().map(|f| f.after);
        Ok((sent, done))
    }

    /// Drops every region (closing the fds nobody else holds); returns the
    /// bytes dropped.
    pub(crate) fn clear(&mut self) -> usize {
        let bytes = self.bytes();
        self.files.clear();
        bytes
    }
}
