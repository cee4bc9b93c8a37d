//! The fifth backend: readiness from the simulated kernel ([`crate::sim`]).
//!
//! It keeps the same contract as select, poll, epoll and io_uring (level,
//! oneshot and edge; hang-up, error and read-closed; spurious wake-ups
//! allowed; `EINTR` an empty batch; timeouts rounded up to whole
//! milliseconds), and it is where the fault plan reaches the loop: a
//! dispatch may come back empty at once, report an fd that is not ready,
//! hold a ready one back for up to three dispatches, cut the batch short,
//! or wake late.
//!
//! Edge-triggered mode is modelled on epoll's: each socket counts its
//! wake-ups (data, room, FIN, RST); an fd is reported when a wake-up its
//! interest hears arrived since the last report, with its whole current
//! readiness; a wake-up that finds nothing the interest wants is consumed.
//! A batch comes in a seeded shuffle of socket creation order (epoll's
//! ready list is in wake-up order, which no program may rely on), never
//! in fd order, so one seed gives one sequence whatever numbers the real
//! kernel handed out.

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use log::trace;

use super::{
    Dispatcher, Event, Events, Interest, Mode, Ready, already_registered, check_fd, check_open,
    check_request, not_registered, timeout_ms,
};
use crate::sim::Fault;
use crate::sim::kernel::{self, Kernel, SockId};

/// How many dispatches in a row a ready fd may be held back.
const MAX_DELAY: u32 = 3;

/// Dispatches in a row in which nothing moved (no byte, no wake-up, no
/// time) before the simulator calls it a busy loop. On virtual time a busy
/// loop would otherwise spin for ever: time passes only when the loop waits.
const BUSY_LIMIT: u32 = 100_000;

#[derive(Debug)]
struct Registration {
    socket: SockId,
    interest: Interest,
    mode: Mode,
    /// Oneshot: not yet reported since the last arm.
    armed: bool,
    /// Edge: the socket's (read, write) wake-up counts at the last report;
    /// `None` right after `register`/`modify`, which report current readiness.
    seen: Option<(u64, u64)>,
    /// Dispatches in a row this fd was held back (fault `DelayedReady`).
    delayed: u32,
}

/// Readiness from this thread's simulated kernel. [`new`](Dispatcher::new)
/// fails with `NotConnected` unless a [`Sim`](crate::sim::Sim) is started
/// on the thread; registering an open fd that is not simulated is
/// `InvalidInput` (a number that is not open at all is `EBADF`, as on every
/// backend).
#[derive(Debug, Default)]
pub struct SimDispatcher {
    registered: HashMap<RawFd, Registration>,
    /// The kernel's `moves` at the last dispatch, and dispatches since it changed.
    last_moves: u64,
    still: u32,
}

fn no_kernel() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "no simulated kernel on this thread (see muxloop::sim::Sim::start)",
    )
}

fn socket_of(fd: RawFd) -> io::Result<SockId> {
    if let Some(socket) = kernel::with(|k| k.lookup(fd)).ok_or_else(no_kernel)? {
        return Ok(socket);
    }
    // A number that is not open at all is EBADF, as `epoll_ctl` says.
    check_open(fd)?;
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "fd {fd} is not a simulated socket (the sim backend watches only fds made while a Sim runs on this thread)"
        ),
    ))
}

impl Dispatcher for SimDispatcher {
    const NAME: &'static str = "sim";

    fn new() -> io::Result<Self> {
        if !kernel::active() {
            return Err(no_kernel());
        }
        Ok(SimDispatcher::default())
    }

    fn supports(&self, _mode: Mode) -> bool {
        true
    }

    fn register(&mut self, fd: RawFd, interest: Interest, mode: Mode) -> io::Result<()> {
        check_request(self, fd, interest, mode)?;
        if self.registered.contains_key(&fd) {
            return Err(already_registered(fd, Self::NAME));
        }
        let socket = socket_of(fd)?;
        self.registered
            .insert(fd, Registration { socket, interest, mode, armed: true, seen: None, delayed: 0 });
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, interest: Interest, mode: Mode) -> io::Result<()> {
        check_request(self, fd, interest, mode)?;
        let reg = self.registered.get_mut(&fd).ok_or_else(|| not_registered(fd, Self::NAME))?;
        reg.interest = interest;
        reg.mode = mode;
        reg.armed = true;
        reg.seen = None;
        Ok(())
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        kernel::deregistered(); // the close that follows must be seen
        check_fd(fd)?;
        self.registered.remove(&fd).map(drop).ok_or_else(|| not_registered(fd, Self::NAME))
    }

    fn dispatch(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        kernel::with(|k| self.dispatch_in(k, events, timeout)).ok_or_else(no_kernel)?
    }

    fn len(&self) -> usize {
        self.registered.len()
    }
}

impl SimDispatcher {
    fn dispatch_in(
        &mut self,
        k: &mut Kernel,
        events: &mut Events,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        k.since_look += 1;
        if k.moves == self.last_moves {
            self.still += 1;
            if self.still >= BUSY_LIMIT {
                return Err(io::Error::other(format!(
                    "sim: {BUSY_LIMIT} dispatches in a row and nothing moved (no byte, no wake-up, no time): a busy loop"
                )));
            }
        } else {
            (self.last_moves, self.still) = (k.moves, 0);
        }
        if k.open_fds() > self.registered.len() {
            // Some simulated fd is not registered here: its close comes with
            // no deregister to announce it, so look now.
            k.reap();
        } else {
            k.reap_if_needed();
        }
        if k.roll(Fault::DispatchInterrupted, || "dispatch: EINTR".into()) {
            return Ok(());
        }
        if k.clock.is_virtual() && k.roll(Fault::ClockJump, || "the clock jumps".into()) {
            let jump = Duration::from_millis(k.rng.between(1, 2000));
            k.advance(jump);
        }
        let mut order: Vec<(SockId, RawFd)> = self.registered.iter().map(|(&fd, r)| (r.socket, fd)).collect();
        order.sort_unstable();
        let mut due = Vec::new();
        for &(socket, fd) in &order {
            let reg = self.registered.get_mut(&fd).expect("listed above");
            if reg.mode == Mode::Oneshot && !reg.armed {
                continue;
            }
            let now = k.readiness(socket);
            let mut wanted = now.masked_by(reg.interest);
            let flags = now.masked_by(Interest::NONE);
            if !flags.is_empty() {
                // A hang-up or error comes as readable + writable whatever
                // the interest (the contract; epoll's EPOLLHUP/EPOLLERR).
                wanted = wanted | Ready::with_flag(flags);
            }
            let counts = (k.sockets[socket].read_gen, k.sockets[socket].write_gen);
            if reg.mode == Mode::Edge && !edge_pending(reg, counts, now) {
                continue;
            }
            if wanted.is_empty() {
                if reg.mode == Mode::Edge {
                    reg.seen = Some(counts); // a wake-up with nothing wanted is consumed
                }
                continue;
            }
            due.push((fd, wanted, counts));
        }
        for i in (1..due.len()).rev() {
            due.swap(i, k.rng.below(i + 1));
        }
        let held_back = self.hold_back(k, &mut due);
        let limit =
            if due.len() > 1 && k.roll(Fault::TruncatedBatch, || format!("batch of {} cut", due.len())) {
                k.rng.between(1, due.len().min(3) as u64 - 1) as usize
            } else {
                due.len()
            };
        for &(fd, wanted, counts) in &due[..limit] {
            let reg = self.registered.get_mut(&fd).expect("listed above");
            reg.armed = false;
            reg.seen = Some(counts);
            events.push(Event::new(fd, wanted));
        }
        if !order.is_empty() && k.roll(Fault::SpuriousReady, || "a spurious event".into()) {
            let (_, fd) = order[k.rng.below(order.len())];
            let reg = self.registered.get_mut(&fd).expect("listed above");
            let listed = events.iter().any(|e| e.fd() == fd);
            if !listed && (reg.mode != Mode::Oneshot || reg.armed) {
                reg.armed = false;
                let ready = if reg.interest.is_readable() { Ready::READABLE } else { Ready::WRITABLE };
                trace!("sim: spurious {ready:?} for fd {fd}");
                events.push(Event::new(fd, ready));
            }
        }
        events.set_scanned(self.registered.len());
        if events.is_empty() && due.is_empty() && !held_back {
            return wait(k, timeout);
        }
        Ok(())
    }

    /// Fault `DelayedReady`: drops some due fds from this batch (at most
    /// `MAX_DELAY` times in a row each). Whether any was held back.
    fn hold_back(&mut self, k: &mut Kernel, due: &mut Vec<(RawFd, Ready, (u64, u64))>) -> bool {
        let mut held = false;
        due.retain(|&(fd, ..)| {
            let reg = self.registered.get_mut(&fd).expect("due fds are registered");
            if reg.delayed < MAX_DELAY && k.roll(Fault::DelayedReady, || format!("fd {fd} held back")) {
                reg.delayed += 1;
                held = true;
                false
            } else {
                reg.delayed = 0;
                true
            }
        });
        held
    }
}

/// Whether an edge-triggered fd heard a wake-up since its last report.
fn edge_pending(reg: &Registration, (reads, writes): (u64, u64), now: Ready) -> bool {
    let Some((seen_reads, seen_writes)) = reg.seen else { return true };
    let flagged = !(now.masked_by(Interest::NONE)).is_empty();
    let read_woke = reads != seen_reads && (reg.interest.is_readable() || flagged);
    let write_woke = writes != seen_writes && (reg.interest.is_writable() || flagged);
    read_woke || write_woke
}

/// Nothing ready: the wait times out. On virtual time the clock jumps by
/// the timeout (rounded up to whole ms, maybe later: fault `LateTimer`);
/// on the real clock the thread sleeps. With no timeout nothing could ever
/// wake a simulated loop (no other thread can reach its kernel): an error,
/// never a hang.
fn wait(k: &mut Kernel, timeout: Option<Duration>) -> io::Result<()> {
    let Some(timeout) = timeout else {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "sim: dispatch with no timeout and nothing ready would never return (no other thread can reach a simulated kernel)",
        ));
    };
    let mut wait = Duration::from_millis(timeout_ms(Some(timeout)) as u64);
    if wait.is_zero() {
        return Ok(());
    }
    if k.roll(Fault::LateTimer, || format!("a {wait:?} wait returns late")) {
        wait += Duration::from_millis(k.rng.between(1, 50));
    }
    if k.clock.is_virtual() {
        k.advance(wait);
    } else {
        std::thread::sleep(wait);
    }
    Ok(())
}
