//! Request parsing: from bytes in a connection's input buffer to a
//! [`Request`] that borrows them, or to the 4xx/5xx that explains why not.
//!
//! It teaches incremental parsing on a non-blocking socket: a request may
//! arrive in any number of pieces, so the parser first looks for the blank
//! line that ends the header section (remembering how far it has looked, so
//! a request sent one byte at a time costs O(n), not O(n²)), only then runs
//! `httparse` once, and then waits for `Content-Length` body bytes. Nothing
//! is copied: the request borrows the buffer until the handler returns.

use super::HttpConfig;

/// HTTP version of a request.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: the connection closes after each response unless the client
    /// asks for `Connection: keep-alive`.
    Http10,
    /// HTTP/1.1: keep-alive unless `Connection: close`.
    Http11,
}

/// A parsed request; borrows the connection's input buffer.
#[derive(Debug)]
pub struct Request<'a> {
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    version: Version,
    headers: Vec<(&'a str, &'a [u8])>,
    body: &'a [u8],
}

impl<'a> Request<'a> {
    /// The method, e.g. `"GET"`.
    pub fn method(&self) -> &'a str {
        self.method
    }
    /// The path without the query, e.g. `"/echo"`.
    pub fn path(&self) -> &'a str {
        self.path
    }
    /// The part after `?`, if any.
    pub fn query(&self) -> Option<&'a str> {
        self.query
    }
    /// HTTP/1.0 or HTTP/1.1.
    pub fn version(&self) -> Version {
        self.version
    }
    /// All headers in order, names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + '_ {
        self.headers.iter().copied()
    }
    /// The first header called `name` (case-insensitive), if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.header_bytes(name).and_then(|v| std::str::from_utf8(v).ok())
    }
    /// The first header called `name` (case-insensitive), as bytes.
    pub fn header_bytes(&self, name: &str) -> Option<&'a [u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }
    /// The body (`Content-Length` bytes; empty without one).
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
    /// Whether the connection stays open after the response: HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        match self.version {
            Version::Http11 => !self.connection_has("close"),
            Version::Http10 => self.connection_has("keep-alive") && !self.connection_has("close"),
        }
    }
    /// Whether the client sent `Expect: 100-continue`.
    pub(crate) fn expects_continue(&self) -> bool {
        self.header("expect").is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
    }

    /// Whether any `Connection` header lists `token` (case-insensitive).
    fn connection_has(&self, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

/// Why a request cannot be served: the status to answer with, then close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// 400, 413, 431, 501...
    pub status: u16,
    /// Sent as the body, for humans.
    pub reason: String,
}

fn reject(status: u16, reason: impl Into<String>) -> Rejection {
    Rejection { status, reason: reason.into() }
}

/// What [`parse`] found at the front of the input.
#[derive(Debug)]
pub(crate) enum Parsed<'a> {
    /// A whole request, `len` bytes of input including its body.
    Complete { request: Request<'a>, len: usize },
    /// The header section is complete but `missing` body bytes are not; the
    /// request is returned so `Expect: 100-continue` can be answered.
    AwaitingBody { request: Request<'a>, missing: usize },
    /// The header section is not complete yet; `scanned` bytes of it hold no
    /// end marker (pass it back next time).
    Partial { scanned: usize },
}

/// Methods we know; anything else is answered with 501.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];

/// The upper bound of `HttpConfig::max_headers`.
pub(crate) const MAX_HEADERS_LIMIT: usize = 128;

/// Finds the end of the header section (`\n\r\n` or `\n\n`), looking from
/// `from`; returns the offset just past it.
fn header_end(input: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let nl = at + input.get(at..)?.iter().position(|&b| b == b'\n')?;
        match &input[nl + 1..] {
            [b'\n', ..] => return Some(nl + 2),
            [b'\r', b'\n', ..] => return Some(nl + 3),
            _ => at = nl + 1,
        }
    }
}

/// Parses the request at the front of `input`. `scanned` is what the last
/// `Partial` said (0 for a new request).
pub(crate) fn parse<'a>(
    input: &'a [u8],
    scanned: usize,
    config: &HttpConfig,
) -> Result<Parsed<'a>, Rejection> {
    // Resume a little before where we stopped: the marker may straddle reads.
    let Some(head_len) = header_end(input, scanned.saturating_sub(2)) else {
        if input.len() > config.max_header_bytes {
            return Err(reject(
                431,
                format!("request header section exceeds {} bytes", config.max_header_bytes),
            ));
        }
        return Ok(Parsed::Partial { scanned: input.len() });
    };
    if head_len > config.max_header_bytes {
        return Err(reject(431, format!("request header section exceeds {} bytes", config.max_header_bytes)));
    }
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS_LIMIT];
    let mut raw = httparse::Request::new(&mut slots[..config.max_headers.min(MAX_HEADERS_LIMIT)]);
    match raw.parse(&input[..head_len]) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(reject(400, "malformed request: header section ends early"));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(reject(431, format!("more than {} request headers", config.max_headers)));
        }
        Err(e) => return Err(reject(400, format!("malformed request: {e}"))),
    }
    let (Some(method), Some(target), Some(minor)) = (raw.method, raw.path, raw.version) else {
        return Err(reject(400, "malformed request line"));
    };
    let version = if minor == 0 { Version::Http10 } else { Version::Http11 };
    let headers: Vec<(&'a str, &'a [u8])> = raw.headers.iter().map(|h| (h.name, h.value)).collect();
    let (path, query) = split_target(target)?;
    let mut request = Request { method, path, query, version, headers, body: &[] };

    if !METHODS.contains(&method) {
        return Err(reject(501, format!("method {method} is not implemented")));
    }
    if version == Version::Http11 && request.header_bytes("host").is_none() {
        return Err(reject(400, "HTTP/1.1 request without a Host header"));
    }
    if request.header_bytes("transfer-encoding").is_some() {
        return Err(reject(501, "Transfer-Encoding request bodies are not supported; send Content-Length"));
    }
    let body_len = content_length(&request)?;
    if body_len > config.max_body_bytes {
        return Err(reject(
            413,
            format!("request body of {body_len} bytes exceeds {} bytes", config.max_body_bytes),
        ));
    }
    let available = input.len() - head_len;
    if available < body_len {
        return Ok(Parsed::AwaitingBody { request, missing: body_len - available });
    }
    request.body = &input[head_len..head_len + body_len];
    Ok(Parsed::Complete { request, len: head_len + body_len })
}

/// Splits a request target into path and query. Accepts origin form
/// (`/a?b`), absolute form (`http://host/a?b`) and `*` (OPTIONS).
fn split_target(target: &str) -> Result<(&str, Option<&str>), Rejection> {
    let origin = if target.starts_with('/') || target == "*" {
        target
    } else if let Some(rest) = target.strip_prefix("http://").or_else(|| target.strip_prefix("https://")) {
        rest.find('/').map_or("/", |i| &rest[i..])
    } else {
        return Err(reject(400, format!("malformed request target {target:?}")));
    };
    Ok(match origin.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (origin, None),
    })
}

/// The body length from `Content-Length` (0 without one). Several headers
/// must agree; anything but plain digits is malformed (no sign, no `0x`).
fn content_length(request: &Request<'_>) -> Result<usize, Rejection> {
    let mut length = None;
    for (_, value) in request.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("content-length")) {
        let text = std::str::from_utf8(value).unwrap_or("").trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(reject(
                400,
                format!("malformed Content-Length {:?}", String::from_utf8_lossy(value)),
            ));
        }
        let parsed: usize = text.parse().map_err(|_| reject(413, "Content-Length is too large"))?;
        if length.is_some_and(|l| l != parsed) {
            return Err(reject(400, "conflicting Content-Length headers"));
        }
        length = Some(parsed);
    }
    Ok(length.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> HttpConfig {
        HttpConfig::default()
    }

    fn complete(input: &[u8]) -> (Request<'_>, usize) {
        match parse(input, 0, &config()) {
            Ok(Parsed::Complete { request, len }) => (request, len),
            other => panic!("expected a complete request, got {other:?}"),
        }
    }

    fn rejected(input: &[u8]) -> u16 {
        match parse(input, 0, &config()) {
            Err(rejection) => rejection.status,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn parses_request_line_headers_and_body() {
        let input = b"POST /echo?x=1&y HTTP/1.1\r\nHost: a\r\ncontent-LENGTH: 5\r\n\r\nhelloGET";
        let (req, len) = complete(input);
        assert_eq!((req.method(), req.path(), req.query()), ("POST", "/echo", Some("x=1&y")));
        assert_eq!(req.version(), Version::Http11);
        assert_eq!(req.header("HOST"), Some("a"));
        let headers: Vec<_> = req.headers().collect();
        assert_eq!(
            headers,
            [("Host", b"a".as_slice()), ("content-LENGTH", b"5".as_slice())],
            "in order, as sent"
        );
        assert_eq!(req.body(), b"hello");
        assert_eq!(len, input.len() - 3, "the next request's bytes are left alone");
        assert!(req.keep_alive());
    }

    #[test]
    fn keep_alive_rules_per_version() {
        assert!(!complete(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n").0.keep_alive());
        assert!(!complete(b"GET / HTTP/1.0\r\n\r\n").0.keep_alive());
        assert!(complete(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").0.keep_alive());
        assert!(!complete(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade, CLOSE\r\n\r\n").0.keep_alive());
    }

    #[test]
    fn partial_input_waits_and_remembers_how_far_it_looked() {
        let full = b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n";
        let mut scanned = 0;
        for end in 1..full.len() {
            match parse(&full[..end], scanned, &config()) {
                Ok(Parsed::Partial { scanned: s }) => scanned = s,
                other => panic!("prefix of {end} bytes: {other:?}"),
            }
        }
        assert!(
            matches!(parse(full, scanned, &config()), Ok(Parsed::Complete { len, .. }) if len == full.len())
        );
        let lf_only = b"GET / HTTP/1.1\nHost: a\n\n";
        assert_eq!(complete(lf_only).1, lf_only.len());
    }

    #[test]
    fn awaits_the_body() {
        match parse(
            b"PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\nabc",
            0,
            &config(),
        ) {
            Ok(Parsed::AwaitingBody { request, missing }) => {
                assert_eq!(missing, 7);
                assert!(request.expects_continue());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejections() {
        assert_eq!(rejected(b"GARBAGE\r\n\r\n"), 400);
        assert_eq!(rejected(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(rejected(b"GET / HTTP/1.1\r\n\r\n"), 400, "no Host");
        assert_eq!(rejected(b"GET nope HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(rejected(b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n"), 400);
        assert_eq!(rejected(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"), 400);
        assert_eq!(
            rejected(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(rejected(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999\r\n\r\n"), 413);
        assert_eq!(rejected(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
        assert_eq!(rejected(b"BREW / HTTP/1.1\r\nHost: a\r\n\r\n"), 501);
        let many: String = (0..200).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(rejected(format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n").as_bytes()), 431);
        let huge = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "y".repeat(9000));
        assert_eq!(rejected(huge.as_bytes()), 431);
        let unfinished = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}", "y".repeat(9000));
        assert_eq!(rejected(unfinished.as_bytes()), 431, "an endless header section is cut off at the limit");
    }

    /// `max_header_bytes` is inclusive: a header section of exactly that many
    /// bytes is parsed, and an unfinished one of that many still waits.
    #[test]
    fn header_limit_is_inclusive() {
        let limit = config().max_header_bytes;
        let head = |len: usize| {
            let start = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
            format!("{start}{}\r\n\r\n", "y".repeat(len - start.len() - 4))
        };
        let exact = head(limit);
        assert_eq!(exact.len(), limit);
        assert_eq!(complete(exact.as_bytes()).1, limit);
        assert_eq!(rejected(head(limit + 1).as_bytes()), 431);
        let unfinished = &exact.as_bytes()[..limit - 4];
        let mut at_limit = unfinished.to_vec();
        at_limit.resize(limit, b'y');
        assert!(
            matches!(parse(&at_limit, 0, &config()), Ok(Parsed::Partial { .. })),
            "{limit} bytes may still end"
        );
        at_limit.push(b'y');
        assert_eq!(rejected(&at_limit), 431);
    }
}
