//! The HTTP request assembler (head parser and chunked body decoder) fed
//! arbitrary bytes split at arbitrary points.
//!
//! `request::parse` is crate-private, so this target compiles the library's
//! own `src/http/request.rs` (not a copy) as a module of this crate,
//! and drives it the way `http/connection.rs` does: skip blank lines between
//! requests, resume the header search at `scanned`, consume each complete
//! request and go on (pipelining), stop at a rejection or a non-keep-alive
//! request. Property: feeding the pieces one after another gives the same
//! requests, rejections and final state as feeding everything at once; and
//! nothing panics.

#![no_main]

use libfuzzer_sys::fuzz_target;

// `request.rs` imports `super::{HttpConfig, StreamAddr, syntax}` and the
// server feeds chunked bodies to `chunked.rs`: their parent here is this
// crate root.
use muxloop::StreamAddr;
use muxloop::http::HttpConfig;

#[allow(dead_code)]
#[path = "../../src/http/request.rs"]
mod request;

#[allow(dead_code)]
#[path = "../../src/http/syntax.rs"]
mod syntax;

#[allow(dead_code)]
#[path = "../../src/http/chunked.rs"]
mod chunked;

use chunked::{ChunkedDecoder, ChunkedLimits, Decoded};
use request::{Parsed, parse, parse_head};

/// What the server would do, in order.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    /// A complete request of `len` bytes (its parsed form, printed).
    Request { len: usize, request: String },
    /// A 4xx/5xx and close.
    Reject { status: u16, reason: String },
}

/// The final state once the input is exhausted.
#[derive(Debug, PartialEq, Eq)]
enum Waiting {
    Idle,
    Head,
    Body { missing: usize },
    /// Inside a chunked body, `decoded` bytes so far.
    Chunked { decoded: usize },
    Closed,
}

/// A chunked request being received, as in `http/connection.rs`.
struct ChunkedRequest {
    head: Vec<u8>,
    decoder: ChunkedDecoder,
    body: Vec<u8>,
    /// Raw body bytes taken so far (framing included).
    raw: usize,
}

/// A connection's parsing state, as in `http/connection.rs`.
struct Session<'c> {
    input: Vec<u8>,
    scanned: usize,
    in_request: bool,
    chunked: Option<ChunkedRequest>,
    closed: bool,
    waiting: Waiting,
    events: Vec<Event>,
    config: &'c HttpConfig,
}

impl Session<'_> {
    fn feed(&mut self, bytes: &[u8]) {
        if self.closed {
            return;
        }
        self.input.extend_from_slice(bytes);
        loop {
            if !self.in_request {
                let blank = self.input.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
                self.input.drain(..blank);
                if self.input.is_empty() {
                    self.waiting = Waiting::Idle;
                    return;
                }
                self.in_request = true;
            }
            if let Some(chunked) = self.chunked.as_mut() {
                match chunked.decoder.decode(&self.input, &mut chunked.body) {
                    Ok(Decoded::NeedMore) => {
                        chunked.raw += self.input.len();
                        self.input.clear();
                        self.waiting = Waiting::Chunked { decoded: chunked.body.len() };
                        return;
                    }
                    Ok(Decoded::Done { consumed }) => {
                        assert!(consumed <= self.input.len(), "consumed past the input");
                        assert!(chunked.body.len() <= self.config.max_body_bytes, "body over the limit");
                        self.input.drain(..consumed);
                        let Some(chunked) = self.chunked.take() else { unreachable!() };
                        let (request, _) = parse_head(&chunked.head, self.config).expect("the head parsed before");
                        let request = request.with_body(&chunked.body);
                        let keep_alive = request.keep_alive();
                        let len = chunked.head.len() + chunked.raw + consumed;
                        self.events.push(Event::Request { len, request: format!("{request:?}") });
                        self.scanned = 0;
                        self.in_request = false;
                        if !keep_alive {
                            self.close();
                            return;
                        }
                        continue;
                    }
                    Err(e) => {
                        assert!(matches!(e.status, 400 | 413 | 431), "status {}", e.status);
                        self.events.push(Event::Reject { status: e.status, reason: e.reason });
                        self.close();
                        return;
                    }
                }
            }
            match parse(&self.input, self.scanned, self.config) {
                Ok(Parsed::Partial { scanned }) => {
                    assert!(scanned <= self.input.len(), "scanned past the input");
                    self.scanned = scanned;
                    self.waiting = Waiting::Head;
                    return;
                }
                Ok(Parsed::AwaitingBody { missing, .. }) => {
                    assert!(missing > 0, "awaiting no body bytes");
                    self.waiting = Waiting::Body { missing };
                    return;
                }
                Ok(Parsed::Chunked { request, head_len }) => {
                    let limits = ChunkedLimits {
                        max_body: self.config.max_body_bytes,
                        max_line: 4096,
                        max_trailer_bytes: self.config.max_header_bytes.saturating_sub(head_len),
                        max_trailers: self.config.max_headers.saturating_sub(request.header_count()),
                    };
                    let head = self.input[..head_len].to_vec();
                    self.input.drain(..head_len);
                    let decoder = ChunkedDecoder::new(limits);
                    self.chunked = Some(ChunkedRequest { head, decoder, body: Vec::new(), raw: 0 });
                }
                Ok(Parsed::Complete { request, len }) => {
                    assert!(len > 0 && len <= self.input.len(), "request length {len} out of range");
                    let keep_alive = request.keep_alive();
                    self.events.push(Event::Request { len, request: format!("{request:?}") });
                    self.input.drain(..len);
                    self.scanned = 0;
                    self.in_request = false;
                    if !keep_alive {
                        self.close();
                        return;
                    }
                }
                Err(rejection) => {
                    assert!((400..600).contains(&rejection.status), "status {}", rejection.status);
                    self.events.push(Event::Reject { status: rejection.status, reason: rejection.reason });
                    self.close();
                    return;
                }
            }
        }
    }

    fn close(&mut self) {
        self.closed = true;
        self.waiting = Waiting::Closed;
    }
}

fn session(config: &HttpConfig) -> Session<'_> {
    Session {
        input: Vec::new(),
        scanned: 0,
        in_request: false,
        chunked: None,
        closed: false,
        waiting: Waiting::Idle,
        events: Vec::new(),
        config,
    }
}

fuzz_target!(|data: &[u8]| {
    // Header: limits (small ones reach 431/413 quickly) and the cut points.
    let &[limits, cuts, ref rest @ ..] = data else { return };
    let mut config = HttpConfig::default();
    if limits & 1 != 0 {
        config.max_header_bytes = 64 + usize::from(limits >> 1) * 4;
        config.max_headers = 1 + usize::from(limits >> 4);
        config.max_body_bytes = usize::from(limits);
    }
    let cut_count = usize::from(cuts % 16).min(rest.len());
    let (cut_bytes, body) = rest.split_at(cut_count);
    let mut points: Vec<usize> = cut_bytes.iter().map(|&c| usize::from(c) * body.len() / 256).collect();
    points.push(body.len());
    points.sort_unstable();

    let mut whole = session(&config);
    whole.feed(body);

    let mut pieces = session(&config);
    let mut from = 0;
    for &to in &points {
        pieces.feed(&body[from..to]);
        from = to;
    }
    // One byte at a time too: the worst case for resuming the search.
    let mut bytewise = session(&config);
    if body.len() <= 4096 {
        for byte in body.chunks(1) {
            bytewise.feed(byte);
        }
        assert_eq!(bytewise.events, whole.events, "byte-by-byte events");
        assert_eq!(bytewise.waiting, whole.waiting, "byte-by-byte final state");
    }
    assert_eq!(pieces.events, whole.events, "events at cuts {points:?}");
    assert_eq!(pieces.waiting, whole.waiting, "final state at cuts {points:?}");
});
