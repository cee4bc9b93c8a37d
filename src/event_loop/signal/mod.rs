//! Signals as loop events: [`EventLoop::on_signal`].
//!
//! This module teaches how a reactor turns an asynchronous interrupt into an
//! ordinary readable fd, so a signal is handled like any other event: on the
//! loop's thread, between two dispatches, with full access to the loop.
//!
//! # Why a signal handler can do almost nothing
//!
//! The kernel runs a `sigaction` handler on whatever thread it picked, at
//! whatever instruction that thread was executing: maybe inside `malloc`
//! holding its lock, maybe halfway through updating the loop's channel table.
//! The handler may therefore only call *async-signal-safe* functions
//! (`write`, `read`, `kill`, ... see `signal-safety(7)`), must not allocate,
//! lock, log or touch the loop, and must save and restore `errno`. In
//! practice: set an atomic, write a byte, return.
//!
//! # The self-pipe trick ([`SignalSource::SelfPipe`], every Unix)
//!
//! The loop owns a non-blocking pipe and registers its read end like a
//! socket. The handler does the two things it may: it adds one to an atomic
//! per-signal counter and writes one byte (the signal number) to the pipe.
//! The pipe becomes readable, the dispatcher wakes up (select, poll or epoll,
//! it does not matter) and the loop drains the pipe, swaps the counters to
//! zero and calls the user's handlers with the counts. A full pipe does not
//! lose anything: the counter still went up and the loop is already awake.
//! The handler is process-wide, so a signal has at most one self-pipe loop.
//!
//! # signalfd ([`SignalSource::Signalfd`], Linux, the default there)
//!
//! Linux can skip the handler altogether: block the signal with
//! `pthread_sigmask` so it stays *pending*, and `signalfd(2)` gives an fd
//! that is readable while a signal of its set is pending for the reading
//! thread or the process; a `read` dequeues as many `signalfd_siginfo`
//! records (each with the sender's pid and uid) as its buffer holds. The
//! catch: a process-directed signal (`kill`) goes to *any* thread that does
//! not block it, and there it takes its ordinary disposition (for SIGINT,
//! SIGTERM, SIGUSR1: the process dies) and never reaches the fd. A program
//! rarely has one thread: a logger, a worker pool or the test harness may
//! have started before the loop, with the signal unblocked. So the loop does
//! two things when it starts watching a signal: it blocks the signal in its
//! own thread, and it installs a small handler for it that, if the signal
//! lands on another thread, re-sends it to the loop's thread
//! (`rt_tgsigqueueinfo`, keeping the sender's pid), where it stays pending
//! and is read from the fd. Graceful stop therefore works whatever threads
//! the program started first; [`EventLoopThread`] threads and programs that
//! block the signals on their main thread before spawning (with
//! [`sys::block_signals`]; threads inherit the mask) never take that detour.
//! Thread-directed signals (`pthread_kill`) reach only their thread and need
//! nothing more. The mask is inherited across `fork` and `exec`;
//! `std::process::Command` resets it to empty in the child, a hand-written
//! fork + exec must do the same.
//!
//! # Counting
//!
//! [`SignalInfo::count`] says how many deliveries one callback stands for.
//! The kernel keeps at most one pending instance of a standard signal per
//! thread and one per process, so sends that arrive while one is pending
//! merge *before* either source sees them. With the self-pipe that window is
//! the moment until the handler runs; with signalfd it lasts until the loop
//! reads, so a burst can arrive as one record with `count == 1` (or 2: one
//! thread-pending, one process-pending). Real-time signals (`SIGRTMIN..`)
//! queue and are counted exactly by signalfd. What each source counts is
//! exact for what it saw: the self-pipe counts handler runs (an atomic, never
//! limited by the pipe's size), signalfd counts records.
//!
//! # SIGPIPE
//!
//! Writing to a socket whose peer has gone raises SIGPIPE, whose default
//! action kills the process: after the peer's RST the first write fails with
//! `ECONNRESET` and the next one raises it (after a plain FIN, the first
//! write still succeeds). muxloop sends with `MSG_NOSIGNAL` (see
//! [`sys::send`]) so that write fails with `EPIPE` instead, and Rust's
//! runtime sets SIGPIPE to ignored before `main` in binaries anyway. Plain
//! `write(2)` on a pipe or socket elsewhere in a program relies on the latter.
//!
//! # Choosing the source, removing a handler, what is refused
//!
//! [`EventLoop::set_signal_source`] picks the source for one loop (before
//! its first handler; Linux tests use it to run both). Removing the last
//! handler of a signal puts back what was there before: the previous
//! `sigaction` for the self-pipe, the previous blocked/unblocked state of the
//! loop's thread for signalfd (after discarding instances still pending,
//! which would otherwise fire the default action at once). Dropping the loop
//! does the same for every signal. SIGKILL and SIGSTOP cannot be caught, and
//! fault signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL) must be handled where they
//! happen: all are `InvalidInput`.
//!
//! [`EventLoopThread`]: crate::thread_pool::EventLoopThread

use std::cell::Cell;
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;

use log::{debug, trace, warn};

use super::EventLoop;
use crate::dispatcher::{Dispatcher, Interest, Mode};
use crate::sys;

mod self_pipe;
#[cfg(muxloop_linux)]
mod signalfd;

/// Signal numbers, so a program needs no `libc` to name the usual ones
/// (`muxloop::signal::SIGTERM`).
pub use libc::{SIGALRM, SIGCHLD, SIGHUP, SIGINT, SIGPIPE, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};

/// The signals [`EventLoopThread`](crate::thread_pool::EventLoopThread)
/// blocks in its thread, so they reach the loop that asked for them:
/// SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD.
pub const COMMON_SIGNALS: [i32; 7] =
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGCHLD];

/// How a loop learns about signals (see the [module docs](self)).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SignalSource {
    /// `signalfd(2)`: the signal is blocked and read from an fd (Linux).
    Signalfd,
    /// A `sigaction` handler writes to a pipe the loop watches (any Unix).
    SelfPipe,
}

impl Default for SignalSource {
    /// `Signalfd` with the `muxloop_linux` cfg (Linux and Android, unless
    /// built with `--cfg muxloop_portable`), `SelfPipe` elsewhere.
    fn default() -> Self {
        if cfg!(muxloop_linux) { SignalSource::Signalfd } else { SignalSource::SelfPipe }
    }
}

/// What a signal handler is told.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SignalInfo {
    /// The signal number (`libc::SIGUSR1`, ...).
    pub signal: i32,
    /// Deliveries this call stands for, at least 1 (see "Counting" in the
    /// [module docs](self)).
    pub count: u64,
    /// The sender's pid, when the source knows it (signalfd does; the
    /// self-pipe does not).
    pub pid: Option<u32>,
}

/// Names one handler installed by [`EventLoop::on_signal`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct SignalId {
    signal: i32,
    serial: u64,
}

impl SignalId {
    /// The signal the handler is for.
    pub fn signal(&self) -> i32 {
        self.signal
    }
}

/// How signals reach a loop: one mechanism per file. Each keeps what it must
/// undo for every signal it watches, and undoes it when the signal is
/// unwatched or the mechanism dropped.
trait Mechanism {
    /// The fd the loop watches for readability.
    fn fd(&self) -> RawFd;
    /// Starts receiving `signal` (not watched yet).
    fn watch(&mut self, signal: i32) -> io::Result<()>;
    /// Stops receiving `signal` and puts back what was there before.
    fn unwatch(&mut self, signal: i32) -> io::Result<()>;
    /// The signals watched.
    fn watched(&self) -> Vec<i32>;
    /// Drains the fd: one `SignalInfo` per signal that arrived, in order of arrival.
    fn collect(&mut self, arrived: &mut Vec<SignalInfo>) -> io::Result<()>;
}

type SignalHandler<D> = Box<dyn FnMut(&mut EventLoop<D>, SignalInfo)>;

struct Entry<D: Dispatcher> {
    id: SignalId,
    /// `None` while it runs.
    handler: Option<SignalHandler<D>>,
}

/// One loop's signal state: a field of the loop.
pub(crate) struct Signals<D: Dispatcher> {
    kind: SignalSource,
    /// Open while at least one signal is watched.
    mechanism: Option<Box<dyn Mechanism>>,
    handlers: Vec<Entry<D>>,
    next_serial: u64,
}

impl<D: Dispatcher> Default for Signals<D> {
    fn default() -> Self {
        Signals { kind: SignalSource::default(), mechanism: None, handlers: Vec::new(), next_serial: 0 }
    }
}

impl<D: Dispatcher> Signals<D> {
    fn watches(&self, signal: i32) -> bool {
        self.mechanism.as_ref().is_some_and(|m| m.watched().contains(&signal))
    }
}

impl<D: Dispatcher> fmt::Debug for Signals<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let watched = self.mechanism.as_ref().map(|m| m.watched()).unwrap_or_default();
        f.debug_struct("Signals").field("source", &self.kind).field("watched", &watched).finish()
    }
}

fn check_catchable(signal: i32) -> io::Result<()> {
    sys::check_signal(signal)?;
    if [libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL].contains(&signal) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {signal} is a fault signal; it cannot be handled by an event loop"),
        ));
    }
    Ok(())
}

impl<D: Dispatcher + 'static> EventLoop<D> {
    /// Calls `handler` on this loop's thread each time `signal` arrives
    /// (several arrivals may be reported by one call, see
    /// [`SignalInfo::count`]). Several handlers may watch one signal; each
    /// is called. Works with every dispatcher; the [`signal`](self) module
    /// explains the two sources and what the program must do for signalfd
    /// (block the signal in every thread).
    ///
    /// Errors: `InvalidInput` for a signal that cannot be caught (SIGKILL,
    /// SIGSTOP, fault signals, out of range); `AlreadyExists` if another loop
    /// already watches `signal` through the self-pipe; the OS's errors.
    ///
    /// ```
    /// use muxloop::{EventLoop, sys};
    ///
    /// let mut ev: EventLoop = EventLoop::new()?;
    /// let id = ev.on_signal(libc::SIGUSR1, |ev, info| {
    ///     assert_eq!((info.signal, info.count), (libc::SIGUSR1, 1));
    ///     ev.quit();
    /// })?;
    /// // Thread-directed, so no other thread can take it; here signalfd (the
    /// // Linux default) keeps it pending until the loop reads it.
    /// sys::signal_current_thread(libc::SIGUSR1)?;
    /// ev.run()?;
    /// ev.remove_signal(id)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn on_signal<F>(&mut self, signal: i32, handler: F) -> io::Result<SignalId>
    where
        F: FnMut(&mut EventLoop<D>, SignalInfo) + 'static,
    {
        check_catchable(signal)?;
        if !self.signals.watches(signal)
            && let Err(e) = watch(self, signal)
        {
            close_if_idle(self)?;
            return Err(e);
        }
        let signals = &mut self.signals;
        let id = SignalId { signal, serial: signals.next_serial };
        signals.next_serial += 1;
        signals.handlers.push(Entry { id, handler: Some(Box::new(handler)) });
        debug!("{}: handler {id:?} for signal {signal}", D::NAME);
        Ok(id)
    }

    /// Removes a handler; returns whether it was installed. Removing the last
    /// handler of a signal restores what the signal did before. Safe from
    /// inside any handler, its own included.
    pub fn remove_signal(&mut self, id: SignalId) -> io::Result<bool> {
        let signals = &mut self.signals;
        let Some(index) = signals.handlers.iter().position(|e| e.id == id) else { return Ok(false) };
        signals.handlers.remove(index);
        if !signals.handlers.iter().any(|e| e.id.signal == id.signal) {
            unwatch(self, id.signal)?;
        }
        Ok(true)
    }

    /// Runs the loop until one of `signals` arrives (a shutdown request such
    /// as SIGINT or SIGTERM) and returns it; `None` if the loop was asked to
    /// quit some other way. The handlers stay installed: from then on, a
    /// second one of these signals ends the process at once with status
    /// 128 + signal (the impatient second Ctrl-C while a graceful stop runs).
    ///
    /// Threads the program started earlier need no preparation: with
    /// signalfd (the Linux default) a signal that lands on one of them is
    /// forwarded to this loop, with the self-pipe the handler runs on any
    /// thread (see the [module docs](self)).
    ///
    /// ```no_run
    /// use muxloop::signal::{SIGINT, SIGTERM};
    /// use muxloop::{Callbacks, EventLoop, Server};
    /// use std::time::Duration;
    ///
    /// let mut ev: EventLoop = EventLoop::new()?;
    /// let server = Server::builder("127.0.0.1:9000", Callbacks::new()).start(&mut ev)?;
    /// ev.run_until_signal(&[SIGINT, SIGTERM])?;
    /// let summary = server.stop(&mut ev, Duration::from_secs(5))?;
    /// eprintln!("stopped: {summary}");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn run_until_signal(&mut self, signals: &[i32]) -> io::Result<Option<i32>> {
        let got = Rc::new(Cell::new(None));
        for &signal in signals {
            let got = Rc::clone(&got);
            self.on_signal(signal, move |ev, info| {
                if got.get().is_some() {
                    warn!("signal {} again during shutdown: exiting now", info.signal);
                    std::process::exit(128 + info.signal);
                }
                debug!("signal {}: shutting down", info.signal);
                got.set(Some(info.signal));
                ev.quit();
            })?;
        }
        self.run()?;
        Ok(got.get())
    }

    /// Picks how this loop receives signals. Allowed while the loop has no
    /// signal handler (else `InvalidInput`); `Signalfd` off Linux is
    /// `Unsupported`.
    pub fn set_signal_source(&mut self, source: SignalSource) -> io::Result<()> {
        if source == SignalSource::Signalfd && !cfg!(muxloop_linux) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "signalfd exists only on Linux (and is not compiled with --cfg muxloop_portable)",
            ));
        }
        let signals = &mut self.signals;
        if signals.kind != source && signals.mechanism.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "remove this loop's signal handlers before changing its signal source",
            ));
        }
        signals.kind = source;
        Ok(())
    }

    /// The source this loop uses for signals.
    pub fn signal_source(&mut self) -> SignalSource {
        self.signals.kind
    }
}

/// Starts receiving `signal` (not yet watched by this loop), opening the
/// loop's mechanism first if it has none.
fn watch<D: Dispatcher + 'static>(ev: &mut EventLoop<D>, signal: i32) -> io::Result<()> {
    if ev.signals.mechanism.is_none() {
        let mechanism: Box<dyn Mechanism> = match ev.signals.kind {
            #[cfg(muxloop_linux)]
            SignalSource::Signalfd => Box::new(signalfd::Signalfd::new()?),
            #[cfg(not(muxloop_linux))]
            SignalSource::Signalfd => {
                return Err(io::Error::new(io::ErrorKind::Unsupported, "no signalfd here"));
            }
            SignalSource::SelfPipe => Box::new(self_pipe::SelfPipe::new()?),
        };
        ev.register(mechanism.fd(), Interest::READABLE, Mode::Level, |ev, _| deliver(ev))?;
        ev.signals.mechanism = Some(mechanism);
    }
    let Some(mechanism) = ev.signals.mechanism.as_mut() else { return Ok(()) };
    mechanism.watch(signal)?;
    debug!("{}: watching signal {signal} ({:?})", D::NAME, ev.signals.kind);
    Ok(())
}

/// Stops receiving `signal` and puts back what was there before.
fn unwatch<D: Dispatcher + 'static>(ev: &mut EventLoop<D>, signal: i32) -> io::Result<()> {
    let Some(mechanism) = ev.signals.mechanism.as_mut() else { return Ok(()) };
    let result = mechanism.unwatch(signal);
    debug!("{}: no longer watching signal {signal}", D::NAME);
    close_if_idle(ev)?;
    result
}

/// Closes the loop's mechanism if it watches nothing (no signalfd or pipe
/// kept open for nothing). The fd leaves the dispatcher before it closes.
fn close_if_idle<D: Dispatcher + 'static>(ev: &mut EventLoop<D>) -> io::Result<()> {
    if ev.signals.mechanism.as_ref().is_some_and(|m| m.watched().is_empty())
        && let Some(mechanism) = ev.signals.mechanism.take()
    {
        ev.deregister(mechanism.fd())?;
    }
    Ok(())
}

/// The channel handler of the mechanism's fd: collects what arrived and
/// calls the user's handlers.
fn deliver<D: Dispatcher + 'static>(ev: &mut EventLoop<D>) {
    let mut arrived = Vec::new();
    if let Some(mechanism) = ev.signals.mechanism.as_mut()
        && let Err(e) = mechanism.collect(&mut arrived)
    {
        warn!("{}: reading signals failed: {e}", D::NAME);
        return;
    }
    for info in arrived {
        trace!("{}: signal {} x{} (pid {:?})", D::NAME, info.signal, info.count, info.pid);
        let ids: Vec<SignalId> =
            ev.signals.handlers.iter().filter(|e| e.id.signal == info.signal).map(|e| e.id).collect();
        for id in ids {
            let taken = ev.signals.handlers.iter_mut().find(|e| e.id == id).and_then(|e| e.handler.take());
            let Some(mut handler) = taken else { continue };
            handler(ev, info);
            // Back in its entry, unless the handler removed itself.
            if let Some(entry) = ev.signals.handlers.iter_mut().find(|e| e.id == id) {
                entry.handler = Some(handler);
            }
        }
    }
}
