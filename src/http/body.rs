//! Streamed response bodies: a body of unknown length, produced piece by
//! piece ([`Response::stream`](super::Response::stream)).
//!
//! It teaches flow control on a non-blocking server. A handler that built a
//! 64 MiB body in memory, for four clients that read slowly, would hold
//! 256 MiB; a producer that writes whenever it likes would do the same inside
//! the output queue. So the server *pulls*: it asks the body's
//! [`BodySource::fill`] for more only while the connection's queued output is
//! under its limit, and asks again once the kernel has taken what was given.
//! A slow reader slows the producer; memory stays at about the output limit
//! per connection.
//!
//! On the wire the pieces become chunks (`Transfer-Encoding: chunked`,
//! RFC 9112 §7.1) for HTTP/1.1, ended by a zero-size chunk and optional
//! trailer fields. HTTP/1.0 has no chunks: the body runs until the server
//! closes the connection, so a streamed answer to HTTP/1.0 always closes. A
//! HEAD request gets the head only, and the source is never called.

use super::deferred::BodyWaker;
use super::syntax::{is_field_value, is_token};

/// What a [`BodySource`] says after each [`fill`](BodySource::fill).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Fill {
    /// More will follow; call again (once the output has room).
    More,
    /// Nothing more for now: the source took a [`BodyWaker`] from
    /// [`BodyWriter::waker`] and wakes it when it has more.
    Pause,
    /// The body is complete (what was written in this call is its last part).
    End,
}

/// Produces a streamed body on the connection's loop. Called only while the
/// connection's output is under its limit; must not block.
///
/// Any `FnMut(&mut BodyWriter) -> Fill + Send + 'static` closure is a source.
/// A source that panics ends the response by closing the connection (the
/// head has gone out, so the client sees an unfinished body, not a 500).
pub trait BodySource: Send + 'static {
    /// Writes the next part of the body into `body`, ideally at most
    /// [`room`](BodyWriter::room) bytes, and says whether more follows.
    fn fill(&mut self, body: &mut BodyWriter<'_>) -> Fill;
}

impl<F> BodySource for F
where
    F: FnMut(&mut BodyWriter<'_>) -> Fill + Send + 'static,
{
    fn fill(&mut self, body: &mut BodyWriter<'_>) -> Fill {
        self(body)
    }
}

/// Where a [`BodySource`] writes: the next part of the body, the trailer
/// fields, and a waker for a source that must wait.
pub struct BodyWriter<'a> {
    out: &'a mut Vec<u8>,
    room: usize,
    trailers: &'a mut Vec<(String, String)>,
    waker: &'a dyn Fn() -> BodyWaker,
}

impl std::fmt::Debug for BodyWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyWriter").field("written", &self.out.len()).field("room", &self.room).finish()
    }
}

impl<'a> BodyWriter<'a> {
    pub(crate) fn new(
        out: &'a mut Vec<u8>,
        room: usize,
        trailers: &'a mut Vec<(String, String)>,
        waker: &'a dyn Fn() -> BodyWaker,
    ) -> Self {
        BodyWriter { out, room, trailers, waker }
    }

    /// Bytes the output can take now (at least 1): the connection's output
    /// limit minus what is queued, capped at one loop pass's budget. Writing
    /// more is allowed and queued, but holds that much more memory.
    pub fn room(&self) -> usize {
        self.room.saturating_sub(self.out.len()).max(1)
    }

    /// Appends `data` to the body.
    pub fn write(&mut self, data: &[u8]) {
        self.out.extend_from_slice(data);
    }

    /// Bytes written in this call so far.
    pub fn written(&self) -> usize {
        self.out.len()
    }

    /// Adds a trailer field, sent after the last chunk (HTTP/1.1 only; an
    /// HTTP/1.0 body has no trailers and they are dropped). A name that is
    /// not a token or a value with a control byte is refused with
    /// `false` and never sent; so are names the server frames the message
    /// with (`Content-Length`, `Transfer-Encoding`, `Trailer`, `Host`).
    pub fn trailer(&mut self, name: &str, value: &str) -> bool {
        let framing = ["content-length", "transfer-encoding", "trailer", "host"];
        let ok =
            is_token(name) && is_field_value(value) && !framing.iter().any(|f| name.eq_ignore_ascii_case(f));
        if ok {
            self.trailers.push((name.to_owned(), value.to_owned()));
        } else {
            log::error!("http: trailer {name:?} refused (invalid name or value, or a framing field)");
        }
        ok
    }

    /// A waker to keep before returning [`Fill::Pause`].
    pub fn waker(&self) -> BodyWaker {
        (self.waker)()
    }
}
