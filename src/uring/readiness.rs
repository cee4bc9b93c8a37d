//! `io_uring(7)` used as a readiness backend: polls are submitted as
//! operations and their results come back as completions.
//!
//! This module teaches how a completion interface can still answer the
//! reactor's question "which fds are ready?": each registered fd has a
//! `IORING_OP_POLL_ADD` in flight, and a completion queue entry (CQE) saying
//! "this poll fired with mask M" is a readiness event. The three modes map
//! onto the kind of poll:
//!
//! | mode | poll submitted | when it is armed again |
//! |---|---|---|
//! | `Level` | one-shot `POLL_ADD` | at the next dispatch, after the event was delivered (a one-shot poll checks readiness when armed, so this is level-triggered) |
//! | `Oneshot` | one-shot `POLL_ADD` | only by `modify` |
//! | `Edge` | multishot `POLL_ADD` (`IORING_POLL_ADD_MULTI`) | when a CQE comes without `IORING_CQE_F_MORE` (the kernel ended it) |
//!
//! Every poll carries `fd + generation` in its `user_data`. A registration
//! that is removed or replaced gets a new generation, so a late completion of
//! the old poll (the fd number may already belong to another file) is
//! recognised and dropped: the backend forgets a deregistered fd at once and
//! never delivers anything for it again. `modify` of a poll in flight is one
//! poll update (`IORING_OP_POLL_REMOVE` with `IORING_POLL_UPDATE_*`), not a
//! remove plus an add, unless the mode changes between edge and the others:
//! an update cannot make a one-shot poll multishot or back, so then the poll
//! is removed and a new one added.
//!
//! One `io_uring_enter` per dispatch both submits the queued polls and waits
//! (with `IORING_ENTER_EXT_ARG` carrying the timeout); then every completion
//! is harvested from shared memory, without further system calls. (A dispatch
//! that harvested only stale completions waits again for the rest of its
//! timeout, and `deregister` submits its remove at once: the poll holds a
//! reference to the file, and the owner is about to close it.)
//!
//! What differs from epoll, within the contract: a completion says "the fd
//! was ready when the poll fired", not "it is ready now". Data read between
//! the two shows up as a spurious readable event, which the contract allows
//! (handlers take `WouldBlock` as "nothing now"). And the completion queue is finite:
//! when more completions arrive than it holds, the kernel keeps the rest
//! (fetched in the same dispatch) and the ring is rebuilt twice as large as
//! the number of registered fds, so a large burst is a one-off cost.
//!
//! One side effect on the thread that owns a ring: the kernel runs io_uring
//! work on that thread (task work, also when the ring is dropped), and that
//! interrupts a *blocking* socket call with a timeout (`SO_RCVTIMEO`) made on
//! the same thread: it fails with `EINTR`. The event loop never blocks that
//! way; a thread that does should retry on `ErrorKind::Interrupted`.

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use io_uring::{IoUring, cqueue, opcode, squeue, types};
use log::{debug, trace, warn};

use super::ring;
use crate::dispatcher::{
    Dispatcher, Event, Events, Interest, Mode, Ready, already_registered, check_fd, check_open,
    check_request, not_registered,
};

/// Submission queue size; the completion queue is [`CQ_PER_SQ`] times larger.
const DEFAULT_ENTRIES: u32 = 256;
const CQ_PER_SQ: u32 = 8;
/// The kernel's largest completion queue (`IORING_MAX_CQ_ENTRIES`).
const MAX_CQ: u32 = 65_536;

/// `user_data` layout: fd in the low 32 bits, generation in bits 32..62,
/// bit 62 marks the completion of a poll update, bit 63 any operation whose
/// completion is bookkeeping (remove, update).
const GEN_MASK: u32 = (1 << 30) - 1;
const UPDATE: u64 = 1 << 62;
const INTERNAL: u64 = 1 << 63;
/// The user_data of a remove, whose completion is ignored.
const IGNORED: u64 = INTERNAL;

fn user_data(fd: RawFd, generation: u32) -> u64 {
    ((generation as u64) << 32) | fd as u32 as u64
}

fn split(user_data: u64) -> (RawFd, u32) {
    (user_data as u32 as RawFd, (user_data >> 32) as u32 & GEN_MASK)
}

/// What the backend knows about one registered fd.
#[derive(Debug)]
struct Registration {
    interest: Interest,
    mode: Mode,
    /// Tags the current poll; completions with another one are stale.
    generation: u32,
    /// A poll of this generation is armed in the kernel (or queued to be).
    in_flight: bool,
    /// The fd is on the re-arm list.
    queued: bool,
    /// Where this fd's event sits in the current batch, to merge a second
    /// completion (multishot) into one event.
    batch: u64,
    slot: usize,
}

/// The `io_uring(7)` backend (Linux 5.13 or later).
pub struct UringDispatcher {
    ring: IoUring,
    registrations: Vec<Option<Registration>>,
    registered: usize,
    /// Fds whose poll must be armed at the next dispatch.
    rearm: Vec<RawFd>,
    next_generation: u32,
    batch: u64,
    /// Completions harvested by one pass (kept to reuse its allocation).
    cqes: Vec<cqueue::Entry>,
    /// Completions taken off a full queue outside a dispatch, delivered by the next one.
    backlog: Vec<cqueue::Entry>,
    /// The kernel's count of dropped completions when last looked at.
    dropped: u32,
    /// The completion queue overflowed during this dispatch.
    overflowed: bool,
}

impl std::fmt::Debug for UringDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringDispatcher")
            .field("registered", &self.registered)
            .field("sq_entries", &self.ring.params().sq_entries())
            .field("cq_entries", &self.ring.params().cq_entries())
            .finish()
    }
}

/// `Interest` -> the poll mask of a `POLL_ADD`.
fn poll_mask(interest: Interest) -> u32 {
    let mut mask = 0;
    if interest.is_readable() {
        mask |= libc::POLLIN | libc::POLLRDHUP; // RDHUP: see `Ready::READ_CLOSED`
    }
    if interest.is_writable() {
        mask |= libc::POLLOUT;
    }
    mask as u32
}

/// A poll's result (a mask, or `-errno`) -> `Ready`: the mask reads as
/// `poll(2)`'s `revents` does.
fn ready_from(result: i32) -> Ready {
    if result < 0 {
        // EBADF: the fd was closed before the poll was armed (the owner's bug,
        // reported as select and poll do); anything else is an error on it.
        let flag = if result == -libc::EBADF { Ready::INVALID } else { Ready::ERROR };
        return Ready::with_flag(flag);
    }
    crate::dispatcher::poll::ready_from(result as libc::c_short)
}

/// The poll of a registration, as an SQE.
fn poll_add(fd: RawFd, reg: &Registration) -> squeue::Entry {
    opcode::PollAdd::new(types::Fd(fd), poll_mask(reg.interest))
        .multi(reg.mode == Mode::Edge)
        .build()
        .user_data(user_data(fd, reg.generation))
}

/// A poll update: the poll tagged `old` gets `reg`'s mask and tag, and
/// is armed again (which checks readiness at once, as a fresh poll does).
fn poll_update(old: u64, fd: RawFd, reg: &Registration) -> squeue::Entry {
    // The crate has no builder for the update form of POLL_REMOVE, so the
    // three fields it adds are written into the remove SQE, at their offsets
    // in the kernel ABI's `struct io_uring_sqe`.
    let entry =
        opcode::PollRemove::new(old).build().user_data(INTERNAL | UPDATE | user_data(fd, reg.generation));
    // SAFETY: `squeue::Entry` is `repr(C)` around the 64-byte kernel SQE, made
    // only of integers, so it and `[u8; 64]` have the same size and every
    // byte pattern is a valid value of both.
    let mut raw: [u8; 64] = unsafe { std::mem::transmute(entry) };
    // Multishot or not stays as the poll was added (`modify` replaces the
    // poll when that changes).
    let flags = io_uring_sys::POLL_UPDATE_EVENTS | io_uring_sys::POLL_UPDATE_USER_DATA;
    let mut events = poll_mask(reg.interest);
    if cfg!(target_endian = "big") {
        events = events.rotate_left(16); // the ABI stores poll32_events half-word swapped there
    }
    raw[8..16].copy_from_slice(&user_data(fd, reg.generation).to_ne_bytes()); // off: the new user_data
    raw[24..28].copy_from_slice(&flags.to_ne_bytes()); // len: what to update
    raw[28..32].copy_from_slice(&events.to_ne_bytes()); // poll32_events: the new mask
    // SAFETY: as above; the bytes are a valid SQE for the kernel.
    unsafe { std::mem::transmute::<[u8; 64], squeue::Entry>(raw) }
}

/// Flag values from `<linux/io_uring.h>` that the crate does not export.
mod io_uring_sys {
    pub const POLL_UPDATE_EVENTS: u32 = 2;
    pub const POLL_UPDATE_USER_DATA: u32 = 4;
}

impl UringDispatcher {
    /// A dispatcher whose submission queue has `entries` slots (rounded up to
    /// a power of two by the kernel) and a completion queue eight times larger.
    /// Small rings work too: a full submission queue is flushed, and
    /// completions that overflow the completion queue are kept by the kernel
    /// and fetched. Errors: the kernel's refusal, with a message saying why.
    pub fn with_entries(entries: u32) -> io::Result<Self> {
        let entries = entries.clamp(1, 4096);
        Ok(UringDispatcher {
            ring: ring::setup(entries, entries * CQ_PER_SQ)?,
            registrations: Vec::new(),
            registered: 0,
            rearm: Vec::new(),
            next_generation: 0,
            batch: 0,
            cqes: Vec::new(),
            backlog: Vec::new(),
            dropped: 0,
            overflowed: false,
        })
    }

    /// How many completions the ring can hold before the kernel has to keep
    /// them aside (it grows when that happens).
    pub fn completion_capacity(&self) -> usize {
        self.ring.params().cq_entries() as usize
    }

    /// After a completion queue overflow: a new ring whose completion queue
    /// holds twice as many entries as there are registered fds, with every
    /// armed poll armed again there. Dropping the old ring cancels its polls.
    ///
    /// Why not just keep fetching the overflow: the kernel ends a multishot
    /// poll whose completion does not fit, and re-arming it reports the fd
    /// again, so with more ready edge-triggered fds than completion slots the
    /// backend would report them on every dispatch instead of settling.
    fn grow(&mut self) -> io::Result<()> {
        let cq = self.ring.params().cq_entries();
        let wanted =
            (2 * self.registered as u64 + 2).next_power_of_two().clamp(2 * cq as u64, MAX_CQ as u64) as u32;
        if wanted <= cq {
            warn!(
                "uring: completion queue overflow at the largest ring ({cq} entries); completions are fetched late"
            );
            return Ok(());
        }
        let ring = ring::setup(self.ring.params().sq_entries(), wanted)?;
        debug!("uring: completion queue overflowed; ring grown from {cq} to {wanted} completion entries");
        self.ring = ring;
        self.dropped = 0;
        self.rearm.clear();
        self.backlog.clear(); // the old ring's; the new polls check readiness afresh
        for (fd, slot) in self.registrations.iter_mut().enumerate() {
            // Armed or about to be: again on the new ring, under a new
            // generation. A fired oneshot stays fired.
            if let Some(reg) = slot
                && (reg.in_flight || reg.queued)
            {
                self.next_generation = (self.next_generation + 1) & GEN_MASK;
                reg.generation = self.next_generation;
                reg.in_flight = false;
                reg.queued = true;
                self.rearm.push(fd as RawFd);
            }
        }
        Ok(())
    }

    fn registration(&mut self, fd: RawFd) -> Option<&mut Registration> {
        self.registrations.get_mut(usize::try_from(fd).ok()?)?.as_mut()
    }

    fn new_generation(&mut self) -> u32 {
        self.next_generation = (self.next_generation + 1) & GEN_MASK;
        self.next_generation
    }

    /// Queues an SQE (see [`ring::push`]; completions moved aside by a full
    /// queue wait in `backlog` for the next dispatch).
    fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        // SAFETY: our SQEs point at no user memory (polls, removes and
        // updates carry only integers), so nothing must outlive the call.
        unsafe { ring::push(&mut self.ring, entry, &mut self.backlog) }
    }

    /// Removes the poll tagged `poll` (its completion is ignored), submitted
    /// now rather than with the next dispatch: the poll holds a reference to
    /// the file, and the owner may be about to close the fd and expect the
    /// peer to see it closed.
    fn remove_poll(&mut self, poll: u64) -> io::Result<()> {
        let remove = opcode::PollRemove::new(poll).build().user_data(IGNORED);
        self.push(&remove)?;
        ring::submit(&mut self.ring)
    }

    /// Queues the poll of `fd`'s current registration.
    fn arm(&mut self, fd: RawFd) -> io::Result<()> {
        let Some(reg) = self.registration(fd) else { return Ok(()) };
        if reg.in_flight {
            return Ok(());
        }
        reg.in_flight = true;
        let entry = poll_add(fd, reg);
        self.push(&entry)
    }

    fn queue_rearm(&mut self, fd: RawFd) {
        if let Some(reg) = self.registration(fd)
            && !reg.queued
        {
            reg.queued = true;
            self.rearm.push(fd);
        }
    }

    /// Arms every fd on the re-arm list.
    fn arm_queued(&mut self) -> io::Result<()> {
        let mut rearm = std::mem::take(&mut self.rearm);
        let mut result = Ok(());
        for &fd in &rearm {
            if let Some(reg) = self.registration(fd) {
                reg.queued = false;
            }
            if result.is_ok() {
                result = self.arm(fd);
            }
        }
        rearm.clear();
        self.rearm = rearm; // keep the allocation
        result
    }

    /// Takes every completion off the queue (fetching those the kernel kept
    /// aside when the queue overflowed) and turns the live ones into events.
    fn harvest(&mut self, events: &mut Events) -> io::Result<()> {
        let mut retry_updates = false;
        loop {
            let dropped = self.ring.completion().overflow();
            if dropped != self.dropped {
                // Only when the kernel could not even allocate room for the overflow.
                let lost = dropped.wrapping_sub(self.dropped);
                self.dropped = dropped;
                return Err(io::Error::other(format!("io_uring lost {lost} completions (out of memory)")));
            }
            let mut cqes = std::mem::take(&mut self.cqes);
            cqes.clear();
            cqes.append(&mut self.backlog); // older than what is in the queue now
            let mut cq = self.ring.completion();
            cq.sync();
            cqes.extend(cq);
            for cqe in &cqes {
                retry_updates |= self.complete(cqe, events);
            }
            self.cqes = cqes;
            // Completions that did not fit are kept by the kernel (NODROP) and
            // flushed into the queue by an enter with GETEVENTS.
            if self.ring.submission().cq_overflow() {
                self.overflowed = true;
                ring::submit(&mut self.ring)?;
                continue;
            }
            if retry_updates {
                // A poll update missed its poll (it had just completed): arm
                // afresh now, so this batch does not wait without it.
                retry_updates = false;
                self.arm_queued()?;
                ring::submit(&mut self.ring)?;
                continue;
            }
            return Ok(());
        }
    }

    /// One completion. Returns whether a poll must be re-armed in this dispatch.
    fn complete(&mut self, cqe: &cqueue::Entry, events: &mut Events) -> bool {
        let data = cqe.user_data();
        let result = cqe.result();
        if data & INTERNAL != 0 {
            if data & UPDATE == 0 || result >= 0 {
                return false; // a remove, or an update that worked
            }
            // The update found no poll to change (ENOENT) or one already
            // completing (EALREADY): the old poll's completion is stale, so
            // arm a new one with the registration's current state.
            let (fd, generation) = split(data & !(INTERNAL | UPDATE));
            return match self.registration(fd) {
                Some(reg) if reg.generation == generation => {
                    reg.in_flight = false;
                    self.queue_rearm(fd);
                    true
                }
                _ => false,
            };
        }
        let (fd, generation) = split(data);
        let batch = self.batch;
        let Some(reg) = self.registration(fd) else {
            trace!("uring: stale completion for fd {fd} (deregistered)");
            return false;
        };
        if reg.generation != generation {
            trace!("uring: stale completion for fd {fd} (generation {generation}, now {})", reg.generation);
            return false;
        }
        let last = reg.mode != Mode::Edge || !cqueue::more(cqe.flags());
        // The kernel reports only the asked-for bits plus the flags (which
        // `ready_from` spreads to readable + writable, as the contract says).
        let ready = ready_from(result);
        if !ready.is_empty() {
            if reg.batch == batch {
                events.merge(reg.slot, ready);
            } else {
                reg.batch = batch;
                reg.slot = events.len();
                events.push(Event::new(fd, ready));
            }
        }
        if last {
            reg.in_flight = false;
            // Level: armed again after the event is handled. Edge: the kernel
            // ended the multishot poll; a new one continues it. Oneshot: modify.
            if reg.mode != Mode::Oneshot || ready.is_empty() {
                self.queue_rearm(fd);
            }
        }
        false
    }
}

impl Dispatcher for UringDispatcher {
    const NAME: &'static str = "uring";

    fn new() -> io::Result<Self> {
        UringDispatcher::with_entries(DEFAULT_ENTRIES)
    }

    fn supports(&self, _mode: Mode) -> bool {
        true // level (re-armed one-shot polls), oneshot, edge (multishot polls)
    }

    fn register(&mut self, fd: RawFd, interest: Interest, mode: Mode) -> io::Result<()> {
        check_request(self, fd, interest, mode)?;
        // A poll on a closed fd would fail only in its completion; say it now,
        // as epoll_ctl does (this also keeps a stray huge number from sizing the table).
        check_open(fd)?;
        if self.registration(fd).is_some() {
            return Err(already_registered(fd, Self::NAME));
        }
        let slot = fd as usize;
        if slot >= self.registrations.len() {
            self.registrations.resize_with(slot + 1, || None);
        }
        let generation = self.new_generation();
        self.registrations[slot] = Some(Registration {
            interest,
            mode,
            generation,
            in_flight: false,
            queued: false,
            batch: 0,
            slot: 0,
        });
        self.registered += 1;
        // Submitted with the next dispatch's wait (one system call for both).
        self.arm(fd)
    }

    fn modify(&mut self, fd: RawFd, interest: Interest, mode: Mode) -> io::Result<()> {
        check_request(self, fd, interest, mode)?;
        let generation = self.new_generation();
        let Some(reg) = self.registration(fd) else {
            return Err(not_registered(fd, Self::NAME));
        };
        let old = user_data(fd, reg.generation);
        // An update changes a poll's mask and tag but not whether it is
        // multishot (the kernel keeps the poll's one-shot bit), so a change
        // between edge and level/oneshot replaces the poll instead.
        let same_kind = (reg.mode == Mode::Edge) == (mode == Mode::Edge);
        reg.interest = interest;
        reg.mode = mode;
        reg.generation = generation;
        if reg.in_flight && same_kind {
            let entry = poll_update(old, fd, reg);
            return self.push(&entry);
        }
        if reg.in_flight {
            reg.in_flight = false;
            self.remove_poll(old)?;
        }
        // A fired oneshot, a level poll waiting for its re-arm, or a replaced poll.
        self.queue_rearm(fd);
        Ok(())
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        check_fd(fd)?;
        let Some(reg) = self.registrations.get_mut(fd as usize).and_then(Option::take) else {
            return Err(not_registered(fd, Self::NAME));
        };
        self.registered -= 1;
        if reg.in_flight {
            self.remove_poll(user_data(fd, reg.generation))?;
        }
        Ok(())
    }

    fn dispatch(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        self.batch += 1;
        // A clock read only for a real wait (a vDSO call, no system call).
        let deadline = timeout.filter(|t| !t.is_zero()).and_then(|t| Instant::now().checked_add(t));
        let mut wait = timeout;
        loop {
            self.arm_queued()?;
            match ring::enter(&mut self.ring, wait) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
                Err(e) => return Err(e),
            }
            self.harvest(events)?;
            if !events.is_empty() || wait.is_some_and(|t| t.is_zero()) {
                break;
            }
            // Only stale completions (of removed or replaced polls) came back:
            // not a reason to return early, so wait for what is left of the timeout.
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                wait = Some(left);
            }
        }
        // Only the completions were looked at: like epoll, the cost follows the ready fds.
        events.set_scanned(events.len());
        if std::mem::take(&mut self.overflowed) {
            self.grow()?;
        }
        Ok(())
    }

    fn len(&self) -> usize {
        self.registered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_round_trips() {
        for (fd, generation) in [(0, 1), (7, GEN_MASK), (i32::MAX, 12345)] {
            let data = user_data(fd, generation);
            assert_eq!(data & (INTERNAL | UPDATE), 0);
            assert_eq!(split(data), (fd, generation));
            assert_eq!(split(data | INTERNAL | UPDATE), (fd, generation));
        }
    }

    #[test]
    fn poll_results_map_to_readiness() {
        assert_eq!(ready_from(0), Ready::EMPTY);
        assert_eq!(ready_from(libc::POLLIN as i32), Ready::READABLE);
        assert_eq!(ready_from(libc::POLLPRI as i32), Ready::READABLE);
        assert_eq!(ready_from(libc::POLLOUT as i32), Ready::WRITABLE);
        assert_eq!(ready_from((libc::POLLIN | libc::POLLRDHUP) as i32), Ready::READABLE | Ready::READ_CLOSED);
        assert_eq!(ready_from(libc::POLLHUP as i32), Ready::with_flag(Ready::HANGUP));
        assert_eq!(ready_from(libc::POLLERR as i32), Ready::with_flag(Ready::ERROR));
        assert_eq!(ready_from(libc::POLLNVAL as i32), Ready::with_flag(Ready::INVALID));
        // A failed poll: exactly one flag, not its errno read as a mask.
        assert_eq!(ready_from(-libc::EBADF), Ready::with_flag(Ready::INVALID));
        assert_eq!(ready_from(-libc::EIO), Ready::with_flag(Ready::ERROR));
    }

    #[test]
    fn debug_shows_the_ring() {
        let d = UringDispatcher::with_entries(8).unwrap();
        let text = format!("{d:?}");
        assert!(text.starts_with("UringDispatcher") && text.contains("registered: 0"), "{text}");
        assert!(text.contains("sq_entries: 8") && text.contains("cq_entries: 64"), "{text}");
    }
}
