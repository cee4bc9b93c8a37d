//! The Reactor: one loop per thread that waits on a [`Dispatcher`], then runs
//! the handlers of the ready fds, the due timers and the queued tasks.
//!
//! This module teaches the event loop itself, independent of which system
//! call waits:
//!
//! ```text
//! loop {
//!     timeout = nearest timer deadline (or 0 if tasks are queued)
//!     events  = dispatcher.dispatch(timeout)        // the only place we sleep
//!     for event in events: channel[event.fd].handler(loop, event)
//!     run due timers
//!     run queued tasks (from this thread via `defer`, from others via LoopHandle)
//! }
//! ```
//!
//! * The **channel table** is indexed by fd, like yolanda's `channel_map` and
//!   Redis' `events[fd]`: an fd number is a small dense integer.
//! * **Handlers get `&mut EventLoop`**, so from inside a callback they can
//!   register, modify and deregister any fd (themselves included) and arm
//!   timers. The loop takes a handler out of its slot while it runs, so this
//!   is safe without `RefCell`.
//! * **Stale events are dropped**: if a handler deregisters fd 7, closes it
//!   and a new socket reuses number 7 in the same batch, the batch's old event
//!   for 7 is not delivered to the new owner (each channel remembers the batch
//!   it was registered in).
//! * **Cross-thread work** goes through a [`LoopHandle`]: it queues a
//!   `FnOnce(&mut EventLoop) + Send` and writes to the loop's waker fd, which
//!   is how connections are handed to sub-loops and how other threads stop a loop.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::mem;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::{Level, debug, log_enabled, trace};

use crate::dispatcher::{AnyDispatcher, Dispatcher, Event, Events, Interest, Mode, check_fd, check_mode};

pub(crate) mod clock;
pub mod handle;
pub mod signal;
pub mod timer;
pub mod waker;

pub use handle::LoopHandle;
use handle::{Shared, TaskQueue};
pub use signal::{COMMON_SIGNALS, SignalId, SignalInfo, SignalSource};
pub use timer::TimerId;
use timer::TimerQueue;
use waker::Waker;

static NEXT_LOOP_ID: AtomicU64 = AtomicU64::new(1);

/// How often a loop logs its `debug` summary.
const SUMMARY_INTERVAL: Duration = Duration::from_secs(1);

/// The shortest interval [`EventLoop::run_every`] accepts; shorter ones are
/// raised to it so a repeating timer can never turn the loop into a busy loop.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);

type Handler<D> = Box<dyn FnMut(&mut EventLoop<D>, Event)>;
type LocalTask<D> = Box<dyn FnOnce(&mut EventLoop<D>)>;
type RemoteTask<D> = Box<dyn FnOnce(&mut EventLoop<D>) + Send>;
type RepeatingTask<D> = Box<dyn FnMut(&mut EventLoop<D>)>;

enum TimerCallback<D: Dispatcher> {
    Once(LocalTask<D>),
    Every(RepeatingTask<D>, Duration),
}

/// What the loop knows about one registered fd.
struct Channel<D: Dispatcher> {
    /// `None` only while the handler is running.
    handler: Option<Handler<D>>,
    interest: Interest,
    mode: Mode,
    /// False when the interest is `NONE`: the fd is then out of the backend.
    in_backend: bool,
    /// The batch during which it was registered; events of that batch predate it.
    since_batch: u64,
}

/// Counters that make the differences between backends visible.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Calls to `select`/`poll`/`epoll_wait`.
    pub dispatch_calls: u64,
    /// Events the backend reported (including the loop's own waker).
    pub events_reported: u64,
    /// Events handed to handlers.
    pub events_delivered: u64,
    /// Fd slots the backend had to examine (see [`Events::scanned`]).
    pub fds_scanned: u64,
    /// Time spent asleep in the backend.
    pub wait_time: Duration,
    /// Time from a dispatch returning to the next one starting: handlers,
    /// timers, tasks (and whatever the caller does between `run_once` calls).
    /// Each iteration is counted when the next one starts.
    pub handle_time: Duration,
    /// Timer callbacks run.
    pub timers_fired: u64,
    /// Queued tasks run (local and cross-thread).
    pub tasks_run: u64,
}

/// A reactor: owns a dispatcher, the fd -> handler table, timers and a task queue.
///
/// `D` picks the backend. The default, [`AnyDispatcher`], holds any of them
/// and chooses at run time: [`EventLoop::new`] gives the one `build.rs`
/// chose ([`DefaultDispatcher`](crate::DefaultDispatcher)),
/// [`EventLoop::with_backend`] one by name. A concrete `D`
/// (`EventLoop<EpollDispatcher>`) saves the `match` per dispatcher call and
/// lets the compiler inline the backend. A loop is not `Send`: create it on the thread that
/// runs it and reach it from others through [`EventLoop::handle`].
///
/// ```
/// use muxloop::{EventLoop, Interest, Mode};
/// use std::time::Duration;
///
/// let mut ev: EventLoop = EventLoop::new()?;
/// let (reader, writer) = muxloop::sys::socketpair()?;
/// use std::os::fd::{AsFd, AsRawFd};
/// let fd = reader.as_raw_fd();
/// // The handler owns the reader: deregistering drops it, then it closes.
/// ev.register(fd, Interest::READABLE, Mode::Level, move |ev, _event| {
///     let mut buf = [0u8; 16];
///     let n = muxloop::sys::read(reader.as_fd(), &mut buf).unwrap();
///     assert_eq!(&buf[..n], b"hi");
///     ev.quit();
/// })?;
/// muxloop::sys::write(writer.as_fd(), b"hi")?;
/// ev.run()?;
/// ev.deregister(fd)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct EventLoop<D: Dispatcher = AnyDispatcher> {
    /// Process-wide identity, so objects bound to one loop can refuse another.
    id: u64,
    dispatcher: D,
    events: Events,
    channels: Vec<Option<Channel<D>>>,
    registered: usize,
    timers: TimerQueue<TimerCallback<D>>,
    /// The timer whose callback is running, and whether it cancelled itself.
    running_timer: Option<(TimerId, bool)>,
    deferred: Vec<LocalTask<D>>,
    shared: Arc<Shared<D>>,
    quit: bool,
    batch: u64,
    in_dispatch: bool,
    stats: Stats,
    /// When the last dispatch returned (two clock reads per iteration, not three).
    last_woke: Option<Instant>,
    contexts: HashMap<TypeId, Box<dyn Any>>,
    /// Signal handlers and the mechanism that delivers them.
    signals: signal::Signals<D>,
    /// Names the loop in its log lines (`main`, `echo-0`, ...).
    name: String,
    /// The stats at the last once-per-second summary, and when it was.
    summarized: (Instant, Stats),
}

impl<D: Dispatcher> EventLoop<D> {
    /// A loop with a new `D` dispatcher.
    pub fn new() -> io::Result<Self> {
        Self::with_dispatcher(D::new()?)
    }

    /// A loop around an existing dispatcher (it must have nothing registered).
    pub fn with_dispatcher(mut dispatcher: D) -> io::Result<Self> {
        let waker = Waker::new()?;
        dispatcher.register(waker.fd(), Interest::READABLE, Mode::Level)?;
        let name = std::thread::current().name().unwrap_or("loop").to_owned();
        debug!("[{name}] {} event loop created", dispatcher.name());
        let id = NEXT_LOOP_ID.fetch_add(1, Ordering::Relaxed);
        Ok(EventLoop {
            id,
            dispatcher,
            events: Events::with_capacity(256),
            channels: Vec::new(),
            registered: 0,
            timers: TimerQueue::new(),
            running_timer: None,
            deferred: Vec::new(),
            shared: Arc::new(Shared {
                loop_id: id,
                thread: std::thread::current().id(),
                queue: Mutex::new(TaskQueue { tasks: Vec::new(), open: true }),
                waker,
                wake_pending: AtomicBool::new(false),
                quit: AtomicBool::new(false),
            }),
            quit: false,
            batch: 0,
            in_dispatch: false,
            stats: Stats::default(),
            last_woke: None,
            contexts: HashMap::new(),
            signals: signal::Signals::default(),
            name,
            summarized: (clock::now(), Stats::default()),
        })
    }

    /// This loop's process-wide identity. Connections, servers and timers
    /// remember the loop they belong to and refuse to be driven by another.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The name this loop's log lines carry: the name of the thread that
    /// created it (`main`, or `NAME-i` for a pool's loops) unless set.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames the loop for its log lines.
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    /// The backend's name: `"select"`, `"poll"`, `"epoll"` or `"uring"`
    /// (for [`AnyDispatcher`], the backend it was given).
    pub fn dispatcher_name(&self) -> &'static str {
        self.dispatcher.name()
    }

    /// Whether this loop's backend can register fds in `mode` (select and
    /// poll cannot do [`Mode::Edge`]); the connection layer asks this to
    /// resolve [`Trigger::Auto`](crate::net::Trigger::Auto).
    pub fn supports(&self, mode: Mode) -> bool {
        self.dispatcher.supports(mode)
    }

    /// A new, empty dispatcher of the same kind as this loop's (for
    /// sub-loops that must use the backend chosen at run time).
    pub fn fresh_dispatcher(&self) -> io::Result<D> {
        self.dispatcher.fresh()
    }

    fn channel_mut(&mut self, fd: RawFd) -> Option<&mut Channel<D>> {
        self.channels.get_mut(usize::try_from(fd).ok()?)?.as_mut()
    }

    fn channel(&self, fd: RawFd) -> Option<&Channel<D>> {
        self.channels.get(usize::try_from(fd).ok()?)?.as_ref()
    }

    /// Watches `fd` and calls `handler` with each event for it.
    ///
    /// The loop does not own `fd`: the caller keeps it open while registered
    /// and calls [`deregister`](Self::deregister) before closing it.
    /// `Interest::NONE` registers the handler with the fd paused (not in the
    /// backend). Errors: `AlreadyExists` if `fd` has a handler, `InvalidInput`
    /// for a negative fd, `Unsupported` for `Mode::Edge` on select or poll, and
    /// whatever the backend says about the fd itself (e.g. `EBADF`, `EPERM`).
    pub fn register<F>(&mut self, fd: RawFd, interest: Interest, mode: Mode, handler: F) -> io::Result<()>
    where
        F: FnMut(&mut EventLoop<D>, Event) + 'static,
    {
        check_fd(fd)?;
        if self.channel(fd).is_some() || fd == self.shared.waker.fd() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("fd {fd} is already registered with this event loop"),
            ));
        }
        check_mode(&self.dispatcher, mode)?;
        let in_backend = !interest.is_empty();
        if in_backend {
            self.dispatcher.register(fd, interest, mode)?;
        }
        let slot = fd as usize;
        if slot >= self.channels.len() {
            self.channels.resize_with(slot + 1, || None);
        }
        self.channels[slot] = Some(Channel {
            handler: Some(Box::new(handler)),
            interest,
            mode,
            in_backend,
            since_batch: self.batch,
        });
        self.registered += 1;
        trace!("[{}] registered fd {fd} for {interest:?} ({mode:?})", self.name);
        Ok(())
    }

    /// Changes the interest and mode of a registered fd; re-arms a oneshot fd.
    /// `Interest::NONE` pauses it (takes it out of the backend, keeps the handler).
    pub fn modify(&mut self, fd: RawFd, interest: Interest, mode: Mode) -> io::Result<()> {
        let Some(channel) = self.channel(fd) else {
            return Err(not_registered(fd));
        };
        // Checked here too: pausing with `Interest::NONE` never reaches the
        // backend, and would otherwise store a mode it cannot resume with.
        check_mode(&self.dispatcher, mode)?;
        let in_backend = channel.in_backend;
        match (in_backend, interest.is_empty()) {
            (true, true) => self.dispatcher.deregister(fd)?,
            (true, false) => self.dispatcher.modify(fd, interest, mode)?,
            (false, false) => self.dispatcher.register(fd, interest, mode)?,
            (false, true) => {}
        }
        let channel = self.channel_mut(fd).expect("checked above");
        channel.interest = interest;
        channel.mode = mode;
        channel.in_backend = !interest.is_empty();
        Ok(())
    }

    /// Changes only the interest of a registered fd, keeping its mode.
    pub fn set_interest(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        let mode = self.channel(fd).map_or(Mode::Level, |c| c.mode);
        self.modify(fd, interest, mode)
    }

    /// The current interest of `fd`, if it is registered.
    pub fn interest(&self, fd: RawFd) -> Option<Interest> {
        self.channel(fd).map(|c| c.interest)
    }

    /// Whether `fd` has a handler in this loop.
    pub fn is_registered(&self, fd: RawFd) -> bool {
        self.channel(fd).is_some()
    }

    /// How many fds have handlers (the loop's own waker not counted).
    pub fn registered_fds(&self) -> usize {
        self.registered
    }

    /// Stops watching `fd` and drops its handler (after it returns, if it is
    /// the one running). Safe from inside any handler, including `fd`'s own.
    ///
    /// The channel is removed even if the backend complains (for example
    /// because `fd` was closed before being deregistered); the complaint is
    /// returned so the bug can be found.
    pub fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        let Some(channel) = usize::try_from(fd).ok().and_then(|i| self.channels.get_mut(i)?.take()) else {
            return Err(not_registered(fd));
        };
        self.registered -= 1;
        trace!("[{}] deregistered fd {fd}", self.name);
        if channel.in_backend { self.dispatcher.deregister(fd) } else { Ok(()) }
    }

    /// Calls `f` once, `delay` from now.
    pub fn run_after<F>(&mut self, delay: Duration, f: F) -> TimerId
    where
        F: FnOnce(&mut EventLoop<D>) + 'static,
    {
        self.timers.insert(deadline_after(delay), TimerCallback::Once(Box::new(f)))
    }

    /// Calls `f` every `interval` (at least [`MIN_INTERVAL`]), first after one
    /// interval, until cancelled. Missed periods are skipped, not replayed.
    pub fn run_every<F>(&mut self, interval: Duration, f: F) -> TimerId
    where
        F: FnMut(&mut EventLoop<D>) + 'static,
    {
        let interval = interval.max(MIN_INTERVAL);
        self.timers.insert(deadline_after(interval), TimerCallback::Every(Box::new(f), interval))
    }

    /// Disarms a timer; returns whether it was armed. A repeating timer may
    /// cancel itself from its own callback.
    pub fn cancel(&mut self, id: TimerId) -> bool {
        match &mut self.running_timer {
            Some((running, cancelled)) if *running == id => !mem::replace(cancelled, true),
            _ => self.timers.cancel(id).is_some(),
        }
    }

    /// How many timers are armed.
    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    /// Runs `f` on this loop after the current batch of events (muduo's
    /// `queueInLoop`). The next dispatch does not sleep while tasks are queued.
    pub fn defer<F>(&mut self, f: F)
    where
        F: FnOnce(&mut EventLoop<D>) + 'static,
    {
        self.deferred.push(Box::new(f));
    }

    /// A `Send + Sync + Clone` handle for other threads.
    pub fn handle(&self) -> LoopHandle<D> {
        LoopHandle { shared: Arc::clone(&self.shared) }
    }

    /// Makes [`run`](Self::run) return after the current iteration.
    pub fn quit(&mut self) {
        self.quit = true;
    }

    /// Per-loop state of type `T` for the layers above (muduo's
    /// `EventLoop::getContext`), created with `T::default()` on first use.
    /// The TCP layer keeps each loop's table of live connections here.
    pub fn context<T: Default + 'static>(&mut self) -> &mut T {
        self.contexts
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(T::default()))
            .downcast_mut()
            .expect("contexts are keyed by their own TypeId")
    }

    /// Counters since the loop was created.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    fn quit_requested(&self) -> bool {
        self.quit || self.shared.quit.load(Ordering::Acquire)
    }

    /// Runs iterations until [`quit`](Self::quit) (here or through a handle).
    /// A quit requested before `run` makes it return at once; either way the
    /// request is consumed, so the loop can be run again.
    pub fn run(&mut self) -> io::Result<()> {
        // Refused before looking at the quit flags: a nested `run()` must not
        // consume a quit requested earlier in the same callback.
        if self.in_dispatch {
            return Err(io::Error::other("EventLoop::run called from inside one of its own callbacks"));
        }
        debug!(
            "[{}] {} event loop running ({} fds registered)",
            self.name,
            self.dispatcher.name(),
            self.registered
        );
        let result = loop {
            if self.quit_requested() {
                break Ok(());
            }
            if let Err(e) = self.run_once(None) {
                break Err(e);
            }
        };
        self.quit = false;
        self.shared.quit.store(false, Ordering::Release);
        debug!("[{}] {} event loop stopped", self.name, self.dispatcher.name());
        result
    }

    /// One iteration: wait at most `timeout` (`None`: until something
    /// happens; never past the nearest timer), then run handlers, due timers
    /// and queued tasks. Returns how many events were handed to handlers.
    pub fn run_once(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        if self.in_dispatch {
            return Err(io::Error::other("EventLoop::run_once called from inside one of its own callbacks"));
        }
        let timeout = self.next_timeout(timeout);
        let mut events = mem::take(&mut self.events);
        let before = clock::now();
        if let Some(woke) = self.last_woke.take() {
            self.stats.handle_time += before - woke;
        }
        let result = self.dispatcher.dispatch(&mut events, timeout);
        let woke = clock::now();
        self.last_woke = Some(woke);
        self.stats.dispatch_calls += 1;
        self.stats.wait_time += woke - before;
        if let Err(e) = result {
            self.events = events;
            return Err(e);
        }
        self.stats.events_reported += events.len() as u64;
        self.stats.fds_scanned += events.scanned() as u64;
        // Log-only: the guards and their arithmetic live in these two
        // functions, which `.cargo/mutants.toml` excludes by name.
        if log_enabled!(Level::Trace) {
            self.narrate_dispatch(&events, timeout, before, woke);
        }
        self.summarize(woke);

        self.in_dispatch = true;
        self.batch += 1;
        let delivered = self.deliver(&events);
        self.events = events;
        self.fire_due_timers();
        self.run_tasks();
        self.in_dispatch = false;
        Ok(delivered)
    }

    /// One trace line per dispatch: backend, timeout, what the kernel was
    /// handed and what came back (`fd 7 READABLE`). "fds in the backend"
    /// counts what the dispatcher watches, the loop's own waker included;
    /// the debug summary's "fds registered" counts fds with handlers
    /// ([`registered_fds`](Self::registered_fds)), so with one client on one
    /// listener the first says 3 and the second 2.
    fn narrate_dispatch(&self, events: &Events, timeout: Option<Duration>, before: Instant, woke: Instant) {
        let waited = woke - before;
        let timeout = timeout.map_or("none".to_owned(), |t| format!("{:.1} ms", t.as_secs_f64() * 1e3));
        let ready: Vec<String> = events.iter().map(|e| format!("fd {} {:?}", e.fd(), e.ready())).collect();
        trace!(
            "[{}] {} (timeout {timeout}, {} fds in the backend, waker included) returned {} events after {:.3} ms ({} fds scanned){}{}",
            self.name,
            self.dispatcher.name(),
            self.dispatcher.len(),
            events.len(),
            waited.as_secs_f64() * 1e3,
            events.scanned(),
            if ready.is_empty() { "" } else { ": " },
            ready.join(", ")
        );
    }

    /// Under load, `debug` gets one line per loop per second instead of a
    /// flood; nothing when debug logging is off.
    fn summarize(&mut self, now: Instant) {
        if !log_enabled!(Level::Debug) || now - self.summarized.0 < SUMMARY_INTERVAL {
            return;
        }
        let (since, before) = self.summarized;
        let s = self.stats;
        let elapsed = now - since;
        let waited = (s.wait_time - before.wait_time).as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
        debug!(
            "[{}] last {:.1} s: {} dispatches, {} events delivered, {} fds scanned, {} timers, {} tasks, {:.0}% asleep, {} fds registered",
            self.name,
            elapsed.as_secs_f64(),
            s.dispatch_calls - before.dispatch_calls,
            s.events_delivered - before.events_delivered,
            s.fds_scanned - before.fds_scanned,
            s.timers_fired - before.timers_fired,
            s.tasks_run - before.tasks_run,
            waited * 100.0,
            self.registered
        );
        self.summarized = (now, s);
    }

    /// The dispatch timeout: zero while tasks wait, else bounded by the next timer.
    fn next_timeout(&self, requested: Option<Duration>) -> Option<Duration> {
        if !self.deferred.is_empty() {
            return Some(Duration::ZERO);
        }
        let until_timer = self.timers.next_deadline().map(|d| d.saturating_duration_since(clock::now()));
        match (requested, until_timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn deliver(&mut self, events: &Events) -> usize {
        let mut delivered = 0;
        for event in events {
            let fd = event.fd();
            if fd == self.shared.waker.fd() {
                self.shared.waker.drain();
                continue;
            }
            let batch = self.batch;
            let Some(channel) = self.channel_mut(fd) else {
                trace!("dropping event {:?} for fd {fd}: not registered", event.ready());
                continue;
            };
            // Registered during this batch (maybe a reused fd number) or paused:
            // the event is not for this channel. (A fired oneshot fd is not
            // reported again: the backend disarms it, so the loop need not.)
            if channel.since_batch == batch || !channel.in_backend {
                continue;
            }
            // A handler earlier in the batch may have narrowed the interest.
            let ready = event.ready().masked_by(channel.interest);
            if ready.is_empty() {
                continue;
            }
            let Some(mut handler) = channel.handler.take() else { continue };
            handler(self, Event::new(fd, ready));
            delivered += 1;
            // Put it back unless the handler deregistered itself (the slot is then
            // empty, or holds a new channel with its own handler).
            if let Some(channel) = self.channel_mut(fd)
                && channel.handler.is_none()
            {
                channel.handler = Some(handler);
            }
        }
        self.stats.events_delivered += delivered as u64;
        delivered
    }

    fn fire_due_timers(&mut self) {
        if self.timers.is_empty() {
            return;
        }
        let now = clock::now();
        while let Some((id, deadline, callback)) = self.timers.pop_due(now) {
            self.stats.timers_fired += 1;
            trace!("[{}] timer {} fired", self.name, id.0);
            self.running_timer = Some((id, false));
            match callback {
                TimerCallback::Once(f) => f(self),
                TimerCallback::Every(mut f, interval) => {
                    f(self);
                    if !matches!(self.running_timer, Some((_, true))) {
                        // Keep the period, but never schedule into the past (no replay burst).
                        let mut next = deadline + interval;
                        if next <= now {
                            next = now + interval;
                        }
                        self.timers.reinsert(id, next, TimerCallback::Every(f, interval));
                    }
                }
            }
            self.running_timer = None;
        }
    }

    fn run_tasks(&mut self) {
        // Local tasks queued while these run wait for the next iteration (which
        // will not sleep), so a task that re-queues itself cannot starve I/O.
        let local = mem::take(&mut self.deferred);
        self.stats.tasks_run += local.len() as u64;
        for task in local {
            task(self);
        }
        // Clear the flag before taking the queue: a task pushed after this
        // point wakes us again instead of waiting for some unrelated event.
        // A swap (not a store) so we also see a `quit` set by whoever set the
        // flag. Pushers set it after queueing, so if it was clear, the queue
        // holds nothing new and the lock can be skipped.
        if !self.shared.wake_pending.swap(false, Ordering::AcqRel) {
            return;
        }
        let remote = mem::take(&mut self.shared.queue.lock().unwrap_or_else(|e| e.into_inner()).tasks);
        trace!("[{}] woken: {} tasks from other threads", self.name, remote.len());
        self.stats.tasks_run += remote.len() as u64;
        for task in remote {
            task(self);
        }
    }
}

/// `NotFound` for an fd without a handler; `InvalidInput` for a negative one
/// (as `register` and the backends say).
fn not_registered(fd: RawFd) -> io::Error {
    match check_fd(fd) {
        Err(negative) => negative,
        Ok(()) => {
            io::Error::new(io::ErrorKind::NotFound, format!("fd {fd} is not registered with this event loop"))
        }
    }
}

fn deadline_after(delay: Duration) -> Instant {
    let now = clock::now();
    now.checked_add(delay).unwrap_or(now + Duration::from_secs(86_400 * 365 * 100))
}

impl EventLoop<AnyDispatcher> {
    /// A loop on the backend called `name`, chosen at run time (see
    /// [`AnyDispatcher::by_name`] for the names and errors).
    pub fn with_backend(name: &str) -> io::Result<Self> {
        Self::with_dispatcher(AnyDispatcher::by_name(name)?)
    }
}

impl<D: Dispatcher> Drop for EventLoop<D> {
    fn drop(&mut self) {
        // Tasks queued for a loop that will never run again are dropped now,
        // and later `run_in_loop` calls fail instead of queuing forever.
        let abandoned = {
            let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.open = false;
            mem::take(&mut queue.tasks)
        };
        drop(abandoned);
        debug!(
            "[{}] {} event loop dropped with {} fds registered",
            self.name,
            self.dispatcher.name(),
            self.registered
        );
    }
}

impl<D: Dispatcher> fmt::Debug for EventLoop<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoop")
            .field("dispatcher", &self.dispatcher.name())
            .field("registered_fds", &self.registered)
            .field("pending_timers", &self.timers.len())
            .field("stats", &self.stats)
            .finish()
    }
}
