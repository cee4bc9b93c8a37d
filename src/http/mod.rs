//! HTTP/1.1 on top of [`Server`](crate::Server): what a small but real
//! HTTP server has to get right, and where yolanda's `http_server` does not.
//!
//! * **Framing** ([`request`], [`chunked`]): a request
//!   is complete when its header section has ended and its body has
//!   arrived: `Content-Length` bytes, or chunks of the chunked transfer
//!   coding, decoded as they come. It may come in any number of reads (the
//!   parser costs nothing while it waits).
//! * **No smuggling**: `Transfer-Encoding` with `Content-Length`, in
//!   HTTP/1.0, with a final coding other than `chunked`, and a malformed or
//!   overflowing length are refused with 400 and a close, never guessed at;
//!   so are a missing, repeated or invalid `Host`, and `*` outside `OPTIONS`.
//! * **Persistence**: HTTP/1.1 keeps the connection open unless
//!   `Connection: close`; HTTP/1.0 closes it unless `Connection: keep-alive`.
//! * **Pipelining** ([`connection`]): every request is answered in order;
//!   the answers ready at once go out in one write, and one that comes
//!   later ([`Response::later`], answered through a [`Responder`] from any
//!   thread) holds its place.
//! * **Limits**: header section size and count (431), body size (413),
//!   malformed input (400), unknown methods and codings (501); each is
//!   answered with `Connection: close`, then a half-close. Answers waiting
//!   in a connection's queue are bounded too.
//! * **Honest responses** ([`response`]): names and values that would
//!   inject a header, and statuses outside 200-599, are never written (500
//!   instead); no body for 204 and 304; one `Content-Type`.
//! * **Bodies of any size** ([`body`]): a streamed body is pulled only while
//!   the output has room, and sent chunked.
//! * **File bodies**: [`FileService`] maps `/files/...` to files below a
//!   root and answers with bodies sent by `sendfile(2)`, with validators
//!   and ranges ([`files`]).
//! * **Routing** ([`Router`]): method and path, 405 with `Allow`, HEAD from
//!   GET, `OPTIONS`.
//! * **Time limits**: a request whose header section is not complete within
//!   [`HttpConfig::header_timeout`] gets 408 (slowloris), so does a body not
//!   complete within [`HttpConfig::body_timeout`]; an idle keep-alive
//!   connection is closed after [`HttpConfig::idle_timeout`].
//!
//! ```no_run
//! use muxloop::http::{HttpServer, Response};
//! use muxloop::EventLoop;
//!
//! let mut ev: EventLoop = EventLoop::new()?;
//! let server = HttpServer::builder("127.0.0.1:8080", |req: &muxloop::http::Request<'_>| match req.path() {
//!     "/hello" => Response::text(200, "hello, world"),
//!     _ => Response::text(404, "not found\n"),
//! })
//! .threads(2)
//! .start(&mut ev)?;
//! ev.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Chunked bodies
//!
//! `Transfer-Encoding: chunked` frames a body of unknown length as chunks,
//! each a hex size line and that many bytes, ended by a zero-size chunk and
//! optional trailer fields (RFC 9112 §7.1). Requests may use it (every
//! HTTP/1.1 server must decode it: `curl -H 'Transfer-Encoding: chunked'`,
//! Python's `encode_chunked=True`); the handler sees the decoded body, bounded
//! by [`HttpConfig::max_body_bytes`]. Streamed responses use it too.

use std::time::Duration;

pub mod body;
pub mod chunked;
pub mod conditional;
pub mod connection;
pub mod date;
pub mod deferred;
pub mod files;
pub mod request;
pub mod response;
pub mod router;
mod server;
mod syntax;

use crate::net::StreamAddr;

pub use body::{BodySource, BodyWriter, Fill};
pub use connection::MAX_QUEUED_ANSWERS;
pub use deferred::{BodyWaker, Responder};
pub use files::FileService;
pub use request::{Request, Version};
pub use response::Response;
pub use router::Router;
pub use server::{HttpServer, HttpServerBuilder};

/// Limits and timeouts of an [`HttpServer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Largest request line + header section, in bytes (default 8 KiB); larger gets 431.
    pub max_header_bytes: usize,
    /// Most header fields per request (default 64, at most 128); more gets 431.
    pub max_headers: usize,
    /// Largest request body (default 1 MiB); larger gets 413.
    pub max_body_bytes: usize,
    /// Time allowed from the first byte of a request to the end of its header
    /// section (default 10 s); then 408 and close.
    pub header_timeout: Duration,
    /// Time a keep-alive connection may sit idle between requests (default
    /// 60 s); then the connection is closed.
    pub idle_timeout: Duration,
    /// Time allowed for a whole request body once the header section is
    /// complete, however steadily it trickles in (default 30 s); then 408
    /// and close.
    pub body_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_header_bytes: 8 * 1024,
            max_headers: 64,
            max_body_bytes: 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
        }
    }
}
