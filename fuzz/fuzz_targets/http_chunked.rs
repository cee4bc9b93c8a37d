//! The chunked body decoder fed arbitrary bytes split at arbitrary points.
//!
//! `ChunkedDecoder` is crate-private, so this target compiles the library's
//! own `src/http/chunked.rs` (not a copy; it imports only `std`) as a module
//! of this crate. Property: feeding the pieces one after another, or one byte
//! at a time, gives the same body, outcome (where the body ended, or the same
//! refusal) and trailer count as feeding everything at once; `Done` never
//! claims more than it was given; the body never exceeds `max_body`; a decoder
//! that has finished stays finished; a decoded body re-encoded with the
//! helpers decodes to itself; nothing panics.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/http/chunked.rs"]
mod chunked;

use chunked::{ChunkError, ChunkedDecoder, ChunkedLimits, Decoded, push_chunk_size, push_last_chunk};

/// How feeding a whole stream ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Every byte consumed, body not over.
    NeedMore,
    /// The body ended this many bytes into the whole stream.
    Done(usize),
    /// Refused.
    Failed(ChunkError),
}

/// Generous limits, like a server's defaults.
const ROOMY: ChunkedLimits =
    ChunkedLimits { max_body: 1 << 20, max_line: 4096, max_trailer_bytes: 8192, max_trailers: 64 };

/// Feeds `pieces` in order, checking each answer; the outcome, body and trailer count.
fn feed<'a>(pieces: impl IntoIterator<Item = &'a [u8]>, limits: ChunkedLimits) -> (Outcome, Vec<u8>, usize) {
    let mut decoder = ChunkedDecoder::new(limits);
    let mut body = Vec::new();
    let mut offset = 0;
    for piece in pieces {
        let result = decoder.decode(piece, &mut body);
        assert!(body.len() <= limits.max_body, "body of {} bytes over {}", body.len(), limits.max_body);
        let outcome = match result {
            Ok(Decoded::NeedMore) => {
                offset += piece.len();
                continue;
            }
            Ok(Decoded::Done { consumed }) => {
                assert!(consumed <= piece.len(), "consumed {consumed} of a {}-byte piece", piece.len());
                Outcome::Done(offset + consumed)
            }
            Err(error) => {
                assert!(matches!(error.status, 400 | 413 | 431), "status {}", error.status);
                Outcome::Failed(error)
            }
        };
        // Finished for good: the same answer again, nothing taken, nothing appended.
        let len = body.len();
        let again = decoder.decode(b"0\r\n\r\n", &mut body);
        match &outcome {
            Outcome::Done(_) => assert_eq!(again, Ok(Decoded::Done { consumed: 0 }), "after Done"),
            Outcome::Failed(error) => assert_eq!(again.as_ref(), Err(error), "after an error"),
            Outcome::NeedMore => unreachable!(),
        }
        assert_eq!(body.len(), len, "appended after finishing");
        return (outcome, body, decoder.trailers());
    }
    (Outcome::NeedMore, body, decoder.trailers())
}

fuzz_target!(|data: &[u8]| {
    // Header: limits (small ones reach 413/431 and the line limit quickly) and the cut points.
    let &[limits, cuts, ref rest @ ..] = data else { return };
    let limits = if limits & 1 != 0 {
        ChunkedLimits {
            max_body: usize::from(limits >> 1),
            max_line: usize::from(limits >> 4) * 2,
            max_trailer_bytes: usize::from(limits >> 3 & 7) * 4,
            max_trailers: usize::from(limits >> 1 & 3),
        }
    } else {
        ROOMY
    };
    let cut_count = usize::from(cuts % 16).min(rest.len());
    let (cut_bytes, stream) = rest.split_at(cut_count);
    let mut points: Vec<usize> = cut_bytes.iter().map(|&c| usize::from(c) * stream.len() / 256).collect();
    points.push(stream.len());
    points.sort_unstable();

    let whole = feed([stream], limits);

    let mut from = 0;
    let pieces = points.iter().map(|&to| {
        let piece = &stream[from..to];
        from = to;
        piece
    });
    assert_eq!(feed(pieces, limits), whole, "at cuts {points:?}");
    // One byte at a time: the worst case for a decoder that rescans or buffers.
    assert_eq!(feed(stream.chunks(1), limits), whole, "byte by byte");

    // What was decoded, re-encoded as one chunk, decodes to itself.
    if let (Outcome::Done(_), body, _) = &whole {
        let mut encoded = Vec::new();
        if !body.is_empty() {
            push_chunk_size(&mut encoded, body.len());
            encoded.extend_from_slice(body);
            encoded.extend_from_slice(b"\r\n");
        }
        push_last_chunk(&mut encoded, &[("Trailer", "x")]);
        let roomy = ChunkedLimits { max_body: body.len(), ..ROOMY };
        assert_eq!(feed([encoded.as_slice()], roomy), (Outcome::Done(encoded.len()), body.clone(), 1));
    }
});
