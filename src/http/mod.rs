//! HTTP/1.1 on top of [`Server`](crate::Server): what a small but real
//! HTTP server has to get right, and where yolanda's `http_server` does not.
//!
//! * **Framing**: a request is complete when its header section has ended
//!   and `Content-Length` body bytes have arrived; it may come in any number
//!   of reads ([`request`] parses incrementally and costs nothing while it waits).
//! * **Persistence**: HTTP/1.1 keeps the connection open unless
//!   `Connection: close`; HTTP/1.0 closes it unless `Connection: keep-alive`.
//! * **Pipelining**: every complete request in the input is answered, in
//!   order, in one write.
//! * **Limits**: header section size and count (431), body size (413),
//!   malformed input (400), unknown methods and `Transfer-Encoding` bodies
//!   (501); each is answered with `Connection: close`, then a half-close.
//! * **File bodies**: [`FileService`] maps `/files/...` to files below a
//!   root and answers with bodies sent by `sendfile(2)` ([`files`]).
//! * **Time limits**: a request whose header section is not complete within
//!   [`HttpConfig::header_timeout`] gets 408 (slowloris); an idle keep-alive
//!   connection is closed after [`HttpConfig::idle_timeout`].
//!
//! ```no_run
//! use muxloop::http::{HttpServer, Response};
//! use muxloop::EventLoop;
//!
//! let mut ev: EventLoop = EventLoop::new()?;
//! let server = HttpServer::builder("127.0.0.1:8080", |req| match req.path() {
//!     "/hello" => Response::text(200, "hello, world"),
//!     _ => Response::text(404, "not found\n"),
//! })
//! .threads(2)
//! .start(&mut ev)?;
//! ev.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::time::Duration;

pub mod files;
pub mod request;
pub mod response;
mod server;

pub use files::FileService;
pub use request::{Request, Version};
pub use response::Response;
pub use server::{Handler, HttpServer, HttpServerBuilder};

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
