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
//! records (each with the sender's pid and uid) as its buffer holds. The catch: a process-directed signal
//! (`kill`) goes to *any* thread that does not block it, and there it takes
//! its ordinary disposition (for SIGINT, SIGTERM, SIGUSR1: the process dies)
//! and never reaches the fd. So with signalfd **the signal must be blocked in
//! every thread**: the loop blocks it in its own thread, [`EventLoopThread`]
//! threads block [`COMMON_SIGNALS`] from the start, and a program should
//! block the signals it handles on its main thread before spawning any
//! other thread (threads inherit the mask), e.g. with
//! [`sys::block_signals`]. Thread-directed signals (`pthread_kill`) reach
//! only their thread and need nothing more. The mask is inherited across
//! `fork` and `exec`; `std::process::Command` resets it to empty in the
//! child, a hand-written fork + exec must do the same.
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
//! action kills the process. muxloop sends with `MSG_NOSIGNAL` (see
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
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering::SeqCst};

use log::{debug, trace, warn};

use super::EventLoop;
use crate::dispatcher::{Dispatcher, Interest, Mode};
use crate::sys;

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
    /// `Signalfd` on Linux and Android, `SelfPipe` elsewhere.
    fn default() -> Self {
        if cfg!(any(target_os = "linux", target_os = "android")) {
            SignalSource::Signalfd
        } else {
            SignalSource::SelfPipe
        }
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

type SignalHandler<D> = Box<dyn FnMut(&mut EventLoop<D>, SignalInfo)>;

struct Entry<D: Dispatcher> {
    id: SignalId,
    /// `None` while it runs.
    handler: Option<SignalHandler<D>>,
}

/// What to undo when a signal's last handler goes.
enum Restore {
    /// signalfd: whether the loop's thread blocked it before we did.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    Mask { was_blocked: bool },
    /// self-pipe: the `sigaction` we replaced.
    Action(sys::SignalAction),
}

/// The fd the loop watches.
enum Source {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    Signalfd(OwnedFd),
    SelfPipe {
        read: OwnedFd,
        write: OwnedFd,
    },
}

impl Source {
    fn fd(&self) -> RawFd {
        match self {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Source::Signalfd(fd) => fd.as_raw_fd(),
            Source::SelfPipe { read, .. } => read.as_raw_fd(),
        }
    }
}

/// One loop's signal state, kept in the loop's context map.
pub(crate) struct Signals<D: Dispatcher> {
    kind: SignalSource,
    source: Option<Source>,
    handlers: Vec<Entry<D>>,
    /// Watched signals and what to undo for each.
    watched: Vec<(i32, Restore)>,
    next_serial: u64,
}

impl<D: Dispatcher> Default for Signals<D> {
    fn default() -> Self {
        Signals {
            kind: SignalSource::default(),
            source: None,
            handlers: Vec::new(),
            watched: Vec::new(),
            next_serial: 0,
        }
    }
}

// ---- the self-pipe's process-wide half: everything the handler touches ----

struct Slot {
    /// The write end of the pipe of the loop that owns this signal, or -1.
    fd: AtomicI32,
    /// Handler runs not yet reported to the loop.
    count: AtomicU64,
}

static SLOTS: [Slot; sys::MAX_SIGNAL as usize + 1] =
    [const { Slot { fd: AtomicI32::new(-1), count: AtomicU64::new(0) } }; sys::MAX_SIGNAL as usize + 1];

/// Handlers currently running, so a slot's fd is not closed under one.
static IN_HANDLER: AtomicUsize = AtomicUsize::new(0);

/// The `sigaction` handler: async-signal-safe (atomics and `write` only).
extern "C" fn self_pipe_handler(signal: libc::c_int) {
    let saved_errno = sys::errno();
    IN_HANDLER.fetch_add(1, SeqCst);
    if let Some(slot) = usize::try_from(signal).ok().and_then(|i| SLOTS.get(i)) {
        let fd = slot.fd.load(SeqCst);
        if fd >= 0 {
            // Count first: the loop drains the pipe before reading counts, so
            // every byte it drained has its count visible.
            slot.count.fetch_add(1, SeqCst);
            // EAGAIN (pipe full) is fine: the loop is already awake.
            let _ = sys::write(fd, &[signal as u8]);
        }
    }
    IN_HANDLER.fetch_sub(1, SeqCst);
    sys::set_errno(saved_errno);
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
    /// sys::signal_thread(sys::current_thread(), libc::SIGUSR1)?;
    /// ev.run()?;
    /// ev.remove_signal(id)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn on_signal<F>(&mut self, signal: i32, handler: F) -> io::Result<SignalId>
    where
        F: FnMut(&mut EventLoop<D>, SignalInfo) + 'static,
    {
        check_catchable(signal)?;
        if !self.context::<Signals<D>>().watched.iter().any(|(s, _)| *s == signal)
            && let Err(e) = watch(self, signal)
        {
            // Do not keep a signalfd/pipe open for nothing.
            if self.context::<Signals<D>>().watched.is_empty()
                && let Some(source) = self.context::<Signals<D>>().source.take()
            {
                let _ = self.deregister(source.fd());
            }
            return Err(e);
        }
        let signals = self.context::<Signals<D>>();
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
        let signals = self.context::<Signals<D>>();
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
    /// ```no_run
    /// use muxloop::{Callbacks, EventLoop, Server};
    /// use std::time::Duration;
    ///
    /// let mut ev: EventLoop = EventLoop::new()?;
    /// let server = Server::builder("127.0.0.1:9000", Callbacks::new()).start(&mut ev)?;
    /// ev.run_until_signal(&[libc::SIGINT, libc::SIGTERM])?;
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
        if source == SignalSource::Signalfd && !cfg!(any(target_os = "linux", target_os = "android")) {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "signalfd exists only on Linux"));
        }
        let signals = self.context::<Signals<D>>();
        if signals.kind != source && !signals.watched.is_empty() {
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
        self.context::<Signals<D>>().kind
    }
}

/// Starts receiving `signal` (not yet watched by this loop).
fn watch<D: Dispatcher + 'static>(ev: &mut EventLoop<D>, signal: i32) -> io::Result<()> {
    if ev.context::<Signals<D>>().source.is_none() {
        open_source(ev)?;
    }
    let signals = ev.context::<Signals<D>>();
    let restore = match signals.source.as_ref().expect("opened above") {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Source::Signalfd(fd) => {
            let was_blocked = sys::is_signal_blocked(signal)?;
            sys::block_signals(&[signal])?;
            let mut set: Vec<i32> = signals.watched.iter().map(|(s, _)| *s).collect();
            set.push(signal);
            if let Err(e) = sys::signalfd(Some(fd.as_raw_fd()), &set) {
                if !was_blocked {
                    let _ = sys::unblock_signals(&[signal]);
                }
                return Err(e);
            }
            Restore::Mask { was_blocked }
        }
        Source::SelfPipe { write, .. } => {
            let write_fd = write.as_raw_fd();
            let slot = &SLOTS[signal as usize];
            if slot.fd.compare_exchange(-1, write_fd, SeqCst, SeqCst).is_err() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("signal {signal} is already watched by another event loop's self-pipe"),
                ));
            }
            slot.count.store(0, SeqCst);
            match sys::set_signal_handler(signal, self_pipe_handler) {
                Ok(previous) => Restore::Action(previous),
                Err(e) => {
                    slot.fd.store(-1, SeqCst);
                    return Err(e);
                }
            }
        }
    };
    signals.watched.push((signal, restore));
    debug!("{}: watching signal {signal} ({:?})", D::NAME, signals.kind);
    Ok(())
}

/// Creates the loop's signalfd or self-pipe and registers it.
fn open_source<D: Dispatcher + 'static>(ev: &mut EventLoop<D>) -> io::Result<()> {
    let source = match ev.context::<Signals<D>>().kind {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        SignalSource::Signalfd => Source::Signalfd(sys::signalfd(None, &[])?.expect("a new signalfd")),
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        SignalSource::Signalfd => return Err(io::Error::new(io::ErrorKind::Unsupported, "no signalfd here")),
        SignalSource::SelfPipe => {
            let (read, write) = sys::pipe()?;
            Source::SelfPipe { read, write }
        }
    };
    ev.register(source.fd(), Interest::READABLE, Mode::Level, |ev, _| deliver(ev))?;
    ev.context::<Signals<D>>().source = Some(source);
    Ok(())
}

/// Stops receiving `signal` and puts back what was there before.
fn unwatch<D: Dispatcher + 'static>(ev: &mut EventLoop<D>, signal: i32) -> io::Result<()> {
    let signals = ev.context::<Signals<D>>();
    let Some(index) = signals.watched.iter().position(|(s, _)| *s == signal) else { return Ok(()) };
    let (_, restore) = signals.watched.remove(index);
    let remaining: Vec<i32> = signals.watched.iter().map(|(s, _)| *s).collect();
    let result = match (&signals.source, restore) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        (Some(Source::Signalfd(fd)), Restore::Mask { was_blocked }) => {
            sys::signalfd(Some(fd.as_raw_fd()), &remaining)
                .map(drop)
                .and_then(|()| restore_mask(signal, was_blocked))
        }
        (_, Restore::Action(previous)) => release_slot(signal, &previous),
        _ => Ok(()),
    };
    debug!("{}: no longer watching signal {signal}", D::NAME);
    if remaining.is_empty()
        && let Some(source) = ev.context::<Signals<D>>().source.take()
    {
        // The fd closes only after it has left the dispatcher.
        ev.deregister(source.fd())?;
    }
    result
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn restore_mask(signal: i32, was_blocked: bool) -> io::Result<()> {
    if was_blocked {
        return Ok(());
    }
    // A pending instance would take the default action the moment it is unblocked.
    let dropped = sys::discard_pending_signal(signal)?;
    if dropped > 0 {
        debug!("signal {signal}: {dropped} pending instance(s) discarded with its last handler");
    }
    sys::unblock_signals(&[signal])
}

/// Restores the previous action, then frees the slot once no handler can still be using its fd.
fn release_slot(signal: i32, previous: &sys::SignalAction) -> io::Result<()> {
    let result = sys::restore_signal_action(signal, previous);
    SLOTS[signal as usize].fd.store(-1, SeqCst);
    // A handler on another thread may have loaded the old fd just before; it
    // finishes in microseconds. (One on this thread cannot be mid-way: it
    // would have run to completion before we resumed.)
    while IN_HANDLER.load(SeqCst) != 0 {
        std::thread::yield_now();
    }
    SLOTS[signal as usize].count.store(0, SeqCst);
    result
}

/// The channel handler of the signalfd / self-pipe: collects what arrived and
/// calls the user's handlers.
fn deliver<D: Dispatcher + 'static>(ev: &mut EventLoop<D>) {
    let arrived = match collect(ev.context::<Signals<D>>()) {
        Ok(arrived) => arrived,
        Err(e) => {
            warn!("{}: reading signals failed: {e}", D::NAME);
            return;
        }
    };
    for info in arrived {
        trace!("{}: signal {} x{} (pid {:?})", D::NAME, info.signal, info.count, info.pid);
        let ids: Vec<SignalId> = ev
            .context::<Signals<D>>()
            .handlers
            .iter()
            .filter(|e| e.id.signal == info.signal)
            .map(|e| e.id)
            .collect();
        for id in ids {
            let taken = ev
                .context::<Signals<D>>()
                .handlers
                .iter_mut()
                .find(|e| e.id == id)
                .and_then(|e| e.handler.take());
            let Some(mut handler) = taken else { continue };
            handler(ev, info);
            // Back in its entry, unless the handler removed itself.
            if let Some(entry) = ev.context::<Signals<D>>().handlers.iter_mut().find(|e| e.id == id) {
                entry.handler = Some(handler);
            }
        }
    }
}

/// Drains the source; one `SignalInfo` per signal that arrived, in order of arrival.
fn collect<D: Dispatcher>(signals: &mut Signals<D>) -> io::Result<Vec<SignalInfo>> {
    let mut arrived: Vec<SignalInfo> = Vec::new();
    match &signals.source {
        None => {}
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Some(Source::Signalfd(fd)) => {
            let mut records = Vec::new();
            sys::read_signalfd(fd.as_raw_fd(), &mut records)?;
            for r in records {
                match arrived.iter_mut().find(|i| i.signal == r.signal) {
                    Some(info) => {
                        info.count += 1;
                        info.pid = Some(r.pid);
                    }
                    None => arrived.push(SignalInfo { signal: r.signal, count: 1, pid: Some(r.pid) }),
                }
            }
        }
        Some(Source::SelfPipe { read, .. }) => {
            // Drain first, then read the counters (the handler counts first, then writes).
            let mut order = Vec::new();
            let mut buf = [0u8; 256];
            loop {
                match sys::read(read.as_raw_fd(), &mut buf) {
                    Ok(0) => break,
                    Ok(n) => buf[..n].iter().for_each(|&b| {
                        if !order.contains(&b) {
                            order.push(b)
                        }
                    }),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            // Bytes give the order; every watched counter is checked (a byte may
            // have been drained by an earlier wake-up whose count we now see).
            let mut watched: Vec<i32> = order.iter().map(|&b| b as i32).collect();
            watched.extend(signals.watched.iter().map(|(s, _)| *s).filter(|s| !order.contains(&(*s as u8))));
            for signal in watched {
                if !signals.watched.iter().any(|(s, _)| *s == signal) {
                    continue;
                }
                let count = SLOTS[signal as usize].count.swap(0, SeqCst);
                if count > 0 {
                    arrived.push(SignalInfo { signal, count, pid: None });
                }
            }
        }
    }
    Ok(arrived)
}

impl<D: Dispatcher> Drop for Signals<D> {
    fn drop(&mut self) {
        // The loop is going away (on its own thread): undo everything, and above all
        // free the self-pipe slots before the pipe's fd number can be reused.
        for (signal, restore) in self.watched.drain(..) {
            let result = match restore {
                #[cfg(any(target_os = "linux", target_os = "android"))]
                Restore::Mask { was_blocked } => restore_mask(signal, was_blocked),
                Restore::Action(previous) => release_slot(signal, &previous),
            };
            if let Err(e) = result {
                warn!("restoring signal {signal} failed: {e}");
            }
        }
    }
}

impl<D: Dispatcher> fmt::Debug for Signals<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let watched: Vec<i32> = self.watched.iter().map(|(s, _)| *s).collect();
        f.debug_struct("Signals").field("source", &self.kind).field("watched", &watched).finish()
    }
}
