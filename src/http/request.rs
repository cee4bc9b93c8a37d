//! Request parsing: from bytes in a connection's input buffer to a
//! [`Request`] that borrows them, or to the 4xx/5xx that explains why not.
//!
//! It teaches incremental parsing on a non-blocking socket: a request may
//! arrive in any number of pieces, so the parser first looks for the blank
//! line that ends the header section (remembering how far it has looked, so
//! a request sent one byte at a time costs O(n), not O(n²)), only then runs
//! `httparse` once, and then decides how the body is framed (RFC 9112 §6.3):
//!
//! * `Transfer-Encoding` whose last coding is `chunked`: the body is a
//!   series of chunks ([`chunked`](super::chunked) decodes them).
//! * `Content-Length`: exactly that many bytes.
//! * Neither: no body (a request is never delimited by closing).
//!
//! The rules around those two fields are strict because **request
//! smuggling** lives in them: a proxy in front of the server and the server
//! itself must agree on where each request ends, or bytes one of them takes
//! as a body the other takes as a second request. So a request with both
//! fields, a `Transfer-Encoding` in HTTP/1.0 (which has none), a final
//! coding other than `chunked`, a list with empty elements, or a
//! `Content-Length` that is not plain digits or overflows is refused with
//! 400 and the connection is closed — never guessed at. Likewise `Host`:
//! exactly one, and a valid host, or 400 (RFC 9112 §3.2).
//!
//! Nothing is copied for a `Content-Length` request: it borrows the buffer
//! until the handler returns.

use std::borrow::Cow;
use std::mem::MaybeUninit;

use super::syntax::{self, is_clean_path, is_tchar, is_valid_host};
use super::{HttpConfig, StreamAddr};

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
    peer: Option<&'a StreamAddr>,
}

impl<'a> Request<'a> {
    /// The method, e.g. `"GET"`.
    pub fn method(&self) -> &'a str {
        self.method
    }
    /// The path without the query, still percent-encoded, e.g. `"/echo"`
    /// (`"*"` for `OPTIONS *`). It never holds a `%00` or a malformed `%`
    /// escape: those requests are refused with 400.
    pub fn path(&self) -> &'a str {
        self.path
    }
    /// The part after `?`, if any, as sent.
    pub fn query(&self) -> Option<&'a str> {
        self.query
    }
    /// The query's `name=value` pairs, separated by `&`, percent-decoded and
    /// with `+` as a space (the form encoding browsers use). A pair without
    /// `=` has an empty value; empty pairs are skipped; bytes that do not
    /// decode to UTF-8 are replaced by U+FFFD, and a malformed `%` escape is
    /// kept as it was sent.
    pub fn query_pairs(&self) -> impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)> + 'a {
        self.query.unwrap_or("").split('&').filter(|pair| !pair.is_empty()).map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_form(name), decode_form(value))
        })
    }
    /// The decoded value of the first query pair called `name`.
    pub fn query_value(&self, name: &str) -> Option<Cow<'a, str>> {
        self.query_pairs().find(|(n, _)| n == name).map(|(_, v)| v)
    }
    /// HTTP/1.0 or HTTP/1.1.
    pub fn version(&self) -> Version {
        self.version
    }
    /// The address of the client (of the connection the request came on).
    pub fn peer_addr(&self) -> Option<&'a StreamAddr> {
        self.peer
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
        self.header_values_bytes(name).next()
    }
    /// Every header line called `name` (case-insensitive), in order, as
    /// bytes: a field sent on several lines (`Accept`, `Cookie`...) has one
    /// item per line.
    pub fn header_values_bytes<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n, '_> {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }
    /// Like [`header_values_bytes`](Self::header_values_bytes), as text;
    /// lines that are not UTF-8 are left out.
    pub fn header_values<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n, '_> {
        self.header_values_bytes(name).filter_map(|v| std::str::from_utf8(v).ok())
    }
    /// The body: `Content-Length` bytes, or the decoded chunks of a chunked
    /// body (its trailer fields are checked against the header limits and
    /// not kept); empty without either.
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

    /// The same request, telling where it came from.
    pub(crate) fn with_peer(mut self, peer: &'a StreamAddr) -> Self {
        self.peer = Some(peer);
        self
    }

    /// The same request with `body` (a decoded chunked body).
    pub(crate) fn with_body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }

    /// Header field lines in the request, for the trailers' share of the limit.
    pub(crate) fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// Whether any `Connection` header lists `token` (case-insensitive).
    fn connection_has(&self, token: &str) -> bool {
        self.header_values("connection")
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

/// Percent-decodes one half of a query pair.
fn decode_form(raw: &str) -> Cow<'_, str> {
    if !raw.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(raw);
    }
    match syntax::percent_decode(raw.as_bytes(), true) {
        Some(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
        None => Cow::Borrowed(raw),
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

pub(crate) fn reject(status: u16, reason: impl Into<String>) -> Rejection {
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
    /// The header section (`head_len` bytes) announces a chunked body, which
    /// follows it in the input.
    Chunked { request: Request<'a>, head_len: usize },
    /// The header section is not complete yet; `scanned` bytes of it hold no
    /// end marker (pass it back next time).
    Partial { scanned: usize },
}

/// How the body of a request is delimited (RFC 9112 §6.3).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length` bytes (0 without the field).
    Length(usize),
    /// The chunked transfer coding.
    Chunked,
}

/// Methods we know; anything else is answered with 501.
const METHODS: [&str; 8] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"];

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
    let (mut request, framing) = parse_head(&input[..head_len], config)?;
    let body_len = match framing {
        Framing::Chunked => return Ok(Parsed::Chunked { request, head_len }),
        Framing::Length(len) => len,
    };
    let available = input.len() - head_len;
    if available < body_len {
        return Ok(Parsed::AwaitingBody { request, missing: body_len - available });
    }
    request.body = &input[head_len..head_len + body_len];
    Ok(Parsed::Complete { request, len: head_len + body_len })
}

/// Parses and checks a complete header section (request line, fields and
/// the blank line): the request without its body, and how the body is framed.
pub(crate) fn parse_head<'a>(
    head: &'a [u8],
    config: &HttpConfig,
) -> Result<(Request<'a>, Framing), Rejection> {
    // Uninitialised slots: filling 128 empty headers first would cost more
    // than parsing a small request.
    let mut slots = [const { MaybeUninit::<httparse::Header<'a>>::uninit() }; MAX_HEADERS_LIMIT];
    let mut raw = httparse::Request::new(&mut []);
    match raw.parse_with_uninit_headers(head, &mut slots[..config.max_headers.min(MAX_HEADERS_LIMIT)]) {
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
    let mut request = Request { method, path: "", query: None, version, headers, body: &[], peer: None };

    if method == "CONNECT" {
        // Authority form (RFC 9112 §3.2.3): understood, but this server
        // makes no tunnels.
        return Err(if is_valid_host(target.as_bytes()) && target.contains(':') {
            reject(501, "CONNECT is not supported: this server does not tunnel")
        } else {
            reject(400, format!("CONNECT needs host:port, not {target:?}"))
        });
    }
    let (path, query) = split_target(method, target)?;
    (request.path, request.query) = (path, query);
    if !METHODS.contains(&method) {
        return Err(reject(501, format!("method {method} is not implemented")));
    }
    check_host(&request)?;
    let framing = body_framing(&request)?;
    if let Framing::Length(len) = framing
        && len > config.max_body_bytes
    {
        return Err(reject(
            413,
            format!("request body of {len} bytes exceeds {} bytes", config.max_body_bytes),
        ));
    }
    Ok((request, framing))
}

/// Splits a request target into path and query. Accepts origin form
/// (`/a?b`), absolute form (`http://host/a?b`) and `*` with OPTIONS
/// (RFC 9112 §3.2.4); the path must not hold `%00` or a broken escape.
fn split_target<'t>(method: &str, target: &'t str) -> Result<(&'t str, Option<&'t str>), Rejection> {
    if target == "*" {
        return match method {
            "OPTIONS" => Ok(("*", None)),
            _ => Err(reject(400, format!("the target * is for OPTIONS only, not {method}"))),
        };
    }
    let origin = if target.starts_with('/') {
        target
    } else if let Some(rest) = target.strip_prefix("http://").or_else(|| target.strip_prefix("https://")) {
        rest.find('/').map_or("/", |i| &rest[i..])
    } else {
        return Err(reject(400, format!("malformed request target {target:?}")));
    };
    let (path, query) = match origin.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (origin, None),
    };
    if !is_clean_path(path) {
        return Err(reject(400, format!("bad percent escape or encoded NUL in path {path:?}")));
    }
    Ok((path, query))
}

/// RFC 9112 §3.2: an HTTP/1.1 request has exactly one `Host` line, and any
/// `Host` must be a valid host (an HTTP/1.0 request may have none).
fn check_host(request: &Request<'_>) -> Result<(), Rejection> {
    let mut hosts = request.header_values_bytes("host");
    match (hosts.next(), hosts.next()) {
        (None, _) if request.version == Version::Http11 => {
            Err(reject(400, "HTTP/1.1 request without a Host header"))
        }
        (Some(_), Some(_)) => Err(reject(400, "more than one Host header")),
        (Some(host), None) if !is_valid_host(host) => {
            Err(reject(400, format!("invalid Host {:?}", String::from_utf8_lossy(host))))
        }
        _ => Ok(()),
    }
}

/// How the body is framed, from `Transfer-Encoding` and `Content-Length`
/// (RFC 9112 §6.1, §6.3), refusing every combination two parsers could
/// read differently.
fn body_framing(request: &Request<'_>) -> Result<Framing, Rejection> {
    let mut codings = request.header_values_bytes("transfer-encoding").peekable();
    if codings.peek().is_none() {
        return content_length(request).map(Framing::Length);
    }
    if request.version == Version::Http10 {
        return Err(reject(400, "Transfer-Encoding in an HTTP/1.0 request"));
    }
    if request.header_bytes("content-length").is_some() {
        return Err(reject(400, "both Transfer-Encoding and Content-Length"));
    }
    let mut list = Vec::new();
    for value in codings {
        for coding in value.split(|&b| b == b',') {
            let coding = coding.trim_ascii();
            if coding.is_empty() || !coding.iter().copied().all(is_tchar) {
                return Err(reject(
                    400,
                    format!("malformed Transfer-Encoding {:?}", String::from_utf8_lossy(value)),
                ));
            }
            list.push(coding);
        }
    }
    let chunked = |c: &&[u8]| c.eq_ignore_ascii_case(b"chunked");
    match list.split_last() {
        Some((last, _)) if !chunked(last) => Err(reject(
            400,
            "the last Transfer-Encoding must be chunked (the body length is unknown otherwise)",
        )),
        Some((_, before)) if before.iter().any(chunked) => Err(reject(400, "chunked applied more than once")),
        Some((_, [])) => Ok(Framing::Chunked),
        _ => Err(reject(501, "only the chunked transfer coding is implemented")),
    }
}

/// The body length from `Content-Length` (0 without one). Several headers
/// must agree; anything but plain digits, or a number too large to be a
/// length, is malformed (no sign, no `0x`, no list).
fn content_length(request: &Request<'_>) -> Result<usize, Rejection> {
    let mut length = None;
    for value in request.header_values_bytes("content-length") {
        let malformed =
            || reject(400, format!("malformed Content-Length {:?}", String::from_utf8_lossy(value)));
        let text = std::str::from_utf8(value).unwrap_or("").trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        let parsed: usize = text.parse().map_err(|_| malformed())?;
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
        assert_eq!(rejected(b"BREW / HTTP/1.1\r\nHost: a\r\n\r\n"), 501);
        let many: String = (0..200).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(rejected(format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n").as_bytes()), 431);
        let huge = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "y".repeat(9000));
        assert_eq!(rejected(huge.as_bytes()), 431);
        let unfinished = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}", "y".repeat(9000));
        assert_eq!(rejected(unfinished.as_bytes()), 431, "an endless header section is cut off at the limit");
    }

    /// The framing and target rules of RFC 9112 (§3.2, §3.2.4, §6.1, §6.3),
    /// one line each; the wire-level versions are in `tests/http/conformance.rs`.
    #[test]
    fn framing_host_and_target_rules() {
        let head = |extra: &str| format!("POST /x HTTP/1.1\r\nHost: a\r\n{extra}\r\n");
        let chunked = |extra: &str| match parse(head(extra).as_bytes(), 0, &config()) {
            Ok(Parsed::Chunked { head_len, .. }) => head_len == head(extra).len(),
            other => panic!("{extra:?}: {other:?}"),
        };
        assert!(chunked("Transfer-Encoding: chunked\r\n"));
        assert!(chunked("Transfer-Encoding: Chunked\r\n"));
        let cases: &[(&str, u16)] = &[
            ("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 400),
            ("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", 400),
            ("Transfer-Encoding: gzip\r\n", 400),
            ("Transfer-Encoding: identity\r\n", 400),
            ("Transfer-Encoding: chunked, chunked\r\n", 400),
            ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 400),
            ("Transfer-Encoding: chunked,\r\n", 400),
            ("Transfer-Encoding: , chunked\r\n", 400),
            ("Transfer-Encoding:\r\n", 400),
            ("Transfer-Encoding: chunked;q=1\r\n", 400),
            ("Transfer-Encoding: gzip, chunked\r\n", 501),
            ("Content-Length: 99999999999999999999\r\n", 400),
            ("Content-Length: +5\r\n", 400),
            ("Host: b\r\n", 400),
        ];
        for (extra, status) in cases {
            assert_eq!(rejected(head(extra).as_bytes()), *status, "{extra:?}");
        }
        assert_eq!(rejected(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
        for host in ["a, b", "a/b", "user@a", "", "a b"] {
            assert_eq!(
                rejected(format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes()),
                400,
                "{host:?}"
            );
        }
        assert_eq!(
            rejected(b"GET / HTTP/1.0\r\nHost: a/b\r\n\r\n"),
            400,
            "a Host in HTTP/1.0 is checked too"
        );
        for host in ["example.com", "example.com:8080", "[::1]:8080", "127.0.0.1"] {
            complete(format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
        }
        assert_eq!(complete(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").0.path(), "*");
        assert_eq!(rejected(b"GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(rejected(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), 501);
        assert_eq!(rejected(b"CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(rejected(b"GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(rejected(b"GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(complete(b"GET /a%20b HTTP/1.1\r\nHost: a\r\n\r\n").0.path(), "/a%20b");
    }

    #[test]
    fn query_pairs_and_repeated_headers() {
        let input = b"GET /q?a=1&b=x+y%21&&c&a=2&bad=%zz&u=%C3%A9 HTTP/1.1\r\nHost: h\r\nAccept: x\r\naccept: y\r\n\r\n";
        let (req, _) = complete(input);
        let pairs: Vec<(String, String)> =
            req.query_pairs().map(|(n, v)| (n.into_owned(), v.into_owned())).collect();
        let expected = [("a", "1"), ("b", "x y!"), ("c", ""), ("a", "2"), ("bad", "%zz"), ("u", "é")];
        assert_eq!(pairs, expected.map(|(n, v)| (n.to_owned(), v.to_owned())));
        assert_eq!(req.query_value("a").as_deref(), Some("1"), "the first one");
        assert_eq!(req.query_value("zzz"), None);
        assert_eq!(req.header_values("ACCEPT").collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(req.peer_addr(), None, "set by the server");
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
