//! Small, exact `Buffer` tests that kill mutants `cargo mutants` found
//! surviving `tests/buffer_model.rs` and the unit tests (see
//! `docs/mutants.md`): behaviour the random model does not pin down because
//! it is not about the bytes (how storage is kept or given up, what `Debug`
//! prints).

use muxloop::Buffer;
use muxloop::buffer::{CHEAP_PREPEND, SHRINK_THRESHOLD};

/// `consume_all` keeps storage up to exactly `SHRINK_THRESHOLD` bytes and
/// gives up anything larger (a `4 * 1024` -> `4 + 1024` or `>` -> `>=`
/// mutant moves the boundary).
#[test]
fn consume_all_keeps_storage_up_to_the_threshold() {
    for storage in [CHEAP_PREPEND + 1, 2 * 1024, SHRINK_THRESHOLD - 1, SHRINK_THRESHOLD] {
        let mut buf = Buffer::with_capacity(storage - CHEAP_PREPEND);
        assert_eq!(buf.capacity(), storage);
        buf.append(&[7]);
        buf.consume_all();
        assert_eq!(buf.capacity(), storage, "storage of {storage} bytes is kept after a drain");
        assert_eq!(buf.prependable_bytes(), CHEAP_PREPEND, "indices reset to the prepend area");
        assert_eq!(buf.writable_bytes(), storage - CHEAP_PREPEND);
    }
    for storage in [SHRINK_THRESHOLD + 1, 64 * 1024] {
        let mut buf = Buffer::with_capacity(storage - CHEAP_PREPEND);
        buf.append(&[7]);
        buf.consume_all();
        assert_eq!(buf.capacity(), 0, "storage of {storage} bytes is given up after a drain");
        assert!(buf.is_empty());
    }
}

/// `Debug` shows the three regions, not just `Buffer`.
#[test]
fn debug_names_the_three_regions() {
    let mut buf = Buffer::with_capacity(32);
    buf.append(b"abc");
    let shown = format!("{buf:?}");
    assert_eq!(shown, format!("Buffer {{ readable: 3, writable: 29, prependable: {CHEAP_PREPEND} }}"));
}

/// `settle` moves a small leftover out of storage only when the storage is
/// larger than `SHRINK_THRESHOLD`; storage of exactly that size is kept.
#[test]
fn settle_keeps_storage_up_to_the_threshold() {
    for (storage, kept) in [(SHRINK_THRESHOLD, true), (SHRINK_THRESHOLD + 1, false)] {
        let mut buf = Buffer::with_capacity(storage - CHEAP_PREPEND);
        assert_eq!(buf.capacity(), storage);
        buf.append(&[7; 10]);
        buf.settle();
        assert_eq!(buf.peek(), &[7; 10], "the bytes are unchanged");
        assert_eq!(
            buf.capacity() == storage,
            kept,
            "storage of {storage} bytes: {} after settle",
            buf.capacity()
        );
    }
}
