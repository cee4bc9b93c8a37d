//! One HTTP/1.1 connection: requests in, answers out, in request order.
//!
//! It teaches what a server owes a pipelining client. Requests are parsed as
//! they arrive and each gets a numbered place in the connection's answer
//! queue. An answer ready at once is written at once (a burst of pipelined
//! requests answered in one `send`); an answer that comes later
//! ([`Response::later`](super::Response::later)) holds its place, and the
//! answers behind it wait for it. A streamed or file body occupies the
//! output until it is done; answers behind it wait too. Everything that
//! waits is bounded: past [`MAX_QUEUED_ANSWERS`] answers, or the output limit
//! in answer bytes, the connection stops reading until the queue moves, so
//! a client cannot make the server hold more than that for it.
//!
//! The input side is a small state machine with a deadline per state: idle
//! between requests (`idle_timeout`), a header section arriving
//! (`header_timeout`: slowloris), a body arriving (`body_timeout`, in total
//! however steadily it trickles). Waiting for the application's answer is
//! not the client's fault: the idle timer does not close such a connection.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use log::{debug, error, trace};

use super::body::{BodySource, BodyWriter, Fill};
use super::chunked::{self, ChunkedDecoder, ChunkedLimits, Decoded};
use super::deferred::{BodyWaker, Delivery, Poster, Responder};
use super::request::{self, Parsed, Rejection, Request, Version};
use super::response::{FileBody, Tail};
use super::server::App;
use super::{HttpConfig, Response};
use crate::buffer::Buffer;
use crate::dispatcher::Dispatcher;
use crate::event_loop::EventLoop;
use crate::net::{self, Connection, StreamAddr};

/// At most this many answers wait in one connection's queue (behind an
/// answer that comes later or a body being streamed); then reading pauses.
pub const MAX_QUEUED_ANSWERS: usize = 128;

/// The longest chunk-size line (size and extensions) of a chunked request body.
const MAX_CHUNK_LINE: usize = 4096;

/// Renders the server's own error replies (400, 408, 413, 431, 500, 501...).
pub(crate) type ErrorPage = Arc<dyn Fn(u16, &str) -> Response + Send + Sync>;

/// What every connection of a server shares.
pub(crate) struct Shared {
    pub(crate) config: HttpConfig,
    pub(crate) app: App,
    pub(crate) error_page: Option<ErrorPage>,
}

impl Shared {
    /// The reply for a refused request or a failed handler: the server's
    /// error page if it has one and it renders a valid response, else text.
    fn error_response(&self, status: u16, reason: &str) -> Response {
        if let Some(page) = &self.error_page {
            match panic::catch_unwind(AssertUnwindSafe(|| page(status, reason))) {
                Ok(response) if response.problem().is_none() && response.status() == status => {
                    return response;
                }
                Ok(response) => error!("http: error page for {status} is unusable: {response:?}"),
                Err(_) => error!("http: error page for {status} panicked"),
            }
        }
        Response::text(status, format!("{reason}\n"))
    }
}

/// Where the input is between requests.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the next request (keep-alive).
    Idle,
    /// Part of a header section has arrived.
    Head,
    /// The header section is complete; `Content-Length` body bytes are arriving.
    Body,
    /// The header section is complete; a chunked body is arriving.
    Chunked,
}

/// A chunked request being received: its header section (copied, since the
/// input buffer moves on) and its body decoded so far.
struct ChunkedRequest {
    head: Vec<u8>,
    decoder: ChunkedDecoder,
    body: Vec<u8>,
}

/// One request's place in the answer queue.
struct Answer {
    seq: u64,
    head_only: bool,
    version: Version,
    keep_alive: bool,
    /// `None` while its [`Responder`] has not answered.
    response: Option<Response>,
}

/// A streamed body going out.
struct Streaming {
    seq: u64,
    source: Box<dyn BodySource>,
    chunked: bool,
    trailers: Vec<(String, String)>,
    /// The source said `Pause`: wait for its waker.
    paused: bool,
}

/// One HTTP connection: the [`net::Handler`] the server builds per connection.
pub(crate) struct HttpConnection {
    phase: Phase,
    /// How far the unfinished header section has been searched for its end.
    scanned: usize,
    continue_sent: bool,
    chunked: Option<Box<ChunkedRequest>>,
    /// More requests are read and answered: false once a final request (one
    /// that closes, a refused one) has been read, or the server is stopping.
    reading: bool,
    answers: VecDeque<Answer>,
    /// Body bytes held by the ready answers in `answers`.
    answer_bytes: usize,
    next_seq: u64,
    stream: Option<Streaming>,
    /// The file body of the answer just written: queued right after its head.
    file: Option<FileBody>,
    /// Everything has been answered and the connection is half-closed.
    closing: bool,
    /// The server is stopping: the request in flight gets `Connection: close`.
    stopping: bool,
    /// The client closed its side: answer what is owed, then close.
    peer_closed: bool,
    /// Reading is paused because answers are backed up.
    paused: bool,
    /// Queued output when the timer last ran out while a response was going
    /// out (`usize::MAX`: not yet); less now means the peer is reading.
    queued_at_timeout: usize,
    output_limit: usize,
    shared: Arc<Shared>,
    poster: Option<Poster>,
}

fn connection_header(version: Version, keep_alive: bool) -> Option<&'static str> {
    match (version, keep_alive) {
        (Version::Http11, true) => None,
        (Version::Http10, true) => Some("keep-alive"),
        (_, false) => Some("close"),
    }
}

impl HttpConnection {
    pub(crate) fn new(shared: Arc<Shared>, output_limit: Option<usize>) -> HttpConnection {
        HttpConnection {
            phase: Phase::Idle,
            scanned: 0,
            continue_sent: false,
            chunked: None,
            reading: true,
            answers: VecDeque::new(),
            answer_bytes: 0,
            next_seq: 0,
            stream: None,
            file: None,
            closing: false,
            stopping: false,
            peer_closed: false,
            paused: false,
            queued_at_timeout: usize::MAX,
            output_limit: output_limit.unwrap_or(usize::MAX),
            shared,
            poster: None,
        }
    }

    /// How a [`Responder`] or [`BodyWaker`] reaches this connection: a task
    /// on its loop that finds it by id (made once, on first use).
    fn poster<D: Dispatcher + 'static>(&mut self, conn: &Connection<D>) -> Poster {
        let handle = conn.handle();
        let post: &Poster = self.poster.get_or_insert_with(move || {
            Arc::new(move |delivery| {
                handle
                    .run(move |ev, conn| {
                        conn.with_handler_as::<HttpConnection, _>(|http| http.deliver(ev, conn, delivery));
                    })
                    .is_ok()
            })
        });
        Arc::clone(post)
    }

    /// Enters `phase` and arms the timer that bounds it: idle keep-alive,
    /// header section from its first byte (slowloris), body in total (a
    /// body trickled a byte a minute is cut off too).
    fn enter<D: Dispatcher + 'static>(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>, phase: Phase) {
        self.phase = phase;
        self.queued_at_timeout = usize::MAX;
        let limit = match phase {
            Phase::Idle => self.shared.config.idle_timeout,
            Phase::Head => self.shared.config.header_timeout,
            Phase::Body | Phase::Chunked => self.shared.config.body_timeout,
        };
        conn.set_timeout(ev, Some(limit));
    }

    /// Whether the queue is full: stop reading requests until it moves.
    fn backed_up(&self) -> bool {
        self.answers.len() >= MAX_QUEUED_ANSWERS || self.answer_bytes >= self.output_limit
    }

    /// Whether the output is free for the next answer (no answer ahead of
    /// it, no body going out): an interim `100 Continue` may be sent now.
    fn output_free(&self) -> bool {
        self.answers.is_empty() && self.stream.is_none() && self.file.is_none()
    }

    /// Whether the connection waits for the application (an answer to come,
    /// a paused stream), not for the client.
    fn waiting_for_app(&self) -> bool {
        self.answers.front().is_some_and(|a| a.response.is_none())
            || self.stream.as_ref().is_some_and(|s| s.paused)
    }

    /// Parses requests from `input` and answers them into `out` (or the
    /// queue) until the input runs out, the queue backs up, `out` reaches
    /// `budget` bytes, or no more requests are to be read.
    fn read_requests<D: Dispatcher + 'static>(
        &mut self,
        conn: &Connection<D>,
        input: &mut Buffer,
        out: &mut Vec<u8>,
        budget: usize,
        peer: &StreamAddr,
    ) {
        while self.reading && out.len() < budget && !self.backed_up() {
            match self.phase {
                Phase::Idle => {
                    // Stray CRLFs between requests are allowed and ignored.
                    let blank = input.peek().iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
                    input.consume(blank);
                    if input.is_empty() {
                        break;
                    }
                    self.phase = Phase::Head;
                }
                Phase::Chunked => {
                    if !self.read_chunked(conn, input, out, peer) {
                        break;
                    }
                }
                Phase::Head | Phase::Body => {
                    match request::parse(input.peek(), self.scanned, &self.shared.config) {
                        Ok(Parsed::Partial { scanned }) => {
                            self.scanned = scanned;
                            break;
                        }
                        Ok(Parsed::AwaitingBody { request, missing }) => {
                            trace!("http: {peer} has {missing} more body bytes to send");
                            self.phase = Phase::Body;
                            self.maybe_continue(&request, out);
                            break;
                        }
                        Ok(Parsed::Chunked { request, head_len }) => {
                            self.maybe_continue(&request, out);
                            let config = &self.shared.config;
                            let limits = ChunkedLimits {
                                max_body: config.max_body_bytes,
                                max_line: MAX_CHUNK_LINE,
                                max_trailer_bytes: config.max_header_bytes.saturating_sub(head_len),
                                max_trailers: config.max_headers.saturating_sub(request.header_count()),
                            };
                            let head = input.peek()[..head_len].to_vec();
                            input.consume(head_len);
                            let decoder = ChunkedDecoder::new(limits);
                            self.chunked = Some(Box::new(ChunkedRequest { head, decoder, body: Vec::new() }));
                            self.phase = Phase::Chunked;
                        }
                        Ok(Parsed::Complete { request, len }) => {
                            self.answer(conn, &request.with_peer(peer), out);
                            input.consume(len);
                            self.request_done();
                        }
                        Err(rejection) => self.refuse(rejection, peer, out),
                    }
                }
            }
        }
    }

    /// Feeds the chunked body being received; whether to go on reading.
    fn read_chunked<D: Dispatcher + 'static>(
        &mut self,
        conn: &Connection<D>,
        input: &mut Buffer,
        out: &mut Vec<u8>,
        peer: &StreamAddr,
    ) -> bool {
        let Some(chunked) = self.chunked.as_mut() else { return false };
        match chunked.decoder.decode(input.peek(), &mut chunked.body) {
            Ok(Decoded::NeedMore) => {
                input.consume_all();
                false
            }
            Ok(Decoded::Done { consumed }) => {
                input.consume(consumed);
                let Some(chunked) = self.chunked.take() else { return false };
                match request::parse_head(&chunked.head, &self.shared.config) {
                    Ok((request, _)) => {
                        self.answer(conn, &request.with_body(&chunked.body).with_peer(peer), out)
                    }
                    Err(rejection) => self.refuse(rejection, peer, out),
                }
                self.request_done();
                true
            }
            Err(e) => {
                self.chunked = None;
                self.refuse(Rejection { status: e.status, reason: e.reason }, peer, out);
                true
            }
        }
    }

    /// Sends `100 Continue` for a request that asks for it, if nothing is
    /// ahead of its answer (an interim response must not come before the
    /// answers of earlier requests: the client would take it as theirs).
    fn maybe_continue(&mut self, request: &Request<'_>, out: &mut Vec<u8>) {
        if request.expects_continue() && !self.continue_sent && self.output_free() {
            out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            self.continue_sent = true;
        }
    }

    fn request_done(&mut self) {
        self.phase = Phase::Idle;
        self.scanned = 0;
        self.continue_sent = false;
    }

    /// Runs the application on `request` and queues its answer.
    fn answer<D: Dispatcher + 'static>(
        &mut self,
        conn: &Connection<D>,
        request: &Request<'_>,
        out: &mut Vec<u8>,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut keep_alive = request.keep_alive() && !self.stopping;
        let app = &self.shared.app;
        let response = match panic::catch_unwind(AssertUnwindSafe(|| app(request))) {
            Ok(response) => response,
            Err(_) => {
                error!("http: handler panicked on {} {}", request.method(), request.path());
                keep_alive = false;
                self.shared.error_response(500, "internal error")
            }
        };
        if !keep_alive {
            self.reading = false;
        }
        let head_only = request.method() == "HEAD";
        let mut answer = Answer { seq, head_only, version: request.version(), keep_alive, response: None };
        if self.output_free() && !response.is_later() {
            // Nothing ahead of it: straight out (the common case).
            answer.response = Some(response);
            self.emit(answer, out);
            return;
        }
        self.answers.push_back(answer);
        self.settle(conn, seq, response);
        self.write_ready(out);
    }

    /// Refuses the request being read: an error answer in its place in the
    /// queue, and no more requests from this connection.
    fn refuse(&mut self, rejection: Rejection, peer: &StreamAddr, out: &mut Vec<u8>) {
        debug!("http: {} from {peer}: {}", rejection.status, rejection.reason);
        let seq = self.next_seq;
        self.next_seq += 1;
        let response = self.shared.error_response(rejection.status, &rejection.reason);
        let answer =
            Answer { seq, head_only: false, version: Version::Http11, keep_alive: false, response: None };
        self.answers.push_back(answer);
        self.reading = false;
        self.phase = Phase::Idle;
        self.chunked = None;
        self.fill(seq, response);
        self.write_ready(out);
    }

    /// Puts `response` in place for request `seq`; an answer that comes
    /// later is started now, with a responder for the same place.
    fn settle<D: Dispatcher + 'static>(&mut self, conn: &Connection<D>, seq: u64, mut response: Response) {
        match response.take_later() {
            Some(start) => {
                let responder = Responder::new(seq, self.poster(conn));
                // A panic drops the responder, which answers 500.
                if panic::catch_unwind(AssertUnwindSafe(|| start(responder))).is_err() {
                    error!("http: a later answer's start function panicked");
                }
            }
            None => self.fill(seq, response),
        }
    }

    fn fill(&mut self, seq: u64, response: Response) {
        if let Some(answer) = self.answers.iter_mut().find(|a| a.seq == seq && a.response.is_none()) {
            self.answer_bytes += response.body_bytes().len();
            answer.response = Some(response);
        }
    }

    /// Whether the answer at the front of the queue can be written now.
    fn front_ready(&self) -> bool {
        self.stream.is_none()
            && self.file.is_none()
            && self.answers.front().is_some_and(|a| a.response.is_some())
    }

    /// Writes the answers at the front of the queue that are ready, until
    /// one is not, or a file or streamed body must go out first.
    fn write_ready(&mut self, out: &mut Vec<u8>) {
        while self.front_ready() {
            let Some(answer) = self.answers.pop_front() else { break };
            self.answer_bytes -= answer.response.as_ref().map_or(0, |r| r.body_bytes().len());
            self.emit(answer, out);
        }
    }

    /// Writes one answer's head (and bytes body) into `out`.
    fn emit(&mut self, answer: Answer, out: &mut Vec<u8>) {
        let Some(mut response) = answer.response else { return };
        if let Some(problem) = response.problem() {
            error!("http: the handler's response cannot be sent ({problem}); answering 500");
            response = self.shared.error_response(500, "internal error: invalid response");
        }
        let ends_by_closing = response.ends_by_closing(answer.version, answer.head_only);
        if ends_by_closing && !self.answers.is_empty() {
            debug!("http: a close-delimited body drops {} pipelined answers behind it", self.answers.len());
            self.answers.clear();
            self.answer_bytes = 0;
        }
        let last = !answer.keep_alive || ends_by_closing || (!self.reading && self.answers.is_empty());
        if last {
            self.reading = false;
        }
        let connection = connection_header(answer.version, !last);
        match response.write_to(out, answer.head_only, answer.version, connection) {
            Tail::Done => {}
            Tail::File(file) => self.file = Some(file),
            Tail::Stream { source, chunked } => {
                self.stream =
                    Some(Streaming { seq: answer.seq, source, chunked, trailers: Vec::new(), paused: false });
            }
        }
    }

    /// A responder or a body waker got through to this connection.
    fn deliver<D: Dispatcher + 'static>(
        &mut self,
        ev: &mut EventLoop<D>,
        conn: &Connection<D>,
        delivery: Delivery,
    ) {
        match delivery {
            Delivery::Answer { seq, response } => {
                trace!("http: connection {}: the answer to request {seq} arrived", conn.id());
                self.settle(conn, seq, response);
            }
            Delivery::Wake { seq } => match &mut self.stream {
                Some(stream) if stream.seq == seq => stream.paused = false,
                _ => return,
            },
        }
        self.drive(ev, conn);
    }

    /// Moves the output along after anything changed: writes ready answers,
    /// queues a file body, pulls a streamed body, closes when nothing more
    /// will be said, and resumes reading once the queue has room.
    fn drive<D: Dispatcher + 'static>(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        if self.closing {
            return;
        }
        loop {
            if self.front_ready() && conn.send_with(ev, |out| self.write_ready(out)).is_err() {
                return; // the connection closed
            }
            if let Some(body) = self.file.take() {
                if let Err(e) = conn.send_file(ev, body.file, body.offset, body.len) {
                    // The head promised the body: the connection cannot go on.
                    debug!("http: file body to {} failed: {e}", conn.peer_addr());
                    conn.force_close(ev);
                    return;
                }
                continue;
            }
            if self.stream.is_some() && self.pump(ev, conn) {
                continue;
            }
            break;
        }
        if !conn.is_connected() {
            return;
        }
        if !self.reading && self.answers.is_empty() && self.stream.is_none() {
            self.close(ev, conn);
            return;
        }
        if self.paused && !self.backed_up() && self.reading {
            self.paused = false;
            conn.start_reading(ev); // offers the input left waiting
        }
    }

    /// Pulls the next part of the streamed body while the output has room;
    /// whether the stream has ended.
    fn pump<D: Dispatcher + 'static>(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) -> bool {
        let Some(stream) = self.stream.as_ref() else { return true };
        if stream.paused {
            return false;
        }
        conn.notify_write_complete(true); // each drain of the output asks for more
        let queued = conn.queued_output();
        let room = self.output_limit.saturating_sub(queued).min(conn.options().pass_budget.max(1));
        if room == 0 {
            return false; // the drain brings us back (on_write_complete)
        }
        let poster = self.poster(conn);
        let Some(stream) = self.stream.as_mut() else { return true };
        let seq = stream.seq;
        let waker = move || BodyWaker::new(seq, Arc::clone(&poster));
        let mut data = Vec::new();
        let fill = panic::catch_unwind(AssertUnwindSafe(|| {
            stream.source.fill(&mut BodyWriter::new(&mut data, room, &mut stream.trailers, &waker))
        }));
        let fill = match fill {
            Ok(fill) => fill,
            Err(_) => {
                error!("http: a streamed body's source panicked; closing connection {}", conn.id());
                self.stream = None;
                conn.force_close(ev);
                return false;
            }
        };
        let mut tail = Vec::new();
        let ended = fill == Fill::End;
        if ended && stream.chunked {
            chunked::push_last_chunk(&mut tail, &stream.trailers);
        }
        let mut size_line = Vec::new();
        if stream.chunked && !data.is_empty() {
            chunked::push_chunk_size(&mut size_line, data.len());
        }
        let crlf: &[u8] = if stream.chunked && !data.is_empty() { b"\r\n" } else { b"" };
        let slices = [&size_line[..], &data, crlf, &tail].map(std::io::IoSlice::new);
        match fill {
            Fill::Pause => stream.paused = true,
            Fill::More if data.is_empty() => {
                // Nothing written, so no write completion will call again.
                let conn = conn.clone();
                ev.defer(move |ev| {
                    conn.with_handler_as::<HttpConnection, _>(|http| http.drive(ev, &conn));
                });
            }
            Fill::More | Fill::End => {}
        }
        if ended {
            self.stream = None;
            conn.notify_write_complete(false);
        }
        if conn.send_vectored(ev, &slices).is_err() {
            self.stream = None;
            return false;
        }
        ended
    }

    /// Nothing more will be said: half-close once the output is out, and
    /// give the peer `header_timeout` to finish closing (a lingering close,
    /// so what it still sends cannot make the kernel reset away our
    /// response). A stopping server does not wait for the peer, nor does a
    /// connection whose peer has closed already.
    fn close<D: Dispatcher + 'static>(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        self.closing = true;
        if self.stopping || self.peer_closed {
            conn.close_after_flush(ev);
            return;
        }
        conn.shutdown(ev);
        conn.set_timeout(ev, Some(self.shared.config.header_timeout));
    }
}

impl<D: Dispatcher + 'static> net::Handler<D> for HttpConnection {
    fn on_connect(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        self.enter(ev, conn, Phase::Idle);
    }

    /// Answers every complete request in `input`, in order, with one send,
    /// up to the connection's output limit.
    fn on_message(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>, input: &mut Buffer) {
        if self.closing || !self.reading {
            input.consume_all(); // not answered: drop rather than buffer
            return;
        }
        let budget = match conn.options().output_limit {
            _ if conn.is_output_full() => 0, // e.g. too many files queued
            Some(limit) => limit.saturating_sub(conn.queued_output()),
            None => usize::MAX,
        };
        let peer = conn.peer_addr();
        let phase = self.phase;
        if conn.send_with(ev, |out| self.read_requests(conn, input, out, budget, &peer)).is_err() {
            return; // the connection closed
        }
        self.drive(ev, conn);
        if self.closing || !conn.is_connected() {
            input.consume_all();
            return;
        }
        if self.phase != phase || self.phase == Phase::Idle {
            self.enter(ev, conn, self.phase); // a finished request restarts the idle clock
        }
        if self.reading && !input.is_empty() {
            if self.backed_up() {
                // The queue is full: leave the rest in the socket until it moves.
                self.paused = true;
                conn.stop_reading(ev);
            } else if self.phase == Phase::Idle && !conn.is_output_full() {
                // Stopped at the budget with requests left: answer them on
                // the next pass. (Above the limit, the drain offers them again.)
                conn.offer_input(ev);
            }
        }
    }

    fn wants_write_complete(&self) -> bool {
        false
    }

    /// A client may half-close after its requests: answers still owed
    /// (later ones, a stream) go out first; a request cut short is dropped.
    fn on_peer_closed(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        self.peer_closed = true;
        self.reading = false;
        if self.closing {
            conn.close_after_flush(ev); // our side was done already
        } else {
            self.drive(ev, conn); // closes once nothing more is owed
        }
    }

    /// Only while a body is streamed: the output drained, pull more.
    fn on_write_complete(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        self.drive(ev, conn);
    }

    /// Idle connections close now (once answers owed are out); a request
    /// being read is answered first, with `Connection: close`.
    fn on_server_stop(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        self.stopping = true;
        if self.phase == Phase::Idle {
            self.reading = false;
        }
        if self.closing {
            conn.close_after_flush(ev);
        } else {
            self.drive(ev, conn);
        }
    }

    fn on_timeout(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        let queued = conn.queued_output();
        if (self.phase == Phase::Idle || self.closing) && queued > 0 && queued < self.queued_at_timeout {
            // A response (a large file, say) is still going out and the peer
            // took some of it since the last check: give it another period.
            self.queued_at_timeout = queued;
            let config = &self.shared.config;
            let period = if self.closing { config.header_timeout } else { config.idle_timeout };
            conn.set_timeout(ev, Some(period));
            return;
        }
        if self.phase == Phase::Idle && !self.closing && queued == 0 && self.waiting_for_app() {
            conn.set_timeout(ev, Some(self.shared.config.idle_timeout));
            return;
        }
        if self.phase == Phase::Idle || self.closing {
            debug!("http: closing idle connection {} from {}", conn.id(), conn.peer_addr());
            conn.force_close(ev);
            return;
        }
        debug!("http: request from {} timed out ({:?})", conn.peer_addr(), self.phase);
        let peer = conn.peer_addr();
        let refused = Rejection { status: 408, reason: "request timed out".into() };
        if conn.send_with(ev, |out| self.refuse(refused, &peer, out)).is_ok() {
            self.enter(ev, conn, Phase::Idle);
            self.drive(ev, conn);
        }
    }
}

impl std::fmt::Debug for HttpConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConnection")
            .field("phase", &self.phase)
            .field("answers", &self.answers.len())
            .field("streaming", &self.stream.is_some())
            .finish()
    }
}
