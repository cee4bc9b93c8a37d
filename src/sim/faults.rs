//! What the simulated kernel may do wrong on purpose, and how often.
//!
//! Each [`Fault`] is something a real kernel is allowed to do and an idle
//! loopback almost never does: return fewer bytes than asked, say "try
//! again" right after reporting readiness, report readiness that is not
//! there, hold an event back, cut a batch short, reset a connection. A
//! [`Faults`] plan gives each a probability; [`Faults::swarm`] switches a
//! random subset on per seed (swarm testing: a run with few kinds of fault
//! reaches deeper into each than a run with all of them at once).

use std::fmt;

use super::Rng;

/// One kind of misbehaviour, each a thing Linux may really do.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// A read returns 1..n of the bytes that are there; the rest counts as
    /// arriving just after, with its own wake-up (a short TCP read on Linux
    /// means the queue was empty, and edge-triggered readers rely on it).
    ShortRead,
    /// A write takes 1..n of the bytes offered.
    ShortWrite,
    /// A read says `EAGAIN` though data is queued (it was reported, then
    /// taken by a racing reader); the data stays and raises a new edge.
    ReadWouldBlock,
    /// A write says `EAGAIN` though there is room; the room raises a new edge.
    WriteWouldBlock,
    /// A read or write fails with `EINTR` (and readiness is raised again).
    Interrupted,
    /// `dispatch` returns an empty batch at once (`EINTR` from the wait).
    DispatchInterrupted,
    /// `dispatch` reports an fd that is not ready.
    SpuriousReady,
    /// A ready fd is held back for a dispatch or three (a late wake-up).
    DelayedReady,
    /// A batch is cut to 1..3 events; the rest wait for the next dispatch.
    TruncatedBatch,
    /// A connection is reset by the network mid-stream (both ends get `ECONNRESET`).
    Reset,
    /// `accept` fails with `EMFILE` (the process is out of fds).
    AcceptEmfile,
    /// `accept` fails with `ECONNABORTED` (the client reset before accept).
    AcceptAborted,
    /// A timed wait returns up to 50 ms later than asked.
    LateTimer,
    /// The clock jumps forward up to 2 s between two dispatches.
    ClockJump,
}

impl Fault {
    /// Every kind, in a fixed order.
    pub const ALL: [Fault; 14] = [
        Fault::ShortRead,
        Fault::ShortWrite,
        Fault::ReadWouldBlock,
        Fault::WriteWouldBlock,
        Fault::Interrupted,
        Fault::DispatchInterrupted,
        Fault::SpuriousReady,
        Fault::DelayedReady,
        Fault::TruncatedBatch,
        Fault::Reset,
        Fault::AcceptEmfile,
        Fault::AcceptAborted,
        Fault::LateTimer,
        Fault::ClockJump,
    ];

    fn index(self) -> usize {
        Fault::ALL.iter().position(|&f| f == self).unwrap_or(0)
    }

    /// Whether this fault can end a connection (scenarios then accept a
    /// prefix of the data instead of all of it).
    pub fn ends_connections(self) -> bool {
        matches!(self, Fault::Reset | Fault::AcceptEmfile | Fault::AcceptAborted)
    }
}

/// A probability for each [`Fault`]; all zero is a kernel that behaves.
#[derive(Clone, PartialEq)]
pub struct Faults {
    odds: [f64; Fault::ALL.len()],
}

impl Faults {
    /// No faults at all.
    pub fn none() -> Faults {
        Faults { odds: [0.0; Fault::ALL.len()] }
    }

    /// Each kind switched on with probability 1/2, at a rate drawn from
    /// 1%, 5%, 20% or 50% (rarer for the faults that end connections, so
    /// most connections live long enough to be interesting).
    pub fn swarm(rng: &mut Rng) -> Faults {
        let mut faults = Faults::none();
        for fault in Fault::ALL {
            if rng.chance(0.5) {
                let rates: &[f64] =
                    if fault.ends_connections() { &[0.001, 0.005, 0.02] } else { &[0.01, 0.05, 0.2, 0.5] };
                faults.odds[fault.index()] = rates[rng.below(rates.len())];
            }
        }
        faults
    }

    /// This plan with `fault` at probability `p`.
    pub fn with(mut self, fault: Fault, p: f64) -> Faults {
        self.odds[fault.index()] = p.clamp(0.0, 1.0);
        self
    }

    /// The probability of `fault`.
    pub fn odds(&self, fault: Fault) -> f64 {
        self.odds[fault.index()]
    }

    /// Whether any fault that can end a connection is on.
    pub fn ends_connections(&self) -> bool {
        Fault::ALL.iter().any(|f| f.ends_connections() && self.odds(*f) > 0.0)
    }
}

impl Default for Faults {
    fn default() -> Faults {
        Faults::none()
    }
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut on = Fault::ALL.iter().filter(|&&k| self.odds(k) > 0.0).peekable();
        if on.peek().is_none() {
            return f.write_str("no faults");
        }
        let mut first = true;
        for fault in on {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{fault:?} {}%", self.odds(*fault) * 100.0)?;
        }
        Ok(())
    }
}
