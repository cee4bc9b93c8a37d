//! Conformance of the HTTP/1.1 server to RFC 9112 (message syntax and
//! framing) and RFC 9110 (semantics), black-box over real sockets, once per
//! dispatcher: chunked request bodies and every way their framing can be
//! wrong, the `Transfer-Encoding` and `Host` rules, request-target forms,
//! what a response may put on the wire (no injected fields, only valid
//! status codes, the registered reason phrases, no body where none is
//! allowed), and that nothing is answered after a 400.
//!
//! Each test runs all of its cases and then fails once, listing every case
//! that failed (the `Failures` collector), so one run shows the whole gap.
//! Response-side tests read the raw bytes the server sent
//! ([`exchange_raw`]) and check them exactly.
#![cfg(feature = "http")]

use crate::common;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use common::http::{Client, Reply, TestHttpServer, exchange_raw, get, read_reply, spawn_http_server};
use muxloop::Dispatcher;
use muxloop::http::{HttpConfig, Request, Response};

fn route(req: &Request<'_>) -> Response {
    match (req.method(), req.path()) {
        ("OPTIONS", "*") => Response::text(200, "options"), // the server passes `*` to the handler only with OPTIONS
        (_, "/hello") => Response::text(200, "hello, world"),
        (_, "/echo") => Response::new(200).body(req.body()), // echoes the decoded body
        (_, "/inject") => Response::text(200, "ok").header("X-Name", "a\r\nSet-Cookie: evil=1"),
        (_, "/bad-name") => Response::text(200, "ok").header("Bad Name:", "v"),
        (_, "/nul") => Response::text(200, "ok").header("X-A", "a\0b"),
        (_, "/status-1000") => Response::new(1000),
        (_, "/no-content") => Response::new(204).body("ignored"),
        (_, "/not-modified") => Response::new(304).body("ignored"),
        (_, "/json") => Response::text(200, "{}").header("Content-Type", "application/json"),
        (_, p) if p.starts_with("/status/") => Response::new(p[8..].parse().unwrap()),
        _ => Response::text(404, "not found"),
    }
}

fn server<D: Dispatcher + 'static>() -> TestHttpServer<D> {
    spawn_http_server(route, HttpConfig::default(), 0)
}

fn server_with<D: Dispatcher + 'static>(config: HttpConfig) -> TestHttpServer<D> {
    spawn_http_server(route, config, 0)
}

/// How long a case waits for a response, or for the close after it.
const WAIT: Duration = Duration::from_secs(5);

/// The failed cases of one test: every case runs, then the test fails once
/// with all of them listed.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, outcome: Result<(), String>) {
        if let Err(failure) = outcome {
            self.0.push(failure);
        }
    }

    fn finish(self) {
        assert!(self.0.is_empty(), "{} case(s) failed:\n  {}", self.0.len(), self.0.join("\n  "));
    }
}

/// Bytes for a failure message: the first 120, escaped.
fn show(bytes: &[u8]) -> String {
    let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]);
    let more = if bytes.len() > 120 { format!("... ({} bytes)", bytes.len()) } else { String::new() };
    format!("{shown:?}{more}")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A client whose reads give up after [`WAIT`].
fn client(addr: std::net::SocketAddr) -> Client {
    let client = Client::connect(addr);
    client.writer.set_read_timeout(Some(WAIT)).unwrap();
    client
}

/// A chunked `POST /echo` whose body (the chunks, as sent) is `chunks`.
fn chunked_post(chunks: &[u8]) -> Vec<u8> {
    let mut request = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    request.extend_from_slice(chunks);
    request
}

/// A `POST /echo` with `fields` (each line with its CRLF) and `body`.
fn post_with(fields: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!("POST /echo HTTP/1.1\r\nHost: t\r\n{fields}\r\n").into_bytes();
    request.extend_from_slice(body);
    request
}

/// `GET path` that asks the server to close after the response, so that
/// everything it sends ends with its close.
fn closing_get(method: &str, path: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").into_bytes()
}

/// Sends `request` on a fresh connection; expects exactly `status` with
/// `Connection: close`, then the server's close (nothing more).
fn rejected<D: Dispatcher + 'static>(
    server: &TestHttpServer<D>,
    request: &[u8],
    status: u16,
) -> Result<(), String> {
    let case = show(request);
    let mut client = client(server.addr);
    // The server may answer and stop reading before it has all of a large request.
    let _ = client.writer.write_all(request);
    let reply = read_reply(&mut client.reader, false)
        .ok_or_else(|| format!("{case}: no response within {WAIT:?} (expected {status})"))?;
    if reply.status != status {
        return Err(format!("{case}: got {} {}, expected {status}", reply.status, show(&reply.body)));
    }
    if !reply.closes() {
        return Err(format!("{case}: the {status} has no `Connection: close`"));
    }
    if !client.is_closed() {
        return Err(format!("{case}: the connection stayed open after the {status}"));
    }
    Ok(())
}

/// Sends `request` on a fresh connection; expects 200 with `body`, the
/// connection kept open, and a following `GET /hello` on it answered (so
/// the request's framing ended exactly where it should).
fn accepted<D: Dispatcher + 'static>(
    server: &TestHttpServer<D>,
    request: &[u8],
    body: &[u8],
) -> Result<(), String> {
    let case = show(request);
    let mut client = client(server.addr);
    client.writer.write_all(request).map_err(|e| format!("{case}: send: {e}"))?;
    let reply = read_reply(&mut client.reader, false).ok_or_else(|| format!("{case}: no response"))?;
    if (reply.status, reply.body.as_slice()) != (200, body) {
        return Err(format!(
            "{case}: got {} {}, expected 200 {}",
            reply.status,
            show(&reply.body),
            show(body)
        ));
    }
    if reply.closes() {
        return Err(format!("{case}: answered with `Connection: close`"));
    }
    client.writer.write_all(&get("/hello")).map_err(|e| format!("{case}: send the next request: {e}"))?;
    match read_reply(&mut client.reader, false) {
        Some(next) if (next.status, next.body.as_slice()) == (200, b"hello, world".as_slice()) => Ok(()),
        Some(next) => Err(format!("{case}: the next request got {} {}", next.status, show(&next.body))),
        None => Err(format!("{case}: the next request on the connection got no response")),
    }
}

/// Everything the server sends for `request` on a fresh connection, up to
/// its close (which must come within [`WAIT`]).
fn wire<D: Dispatcher + 'static>(server: &TestHttpServer<D>, request: &[u8]) -> Result<Vec<u8>, String> {
    let wire = exchange_raw(server.addr, request, WAIT);
    if !wire.closed {
        return Err(format!(
            "{}: the server did not close within {WAIT:?}; it sent {}",
            show(request),
            show(&wire.bytes)
        ));
    }
    Ok(wire.bytes)
}

/// Parses `bytes` as a sequence of whole responses, each starting exactly
/// with `HTTP/1.1 ` (no stray bytes between them). `head_only` for
/// responses to HEAD.
fn replies(bytes: &[u8], head_only: bool) -> Result<Vec<Reply>, String> {
    let mut rest = bytes;
    let mut out = Vec::new();
    while !rest.is_empty() {
        if !rest.starts_with(b"HTTP/1.1 ") {
            return Err(format!("bytes that do not start a response: {} (all: {})", show(rest), show(bytes)));
        }
        match read_reply(&mut rest, head_only) {
            Some(reply) => out.push(reply),
            None => return Err(format!("an unparsable response in {}", show(bytes))),
        }
    }
    Ok(out)
}

/// The first line of `bytes`, without its CRLF.
fn status_line(bytes: &[u8]) -> String {
    let end = bytes.windows(2).position(|w| w == b"\r\n").unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The header section of the first response in `bytes` (status line and
/// field lines, up to and including the blank line), and what follows it.
fn split_head(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => bytes.split_at(at + 4),
        None => (bytes, &[]),
    }
}

/// The field lines of a head (from [`split_head`]), as raw bytes.
fn field_lines(head: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut rest = head;
    while let Some(at) = rest.windows(2).position(|w| w == b"\r\n") {
        lines.push(&rest[..at]);
        rest = &rest[at + 2..];
    }
    lines.into_iter().skip(1).filter(|l| !l.is_empty()).collect()
}

/// The field lines of `head` called `name` (case-insensitive), as text.
fn fields_named(head: &[u8], name: &str) -> Vec<String> {
    field_lines(head)
        .into_iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .filter(|l| l.split_once(':').is_some_and(|(n, _)| n.eq_ignore_ascii_case(name)))
        .collect()
}

// ---------------------------------------------------------------------------
// Request side: chunked bodies.
// ---------------------------------------------------------------------------

/// RFC 9112 §7.1 (chunked transfer coding), §7.1.1 (chunk extensions),
/// §7.1.2 (trailer section): a chunked request body is accepted and the
/// handler sees it decoded. Cases: several chunks; an empty body (`0`
/// only); an extension `name=value`; a quoted-string extension value;
/// valueless extensions and one on the last chunk; trailer fields; upper-
/// and lower-case hex sizes; leading zeros; chunk data that looks like a
/// last chunk (`0\r\n\r\n` as data). Each on a fresh connection that must
/// stay open and answer a `GET /hello` next.
fn chunked_bodies_are_decoded<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let cases: [(&[u8], &[u8]); 10] = [
        (b"5\r\nhello\r\n2\r\n, \r\n5\r\nworld\r\n0\r\n\r\n", b"hello, world"),
        (b"0\r\n\r\n", b""),
        (b"5;name=value\r\nhello\r\n0\r\n\r\n", b"hello"),
        (b"5;name=\"quoted value\"\r\nhello\r\n0\r\n\r\n", b"hello"),
        (b"5;a;b=c\r\nhello\r\n0;last\r\n\r\n", b"hello"),
        (b"5\r\nhello\r\n0\r\nX-Trailer: yes\r\nX-Other: 2\r\n\r\n", b"hello"),
        (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
        (b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
        (b"005\r\nhello\r\n000\r\n\r\n", b"hello"),
        (b"5\r\n0\r\n\r\n\r\n0\r\n\r\n", b"0\r\n\r\n"),
    ];
    let mut failures = Failures::default();
    for (chunks, body) in cases {
        failures.check(accepted(&server, &chunked_post(chunks), body));
    }
    failures.finish();
}

/// RFC 9112 §7.1 and §9.3.2 (pipelining): a request pipelined right behind
/// a chunked request (with trailers) in the same write is answered too,
/// after it: the chunked body's end is found exactly.
fn chunked_request_then_pipelined_request<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut client = client(server.addr);
    let mut batch = chunked_post(b"5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n");
    batch.extend_from_slice(&get("/hello"));
    client.send(&batch);
    let first = read_reply(&mut client.reader, false).expect("a response to the chunked request");
    assert_eq!((first.status, show(&first.body)), (200, show(b"hello")), "the chunked request");
    assert!(!first.closes(), "keep-alive after a chunked request");
    let second = read_reply(&mut client.reader, false).expect("a response to the pipelined GET");
    assert_eq!((second.status, show(&second.body)), (200, show(b"hello, world")), "the GET after it");
}

/// RFC 9112 §7.1: the chunked framing may arrive in any number of reads
/// (here one byte per write): sizes, extensions, data and trailers split
/// anywhere still decode to the same body.
fn chunked_body_sent_byte_by_byte<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut client = client(server.addr);
    client.writer.set_nodelay(true).unwrap();
    for byte in chunked_post(b"5\r\nhello\r\n7;x=\"y\"\r\n, world\r\n0\r\nT: v\r\n\r\n") {
        client.send(&[byte]);
        thread::sleep(Duration::from_millis(1));
    }
    let reply = read_reply(&mut client.reader, false).expect("a response");
    assert_eq!((reply.status, show(&reply.body)), (200, show(b"hello, world")));
    assert!(!reply.closes());
}

/// RFC 9112 §7.1 (`chunk-size = 1*HEXDIG`; recipients must guard against
/// integer overflow): a size with `_`, a `0x` prefix, a sign (`+`, `-`),
/// a leading space, or too many digits to fit, gets 400 and a close.
fn malformed_chunk_sizes_get_400<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut failures = Failures::default();
    for chunks in BAD_CHUNK_SIZES {
        failures.check(rejected(&server, &chunked_post(chunks), 400));
    }
    failures.finish();
}

const BAD_CHUNK_SIZES: [&[u8]; 6] = [
    b"1_0\r\n0123456789abcdef\r\n0\r\n\r\n",
    b"0x5\r\nhello\r\n0\r\n\r\n",
    b"+5\r\nhello\r\n0\r\n\r\n",
    b" 5\r\nhello\r\n0\r\n\r\n",
    b"-5\r\nhello\r\n0\r\n\r\n",
    b"FFFFFFFFFFFFFFFF0\r\nhello\r\n0\r\n\r\n",
];

/// RFC 9112 §7.1 (`chunk = chunk-size [ chunk-ext ] CRLF chunk-data
/// CRLF`) and §2.2 (the project accepts bare LF only in the header
/// section, never in chunked framing): data longer than its size, no CRLF
/// after the data, a bare LF after the data, a bare LF or a bare CR ending
/// the size line: 400 and a close.
fn malformed_chunk_framing_gets_400<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut failures = Failures::default();
    for chunks in BAD_CHUNK_FRAMING {
        failures.check(rejected(&server, &chunked_post(chunks), 400));
    }
    failures.finish();
}

const BAD_CHUNK_FRAMING: [&[u8]; 5] = [
    b"3\r\nabcdef\r\n0\r\n\r\n",
    b"5\r\nhello0\r\n\r\n",
    b"5\r\nhello\n0\r\n\r\n",
    b"5\nhello\r\n0\r\n\r\n",
    b"5\rhello\r\n0\r\n\r\n",
];

/// RFC 9112 §7.1.1 (`chunk-ext-name = token`, `chunk-ext-val = token /
/// quoted-string`): a control byte in an extension, a name that is not a
/// token (`[x]`), an empty name (`=v`), and a quoted string that runs into
/// the line end: 400 and a close.
fn malformed_chunk_extensions_get_400<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut failures = Failures::default();
    for chunks in BAD_CHUNK_EXTENSIONS {
        failures.check(rejected(&server, &chunked_post(chunks), 400));
    }
    failures.finish();
}

const BAD_CHUNK_EXTENSIONS: [&[u8]; 4] = [
    b"5;a\x01b\r\nhello\r\n0\r\n\r\n",
    b"5;[x]\r\nhello\r\n0\r\n\r\n",
    b"5;=v\r\nhello\r\n0\r\n\r\n",
    b"5;a=\"open\r\nhello\r\n0\r\n\r\n",
];

/// RFC 9112 §7.1.1 (a server ought to limit the length of chunk extensions
/// and answer a 4xx when it is exceeded): `5;` then 100 KiB of `a` and no
/// line end gets 400 and a close at once, not after a timeout (the client
/// keeps the connection open and sends nothing more).
fn endless_chunk_extension_gets_400_without_waiting<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut request = chunked_post(b"5;");
    request.extend(std::iter::repeat_n(b'a', 100 * 1024));
    let started = Instant::now();
    let mut failures = Failures::default();
    failures.check(rejected(&server, &request, 400));
    failures.finish();
    assert!(started.elapsed() < Duration::from_secs(3), "answered after {:?}", started.elapsed());
}

/// RFC 9112 §7.1 and RFC 9110 §15.5.9 (408 Request Timeout): chunk data
/// shorter than its size, then silence, is answered with 408 and a close
/// at `body_timeout` (300 ms here): not before, and well within 3 s.
fn truncated_chunk_gets_408_at_the_body_deadline<D: Dispatcher + 'static>() {
    let server =
        server_with::<D>(HttpConfig { body_timeout: Duration::from_millis(300), ..Default::default() });
    let mut client = client(server.addr);
    client.send(&chunked_post(b"5\r\nhel"));
    let started = Instant::now();
    let reply = read_reply(&mut client.reader, false).expect("a response within 5 s");
    let elapsed = started.elapsed();
    assert_eq!(reply.status, 408, "got {} {}", reply.status, show(&reply.body));
    assert!(elapsed < Duration::from_secs(3), "408 only after {elapsed:?}");
    assert!(elapsed >= Duration::from_millis(250), "408 after {elapsed:?}, before the body deadline");
    assert!(reply.closes(), "the 408 has `Connection: close`");
    assert!(client.is_closed(), "closed after the 408");
}

/// RFC 9110 §15.5.14 (413 Content Too Large): with `max_body_bytes: 1000`,
/// chunks that decode to 1001 bytes (500 + 500 + 1, or one chunk of 0x3E9)
/// get 413 and a close; chunks that decode to exactly 1000 are accepted.
fn chunked_body_over_the_limit_gets_413<D: Dispatcher + 'static>() {
    let server = server_with::<D>(HttpConfig { max_body_bytes: 1000, ..Default::default() });
    let chunk = |size: usize| {
        let mut chunk = format!("{size:X}\r\n").into_bytes();
        chunk.extend(std::iter::repeat_n(b'b', size));
        chunk.extend_from_slice(b"\r\n");
        chunk
    };
    let body = |sizes: &[usize]| {
        let mut chunks: Vec<u8> = sizes.iter().flat_map(|&s| chunk(s)).collect();
        chunks.extend_from_slice(b"0\r\n\r\n");
        chunks
    };
    let mut failures = Failures::default();
    failures.check(rejected(&server, &chunked_post(&body(&[500, 500, 1])), 413));
    failures.check(rejected(&server, &chunked_post(&body(&[1001])), 413));
    failures.check(accepted(&server, &chunked_post(&body(&[500, 500])), &[b'b'; 1000]));
    failures.finish();
}

// ---------------------------------------------------------------------------
// Request side: Transfer-Encoding.
// ---------------------------------------------------------------------------

/// RFC 9112 §6.3 rule 3 (and §6.1: a server may reject a request with both
/// `Transfer-Encoding` and `Content-Length`, and must close the connection
/// after responding): both fields, in either order, get 400 and a close.
fn transfer_encoding_with_content_length_gets_400<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut failures = Failures::default();
    for fields in TE_WITH_CONTENT_LENGTH {
        failures.check(rejected(&server, &post_with(fields, b"0\r\n\r\n"), 400));
    }
    failures.finish();
}

/// Both framings; either way the body is the 5 bytes `0\r\n\r\n`.
const TE_WITH_CONTENT_LENGTH: [&str; 2] = [
    "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
    "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
];

/// RFC 9112 §6.3 rule 4 (chunked not the final coding of a request: 400
/// and close): `Transfer-Encoding: gzip` and `Transfer-Encoding: identity`
/// (no longer a transfer coding at all).
fn final_coding_other_than_chunked_gets_400<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut failures = Failures::default();
    for fields in NOT_CHUNKED_LAST {
        failures.check(rejected(&server, &post_with(fields, b"5\r\nhello\r\n0\r\n\r\n"), 400));
    }
    failures.finish();
}

const NOT_CHUNKED_LAST: [&str; 2] = ["Transfer-Encoding: gzip\r\n", "Transfer-Encoding: identity\r\n"];

/// RFC 9112 §6.1 (an HTTP/1.0 message with `Transfer-Encoding` is treated
/// as having faulty framing, and the connection is closed): 400 and a close.
fn transfer_encoding_in_http10_gets_400<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut failures = Failures::default();
    failures.check(rejected(&server, TE_IN_HTTP10, 400));
    failures.finish();
}

const TE_IN_HTTP10: &[u8] =
    b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";

/// RFC 9112 §7 (a sender must not apply chunked more than once) and
/// RFC 9110 §5.3 (field lines with one name combine into one list):
/// `chunked, chunked` and two `Transfer-Encoding: chunked` lines: 400.
fn chunked_twice_gets_400<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut failures = Failures::default();
    for fields in CHUNKED_TWICE {
        failures.check(rejected(&server, &post_with(fields, b"0\r\n\r\n"), 400));
    }
    failures.finish();
}

const CHUNKED_TWICE: [&str; 2] = [
    "Transfer-Encoding: chunked, chunked\r\n",
    "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
];

/// RFC 9112 §6.1 (`Transfer-Encoding = #transfer-coding`) with the
/// project's strict reading of RFC 9110 §5.6.1 lists: empty list elements
/// (`chunked,` and `, chunked`) and an empty field value get 400.
fn empty_transfer_coding_elements_get_400<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut failures = Failures::default();
    for fields in EMPTY_TE_ELEMENTS {
        failures.check(rejected(&server, &post_with(fields, b"0\r\n\r\n"), 400));
    }
    failures.finish();
}

const EMPTY_TE_ELEMENTS: [&str; 3] =
    ["Transfer-Encoding: chunked,\r\n", "Transfer-Encoding: , chunked\r\n", "Transfer-Encoding:\r\n"];

/// RFC 9112 §6.1 (a server that receives a transfer coding it does not
/// understand should answer 501): `gzip, chunked` (chunked last, so the
/// framing is known, but gzip is not implemented) gets 501 and a close.
fn unknown_coding_before_chunked_gets_501<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let request = post_with("Transfer-Encoding: gzip, chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n");
    let mut failures = Failures::default();
    failures.check(rejected(&server, &request, 501));
    failures.finish();
}

/// RFC 9112 §7 (transfer-coding names are case-insensitive) and RFC 9110
/// §5.1 (so are field names): `Chunked`, `CHUNKED` and a lower-case
/// `transfer-encoding` field name are accepted and decoded.
fn transfer_coding_names_are_case_insensitive<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut failures = Failures::default();
    for fields in
        ["Transfer-Encoding: Chunked\r\n", "Transfer-Encoding: CHUNKED\r\n", "transfer-encoding: chunked\r\n"]
    {
        failures.check(accepted(&server, &post_with(fields, b"5\r\nhello\r\n0\r\n\r\n"), b"hello"));
    }
    failures.finish();
}

// ---------------------------------------------------------------------------
// Request side: Host.
// ---------------------------------------------------------------------------

/// RFC 9112 §3.2 (400 for an HTTP/1.1 request without `Host`, and for any
/// request with more than one `Host` field line): no Host, two Host lines
/// with different values, two with the same value.
fn host_missing_or_repeated_gets_400<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut failures = Failures::default();
    for request in HOST_MISSING_OR_REPEATED {
        failures.check(rejected(&server, request, 400));
    }
    failures.finish();
}

const HOST_MISSING_OR_REPEATED: [&[u8]; 3] = [
    b"GET /hello HTTP/1.1\r\n\r\n",
    b"GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET /hello HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
];

/// RFC 9112 §3.2 (400 for a `Host` with an invalid field value; `Host =
/// uri-host [ ":" port ]`, RFC 9110 §7.2): a list (`a, b`), a path
/// (`a/b`), userinfo (`user@a`), and (the project's choice) an empty value.
fn invalid_host_values_get_400<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut failures = Failures::default();
    for host in INVALID_HOSTS {
        failures.check(rejected(&server, &get_with_host(host), 400));
    }
    failures.finish();
}

const INVALID_HOSTS: [&str; 4] = ["a, b", "a/b", "user@a", ""];

fn get_with_host(host: &str) -> Vec<u8> {
    format!("GET /hello HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
}

/// RFC 9112 §3.2 and RFC 9110 §7.2 (reg-name, port, IP-literal and IPv4
/// hosts): `example.com`, `example.com:8080`, `[::1]:8080` and `127.0.0.1`
/// are accepted.
fn valid_hosts_are_accepted<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut failures = Failures::default();
    for host in ["example.com", "example.com:8080", "[::1]:8080", "127.0.0.1"] {
        failures.check(accepted(&server, &get_with_host(host), b"hello, world"));
    }
    failures.finish();
}

// ---------------------------------------------------------------------------
// Request side: request targets and Content-Length.
// ---------------------------------------------------------------------------

/// RFC 9112 §3.2.4 (asterisk-form is only used for a server-wide OPTIONS)
/// and RFC 9110 §9.3.7: `OPTIONS * HTTP/1.1` reaches the handler (200
/// `options`, connection kept); `GET * HTTP/1.1` gets 400 and a close.
fn asterisk_form_is_for_options_only<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut failures = Failures::default();
    failures.check(accepted(&server, b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n", b"options"));
    failures.check(rejected(&server, GET_ASTERISK, 400));
    failures.finish();
}

/// RFC 9110 §9.3.6 (CONNECT) and RFC 9112 §3.2.3 (authority-form, only
/// for CONNECT): `CONNECT example.com:443` gets 501 (the server does not
/// tunnel) and a close; `CONNECT /path` (not authority-form) gets 400.
fn connect_is_not_implemented<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut failures = Failures::default();
    failures.check(rejected(
        &server,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        501,
    ));
    failures.check(rejected(&server, CONNECT_PATH, 400));
    failures.finish();
}

const GET_ASTERISK: &[u8] = b"GET * HTTP/1.1\r\nHost: t\r\n\r\n";
const CONNECT_PATH: &[u8] = b"CONNECT /path HTTP/1.1\r\nHost: t\r\n\r\n";
const OVERFLOWING_LENGTH: &[u8] =
    b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999\r\n\r\n";
const BAD_ESCAPE: &[u8] = b"GET /a%zzb HTTP/1.1\r\nHost: t\r\n\r\n";
const ESCAPED_NUL: &[u8] = b"GET /a%00b HTTP/1.1\r\nHost: t\r\n\r\n";

/// RFC 9112 §6.3 rule 5 and RFC 9110 §8.6 (recipients must anticipate
/// large numerals and not overflow): `Content-Length:
/// 99999999999999999999` (beyond u64) gets 400, not 413, and a close.
fn overflowing_content_length_gets_400<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut failures = Failures::default();
    failures.check(rejected(&server, OVERFLOWING_LENGTH, 400));
    failures.finish();
}

/// RFC 9112 §3.2 (invalid request-line: 400) and RFC 3986 §2.1
/// (`pct-encoded = "%" HEXDIG HEXDIG`): `GET /a%zzb` gets 400 and a close.
fn bad_percent_escape_gets_400<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut failures = Failures::default();
    failures.check(rejected(&server, BAD_ESCAPE, 400));
    failures.finish();
}

/// RFC 9112 §3.2 with RFC 3986 §7.3 (the project refuses a percent-encoded
/// NUL in the path, which no file or route can name): `GET /a%00b` gets
/// 400 and a close.
fn percent_encoded_nul_gets_400<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut failures = Failures::default();
    failures.check(rejected(&server, ESCAPED_NUL, 400));
    failures.finish();
}

// ---------------------------------------------------------------------------
// Response side: exactly what is on the wire.
// ---------------------------------------------------------------------------

/// RFC 9110 §5.5 (field values never contain CR, LF or NUL), §5.1 (field
/// names are tokens) and §5.6.2: a handler's invalid header is never sent;
/// the server answers 500 instead. `/inject` (CRLF in a value): a 500, no
/// `Set-Cookie` line and no `evil` anywhere; `/bad-name` (`Bad Name:` as a
/// name): a 500 and no `Bad Name`; `/nul` (NUL in a value): a 500 and no
/// NUL byte.
fn invalid_response_fields_become_500<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut failures = Failures::default();
    let cases: [(&str, &[u8]); 3] = [("/inject", b"evil"), ("/bad-name", b"Bad Name"), ("/nul", b"\0")];
    for (path, forbidden) in cases {
        failures.check(refused_field(&server, path, forbidden));
    }
    failures.finish();
}

/// `GET path`: one 500 on the wire, without `forbidden` anywhere and
/// without a `Set-Cookie` field line.
fn refused_field<D: Dispatcher + 'static>(
    server: &TestHttpServer<D>,
    path: &str,
    forbidden: &[u8],
) -> Result<(), String> {
    let bytes = wire(server, &closing_get("GET", path))?;
    if !status_line(&bytes).starts_with("HTTP/1.1 500 ") {
        return Err(format!("{path}: status line {:?}, expected a 500", status_line(&bytes)));
    }
    if contains(&bytes, forbidden) {
        return Err(format!("{path}: {} is on the wire: {}", show(forbidden), show(&bytes)));
    }
    let (head, _) = split_head(&bytes);
    if !fields_named(head, "set-cookie").is_empty() {
        return Err(format!("{path}: a Set-Cookie field line: {}", show(head)));
    }
    let all = replies(&bytes, false).map_err(|e| format!("{path}: {e}"))?;
    if all.len() != 1 {
        return Err(format!("{path}: {} responses on the wire: {}", all.len(), show(&bytes)));
    }
    Ok(())
}

/// RFC 9110 §15 (a status code is three digits, 100-599) and §15.2 (a 1xx
/// is interim, never the final response): a handler's 1000, 99, 100 or 101
/// is sent as one 500, never as that status line.
fn invalid_status_codes_become_500<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut failures = Failures::default();
    for path in ["/status-1000", "/status/99", "/status/100", "/status/101"] {
        failures.check(one_500(&server, path));
    }
    failures.finish();
}

/// `GET path`: exactly one response on the wire, a 500.
fn one_500<D: Dispatcher + 'static>(server: &TestHttpServer<D>, path: &str) -> Result<(), String> {
    let bytes = wire(server, &closing_get("GET", path))?;
    let all = replies(&bytes, false).map_err(|e| format!("{path}: {e}"))?;
    let statuses: Vec<u16> = all.iter().map(|r| r.status).collect();
    if statuses != [500] || !status_line(&bytes).starts_with("HTTP/1.1 500 ") {
        return Err(format!("{path}: statuses {statuses:?} on the wire, expected one 500: {}", show(&bytes)));
    }
    Ok(())
}

/// A bodiless status (`path` answers it with a body the handler set): it
/// goes out as `line`, with no `Content-Length` or `Transfer-Encoding` and
/// no body bytes, so the next pipelined response follows right after its
/// head.
fn bodiless<D: Dispatcher + 'static>(
    server: &TestHttpServer<D>,
    path: &str,
    line: &str,
) -> Result<(), String> {
    let mut batch = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes();
    batch.extend_from_slice(&closing_get("GET", "/hello"));
    let bytes = wire(server, &batch)?;
    if status_line(&bytes) != line {
        return Err(format!("{path}: status line {:?}, expected {line:?}", status_line(&bytes)));
    }
    let (head, rest) = split_head(&bytes);
    for field in ["content-length", "transfer-encoding"] {
        let lines = fields_named(head, field);
        if !lines.is_empty() {
            return Err(format!("{path}: the {} has {lines:?}", &line[9..]));
        }
    }
    if !rest.starts_with(b"HTTP/1.1 200 OK\r\n") {
        return Err(format!("{path}: after its head comes {}, not the next response", show(rest)));
    }
    match replies(rest, false)?.as_slice() {
        [hello] if hello.body == b"hello, world" => Ok(()),
        other => Err(format!("{path}: the pipelined GET /hello got {other:?}")),
    }
}

/// RFC 9110 §15.3.5 (204 has no content), §8.6 and RFC 9112 §6.2 (no
/// `Content-Length` in a 204), §6.3 rule 1: `/no-content` goes out as
/// `HTTP/1.1 204 No Content` with no length and no body, although the
/// handler set one; a request pipelined behind it is answered right after.
fn no_content_has_no_length_and_no_body<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut failures = Failures::default();
    failures.check(bodiless(&server, "/no-content", "HTTP/1.1 204 No Content"));
    failures.finish();
}

/// RFC 9110 §15.4.5 (304 has no content) and RFC 9112 §6.3 rule 1:
/// `/not-modified` goes out as `HTTP/1.1 304 Not Modified` with no body
/// (and, the project's choice, no `Content-Length`); a request pipelined
/// behind it is answered right after.
fn not_modified_has_no_body<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut failures = Failures::default();
    failures.check(bodiless(&server, "/not-modified", "HTTP/1.1 304 Not Modified"));
    failures.finish();
}

/// RFC 9110 §15 (and RFC 6585, RFC 7725, RFC 2324 for 418): each final
/// status a handler may use goes out as `HTTP/1.1 N <registered reason
/// phrase>`, never `Unknown`.
fn reason_phrases_are_the_registered_ones<D: Dispatcher + 'static>() {
    const PHRASES: [(u16, &str); 42] = [
        (200, "OK"),
        (201, "Created"),
        (202, "Accepted"),
        (204, "No Content"),
        (206, "Partial Content"),
        (301, "Moved Permanently"),
        (302, "Found"),
        (303, "See Other"),
        (304, "Not Modified"),
        (307, "Temporary Redirect"),
        (308, "Permanent Redirect"),
        (400, "Bad Request"),
        (401, "Unauthorized"),
        (402, "Payment Required"),
        (403, "Forbidden"),
        (404, "Not Found"),
        (405, "Method Not Allowed"),
        (406, "Not Acceptable"),
        (408, "Request Timeout"),
        (409, "Conflict"),
        (410, "Gone"),
        (411, "Length Required"),
        (412, "Precondition Failed"),
        (413, "Content Too Large"),
        (414, "URI Too Long"),
        (415, "Unsupported Media Type"),
        (416, "Range Not Satisfiable"),
        (417, "Expectation Failed"),
        (418, "I'm a teapot"),
        (421, "Misdirected Request"),
        (422, "Unprocessable Content"),
        (426, "Upgrade Required"),
        (428, "Precondition Required"),
        (429, "Too Many Requests"),
        (431, "Request Header Fields Too Large"),
        (451, "Unavailable For Legal Reasons"),
        (500, "Internal Server Error"),
        (501, "Not Implemented"),
        (502, "Bad Gateway"),
        (503, "Service Unavailable"),
        (504, "Gateway Timeout"),
        (505, "HTTP Version Not Supported"),
    ];
    let server = server::<D>();
    let mut failures = Failures::default();
    for (status, phrase) in PHRASES {
        failures.check(status_line_is(&server, status, phrase));
    }
    failures.finish();
}

/// `GET /status/N` goes out with the status line `HTTP/1.1 N phrase`.
fn status_line_is<D: Dispatcher + 'static>(
    server: &TestHttpServer<D>,
    status: u16,
    phrase: &str,
) -> Result<(), String> {
    let bytes = wire(server, &closing_get("GET", &format!("/status/{status}")))?;
    let expected = format!("HTTP/1.1 {status} {phrase}");
    match status_line(&bytes) {
        line if line == expected => Ok(()),
        line => Err(format!("{status}: {line:?}, expected {expected:?}")),
    }
}

/// RFC 9110 §8.3 (Content-Type is a singleton field) and §5.3 (a sender
/// must not send several field lines with one name unless it is a list):
/// `/json` sets Content-Type over `Response::text`'s: exactly one
/// Content-Type line goes out, `application/json`.
fn content_type_is_sent_once<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let bytes = wire(&server, &closing_get("GET", "/json")).unwrap();
    let (head, body) = split_head(&bytes);
    assert_eq!(status_line(&bytes), "HTTP/1.1 200 OK");
    let lines = fields_named(head, "content-type");
    let values: Vec<&str> = lines.iter().map(|l| l.split_once(':').unwrap().1.trim()).collect();
    assert_eq!(values, ["application/json"], "Content-Type lines: {lines:?}");
    assert_eq!(body, b"{}");
}

/// RFC 9110 §9.3.2 (HEAD: the same header fields as GET, no content) and
/// §8.6 (Content-Length in a HEAD response is what GET would send):
/// `HEAD /hello` goes out with `Content-Length: 12` and no body bytes: the
/// response to a GET pipelined behind it follows its head directly.
fn head_gets_the_length_without_the_body<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut batch = b"HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n".to_vec();
    batch.extend_from_slice(&closing_get("GET", "/hello"));
    let bytes = wire(&server, &batch).unwrap();
    let (head, rest) = split_head(&bytes);
    assert_eq!(status_line(head), "HTTP/1.1 200 OK");
    assert_eq!(fields_named(head, "content-length"), ["Content-Length: 12"], "{}", show(head));
    assert!(rest.starts_with(b"HTTP/1.1 200 OK\r\n"), "after the HEAD's head: {}", show(rest));
    let get = replies(rest, false).unwrap();
    assert_eq!(get.len(), 1);
    assert_eq!((get[0].length(), get[0].body.as_slice()), (12, b"hello, world".as_slice()));
}

// ---------------------------------------------------------------------------
// Connection handling.
// ---------------------------------------------------------------------------

/// RFC 9112 §9.6 and §6.3 (after a framing error the server must close the
/// connection; what follows the bad request is never read as a request):
/// for every request that gets a 400 in the tests above (and one that is
/// not HTTP at all), a valid `GET /hello` sent behind it in the same write
/// gets no response: the wire holds the 400 alone, then EOF.
fn nothing_is_answered_after_a_400<D: Dispatcher + 'static>() {
    let server = server::<D>();
    let mut failures = Failures::default();
    for request in every_400_request() {
        failures.check(only_the_400(&server, &request));
    }
    failures.finish();
}

/// The requests the tests above expect a 400 for (all but the 100 KiB
/// chunk extension).
fn every_400_request() -> Vec<Vec<u8>> {
    let mut requests = vec![b"THIS IS NOT HTTP\r\n\r\n".to_vec()];
    let chunks = BAD_CHUNK_SIZES.iter().chain(&BAD_CHUNK_FRAMING).chain(&BAD_CHUNK_EXTENSIONS);
    requests.extend(chunks.map(|chunks| chunked_post(chunks)));
    let te = TE_WITH_CONTENT_LENGTH
        .iter()
        .chain(&NOT_CHUNKED_LAST)
        .chain(&CHUNKED_TWICE)
        .chain(&EMPTY_TE_ELEMENTS);
    requests.extend(te.map(|fields| post_with(fields, b"0\r\n\r\n")));
    requests.extend(INVALID_HOSTS.iter().map(|host| get_with_host(host)));
    let whole = HOST_MISSING_OR_REPEATED.iter().copied();
    let whole =
        whole.chain([TE_IN_HTTP10, GET_ASTERISK, CONNECT_PATH, OVERFLOWING_LENGTH, BAD_ESCAPE, ESCAPED_NUL]);
    requests.extend(whole.map(<[u8]>::to_vec));
    requests
}

/// `request` then a valid `GET /hello` in one write: exactly one response,
/// a 400 with `Connection: close`, then EOF.
fn only_the_400<D: Dispatcher + 'static>(server: &TestHttpServer<D>, request: &[u8]) -> Result<(), String> {
    let case = show(request);
    let mut batch = request.to_vec();
    batch.extend_from_slice(&closing_get("GET", "/hello"));
    let bytes = wire(server, &batch).map_err(|e| format!("{case}: {e}"))?;
    let all = replies(&bytes, false).map_err(|e| format!("{case}: {e}"))?;
    let statuses: Vec<u16> = all.iter().map(|r| r.status).collect();
    if statuses != [400] {
        return Err(format!("{case}: statuses {statuses:?}, expected one 400 then EOF"));
    }
    if !all[0].closes() {
        return Err(format!("{case}: the 400 has no `Connection: close`"));
    }
    Ok(())
}

for_each_dispatcher!(
    chunked_bodies_are_decoded,
    chunked_request_then_pipelined_request,
    chunked_body_sent_byte_by_byte,
    malformed_chunk_sizes_get_400,
    malformed_chunk_framing_gets_400,
    malformed_chunk_extensions_get_400,
    endless_chunk_extension_gets_400_without_waiting,
    truncated_chunk_gets_408_at_the_body_deadline,
    chunked_body_over_the_limit_gets_413,
    transfer_encoding_with_content_length_gets_400,
    final_coding_other_than_chunked_gets_400,
    transfer_encoding_in_http10_gets_400,
    chunked_twice_gets_400,
    empty_transfer_coding_elements_get_400,
    unknown_coding_before_chunked_gets_501,
    transfer_coding_names_are_case_insensitive,
    host_missing_or_repeated_gets_400,
    invalid_host_values_get_400,
    valid_hosts_are_accepted,
    asterisk_form_is_for_options_only,
    connect_is_not_implemented,
    overflowing_content_length_gets_400,
    bad_percent_escape_gets_400,
    percent_encoded_nul_gets_400,
    invalid_response_fields_become_500,
    invalid_status_codes_become_500,
    no_content_has_no_length_and_no_body,
    not_modified_has_no_body,
    reason_phrases_are_the_registered_ones,
    content_type_is_sent_once,
    head_gets_the_length_without_the_body,
    nothing_is_answered_after_a_400,
);
