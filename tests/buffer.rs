//! Model-based test of `Buffer`: thousands of seeded random operation
//! sequences, each step mirrored on a `VecDeque<u8>` (the model), with the
//! contents and the memory invariants checked after every step.
//!
//! Covers the byte queue (append, consume, take, prepend small and large,
//! big-endian integers, searches, the writable-space API, from_vec), the
//! memory policy (settle, consume_all, two buffers sharing the thread's
//! recycled block) and fd I/O over a non-blocking socketpair, including
//! reads larger than the writable space (the spill).
//!
//! Then small, exact tests (the end of this file) for what the random model
//! does not pin down because it is not about the bytes: how storage is kept
//! or given up, what `Debug` prints. They were written to kill mutants that
//! survived the model and the unit tests (`docs/mutants.md` lists each).
//!
//! `BUFFER_MODEL_SEQUENCES=N` and `BUFFER_MODEL_SEED=S` change the run; a
//! failure names the seed and step that reproduce it.

use std::collections::VecDeque;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsFd, OwnedFd};

use muxloop::buffer::{Buffer, CHEAP_PREPEND, SHRINK_THRESHOLD, SPILL_SIZE};
use muxloop::sys;

/// splitmix64: small, deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// A length: mostly small, sometimes around the block sizes, rarely large.
    fn len(&mut self) -> usize {
        match self.below(100) {
            0..=84 => self.below(40),
            85..=97 => self.below(5000),
            _ => SPILL_SIZE - 100 + self.below(SPILL_SIZE + 200),
        }
    }

    /// Bytes drawn from a small alphabet so searches find things.
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ab\r\n\0\xff";
        // Random for up to 512 bytes, then that block repeated (debug builds
        // are slow at generating 100 KiB byte by byte).
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n.min(512) {
            let r = self.next();
            out.extend((0..8).map(|i| ALPHABET[(r >> (8 * i)) as usize % ALPHABET.len()]));
        }
        while out.len() < n {
            let more = out.len().min(n - out.len());
            out.extend_from_within(..more);
        }
        out.truncate(n);
        out
    }
}

/// One buffer under test, its model and what bounds its storage.
struct Subject {
    buf: Buffer,
    model: VecDeque<u8>,
    /// The most bytes this buffer was ever asked to hold at once.
    high_water: usize,
}

impl Subject {
    fn new() -> Subject {
        Subject { buf: Buffer::new(), model: VecDeque::new(), high_water: 0 }
    }

    fn want(&mut self, bytes: usize) {
        self.high_water = self.high_water.max(bytes);
    }
}

/// The socket pair fd operations use: the buffer reads and writes `near`,
/// the test plays the peer on `far`.
struct Pipe {
    near: OwnedFd,
    far: OwnedFd,
}

impl Pipe {
    fn new() -> Pipe {
        let (near, far) = sys::socketpair().unwrap();
        Pipe { near, far }
    }
}

/// Naive search over the model: the reference for every `find*`.
fn model_find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > hay.len() {
        return None;
    }
    (from..=hay.len()).find(|&i| hay[i..].starts_with(needle))
}

fn check(s: &mut Subject, what: &dyn Fn() -> String, drained_by_this_step: bool) {
    let buf = &s.buf;
    let model = s.model.make_contiguous();
    assert_eq!(buf.len(), model.len(), "len: {}", what());
    assert_eq!(buf.is_empty(), model.is_empty(), "is_empty: {}", what());
    if buf.peek() != model {
        let at = buf.peek().iter().zip(model.iter()).position(|(a, b)| a != b);
        panic!("content differs (first at {at:?}, len {}): {}", model.len(), what());
    }
    assert_eq!(
        buf.prependable_bytes() + buf.len() + buf.writable_bytes(),
        buf.capacity(),
        "regions add up: {}",
        what()
    );
    // Geometric growth and the 64 KiB block bound the storage.
    let bound = 2 * (s.high_water + CHEAP_PREPEND) + 2 * (SPILL_SIZE + CHEAP_PREPEND) + 1024 * 1024;
    assert!(buf.capacity() <= bound, "capacity {} > {bound}: {}", buf.capacity(), what());
    if drained_by_this_step && buf.is_empty() {
        assert!(
            buf.capacity() <= SHRINK_THRESHOLD,
            "a drained buffer keeps {} bytes of storage: {}",
            buf.capacity(),
            what()
        );
    }
}

/// Reads everything the peer has written until `pending` bytes arrived.
fn read_pending(s: &mut Subject, pipe: &Pipe, mut pending: usize, recv: bool, what: &dyn Fn() -> String) {
    let mut calls = 0;
    while pending > 0 {
        calls += 1;
        assert!(calls < 10_000, "read loop does not progress: {}", what());
        let writable_before = s.buf.writable_bytes();
        let was_unallocated = s.buf.capacity() == 0;
        let result = if recv { s.buf.recv_fd(pipe.near.as_fd()) } else { s.buf.read_fd(pipe.near.as_fd()) };
        match result {
            Ok(0) => panic!("unexpected EOF: {}", what()),
            Ok(n) => {
                assert!(n <= pending, "read more than was sent: {}", what());
                // Without storage it reads into the thread's block (up to
                // 1 MiB if recycled) plus the spill.
                let space = if was_unallocated { 1024 * 1024 } else { writable_before };
                assert!(n <= space + SPILL_SIZE, "one read took {n} > space {space} + spill: {}", what());
                pending -= n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => panic!("read: {e}: {}", what()),
        }
    }
}

/// Runs one sequence of `steps` random operations on two buffers.
fn run_sequence(seed: u64, steps: usize) {
    let mut rng = Rng(seed);
    let mut subjects = [Subject::new(), Subject::new()];
    let pipes = [Pipe::new(), Pipe::new()];
    for pipe in &pipes {
        // Room for the largest write below without blocking.
        sys::set_buffer_sizes(pipe.far.as_fd(), Some(512 * 1024), Some(512 * 1024)).unwrap();
        sys::set_buffer_sizes(pipe.near.as_fd(), Some(512 * 1024), Some(512 * 1024)).unwrap();
    }
    for step in 0..steps {
        let which = rng.below(2);
        let op = rng.below(24);
        let s = &mut subjects[which];
        let pipe = &pipes[which];
        let what = || format!("seed {seed:#x} step {step} buffer {which} op {op}");
        let mut drained = false;
        match op {
            0..=2 => {
                let data = {
                    let n = rng.len();
                    rng.bytes(n)
                };
                s.buf.append(&data);
                s.model.extend(&data);
            }
            3..=4 => {
                // Keep sequences cheap: a long queue is mostly drained.
                let n = if s.model.len() > 128 * 1024 {
                    s.model.len() - 1000
                } else {
                    rng.below(s.model.len() + 10)
                };
                s.buf.consume(n);
                s.model.drain(..n.min(s.model.len()));
                drained = true;
            }
            5 => {
                let n = rng.below(s.model.len() + 10);
                // `Read::take` (by value) would win method resolution over `Buffer::take`.
                let got = Buffer::take(&mut s.buf, n);
                let expected: Vec<u8> = s.model.drain(..n.min(s.model.len())).collect();
                assert_eq!(got, expected, "take: {}", what());
                drained = true;
            }
            6 => {
                // Small (fits the reserve, usually) or large (moves or grows).
                let n = if rng.chance(70) { rng.below(CHEAP_PREPEND + 1) } else { rng.len() };
                let data = rng.bytes(n);
                s.buf.prepend(&data);
                for &b in data.iter().rev() {
                    s.model.push_front(b);
                }
            }
            7 => {
                let v = rng.next();
                let kind = rng.below(6);
                match kind {
                    0 => s.buf.append_u16(v as u16),
                    1 => s.buf.append_u32(v as u32),
                    2 => s.buf.append_u64(v),
                    3 => s.buf.prepend_u16(v as u16),
                    4 => s.buf.prepend_u32(v as u32),
                    _ => s.buf.prepend_u64(v),
                }
                let bytes = v.to_be_bytes();
                let bytes = &bytes[8 - [2, 4, 8][kind % 3]..];
                if kind < 3 {
                    s.model.extend(bytes);
                } else {
                    for &b in bytes.iter().rev() {
                        s.model.push_front(b);
                    }
                }
            }
            8 => {
                let front: Vec<u8> = s.model.iter().take(8).copied().collect();
                let be = |n: usize| -> Option<u64> {
                    (front.len() >= n)
                        .then(|| front[..n].iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
                };
                assert_eq!(s.buf.peek_u16().map(u64::from), be(2), "peek_u16: {}", what());
                assert_eq!(s.buf.peek_u32().map(u64::from), be(4), "peek_u32: {}", what());
                assert_eq!(s.buf.peek_u64(), be(8), "peek_u64: {}", what());
                let size = [2, 4, 8][rng.below(3)];
                let got = match size {
                    2 => s.buf.read_u16().map(u64::from),
                    4 => s.buf.read_u32().map(u64::from),
                    _ => s.buf.read_u64(),
                };
                assert_eq!(got, be(size), "read_u{}: {}", size * 8, what());
                if got.is_some() {
                    s.model.drain(..size);
                    drained = true;
                }
            }
            9..=11 => {
                let hay: Vec<u8> = s.model.iter().copied().collect();
                // Searches of a long queue start near its end (the naive model
                // search is slow in a debug build).
                let low = hay.len().saturating_sub(4096);
                let from = if rng.chance(10) {
                    hay.len() + rng.below(3)
                } else {
                    low + rng.below(hay.len() - low + 1)
                };
                let needle = if !hay.is_empty() && rng.chance(50) {
                    let at = rng.below(hay.len());
                    hay[at..(at + rng.below(4)).min(hay.len())].to_vec()
                } else {
                    {
                        let n = rng.below(4);
                        rng.bytes(n)
                    }
                };
                let byte = rng.bytes(1)[0];
                let b = &s.buf;
                assert_eq!(
                    b.find_from(&needle, from),
                    model_find(&hay, &needle, from),
                    "find_from: {}",
                    what()
                );
                assert_eq!(b.find(&needle), model_find(&hay, &needle, 0), "find: {}", what());
                assert_eq!(
                    b.find_byte_from(byte, from),
                    model_find(&hay, &[byte], from),
                    "find_byte_from: {}",
                    what()
                );
                assert_eq!(b.find_byte(byte), model_find(&hay, &[byte], 0), "find_byte: {}", what());
                assert_eq!(
                    b.find_crlf_from(from),
                    model_find(&hay, b"\r\n", from),
                    "find_crlf_from: {}",
                    what()
                );
                assert_eq!(b.find_crlf(), model_find(&hay, b"\r\n", 0), "find_crlf: {}", what());
                assert_eq!(b.find_eol_from(from), model_find(&hay, b"\n", from), "find_eol_from: {}", what());
                assert_eq!(b.find_eol(), model_find(&hay, b"\n", 0), "find_eol: {}", what());
                assert_eq!(b.find_from(b"\n", usize::MAX), None, "far past the end: {}", what());
            }
            12..=13 => {
                let n = rng.len();
                s.want(s.model.len() + n);
                s.buf.ensure_writable(n);
                assert!(s.buf.writable_bytes() >= n, "ensure_writable: {}", what());
                let fill = rng.bytes(n);
                s.buf.writable_mut()[..n].copy_from_slice(&fill);
                if rng.chance(20) {
                    // Committing more than there is clamps to the writable space.
                    let room = s.buf.writable_bytes();
                    let rest = rng.bytes(room - n);
                    s.buf.writable_mut()[n..].copy_from_slice(&rest);
                    s.buf.commit(room + 1 + rng.below(100));
                    s.model.extend(&fill);
                    s.model.extend(&rest);
                } else {
                    let k = rng.below(n + 1);
                    s.buf.commit(k);
                    s.model.extend(&fill[..k]);
                }
            }
            14 => {
                if rng.chance(30) {
                    // Large storage around a small (often empty) leftover.
                    s.want(s.model.len() + 2 * SHRINK_THRESHOLD);
                    s.buf.ensure_writable(2 * SHRINK_THRESHOLD);
                }
                let before = s.buf.capacity();
                s.buf.settle();
                if before > SHRINK_THRESHOLD && s.model.len() <= before / 4 {
                    assert!(
                        s.buf.capacity() <= CHEAP_PREPEND + s.model.len(),
                        "settle kept {} bytes for {}: {}",
                        s.buf.capacity(),
                        s.model.len(),
                        what()
                    );
                } else {
                    assert_eq!(s.buf.capacity(), before, "settle left this alone: {}", what());
                }
            }
            15 => {
                s.buf.consume_all();
                s.model.clear();
                drained = true;
            }
            16 => {
                // Adopt a Vec: junk in front (the prependable area), maybe a
                // start past the end.
                let junk = {
                    let n = rng.below(20);
                    rng.bytes(n)
                };
                let content: Vec<u8> = s.model.iter().copied().collect();
                let mut data = junk.clone();
                data.extend(&content);
                let start =
                    if content.is_empty() && rng.chance(50) { data.len() + rng.below(5) } else { junk.len() };
                s.want(data.len());
                s.buf = Buffer::from_vec(data, start);
                assert_eq!(s.buf.prependable_bytes(), junk.len().min(start), "from_vec: {}", what());
            }
            17..=19 => {
                // First, with nothing queued: a read reports WouldBlock,
                // changes nothing, and a buffer without storage does not
                // keep the thread's block.
                if rng.chance(40) {
                    if s.model.is_empty() && rng.chance(50) {
                        s.buf.consume_all();
                    }
                    let empty_before = s.buf.capacity() == 0;
                    let read = if rng.chance(50) { Buffer::recv_fd } else { Buffer::read_fd };
                    let err = read(&mut s.buf, pipe.near.as_fd()).unwrap_err();
                    assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{}", what());
                    if empty_before {
                        assert_eq!(s.buf.capacity(), 0, "a read that got nothing keeps no block: {}", what());
                    }
                    check(s, &what, true);
                }
                // Then the peer sends; the buffer reads it all (spill included).
                let data = {
                    let n =
                        if rng.chance(30) { SPILL_SIZE + rng.below(2 * SPILL_SIZE) } else { rng.len() + 1 };
                    rng.bytes(n)
                };
                let sent = match sys::write(pipe.far.as_fd(), &data) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                    Err(e) => panic!("peer write: {e}"),
                };
                s.want(s.model.len() + sent + 2 * SPILL_SIZE);
                s.model.extend(&data[..sent]);
                let recv = rng.chance(50);
                read_pending(s, pipe, sent, recv, &what);
            }
            20..=21 => {
                // The buffer sends what the socket takes; the peer checks it.
                let send = rng.chance(50);
                let result =
                    if send { s.buf.send_fd(pipe.near.as_fd()) } else { s.buf.write_fd(pipe.near.as_fd()) };
                let n = match result {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                    Err(e) => panic!("write: {e}: {}", what()),
                };
                assert!(n <= s.model.len(), "wrote more than it held: {}", what());
                let expected: Vec<u8> = s.model.drain(..n).collect();
                let mut got = vec![0u8; n];
                let mut off = 0;
                while off < n {
                    match sys::read(pipe.far.as_fd(), &mut got[off..]) {
                        Ok(k) => off += k,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                        Err(e) => panic!("peer read: {e}"),
                    }
                }
                assert!(got == expected, "the peer got other bytes: {}", what());
                drained = n > 0;
            }
            22 => {
                // std::io traits.
                let data = {
                    let n = rng.below(30);
                    rng.bytes(n)
                };
                s.buf.write_all(&data).unwrap();
                s.model.extend(&data);
                let mut out = vec![0u8; rng.below(30)];
                let n = s.buf.read(&mut out).unwrap();
                let expected: Vec<u8> = s.model.drain(..out.len().min(s.model.len())).collect();
                assert_eq!(&out[..n], &expected[..], "io::Read: {}", what());
                drained = true;
            }
            _ => {
                let copy = s.buf.clone();
                assert_eq!(copy.peek(), s.buf.peek(), "clone: {}", what());
                s.buf = copy;
            }
        }
        s.want(s.model.len());
        check(s, &what, drained);
    }
}

#[test]
fn random_sequences_match_the_model() {
    let sequences: u64 =
        std::env::var("BUFFER_MODEL_SEQUENCES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let base: u64 = std::env::var("BUFFER_MODEL_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed);
    for i in 0..sequences {
        run_sequence(base.wrapping_add(i), 120);
    }
}

/// The block policy across two buffers on one thread, step by step: the
/// block one drains is the block the other reads into.
#[test]
fn two_buffers_pass_one_recycled_block() {
    let pipe = Pipe::new();
    let storage_at = |buf: &mut Buffer| {
        let before = buf.prependable_bytes() + buf.len();
        buf.writable_mut().as_ptr() as usize - before
    };
    let mut first = Buffer::new();
    sys::write(pipe.far.as_fd(), b"first").unwrap();
    assert_eq!(first.recv_fd(pipe.near.as_fd()).unwrap(), 5);
    assert_eq!(first.capacity(), CHEAP_PREPEND + SPILL_SIZE, "an empty buffer reads into a block");
    let block = storage_at(&mut first);
    first.consume(5);
    assert_eq!(first.capacity(), 0, "draining gives the block up");

    let mut second = Buffer::new();
    sys::write(pipe.far.as_fd(), b"second").unwrap();
    assert_eq!(second.recv_fd(pipe.near.as_fd()).unwrap(), 6);
    assert_eq!(storage_at(&mut second), block, "the second buffer adopted the same block");
    sys::write(pipe.far.as_fd(), b"again").unwrap();
    assert_eq!(first.recv_fd(pipe.near.as_fd()).unwrap(), 5);
    assert_ne!(storage_at(&mut first), block, "one block, one owner: the first gets a new one");
    second.append(b"-tail");
    second.consume(6);
    second.settle();
    assert_eq!(second.peek(), b"-tail");
    assert!(second.capacity() <= CHEAP_PREPEND + 5, "settle moved the leftover out");
    first.consume_all();
    assert_eq!(first.capacity(), 0);
}

// ---------------------------------------------------------------------------
// Exact tests: storage kept or given up, `Debug` (see `docs/mutants.md`)
// ---------------------------------------------------------------------------

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
