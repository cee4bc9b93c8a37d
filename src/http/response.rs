//! Responses: a builder that refuses to write what would not be valid HTTP,
//! and the serializer that frames the body and stamps a `Date`.
//!
//! It teaches what a response writer owes the client:
//!
//! * **No injection.** A header value with a CR or LF in it would end the
//!   field and start another one (`X-Name: a` CR LF `Set-Cookie: evil=1`):
//!   whoever controls the value controls the response. Names must be tokens
//!   and values free of control bytes (RFC 9110 §5.1, §5.5); a response
//!   built with anything else is never written — the server logs why and
//!   answers `500` instead ([`Response::problem`] tells in advance). So is a
//!   status outside 200-599 (a 1xx is an interim answer, never the final one).
//! * **One framing.** The server alone writes `Content-Length`,
//!   `Transfer-Encoding`, `Connection` and `Date`; the same fields from a
//!   handler are ignored. 204 and 304 responses have no body and no
//!   `Content-Length` (RFC 9110 §15.3.5, §15.4.5; RFC 9112 §6.3), whatever
//!   the handler put in them.
//! * **One value where one is allowed.** Fields that are not lists
//!   (`Content-Type`, `Location`, `ETag`...) are replaced by a later
//!   [`header`](Response::header), not repeated (RFC 9110 §5.3);
//!   [`set_header`](Response::set_header) replaces any field.
//!
//! A body is bytes, a region of an open file that the server sends with
//! `sendfile(2)` (see [`files`](super::files)), a stream produced piece by
//! piece ([`body`](super::body)), or an answer that comes later
//! ([`Response::later`]).

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::fs::File;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use log::debug;

use super::body::BodySource;
pub use super::date::http_date;
use super::deferred::Responder;
use super::request::Version;
use super::syntax::{is_field_value, is_token};

/// An HTTP response built by a handler.
pub struct Response {
    status: u16,
    headers: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    body: Body,
    /// Why this response must not be sent (the first invalid header given).
    problem: Option<String>,
}

/// What follows the head.
pub(crate) enum Body {
    Bytes(Vec<u8>),
    File(FileBody),
    Stream(Box<dyn BodySource>),
    Later(Box<dyn FnOnce(Responder) + Send>),
}

/// A file body: `len` bytes of `file` from `offset`, never read into memory.
#[derive(Debug, Clone)]
pub(crate) struct FileBody {
    pub(crate) file: Arc<File>,
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

/// The same open file (not equal contents) and the same region.
impl PartialEq for FileBody {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.file, &other.file) && self.offset == other.offset && self.len == other.len
    }
}

impl Eq for FileBody {}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = match &self.body {
            Body::Bytes(bytes) => format!("{} bytes", bytes.len()),
            Body::File(file) => format!("file region of {} bytes", file.len),
            Body::Stream(_) => "stream".to_owned(),
            Body::Later(_) => "later".to_owned(),
        };
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &body)
            .field("problem", &self.problem)
            .finish()
    }
}

/// Fields the server writes itself; a handler's are ignored.
const MANAGED: [&str; 4] = ["content-length", "transfer-encoding", "connection", "date"];

/// Fields that are not lists: a later `header` replaces the earlier value.
const SINGLETONS: [&str; 12] = [
    "content-type",
    "content-location",
    "content-range",
    "content-disposition",
    "etag",
    "last-modified",
    "expires",
    "age",
    "location",
    "retry-after",
    "server",
    "access-control-allow-origin",
];

fn is_one_of(name: &str, list: &[&str]) -> bool {
    list.iter().any(|m| m.len() == name.len() && name.eq_ignore_ascii_case(m))
}

/// The body that comes after a head written by [`Response::write_to`].
pub(crate) enum Tail {
    /// Nothing more (the body, if any, was written with the head).
    Done,
    /// A file region, to queue right after the head.
    File(FileBody),
    /// A streamed body: chunked (HTTP/1.1) or close-delimited (HTTP/1.0).
    Stream { source: Box<dyn BodySource>, chunked: bool },
}

impl Response {
    /// A response with `status` and an empty body.
    pub fn new(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Body::Bytes(Vec::new()), problem: None }
    }

    /// `status` with the first `len` bytes of `file` as the body, sent with
    /// `sendfile(2)` (the file is not read into memory; add a `Content-Type`).
    /// `len` must not exceed the file's size: if the file is shorter when its
    /// turn comes, the connection is closed mid-body.
    pub fn file(status: u16, file: impl Into<Arc<File>>, len: u64) -> Response {
        Response::file_region(status, file, 0, len)
    }

    /// Like [`file`](Self::file), with the `len` bytes from `offset` (a
    /// `206 Partial Content` answer to a `Range` request).
    pub fn file_region(status: u16, file: impl Into<Arc<File>>, offset: u64, len: u64) -> Response {
        let mut response = Response::new(status);
        response.body = Body::File(FileBody { file: file.into(), offset, len });
        response
    }

    /// `status` with a `text/plain; charset=utf-8` body.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::typed(status, "text/plain; charset=utf-8", body.into().into_bytes())
    }

    /// `status` with a `text/html; charset=utf-8` body.
    pub fn html(status: u16, body: impl Into<String>) -> Response {
        Response::typed(status, "text/html; charset=utf-8", body.into().into_bytes())
    }

    /// `status` with an `application/json` body. It only sets the type: the
    /// body is whatever the caller serialized (the library has no JSON
    /// dependency).
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::typed(status, "application/json", body.into())
    }

    /// A body with its `Content-Type` (a known-valid field: no check needed).
    fn typed(status: u16, content_type: &'static str, body: Vec<u8>) -> Response {
        let mut response = Response::new(status).body(body);
        response.headers.push((Cow::Borrowed("Content-Type"), Cow::Borrowed(content_type)));
        response
    }

    /// `status` with a body produced piece by piece by `source`, pulled while
    /// the connection's output has room; see [`body`](super::body). Sent
    /// chunked to HTTP/1.1 clients; to HTTP/1.0 clients it ends by closing.
    ///
    /// ```
    /// use muxloop::http::{Fill, Response};
    ///
    /// // 100 MiB of zeros that never sit in memory at once.
    /// let mut left: usize = 100 << 20;
    /// let response = Response::stream(200, move |body: &mut muxloop::http::BodyWriter<'_>| {
    ///     let n = body.room().min(left).min(64 * 1024);
    ///     body.write(&vec![0; n]);
    ///     left -= n;
    ///     if left == 0 { Fill::End } else { Fill::More }
    /// });
    /// # let _ = response;
    /// ```
    pub fn stream(status: u16, source: impl BodySource) -> Response {
        let mut response = Response::new(status);
        response.body = Body::Stream(Box::new(source));
        response
    }

    /// An answer that comes later: right after the handler returns, the
    /// server calls `start` (on the loop thread) with the request's
    /// [`Responder`], which can travel to any thread and answer from there.
    /// Meanwhile the connection serves the requests behind it, keeping their
    /// answers in order; see [`Responder`].
    ///
    /// ```
    /// use muxloop::http::Response;
    ///
    /// let response = Response::later(|responder| {
    ///     std::thread::spawn(move || {
    ///         let answer = Response::text(200, "computed elsewhere");
    ///         let _ = responder.send(answer);
    ///     });
    /// });
    /// # let _ = response;
    /// ```
    pub fn later(start: impl FnOnce(Responder) + Send + 'static) -> Response {
        let mut response = Response::new(200);
        response.body = Body::Later(Box::new(start));
        response
    }

    /// Adds a header (`&'static str` names and values are not copied). A
    /// field that is not a list (`Content-Type`, `Location`, `ETag`,
    /// `Last-Modified`, `Content-Range`...) replaces its earlier value; other
    /// fields are appended (`Set-Cookie`, `Vary`...). `Content-Length`,
    /// `Connection`, `Date` and `Transfer-Encoding` are set by the server and
    /// ignored here. A name that is not a token or a value with a control
    /// byte (CR, LF, NUL...) makes the response invalid: the server will
    /// answer 500 instead (see [`problem`](Self::problem)).
    pub fn header(self, name: impl Into<Cow<'static, str>>, value: impl Into<Cow<'static, str>>) -> Response {
        let name = name.into();
        let replace = is_one_of(&name, &SINGLETONS);
        self.put_header(name, value.into(), replace)
    }

    /// Like [`header`](Self::header), but replaces every earlier value of
    /// the field, whatever it is.
    pub fn set_header(
        self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Response {
        self.put_header(name.into(), value.into(), true)
    }

    fn put_header(mut self, name: Cow<'static, str>, value: Cow<'static, str>, replace: bool) -> Response {
        if !is_token(&name) || !is_field_value(&value) {
            if self.problem.is_none() {
                self.problem = Some(format!("invalid response header {name:?}: {value:?}"));
            }
        } else if is_one_of(&name, &MANAGED) {
            debug!("response header {name} is managed by the server; ignored");
        } else {
            if replace {
                self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
            }
            self.headers.push((name, value));
        }
        self
    }

    /// Sets the body (replacing a file, stream or later body).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = Body::Bytes(body.into());
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first value of the header `name` (case-insensitive), as given.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref())
    }

    /// The headers as given (without the ones the server adds).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_ref(), v.as_ref()))
    }

    /// The body (empty for a file, stream or later body).
    pub fn body_bytes(&self) -> &[u8] {
        match &self.body {
            Body::Bytes(bytes) => bytes,
            _ => &[],
        }
    }

    /// The length of a file body ([`Response::file`]), if it has one.
    pub fn file_len(&self) -> Option<u64> {
        match &self.body {
            Body::File(file) => Some(file.len),
            _ => None,
        }
    }

    /// Why the server would refuse to send this response and answer `500`
    /// instead: an invalid header was given, or the status is not a final
    /// one (200-599). `None` if it is fine.
    pub fn problem(&self) -> Option<&str> {
        match (&self.problem, self.status) {
            (Some(problem), _) => Some(problem),
            (None, 200..=599) => None,
            (None, 100..=199) => Some("a 1xx status is not a final response"),
            (None, _) => Some("status outside 100-599"),
        }
    }

    /// Whether this is an answer that comes [`later`](Self::later).
    pub(crate) fn is_later(&self) -> bool {
        matches!(self.body, Body::Later(_))
    }

    /// Takes out a [`later`](Self::later) body's start function.
    pub(crate) fn take_later(&mut self) -> Option<Box<dyn FnOnce(Responder) + Send>> {
        match std::mem::replace(&mut self.body, Body::Bytes(Vec::new())) {
            Body::Later(start) => Some(start),
            other => {
                self.body = other;
                None
            }
        }
    }

    /// Whether the response can only end by closing the connection: a
    /// streamed body to an HTTP/1.0 client, which has no chunks.
    pub(crate) fn ends_by_closing(&self, version: Version, head_only: bool) -> bool {
        matches!(self.body, Body::Stream(_)) && version == Version::Http10 && !head_only && self.has_body()
    }

    /// Whether the status allows a body (RFC 9110 §6.4.1: not 1xx, 204 or 304).
    fn has_body(&self) -> bool {
        !matches!(self.status, 100..=199 | 204 | 304)
    }

    /// Appends the head to `out` — status line, the framing field
    /// (`Content-Length`, or `Transfer-Encoding: chunked` for a stream to
    /// HTTP/1.1), `Date`, `Connection` when it matters, the headers — and a
    /// bytes body unless `head_only` (a HEAD request gets the length of the
    /// body it would get). Returns the part of the body still to send. The
    /// caller has checked [`problem`](Self::problem).
    pub(crate) fn write_to(
        self,
        out: &mut Vec<u8>,
        head_only: bool,
        version: Version,
        connection: Option<&str>,
    ) -> Tail {
        out.extend_from_slice(b"HTTP/1.1 ");
        push_decimal(out, self.status.into());
        out.push(b' ');
        out.extend_from_slice(reason(self.status).as_bytes());
        out.extend_from_slice(b"\r\n");
        let has_body = self.has_body();
        let mut tail = Tail::Done;
        let mut bytes = Vec::new();
        match self.body {
            _ if !has_body => {}
            Body::Bytes(body) => {
                push_length(out, body.len() as u64);
                bytes = body;
            }
            Body::File(file) => {
                push_length(out, file.len);
                if !head_only {
                    tail = Tail::File(file);
                }
            }
            Body::Stream(source) => {
                let chunked = version == Version::Http11;
                if !head_only {
                    if chunked {
                        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
                    }
                    tail = Tail::Stream { source, chunked };
                }
            }
            Body::Later(_) => push_length(out, 0),
        }
        DATE.with(|date| out.extend_from_slice(date.borrow_mut().header()));
        if let Some(connection) = connection {
            push_header(out, "Connection", connection);
        }
        for (name, value) in &self.headers {
            push_header(out, name, value);
        }
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(&bytes);
        }
        tail
    }
}

fn push_length(out: &mut Vec<u8>, len: u64) {
    out.extend_from_slice(b"Content-Length: ");
    push_decimal(out, len);
    out.extend_from_slice(b"\r\n");
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal (the response head is on the hot path; `write!`
/// would go through the formatting machinery for two numbers).
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// The reason phrase of a status code, from the IANA HTTP Status Code
/// Registry (RFC 9110 §15 and the RFCs it lists); empty for an unregistered
/// code (RFC 9112 §4: the phrase is optional and clients ignore it).
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "",
    }
}

/// The `Date: ...\r\n` line, formatted at most once a second per thread.
struct DateCache {
    second: u64,
    line: Vec<u8>,
}

thread_local! {
    static DATE: RefCell<DateCache> = const { RefCell::new(DateCache { second: u64::MAX, line: Vec::new() }) };
}

impl DateCache {
    fn header(&mut self) -> &[u8] {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if now != self.second {
            self.second = now;
            self.line = format!("Date: {}\r\n", http_date(now)).into_bytes();
        }
        &self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_phrases() {
        let phrases = [
            (100, "Continue"),
            (200, "OK"),
            (202, "Accepted"),
            (204, "No Content"),
            (206, "Partial Content"),
            (303, "See Other"),
            (304, "Not Modified"),
            (307, "Temporary Redirect"),
            (308, "Permanent Redirect"),
            (401, "Unauthorized"),
            (402, "Payment Required"),
            (409, "Conflict"),
            (410, "Gone"),
            (412, "Precondition Failed"),
            (413, "Content Too Large"),
            (415, "Unsupported Media Type"),
            (416, "Range Not Satisfiable"),
            (418, "I'm a teapot"),
            (422, "Unprocessable Content"),
            (428, "Precondition Required"),
            (429, "Too Many Requests"),
            (431, "Request Header Fields Too Large"),
            (502, "Bad Gateway"),
            (504, "Gateway Timeout"),
            (511, "Network Authentication Required"),
            (299, ""),
            (599, ""),
        ];
        for (status, phrase) in phrases {
            assert_eq!(reason(status), phrase, "{status}");
        }
        // The registry's 61 named codes, plus 418 (listed as "(Unused)"
        // there) under its RFC 2324 name: no more, no fewer.
        assert_eq!((100..600).filter(|&s| !reason(s).is_empty()).count(), 62);
    }

    #[test]
    fn accessors_report_what_was_built() {
        let text = Response::text(404, "gone\n");
        assert_eq!((text.status(), text.body_bytes(), text.file_len()), (404, b"gone\n".as_slice(), None));
        let file = Arc::new(File::open(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap());
        let served = Response::file(200, Arc::clone(&file), 10);
        assert_eq!(
            (served.status(), served.body_bytes(), served.file_len()),
            (200, b"".as_slice(), Some(10))
        );
    }

    /// File bodies are equal when they are the same open file and region.
    #[test]
    fn file_bodies_compare_by_file_and_region() {
        let open = || Arc::new(File::open(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap());
        let file = open();
        let body = |file: &Arc<File>, offset, len| FileBody { file: Arc::clone(file), offset, len };
        assert_eq!(body(&file, 0, 10), body(&file, 0, 10));
        assert_ne!(body(&file, 0, 10), body(&open(), 0, 10), "another open of the same path");
        assert_ne!(body(&file, 0, 10), body(&file, 1, 10));
        assert_ne!(body(&file, 0, 10), body(&file, 0, 11));
    }

    fn written(response: Response, head_only: bool, version: Version) -> (String, bool) {
        let mut out = Vec::new();
        let tail = response.write_to(&mut out, head_only, version, None);
        (String::from_utf8(out).unwrap(), matches!(tail, Tail::Stream { chunked: true, .. }))
    }

    #[test]
    fn serializes_with_length_and_without_managed_headers() {
        let resp = || Response::text(200, "hello, world").header("Content-Length", "999").header("X-A", "b");
        let mut out = Vec::new();
        resp().write_to(&mut out, false, Version::Http11, Some("close"));
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nDate: "), "{text}");
        assert!(text.contains("\r\nConnection: close\r\n"));
        assert!(text.contains("\r\nX-A: b\r\n"));
        assert!(!text.contains("999"));
        assert!(text.ends_with("\r\n\r\nhello, world"));
        let (head, _) = written(resp(), true, Version::Http11);
        assert!(head.contains("Content-Length: 12\r\n") && head.ends_with("\r\n\r\n"));
    }

    #[test]
    fn invalid_headers_and_statuses_are_problems() {
        let injected = Response::text(200, "ok").header("X-Name", "a\r\nSet-Cookie: evil=1");
        assert!(injected.problem().is_some_and(|p| p.contains("X-Name")));
        assert_eq!(injected.header_value("x-name"), None, "never stored");
        assert!(Response::new(200).header("Bad Name:", "v").problem().is_some());
        assert!(Response::new(200).header("X", "a\0b").problem().is_some());
        assert!(Response::new(200).set_header("X", "a\nb").problem().is_some());
        assert!(Response::new(200).header("X", "tab\tand ünicode").problem().is_none());
        for status in [0, 99, 100, 101, 199, 600, 1000] {
            assert!(Response::new(status).problem().is_some(), "{status}");
        }
        for status in [200, 204, 304, 404, 599] {
            assert!(Response::new(status).problem().is_none(), "{status}");
        }
    }

    #[test]
    fn singletons_are_replaced_and_lists_appended() {
        let r = Response::text(200, "{}").header("Content-Type", "application/json");
        assert_eq!(r.headers().filter(|(n, _)| n.eq_ignore_ascii_case("content-type")).count(), 1);
        assert_eq!(r.header_value("content-type"), Some("application/json"));
        let (text, _) = written(r, false, Version::Http11);
        assert_eq!(text.matches("Content-Type").count(), 1, "{text}");
        let r = Response::new(200)
            .header("Set-Cookie", "a=1")
            .header("Set-Cookie", "b=2")
            .header("location", "/x");
        let r = r.header("Location", "/y").set_header("set-cookie", "c=3");
        let headers: Vec<_> = r.headers().collect();
        assert_eq!(headers, [("Location", "/y"), ("set-cookie", "c=3")]);
        assert_eq!(Response::json(201, "[]").header_value("Content-Type"), Some("application/json"));
    }

    #[test]
    fn no_body_and_no_length_for_204_and_304() {
        for status in [204, 304] {
            let (text, _) = written(Response::new(status).body("ignored"), false, Version::Http11);
            assert!(!text.contains("Content-Length") && !text.contains("ignored"), "{text}");
            assert!(text.ends_with("\r\n\r\n"));
        }
    }

    #[test]
    fn streams_are_chunked_for_http11_only() {
        let stream = || Response::stream(200, |_: &mut crate::http::BodyWriter<'_>| crate::http::Fill::End);
        let (text, chunked) = written(stream(), false, Version::Http11);
        assert!(
            chunked && text.contains("Transfer-Encoding: chunked\r\n") && !text.contains("Content-Length")
        );
        let (text, chunked) = written(stream(), false, Version::Http10);
        assert!(
            !chunked && !text.contains("Transfer-Encoding") && !text.contains("Content-Length"),
            "{text}"
        );
        assert!(stream().ends_by_closing(Version::Http10, false));
        assert!(!stream().ends_by_closing(Version::Http11, false));
        assert!(!stream().ends_by_closing(Version::Http10, true), "HEAD has no body to end");
        let (text, _) = written(stream(), true, Version::Http11);
        assert!(!text.contains("Transfer-Encoding"), "HEAD: {text}");
    }
}
