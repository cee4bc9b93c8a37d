//! The thread-local block policy: memory follows activity, not connections.
//!
//! A server with 10,000 mostly idle connections should not hold 10,000 read
//! blocks. So each thread keeps at most one recycled block, and buffers pass
//! it along at three documented points, all on the owner's thread:
//!
//! * **adopt**: an empty buffer (capacity 0) that reads from an fd takes the
//!   thread's block (creating it the first time), so the kernel writes
//!   straight into it; a read that brings nothing gives it straight back.
//! * **release**: [`consume_all`](Buffer::consume_all) (and so a
//!   [`consume`](Buffer::consume) of everything) gives up storage larger than
//!   [`SHRINK_THRESHOLD`]: it becomes the thread's block if the slot is free
//!   and the size is sensible, otherwise it is freed. The buffer is then like
//!   a new one.
//! * **settle**: [`settle`](Buffer::settle), which owners call when they are
//!   done with the input for now, moves a small leftover (half a message) out
//!   of a large block and releases the block.
//!
//! An echo or HTTP server therefore passes one block from connection to
//! connection, and a connection at rest holds only the bytes it has not
//! processed. Nothing here is shared between threads.

use std::cell::RefCell;

use super::{Buffer, CHEAP_PREPEND, SHRINK_THRESHOLD, SPILL_SIZE};

/// Storage up to this size may be kept as the thread's recycled block.
const RECYCLE_MAX: usize = 1024 * 1024;
/// The size of a new block: a spill's worth after the prepend area.
pub(super) const BLOCK_SIZE: usize = CHEAP_PREPEND + SPILL_SIZE;

thread_local! {
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

impl Buffer {
    /// Adopt: gives a buffer without storage the thread's block (or a new
    /// one) to read into.
    pub(super) fn adopt_block(&mut self) {
        debug_assert!(self.storage.is_empty());
        let block = take_recycled().unwrap_or_else(|| vec![0; BLOCK_SIZE]);
        *self = Buffer { storage: block, read_index: CHEAP_PREPEND, write_index: CHEAP_PREPEND };
    }

    /// Release: gives the storage up (readable bytes included) and leaves
    /// the buffer like a new one.
    pub(super) fn release_storage(&mut self) {
        recycle(std::mem::take(&mut self.storage));
        *self = Buffer::new();
    }

    /// Moves a small leftover (at most a quarter of the storage) out of
    /// storage larger than [`SHRINK_THRESHOLD`] into a buffer of its own size,
    /// and releases the large storage (see the [module docs](crate::buffer)).
    /// Owners call it when they are done with the input for now, e.g. after
    /// the message callback; the readable bytes are unchanged.
    pub fn settle(&mut self) {
        if self.storage.len() > SHRINK_THRESHOLD && self.len() <= self.storage.len() / 4 {
            let mut small = Buffer::with_capacity(self.len());
            small.append(self.peek());
            recycle(std::mem::replace(self, small).storage);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys;
    use std::io;
    use std::os::fd::AsFd;

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
        assert_eq!(second.read_fd(reader.as_fd()).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        assert_eq!(second.capacity(), 0, "a read that got nothing does not keep the block");
        sys::write(writer.as_fd(), b"straight into the block").unwrap();
        assert_eq!(second.read_fd(reader.as_fd()).unwrap(), 23);
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
}
