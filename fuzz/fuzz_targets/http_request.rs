//! The HTTP request assembler fed arbitrary bytes split at arbitrary points.
//!
//! `request::parse` is crate-private, so this target compiles the library's
//! own `src/http/request.rs` (not a copy) as a module of this crate,
//! and drives it the way `http/server.rs` does: skip blank lines between
//! requests, resume the header search at `scanned`, consume each complete
//! request and go on (pipelining), stop at a rejection or a non-keep-alive
//! request. Property: feeding the pieces one after another gives the same
//! requests, rejections and final state as feeding everything at once; and
//! nothing panics.

#![no_main]

use libfuzzer_sys::fuzz_target;

// `request.rs` imports `super::HttpConfig`: its parent here is this crate root.
use muxloop::http::HttpConfig;

#[allow(dead_code)]
#[path = "../../src/http/request.rs"]
mod request;

use request::{Parsed, parse};

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
    Closed,
}

/// A connection's parsing state, as in `http/server.rs`.
struct Session<'c> {
    input: Vec<u8>,
    scanned: usize,
    in_request: bool,
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
