//! The length + type frame decoder, `muxloop::framing`. Property: a byte stream split at
//! arbitrary points decodes to the same frames (and the same refusal) as
//! the whole stream at once, each frame re-encodes to exactly the bytes it
//! came from, and nothing panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use muxloop::Buffer;

use muxloop::framing::{Decoded, HEADER_LEN, decode, encode};

/// Frames decoded so far, and how the stream ended up.
#[derive(Debug, Default, PartialEq, Eq)]
struct Outcome {
    frames: Vec<(u32, Vec<u8>)>,
    too_long: Option<u32>,
    /// Bytes buffered after the last frame (not counted after a refusal:
    /// the connection closes and reads no more).
    left: usize,
}

/// Appends `bytes` and decodes every complete frame, as a message callback
/// would; after a refusal the connection is closed and reads nothing more.
fn feed(input: &mut Buffer, out: &mut Outcome, bytes: &[u8], max_body: usize) {
    if out.too_long.is_some() {
        return;
    }
    input.append(bytes);
    loop {
        let before = input.len();
        match decode(input, max_body) {
            Decoded::Frame { kind, body } => {
                assert!(body.len() <= max_body, "a body over the limit got through");
                assert_eq!(input.len(), before - HEADER_LEN - body.len(), "consumed one frame exactly");
                out.frames.push((kind, body));
            }
            Decoded::Incomplete => {
                assert_eq!(input.len(), before, "an incomplete frame consumes nothing");
                break;
            }
            Decoded::TooLong(len) => {
                assert!(len as usize > max_body);
                out.too_long = Some(len);
                out.left = 0;
                return;
            }
        }
    }
    out.left = input.len();
}

fuzz_target!(|data: &[u8]| {
    let &[limit, cuts, ref rest @ ..] = data else { return };
    let max_body = usize::from(limit) * 4;
    let cut_count = usize::from(cuts % 16).min(rest.len());
    let (cut_bytes, stream) = rest.split_at(cut_count);
    let mut points: Vec<usize> = cut_bytes.iter().map(|&c| usize::from(c) * stream.len() / 256).collect();
    points.push(stream.len());
    points.sort_unstable();

    let mut whole = Outcome::default();
    feed(&mut Buffer::new(), &mut whole, stream, max_body);

    let mut pieces = Outcome::default();
    let mut input = Buffer::new();
    let mut from = 0;
    for &to in &points {
        feed(&mut input, &mut pieces, &stream[from..to], max_body);
        from = to;
    }
    assert_eq!(pieces, whole, "cut at {points:?}");

    // Re-encoding the frames gives back the stream they were decoded from.
    let encoded: Vec<u8> = whole.frames.iter().flat_map(|(kind, body)| encode(*kind, body)).collect();
    assert_eq!(&stream[..encoded.len()], &encoded[..], "frames re-encode to their bytes");
});
