//! Answers that come later: a [`Responder`] carries one request's answer to
//! its connection from any thread, and a [`BodyWaker`] tells a streamed
//! body's connection that more of it is ready.
//!
//! It teaches how work leaves the loop and comes back: the handler must not
//! block the loop thread, so slow work (a database, a computation, a timer)
//! runs elsewhere and hands its result back as a task queued on the
//! connection's own loop ([`LoopHandle::run_in_loop`](crate::LoopHandle::run_in_loop)),
//! which wakes the loop. Answers are numbered by request, so one that
//! arrives early waits for those before it: pipelined responses go out in
//! request order whatever order they were ready in.

use std::fmt;
use std::io;
use std::sync::Arc;

use log::debug;

use super::Response;

/// What reaches a connection's loop from a [`Responder`] or a [`BodyWaker`].
pub(crate) enum Delivery {
    /// The answer to request `seq` of the connection.
    Answer { seq: u64, response: Response },
    /// The streamed body of the answer to request `seq` may have more to give.
    Wake { seq: u64 },
}

/// Queues a [`Delivery`] on the connection's loop; `false` if that loop is gone.
pub(crate) type Poster = Arc<dyn Fn(Delivery) -> bool + Send + Sync>;

/// The promise of an answer to one request, returned by
/// [`Response::later`]: `Send`, so it can go to a worker thread, a
/// channel or another loop, and answer from there with
/// [`send`](Self::send).
///
/// * Pipelined requests behind this one are read and answered meanwhile, but
///   their answers wait for this one: responses leave in request order.
/// * Dropping it unanswered (a worker that failed, a panic) answers
///   `500 Internal Server Error`, so the client is never left waiting by a
///   lost responder.
/// * If the client has gone by the time the answer arrives, it is dropped.
/// * The connection's deadlines still run: the idle timer does not close a
///   connection that waits for its answer, but a client that stops reading
///   what is sent is cut off as usual, and a graceful
///   [`stop`](super::HttpServer::stop) waits for the answer up to its grace.
pub struct Responder {
    seq: u64,
    post: Poster,
    answered: bool,
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder").field("request", &self.seq).field("answered", &self.answered).finish()
    }
}

impl Responder {
    pub(crate) fn new(seq: u64, post: Poster) -> Responder {
        Responder { seq, post, answered: false }
    }

    /// Answers the request. Fails (`NotConnected`) only if the server's loop
    /// has stopped; a closed connection just drops the answer.
    pub fn send(mut self, response: Response) -> io::Result<()> {
        self.answered = true;
        if (self.post)(Delivery::Answer { seq: self.seq, response }) {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::NotConnected, "the server's event loop has stopped"))
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if !self.answered {
            debug!("http: responder for request {} dropped unanswered: 500", self.seq);
            let response = Response::text(500, "internal error: the answer was lost\n");
            (self.post)(Delivery::Answer { seq: self.seq, response });
        }
    }
}

/// Tells a streamed body's connection that the body has more to give after
/// it returned [`Fill::Pause`](super::Fill::Pause). `Send + Sync + Clone`:
/// wake it from the thread or loop that produces the data.
#[derive(Clone)]
pub struct BodyWaker {
    seq: u64,
    post: Poster,
}

impl fmt::Debug for BodyWaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BodyWaker")
    }
}

impl BodyWaker {
    pub(crate) fn new(seq: u64, post: Poster) -> BodyWaker {
        BodyWaker { seq, post }
    }

    /// Asks the connection's loop to call the body's `fill` again. Cheap to
    /// call more often than needed; does nothing once the response is done
    /// or the connection closed.
    pub fn wake(&self) {
        (self.post)(Delivery::Wake { seq: self.seq });
    }
}
