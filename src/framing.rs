//! Length-prefixed messages on a byte stream: the course's frame format.
//!
//! TCP delivers bytes, not messages: one `read` may return half a message,
//! or the end of one stuck to the start of the next (粘包 / 拆包, "sticky" and
//! split packets). A protocol therefore marks its own boundaries; this one
//! puts a fixed header in front of every message, both fields in network
//! byte order (big-endian, `htonl`/`ntohl`):
//!
//! ```text
//! | length: u32 BE | type: u32 BE | body: `length` bytes |
//! ```
//! A reader peeks at the header, waits until the whole body is buffered, then
//! takes exactly one frame ([`decode`]); a declared length above the
//! reader's limit is refused from the header alone, before any of the body
//! is buffered. Used by the `framed` and `heartbeat` examples.
//!
//! Copies, honestly: [`decode`] copies the body once, out of the input
//! buffer into the returned `Vec`; [`encode`] copies it twice (into a
//! [`Buffer`], whose cheap prepend space takes the header without moving the
//! body, then out into the returned `Vec`). A sender that wants no copy
//! before the kernel sends [`header`] and the body as two slices with
//! [`Connection::send_vectored`](crate::Connection::send_vectored).
//!
//! ```
//! use muxloop::Buffer;
//! use muxloop::framing::{self, Decoded};
//!
//! let mut input = Buffer::new();
//! let frame = framing::encode(framing::MSG_TYPE1, b"bob");
//! input.append(&frame[..5]); // half a header: nothing to take yet
//! assert_eq!(framing::decode(&mut input, 1024), Decoded::Incomplete);
//! input.append(&frame[5..]);
//! assert_eq!(
//!     framing::decode(&mut input, 1024),
//!     Decoded::Frame { kind: framing::MSG_TYPE1, body: b"bob".to_vec() }
//! );
//! assert!(input.is_empty());
//! ```

use crate::buffer::Buffer;

/// Header size: length + type.
pub const HEADER_LEN: usize = 8;
/// Keep-alive request (the `heartbeat` example).
pub const MSG_PING: u32 = 1;
/// Keep-alive answer (the `heartbeat` example).
pub const MSG_PONG: u32 = 2;
/// Application message the `framed` example answers with "Hi, " + body.
pub const MSG_TYPE1: u32 = 11;
/// Application message the `framed` example answers with "Hello, " + body.
pub const MSG_TYPE2: u32 = 21;
/// Error report sent just before a server closes.
pub const MSG_ERROR: u32 = 99;

/// What [`decode`] found at the front of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A whole frame (removed from the buffer).
    Frame {
        /// The type field.
        kind: u32,
        /// The body, `length` bytes.
        body: Vec<u8>,
    },
    /// Not enough bytes yet (nothing was removed).
    Incomplete,
    /// The header declares a body longer than allowed (nothing was removed).
    TooLong(u32),
}

/// Takes one frame off the front of `input` if all of it has arrived; a
/// declared body over `max_body` bytes is [`Decoded::TooLong`] as soon as the
/// length field is in.
pub fn decode(input: &mut Buffer, max_body: usize) -> Decoded {
    let Some(len) = input.peek_u32() else { return Decoded::Incomplete };
    if len as usize > max_body {
        return Decoded::TooLong(len);
    }
    if input.len() < HEADER_LEN + len as usize {
        return Decoded::Incomplete;
    }
    input.consume(4);
    let Some(kind) = input.read_u32() else { return Decoded::Incomplete };
    Decoded::Frame { kind, body: input.take(len as usize) }
}

/// The 8 header bytes of a frame of type `kind` with a `body_len`-byte body.
///
/// # Panics
/// If `body_len` does not fit the 32-bit length field.
pub fn header(kind: u32, body_len: usize) -> [u8; HEADER_LEN] {
    let len = u32::try_from(body_len).expect("frame body longer than u32::MAX bytes");
    let mut bytes = [0; HEADER_LEN];
    bytes[..4].copy_from_slice(&len.to_be_bytes());
    bytes[4..].copy_from_slice(&kind.to_be_bytes());
    bytes
}

/// One frame as bytes, built back to front: the body first, then the header
/// prepended into the buffer's reserved front space (see the module docs
/// for what that costs).
///
/// # Panics
/// If `body` is longer than `u32::MAX` bytes.
pub fn encode(kind: u32, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).expect("frame body longer than u32::MAX bytes");
    let mut frame = Buffer::with_capacity(HEADER_LEN + body.len());
    frame.append(body);
    frame.prepend_u32(kind);
    frame.prepend_u32(len);
    frame.take_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_length_then_type_big_endian() {
        assert_eq!(encode(MSG_TYPE2, b"abc"), [0, 0, 0, 3, 0, 0, 0, 21, b'a', b'b', b'c']);
        assert_eq!(header(MSG_TYPE2, 3)[..], encode(MSG_TYPE2, b"abc")[..HEADER_LEN]);
        assert_eq!(encode(MSG_PONG, &[]), [0, 0, 0, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn frame_split_at_every_byte_is_taken_only_when_whole() {
        let frame = encode(MSG_TYPE1, b"hello");
        for split in 0..frame.len() {
            let mut input = Buffer::new();
            input.append(&frame[..split]);
            assert_eq!(decode(&mut input, 64), Decoded::Incomplete, "split at {split}");
            assert_eq!(input.len(), split, "an incomplete frame is left in place");
            input.append(&frame[split..]);
            assert_eq!(decode(&mut input, 64), Decoded::Frame { kind: MSG_TYPE1, body: b"hello".to_vec() });
            assert!(input.is_empty());
        }
    }

    #[test]
    fn frames_stuck_together_come_apart_one_at_a_time() {
        let mut input = Buffer::new();
        input.append(&encode(MSG_PING, &[]));
        input.append(&encode(MSG_TYPE2, b"x"));
        input.append(&encode(MSG_TYPE1, b"yz")[..9]); // and the start of a third
        assert_eq!(decode(&mut input, 64), Decoded::Frame { kind: MSG_PING, body: vec![] });
        assert_eq!(decode(&mut input, 64), Decoded::Frame { kind: MSG_TYPE2, body: b"x".to_vec() });
        assert_eq!(decode(&mut input, 64), Decoded::Incomplete);
        assert_eq!(input.len(), 9);
    }

    #[test]
    fn oversized_length_is_refused_from_the_header_alone() {
        let mut input = Buffer::new();
        input.append(&header(MSG_TYPE1, 1 << 30)[..4]); // just the length field
        assert_eq!(decode(&mut input, 64 * 1024), Decoded::TooLong(1 << 30));
        assert_eq!(input.len(), 4, "nothing is consumed");
        // At the limit is fine.
        let mut input = Buffer::new();
        input.append(&encode(MSG_TYPE1, &[7; 16]));
        assert_eq!(decode(&mut input, 16), Decoded::Frame { kind: MSG_TYPE1, body: vec![7; 16] });
    }
}
