//! Pipelined HTTP/1.1: many peers, each writing a run of requests before it
//! reads the answers, split at random byte boundaries; bodies by
//! `Content-Length` and chunked; answers larger than any socket buffer, by
//! `Content-Length` and streamed; a server whose output limit pauses its
//! reading; and the kernel's faults in between.
//!
//! Invariants, after every step:
//! * each peer's answers arrive in request order, each exactly the answer
//!   to its request (status, framing, body, `Connection: close` only where
//!   due), none before its request was sent whole, nothing after the last;
//! * queued output per connection stays bounded: the output limit plus one
//!   answer, twice that once the answers that waited behind a streamed
//!   body (bounded by the limit too) join the output;
//! * the loop makes progress: no long run of events that move no byte (a
//!   busy loop) and no long stretch of steps in which nothing moves while
//!   a peer still waits (a hang);
//!
//! and at the end: every peer got every answer (where a fault ended its
//! connection: a prefix of them and an error or EOF); a peer that ended
//! with `Connection: close` or a half-close then reads end of file; a
//! keep-alive peer reads end of file once the server stops, and nothing
//! before; the server stops without forcing a connection, and no
//! simulated fd is left open.

use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use muxloop::http::{BodyWriter, Fill, HttpConfig, HttpServer, Request, Response, Router};
use muxloop::sim::{Peer, Rng, Sim, SimConfig};
use muxloop::{EventLoop, SimDispatcher, Trigger};

use crate::harness::{Fnv, Outcome, Progress, assert_deterministic, faults_for, init_logging, run_seeds};

type Ev = EventLoop<SimDispatcher>;

/// Events in a row that may move no byte before the run counts as a busy loop.
const BUSY_EVENTS: u64 = 2_000;
/// The HTTP time limits, longer than any run (the clock faults jump up to
/// 2 s per dispatch): no 408 and no idle close comes between the answers.
const NEVER: Duration = Duration::from_secs(100_000_000);
const HELLO: &[u8] = b"hello, world";
/// Room for a response head (status line, `Content-Length`, `Date`,
/// `Content-Type`, `Connection`) or a streamed piece's chunk framing.
const HEAD_ROOM: usize = 512;

/// `n` bytes of the pattern `/big` and `/stream` send (0, 1, ... 250, 0,
/// ...), from offset `from`.
fn pattern(from: usize, n: usize) -> Vec<u8> {
    const CYCLE: [u8; 251] = {
        let mut cycle = [0; 251];
        let mut i = 0;
        while i < cycle.len() {
            cycle[i] = i as u8;
            i += 1;
        }
        cycle
    };
    let mut out = Vec::with_capacity(n);
    let mut at = from % CYCLE.len();
    while out.len() < n {
        let take = (CYCLE.len() - at).min(n - out.len());
        out.extend_from_slice(&CYCLE[at..at + take]);
        at = 0;
    }
    out
}

fn payload(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

fn query(req: &Request<'_>, name: &str) -> usize {
    req.query_value(name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// `GET /hello`, `POST /echo`, `GET /big?n=N` (N pattern bytes with a
/// `Content-Length`) and `GET /stream?n=N&piece=P` (N pattern bytes
/// streamed, at most P per pull, sent chunked).
fn router() -> Router {
    Router::new()
        .get("/hello", |_: &Request<'_>| Response::text(200, "hello, world"))
        .post("/echo", |req: &Request<'_>| Response::new(200).body(req.body()))
        .get("/big", |req: &Request<'_>| Response::new(200).body(pattern(0, query(req, "n"))))
        .get("/stream", |req: &Request<'_>| {
            let (total, piece) = (query(req, "n"), query(req, "piece").max(1));
            let mut sent = 0;
            Response::stream(200, move |body: &mut BodyWriter<'_>| {
                let n = body.room().min(piece).min(total - sent);
                body.write(&pattern(sent, n));
                sent += n;
                if sent == total { Fill::End } else { Fill::More }
            })
        })
}

/// How a peer ends its conversation.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum End {
    /// Stays open after its last answer; the server's stop closes it.
    KeepAlive,
    /// Its last request says `Connection: close`.
    Close,
    /// Half-closes after its last request (sometimes cut short in the middle of one).
    HalfClose,
}

/// One request and the answer it must get.
#[derive(Debug)]
struct Exchange {
    /// Where the request's last byte is in the peer's plan.
    end: usize,
    what: String,
    head_only: bool,
    /// The answer's body (for HEAD: the body a GET gets, whose length is announced).
    body: Vec<u8>,
    close: bool,
}

/// Appends one random request to `wire`; the last one of a `Close` peer says so.
fn request(rng: &mut Rng, close: bool, wire: &mut Vec<u8>) -> Exchange {
    let body_len = |rng: &mut Rng| match rng.below(10) {
        0 => 0,
        1 => rng.between(1, 64 << 10) as usize,
        _ => rng.between(1, 2 << 10) as usize,
    };
    let connection = match (close, rng.chance(0.5)) {
        (false, _) => "",
        (true, true) => "Connection: close\r\n",
        (true, false) => "connection: Close\r\n",
    };
    let answer =
        |what: String, head_only: bool, body: Vec<u8>| Exchange { end: 0, what, head_only, body, close };
    let exchange = match rng.below(12) {
        0..=2 => {
            wire.extend_from_slice(
                format!("GET /hello HTTP/1.1\r\nHost: sim\r\n{connection}\r\n").as_bytes(),
            );
            answer("GET /hello".into(), false, HELLO.to_vec())
        }
        3 => {
            wire.extend_from_slice(
                format!("HEAD /hello HTTP/1.1\r\nHost: sim\r\n{connection}\r\n").as_bytes(),
            );
            answer("HEAD /hello".into(), true, HELLO.to_vec())
        }
        4..=6 => {
            let len = body_len(rng);
            let body = payload(rng, len);
            wire.extend_from_slice(
                format!(
                    "POST /echo HTTP/1.1\r\nHost: sim\r\nContent-Length: {}\r\n{connection}\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            wire.extend_from_slice(&body);
            answer(format!("POST /echo, {} bytes", body.len()), false, body)
        }
        7..=9 => {
            let len = body_len(rng);
            let body = payload(rng, len);
            wire.extend_from_slice(
                format!("POST /echo HTTP/1.1\r\nHost: sim\r\nTransfer-Encoding: chunked\r\n{connection}\r\n")
                    .as_bytes(),
            );
            // Chunks of 1 to 16, 512 or 16 Ki bytes (at most about 256 of them).
            let most = [16, 512, 16 << 10][rng.below(3)].max(body.len() / 256 + 1);
            let mut at = 0;
            while at < body.len() {
                let n = (rng.between(1, most as u64) as usize).min(body.len() - at);
                let size = if rng.chance(0.5) { format!("{n:x}") } else { format!("{n:X}") };
                let extension = if rng.chance(0.1) { ";sim=1" } else { "" };
                wire.extend_from_slice(format!("{size}{extension}\r\n").as_bytes());
                wire.extend_from_slice(&body[at..at + n]);
                wire.extend_from_slice(b"\r\n");
                at += n;
            }
            wire.extend_from_slice(if rng.chance(0.2) { b"0\r\nX-Sim: 1\r\n\r\n" } else { b"0\r\n\r\n" });
            answer(format!("POST /echo, {} bytes chunked", body.len()), false, body)
        }
        10 => {
            let n = rng.between((64 << 10) + 1, 128 << 10) as usize;
            wire.extend_from_slice(
                format!("GET /big?n={n} HTTP/1.1\r\nHost: sim\r\n{connection}\r\n").as_bytes(),
            );
            answer(format!("GET /big?n={n}"), false, pattern(0, n))
        }
        _ => {
            let n = rng.between(0, 128 << 10) as usize;
            let piece = rng.between(1, 64 << 10);
            wire.extend_from_slice(
                format!("GET /stream?n={n}&piece={piece} HTTP/1.1\r\nHost: sim\r\n{connection}\r\n")
                    .as_bytes(),
            );
            answer(format!("GET /stream?n={n}&piece={piece}"), false, pattern(0, n))
        }
    };
    Exchange { end: wire.len(), ..exchange }
}

/// Where the response parser is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Part {
    Head,
    /// `Content-Length` body bytes still to come.
    Length(usize),
    ChunkSize,
    ChunkData(usize),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// After the last chunk: trailer fields (none expected), then a blank line.
    Trailer,
}

/// A peer's incremental response parser, which checks each answer against
/// its request as soon as it is complete.
#[derive(Debug)]
struct Reader {
    buf: Vec<u8>,
    at: usize,
    part: Part,
    body: Vec<u8>,
    close: bool,
    /// Answers complete and checked.
    answered: usize,
    hash: Fnv,
}

impl Reader {
    fn new() -> Reader {
        Reader {
            buf: Vec::new(),
            at: 0,
            part: Part::Head,
            body: Vec::new(),
            close: false,
            answered: 0,
            hash: Fnv::new(),
        }
    }

    /// Whether no answer is partly received.
    fn between_answers(&self) -> bool {
        self.part == Part::Head && self.at == self.buf.len()
    }

    /// Parses what arrived; `sent`: how many request bytes have been written.
    fn feed(&mut self, bytes: &[u8], exchanges: &[Exchange], sent: usize, end: End) -> Result<(), String> {
        self.buf.extend_from_slice(bytes);
        loop {
            let rest = &self.buf[self.at..];
            match self.part {
                Part::Head => {
                    if rest.is_empty() {
                        break;
                    }
                    let Some(exchange) = exchanges.get(self.answered) else {
                        return Err(format!("{} bytes after the last answer", rest.len()));
                    };
                    let mut headers = [httparse::EMPTY_HEADER; 16];
                    let mut response = httparse::Response::new(&mut headers);
                    let len = match response.parse(rest) {
                        Ok(httparse::Status::Complete(len)) => len,
                        Ok(httparse::Status::Partial) if rest.len() < 4096 => break,
                        Ok(httparse::Status::Partial) => return Err("a response head over 4 KiB".into()),
                        Err(e) => {
                            let shown = String::from_utf8_lossy(&rest[..rest.len().min(200)]);
                            return Err(format!("answer {}: bad head ({e}): {shown:?}", self.answered));
                        }
                    };
                    if exchange.end > sent {
                        return Err(format!(
                            "answer {} ({}) came before its request was sent whole ({sent} of {} bytes)",
                            self.answered, exchange.what, exchange.end
                        ));
                    }
                    if response.version != Some(1) || response.code != Some(200) {
                        return Err(format!(
                            "answer {} ({}): HTTP/1.{:?} {:?}",
                            self.answered, exchange.what, response.version, response.code
                        ));
                    }
                    let (mut length, mut chunked, mut close) = (None, false, false);
                    for header in response.headers.iter() {
                        let value = String::from_utf8_lossy(header.value);
                        match header.name.to_ascii_lowercase().as_str() {
                            "content-length" if length.is_none() => length = value.parse::<usize>().ok(),
                            "content-length" => return Err("two Content-Length fields".into()),
                            "transfer-encoding" if value == "chunked" => chunked = true,
                            "transfer-encoding" => return Err(format!("Transfer-Encoding: {value}")),
                            "connection" => close = value.eq_ignore_ascii_case("close"),
                            _ => {}
                        }
                    }
                    let last = self.answered + 1 == exchanges.len();
                    if close != exchange.close && !(close && last && end == End::HalfClose) {
                        return Err(format!(
                            "answer {} ({}) says Connection: close: {close}, expected {}",
                            self.answered, exchange.what, exchange.close
                        ));
                    }
                    self.close = close;
                    self.at += len;
                    self.part = match (length, chunked) {
                        (Some(_), true) => return Err("Content-Length and chunked".into()),
                        (None, false) => return Err(format!("answer {}: no framing", self.answered)),
                        (Some(n), false) if exchange.head_only => {
                            if n != exchange.body.len() {
                                return Err(format!(
                                    "HEAD announced {n} bytes, GET sends {}",
                                    exchange.body.len()
                                ));
                            }
                            self.finish(exchanges)?;
                            Part::Head
                        }
                        (_, true) if exchange.head_only => return Err("HEAD answered chunked".into()),
                        (Some(n), false) => Part::Length(n),
                        (None, true) => Part::ChunkSize,
                    };
                    if self.part == Part::Length(0) {
                        self.finish(exchanges)?;
                        self.part = Part::Head;
                    }
                }
                Part::Length(left) | Part::ChunkData(left) => {
                    let n = left.min(rest.len());
                    if n == 0 {
                        break;
                    }
                    self.body.extend_from_slice(&rest[..n]);
                    self.at += n;
                    self.part = match (self.part, left - n) {
                        (Part::Length(_), 0) => {
                            self.finish(exchanges)?;
                            Part::Head
                        }
                        (Part::Length(_), left) => Part::Length(left),
                        (_, 0) => Part::ChunkEnd,
                        (_, left) => Part::ChunkData(left),
                    };
                }
                Part::ChunkSize | Part::Trailer => {
                    let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
                        if rest.len() > 64 {
                            return Err(format!("a chunk line over 64 bytes: {:?}", &rest[..64]));
                        }
                        break;
                    };
                    let line = std::str::from_utf8(&rest[..eol]).map_err(|_| "a chunk line not UTF-8")?;
                    self.at += eol + 2;
                    if self.part == Part::Trailer {
                        if !line.is_empty() {
                            return Err(format!("an unexpected trailer field: {line:?}"));
                        }
                        self.finish(exchanges)?;
                        self.part = Part::Head;
                        continue;
                    }
                    let size = usize::from_str_radix(line, 16)
                        .ok()
                        .filter(|_| line.bytes().all(|b| b.is_ascii_hexdigit()))
                        .ok_or_else(|| format!("a bad chunk size line: {line:?}"))?;
                    self.part = if size == 0 { Part::Trailer } else { Part::ChunkData(size) };
                }
                Part::ChunkEnd => {
                    if rest.len() < 2 {
                        break;
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(format!("chunk data not followed by CRLF: {:?}", &rest[..2]));
                    }
                    self.at += 2;
                    self.part = Part::ChunkSize;
                }
            }
        }
        if self.at > 64 << 10 {
            self.buf.drain(..self.at);
            self.at = 0;
        }
        Ok(())
    }

    /// The body of answer `answered` is complete: it must be its request's.
    fn finish(&mut self, exchanges: &[Exchange]) -> Result<(), String> {
        let exchange = &exchanges[self.answered];
        let expected: &[u8] = if exchange.head_only { &[] } else { &exchange.body };
        if self.body != expected {
            let differs = self.body.iter().zip(expected).position(|(a, b)| a != b);
            return Err(format!(
                "answer {} ({}): a body of {} bytes, expected {} (first difference at {differs:?})",
                self.answered,
                exchange.what,
                self.body.len(),
                expected.len()
            ));
        }
        // The body was just checked against the plan, which the seed fixes:
        // its length stands for it in the transcript.
        self.hash.add(&(self.body.len() as u64).to_le_bytes());
        self.hash.add(&[self.close as u8]);
        self.body.clear();
        self.answered += 1;
        Ok(())
    }
}

#[derive(Debug)]
struct PeerState {
    peer: Option<Peer>,
    plan: Vec<u8>,
    exchanges: Vec<Exchange>,
    end: End,
    /// Reads only once all is written or a write would block: deep pipelining.
    reads_late: bool,
    blocked: bool,
    sent: usize,
    shut: bool,
    reader: Reader,
    got: usize,
    ended: Option<ErrorKind>,
}

impl PeerState {
    fn new(rng: &mut Rng) -> PeerState {
        let end = [End::KeepAlive, End::Close, End::HalfClose][rng.below(3)];
        let count = rng.between(1, 12) as usize;
        let mut plan = Vec::new();
        let mut exchanges: Vec<Exchange> =
            (0..count).map(|i| request(rng, end == End::Close && i + 1 == count, &mut plan)).collect();
        if end == End::HalfClose && rng.chance(0.1) {
            // Cut short: a request broken off by the half-close is not answered.
            plan.truncate(rng.between(0, plan.len() as u64) as usize);
            exchanges.retain(|e| e.end <= plan.len());
        }
        PeerState {
            peer: None,
            plan,
            exchanges,
            end,
            reads_late: rng.chance(0.5),
            blocked: false,
            sent: 0,
            shut: false,
            reader: Reader::new(),
            got: 0,
            ended: None,
        }
    }

    fn live(&self) -> bool {
        self.ended.is_none()
    }

    /// Whether it still waits for something: answers, or its end of file.
    fn waiting(&self) -> bool {
        self.live() && !(self.end == End::KeepAlive && self.reader.answered == self.exchanges.len())
    }

    fn progress(&self) -> usize {
        self.sent + self.got + self.shut as usize + self.ended.is_some() as usize
    }
}

/// One seed of the pipelined-HTTP scenario.
pub fn http_scenario(seed: u64) -> Outcome {
    let faults = faults_for(seed);
    let ends_connections = faults.ends_connections();
    let mut rng = Rng::new(seed);
    let sim = Sim::start(SimConfig::new(seed).faults(faults)).expect("no other Sim on this thread");
    let mut ev: Ev = EventLoop::new().unwrap();
    let trigger = if rng.chance(0.5) { Trigger::Edge } else { Trigger::Level };
    let output_limit = match rng.below(4) {
        0 => 1 << 20, // the default
        1 => rng.between(1, 4 << 10) as usize,
        _ => rng.between(4 << 10, 128 << 10) as usize,
    };
    let router = router();
    let config =
        HttpConfig { header_timeout: NEVER, idle_timeout: NEVER, body_timeout: NEVER, ..Default::default() };
    let server = HttpServer::<SimDispatcher>::builder("127.0.0.1:80", move |req| router.respond(req))
        .threads(0)
        .trigger(trigger)
        .output_limit(output_limit)
        .config(config)
        .start(&mut ev)
        .unwrap();
    let addr = server.local_addr().as_inet().unwrap();

    let mut peers: Vec<PeerState> = (0..rng.between(1, 6)).map(|_| PeerState::new(&mut rng)).collect();
    let largest_answer = peers.iter().flat_map(|p| &p.exchanges).map(|e| e.body.len()).max().unwrap_or(0);
    // Answers written at once stop at the output limit, the one that
    // crossed it whole on top. Answers waiting behind a streamed body are
    // bounded apart from the output (their body bytes by the limit, plus the
    // one that crossed it) and join the output together when the stream
    // ends: twice that, plus a head for each answer.
    let most_requests = peers.iter().map(|p| p.exchanges.len()).max().unwrap_or(0);
    let output_bound = 2 * (output_limit + largest_answer) + most_requests * HEAD_ROOM;

    let (mut steps, mut progress) = (0u64, Progress::new(BUSY_EVENTS));
    while peers.iter().any(PeerState::waiting) {
        steps += 1;
        let i = rng.below(peers.len());
        let p = &mut peers[i];
        match rng.below(10) {
            _ if p.peer.is_none() && p.live() => match sim.connect(addr) {
                Ok(peer) => p.peer = Some(peer),
                Err(e) => panic!("peer {i}: connect: {e}"),
            },
            0..=3 if p.live() && !p.shut && p.sent < p.plan.len() => {
                let most = if rng.chance(0.5) { 512 } else { 64 << 10 };
                let end = (p.sent + rng.between(1, most) as usize).min(p.plan.len());
                match p.peer.as_ref().unwrap().write(&p.plan[p.sent..end]) {
                    Ok(n) => (p.sent, p.blocked) = (p.sent + n, false),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => p.blocked = true,
                    Err(e) if ends_connections => p.ended = Some(e.kind()),
                    Err(e) => panic!("peer {i}: write: {e}"),
                }
            }
            0..=3 if p.live() && !p.shut && p.end == End::HalfClose => {
                match p.peer.as_ref().unwrap().shutdown_write() {
                    Ok(()) => p.shut = true,
                    Err(e) if ends_connections => p.ended = Some(e.kind()),
                    Err(e) => panic!("peer {i}: shutdown: {e}"),
                }
            }
            4..=6 if p.live() && (!p.reads_late || p.blocked || p.sent == p.plan.len()) => {
                let peer = p.peer.as_ref().unwrap();
                match peer.read_available() {
                    Ok(bytes) => {
                        p.got += bytes.len();
                        if let Err(why) = p.reader.feed(&bytes, &p.exchanges, p.sent, p.end) {
                            panic!("peer {i}: {why}; {}", describe(p));
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                        // The server is done with us: close our side too (a
                        // lingering close waits for it).
                        if !p.shut {
                            let _ = peer.shutdown_write();
                            p.shut = true;
                        }
                        p.ended = Some(e.kind());
                    }
                    Err(e) if ends_connections => p.ended = Some(e.kind()),
                    Err(e) => panic!("peer {i}: read: {e}; {}", describe(p)),
                }
            }
            _ => {
                progress.run_pass(&mut ev, Duration::from_millis(rng.between(0, 20)));
            }
        }
        check_output_bound(&server, &mut ev, output_bound);
        let moved = peers.iter().map(PeerState::progress).sum::<usize>();
        progress.check(moved as u64, &ev, || peers.iter().map(describe).collect::<Vec<_>>().join(" "));
    }

    for (i, p) in peers.iter().enumerate() {
        if ends_connections {
            continue; // a prefix of the answers (checked as they came), then an error or EOF
        }
        assert_eq!(p.reader.answered, p.exchanges.len(), "peer {i} got every answer; {}", describe(p));
        assert!(p.reader.between_answers(), "peer {i}: bytes after the last answer; {}", describe(p));
        let eof = if p.end == End::KeepAlive { None } else { Some(ErrorKind::UnexpectedEof) };
        assert_eq!(p.ended, eof, "peer {i}: how it ended; {}", describe(p));
    }
    // A connection reset in the middle of a request still reads what was
    // queued before its error, under the read faults, and each dispatch
    // may jump the clock by 2 s: the grace is virtual time, so be generous.
    let summary = server.stop(&mut ev, Duration::from_secs(600)).unwrap();
    assert_eq!(summary.forced, 0, "every connection was idle or closing when the server stopped");
    for (i, p) in peers.iter_mut().enumerate().filter(|(_, p)| p.live()) {
        // Closed by the stop: end of file, after nothing more.
        match p.peer.as_ref().unwrap().read_available() {
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => p.ended = Some(e.kind()),
            Err(e) if ends_connections => p.ended = Some(e.kind()),
            other => panic!("peer {i} after the server stopped: {other:?}; {}", describe(p)),
        }
    }
    drop(ev);
    assert_eq!(sim.open_fds(), 0, "simulated fds left open after the loop and server were dropped");

    let mut hash = Fnv::new();
    for p in &peers {
        hash.add(&(p.reader.answered as u64).to_le_bytes());
        hash.add(&p.reader.hash.finish().to_le_bytes());
        hash.add(format!("{:?}", p.ended).as_bytes());
    }
    hash.add(format!("{:?}", sim.injected()).as_bytes());
    Outcome { transcript: hash.finish(), bytes: peers.iter().map(|p| p.got as u64).sum(), steps }
}

fn check_output_bound(server: &HttpServer<SimDispatcher>, ev: &mut Ev, bound: usize) {
    let most = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&most);
    server.for_each_connection(ev, move |_, conn| {
        seen.fetch_max(conn.queued_output(), Ordering::Relaxed);
    });
    let most = most.load(Ordering::Relaxed);
    assert!(most <= bound, "{most} bytes queued for one connection (at most {bound})");
}

fn describe(p: &PeerState) -> String {
    format!(
        "[{:?}{} sent {}/{} answers {}/{} got {} shut {} ended {:?}]",
        p.end,
        if p.reads_late { " reads late" } else { "" },
        p.sent,
        p.plan.len(),
        p.reader.answered,
        p.exchanges.len(),
        p.got,
        p.shut,
        p.ended
    )
}

#[test]
fn http() {
    init_logging();
    run_seeds("http", 2_000, http_scenario);
}

#[test]
fn http_is_deterministic() {
    assert_deterministic(http_scenario);
}
