//! The lecture notes' message format, used by `framed` and `heartbeat`:
//!
//! ```text
//! | length: u32 BE | type: u32 BE | body: `length` bytes |
//! ```
//! A reader peeks at the header, waits until the whole body is buffered,
//! then takes exactly one frame; a declared length above a limit is refused
//! before any of it is buffered.

use muxloop::buffer::Buffer;

/// Header size: length + type.
pub const HEADER_LEN: usize = 8;
/// Keep-alive request (heartbeat).
pub const MSG_PING: u32 = 1;
/// Keep-alive answer (heartbeat).
pub const MSG_PONG: u32 = 2;
/// Application message answered with "Hi, " + body.
pub const MSG_TYPE1: u32 = 11;
/// Application message answered with "Hello, " + body.
pub const MSG_TYPE2: u32 = 21;
/// Error report sent just before the server closes.
pub const MSG_ERROR: u32 = 99;

/// What [`decode`] found at the front of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A whole frame (removed from the buffer).
    Frame { kind: u32, body: Vec<u8> },
    /// Not enough bytes yet.
    Incomplete,
    /// The header declares a body longer than allowed.
    TooLong(u32),
}

/// Takes one frame off the front of `input` if it is complete.
pub fn decode(input: &mut Buffer, max_body: usize) -> Decoded {
    let Some(len) = input.peek_u32() else { return Decoded::Incomplete };
    if len as usize > max_body {
        return Decoded::TooLong(len);
    }
    if input.len() < HEADER_LEN + len as usize {
        return Decoded::Incomplete;
    }
    input.consume(4);
    let kind = input.read_u32().expect("header is buffered");
    Decoded::Frame { kind, body: input.take(len as usize) }
}

/// One frame as bytes, built back to front: the body first, then the header
/// prepended into the buffer's reserved front space, so the header never
/// moves the body. The body is still copied twice: into the buffer by
/// `append`, and out of it by `take_all`.
pub fn encode(kind: u32, body: &[u8]) -> Vec<u8> {
    let mut frame = Buffer::with_capacity(HEADER_LEN + body.len());
    frame.append(body);
    frame.prepend_u32(kind);
    frame.prepend_u32(body.len() as u32);
    frame.take_all()
}
