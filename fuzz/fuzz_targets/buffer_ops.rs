//! `Buffer` operations decoded from the fuzzer's bytes, each mirrored on a
//! `VecDeque<u8>` model; contents and invariants are checked after every
//! step. (fd I/O is covered by `tests/buffer.rs`; system calls would
//! slow the fuzzer down a hundredfold.)

#![no_main]

use std::collections::VecDeque;
use std::io::{Read as _, Write as _};

use libfuzzer_sys::fuzz_target;
use muxloop::buffer::{Buffer, CHEAP_PREPEND, SHRINK_THRESHOLD};

/// Reads operation arguments off the input; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        b
    }

    fn u16(&mut self) -> usize {
        usize::from(self.byte()) << 8 | usize::from(self.byte())
    }

    /// A length: small, or (1 in 16) up to 64 KiB, past the block sizes.
    fn len(&mut self) -> usize {
        let n = self.u16();
        if n >> 12 == 0xf { (n & 0xfff) * 16 } else { n % 64 }
    }

    /// `n` bytes: taken from the input while it lasts, then a pattern.
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let take = n.min(self.0.len());
        let mut out = self.0[..take].to_vec();
        self.0 = &self.0[take..];
        out.extend((take..n).map(|i| (i % 251) as u8));
        out
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > hay.len() {
        return None;
    }
    (from..=hay.len()).find(|&i| hay[i..].starts_with(needle))
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mut buf = Buffer::new();
    let mut model = VecDeque::new();
    // The most bytes the buffer was asked to hold at once: bounds its storage.
    let mut high_water = 0;
    while !input.0.is_empty() {
        let op = input.byte() % 15;
        let mut drained = false;
        match op {
            0 => {
                let n = input.len();
                if model.len() + n <= 1 << 20 {
                    let bytes = input.bytes(n);
                    buf.append(&bytes);
                    model.extend(&bytes);
                }
            }
            1 => {
                let n = input.len();
                buf.consume(n);
                model.drain(..n.min(model.len()));
                drained = true;
            }
            2 => {
                let n = input.len();
                let got = Buffer::take(&mut buf, n);
                let expected: Vec<u8> = model.drain(..n.min(model.len())).collect();
                assert_eq!(got, expected, "take");
                drained = true;
            }
            3 => {
                let n = input.len();
                if model.len() + n <= 1 << 20 {
                    let bytes = input.bytes(n);
                    buf.prepend(&bytes);
                    for &b in bytes.iter().rev() {
                        model.push_front(b);
                    }
                }
            }
            4 => {
                let kind = input.byte() % 6;
                let v = u64::from_be_bytes(input.bytes(8).try_into().unwrap());
                match kind {
                    0 => buf.append_u16(v as u16),
                    1 => buf.append_u32(v as u32),
                    2 => buf.append_u64(v),
                    3 => buf.prepend_u16(v as u16),
                    4 => buf.prepend_u32(v as u32),
                    _ => buf.prepend_u64(v),
                }
                let all = v.to_be_bytes();
                let bytes = &all[8 - [2, 4, 8][usize::from(kind % 3)]..];
                if kind < 3 {
                    model.extend(bytes);
                } else {
                    for &b in bytes.iter().rev() {
                        model.push_front(b);
                    }
                }
            }
            5 => {
                let front: Vec<u8> = model.iter().take(8).copied().collect();
                let be = |n: usize| {
                    (front.len() >= n)
                        .then(|| front[..n].iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
                };
                assert_eq!(buf.peek_u16().map(u64::from), be(2));
                assert_eq!(buf.peek_u32().map(u64::from), be(4));
                assert_eq!(buf.peek_u64(), be(8));
                let (size, got) = match input.byte() % 3 {
                    0 => (2, buf.read_u16().map(u64::from)),
                    1 => (4, buf.read_u32().map(u64::from)),
                    _ => (8, buf.read_u64()),
                };
                assert_eq!(got, be(size), "read_u{}", size * 8);
                if got.is_some() {
                    model.drain(..size);
                    drained = true;
                }
            }
            6 | 7 => {
                let hay: Vec<u8> = model.iter().copied().collect();
                let from = input.u16();
                let from =
                    if hay.len() > 4096 { hay.len() - 4096 + from % 4100 } else { from % (hay.len() + 3) };
                let needle_len = usize::from(input.byte() % 5);
                let needle = input.bytes(needle_len);
                let byte = input.byte();
                assert_eq!(buf.find_from(&needle, from), find(&hay, &needle, from), "find_from");
                assert_eq!(buf.find_byte_from(byte, from), find(&hay, &[byte], from), "find_byte_from");
                assert_eq!(buf.find_crlf_from(from), find(&hay, b"\r\n", from), "find_crlf_from");
                assert_eq!(buf.find_eol_from(from), find(&hay, b"\n", from), "find_eol_from");
                if hay.len() <= 4096 {
                    assert_eq!(buf.find(&needle), find(&hay, &needle, 0), "find");
                    assert_eq!(buf.find_byte(byte), find(&hay, &[byte], 0), "find_byte");
                    assert_eq!(buf.find_crlf(), find(&hay, b"\r\n", 0), "find_crlf");
                    assert_eq!(buf.find_eol(), find(&hay, b"\n", 0), "find_eol");
                }
            }
            8 => {
                let n = input.len();
                if model.len() + n <= 1 << 20 {
                    high_water = high_water.max(model.len() + n);
                    buf.ensure_writable(n);
                    assert!(buf.writable_bytes() >= n, "ensure_writable");
                    let fill = input.bytes(n);
                    buf.writable_mut()[..n].copy_from_slice(&fill);
                    let k = input.len();
                    buf.commit(k.min(n));
                    model.extend(&fill[..k.min(n)]);
                }
            }
            9 => {
                let before = buf.capacity();
                buf.settle();
                if before > SHRINK_THRESHOLD && model.len() <= before / 4 {
                    assert!(buf.capacity() <= CHEAP_PREPEND + model.len(), "settle kept large storage");
                } else {
                    assert_eq!(buf.capacity(), before, "settle moved a large leftover");
                }
            }
            10 => {
                buf.consume_all();
                model.clear();
                drained = true;
            }
            11 => {
                let junk_len = usize::from(input.byte() % 32);
                let mut data = input.bytes(junk_len);
                data.extend(model.iter());
                high_water = high_water.max(data.len());
                let start = junk_len + usize::from(input.byte() % 4) * usize::from(model.is_empty());
                buf = Buffer::from_vec(data, start);
            }
            12 => {
                let copy = buf.clone();
                assert_eq!(copy.peek(), buf.peek(), "clone");
                buf = copy;
            }
            13 => {
                let n = input.len();
                let bytes = input.bytes(n);
                if model.len() + n <= 1 << 20 {
                    buf.write_all(&bytes).unwrap();
                    model.extend(&bytes);
                }
            }
            _ => {
                let mut out = vec![0u8; input.len()];
                let n = buf.read(&mut out).unwrap();
                let expected: Vec<u8> = model.drain(..out.len().min(model.len())).collect();
                assert_eq!(&out[..n], &expected[..], "io::Read");
                drained = true;
            }
        }
        let model = model.make_contiguous();
        assert_eq!(buf.len(), model.len(), "len after op {op}");
        assert!(buf.peek() == &model[..], "content after op {op}");
        assert_eq!(buf.prependable_bytes() + buf.len() + buf.writable_bytes(), buf.capacity(), "regions");
        high_water = high_water.max(model.len());
        let bound = 2 * (high_water + CHEAP_PREPEND) + 2 * CHEAP_PREPEND;
        assert!(buf.capacity() <= bound, "capacity {} > {bound}", buf.capacity());
        if drained && buf.is_empty() {
            assert!(buf.capacity() <= SHRINK_THRESHOLD, "a drained buffer keeps {} bytes", buf.capacity());
        }
    }
});
