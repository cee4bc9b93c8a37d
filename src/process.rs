//! Multi-process mode: a master process and N forked workers ([`Master`]).
//!
//! This module teaches the course's process model and the layout nginx uses:
//! one *master* that owns the listening socket and manages processes, and N
//! *workers* that each run their own event loop and serve clients.
//!
//! # The layout
//!
//! The master binds and listens (the caller hands [`Master::new`] a bound
//! [`Listener`], TCP or Unix, or a std `TcpListener`), then `fork(2)`s the workers. A forked child inherits every
//! fd of its parent, the listener included: all workers hold the *same*
//! listening socket and each registers it in its own loop, so the kernel
//! hands each new connection to whichever worker's `accept` takes it first
//! (the herd example measures how many wake up for it). The master never
//! accepts; it keeps the listener only to give it to the workers it restarts.
//! A crash in one worker costs that worker's connections, not the service.
//!
//! # Fork before any thread exists
//!
//! `fork` copies only the calling thread. Any lock another thread held at
//! that instant (the allocator's, the logger's, a `Mutex` in the program)
//! stays locked forever in the child, whose first `malloc` may then hang.
//! So the master must be single-threaded when it forks, at start and at every
//! restart: [`Master::run`] refuses with `Unsupported` if the process has
//! more than one thread, and the master itself never starts one. Workers are
//! free to start threads (sub-loops, `ServerBuilder::threads`): nothing
//! forks them.
//!
//! # Zombies and SIGCHLD
//!
//! A child that exits stays a *zombie* (a pid and an exit status, no memory)
//! until its parent collects the status with `waitpid`; the kernel tells the
//! parent with SIGCHLD. The master watches SIGCHLD, SIGTERM and SIGINT as
//! ordinary loop events ([`EventLoop::on_signal`]) and, after each wake-up,
//! reaps each of *its* workers with `waitpid(pid, WNOHANG)` (never
//! `waitpid(-1)`, which would steal the statuses of children the program
//! started for other reasons). Reaping every worker on every wake-up makes
//! merged SIGCHLDs harmless: two deaths reported by one signal are both seen.
//!
//! # Restarts, and not fork-bombing
//!
//! A worker that exits while the master is running (killed, crashed, or
//! returned) is restarted. One that dies within [`Master::quick_death`] of
//! starting counts as a *quick* death: it is restarted after a back-off that
//! doubles each time, and after [`Master::max_quick_deaths`] quick deaths in a
//! row in one slot the master gives up, stops the other workers and returns
//! an error (a worker that cannot start will not start on the next try
//! either). A worker that lived longer resets its slot's count.
//!
//! # Stopping
//!
//! SIGTERM or SIGINT to the master: it forwards SIGTERM to every worker,
//! waits up to [`Master::grace`] for them to exit, sends SIGKILL to what is
//! left, and returns once all are reaped: no orphan, no zombie. A second
//! signal skips the grace period. Each worker is also given a parent-death
//! signal (SIGTERM, Linux), so even a master killed by SIGKILL leaves no
//! worker behind.
//!
//! # What a worker starts from
//!
//! The child returns from `fork` inside [`Master::run`] and never returns
//! from it: it runs the worker function and exits with its result (0, 1 for
//! an error, 101 for a panic). The master's loop (a [`PollDispatcher`] loop,
//! so no epoll or io_uring instance is shared with the children) is copied
//! into the child but never used there; the worker builds a fresh loop. A
//! signal mask survives `fork`: SIGCHLD, which the master blocked for its
//! signalfd, is restored in the child, but SIGTERM and SIGINT stay
//! **blocked**. A SIGTERM that arrives between the fork and the moment the
//! worker's loop watches it (the master forwards one as soon as it stops,
//! and Ctrl-C reaches the whole process group) then waits, pending, instead
//! of killing the worker with its default action;
//! [`WorkerContext::stop_on_sigterm`] makes it a loop event that ends the
//! worker's loop. A worker that wants the default action unblocks them
//! ([`sys::unblock_signals`]).

use std::cell::RefCell;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitStatus;
use std::rc::Rc;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};

use crate::dispatcher::{Dispatcher, PollDispatcher};
use crate::event_loop::{EventLoop, SignalId, SignalSource};
use crate::net::Listener;
use crate::sys::{self, Forked};

/// The signals the master handles in its loop.
const MASTER_SIGNALS: [i32; 3] = [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT];

/// The signals that stop a worker; they reach it blocked (see [`WorkerContext::stop_on_sigterm`]).
const STOP_SIGNALS: [i32; 2] = [libc::SIGTERM, libc::SIGINT];

/// What a worker function is given: its index and the shared listener.
#[derive(Debug)]
pub struct WorkerContext {
    index: usize,
    listener: Listener,
    master: i32,
}

impl WorkerContext {
    /// This worker's slot, `0..workers`; a restarted worker keeps its slot's index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The master's pid.
    pub fn master_pid(&self) -> i32 {
        self.master
    }

    /// The listening socket every worker shares (inherited across `fork`).
    pub fn listener(&self) -> &Listener {
        &self.listener
    }

    /// The listener itself, e.g. for `ServerBuilder::listener`.
    pub fn into_listener(self) -> Listener {
        self.listener
    }

    /// Makes SIGTERM and SIGINT quit `ev`'s loop ([`EventLoop::quit`]), so
    /// the worker can stop its server gracefully and return `Ok`: the master
    /// forwards SIGTERM to stop it, and a terminal's Ctrl-C sends SIGINT to
    /// the whole process group, workers included.
    pub fn stop_on_sigterm<D: Dispatcher + 'static>(
        &self,
        ev: &mut EventLoop<D>,
    ) -> io::Result<[SignalId; 2]> {
        let index = self.index;
        let term = ev.on_signal(libc::SIGTERM, move |ev, info| {
            debug!("worker {index}: SIGTERM (from {:?}), quitting", info.pid);
            ev.quit();
        })?;
        let int = ev.on_signal(libc::SIGINT, move |ev, _| {
            debug!("worker {index}: SIGINT, quitting");
            ev.quit();
        })?;
        Ok([term, int])
    }
}

/// A master process that forks and supervises N workers sharing one
/// listener (see the [module docs](self)).
///
/// ```no_run
/// use muxloop::process::Master;
/// use muxloop::{Callbacks, EventLoop, Server};
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:9000")?;
/// let addr = listener.local_addr()?;
/// Master::new(listener, 4).run(|ctx| {
///     let mut ev: EventLoop = EventLoop::new()?;
///     ctx.stop_on_sigterm(&mut ev)?;
///     let echo = Callbacks::new().on_message(|ev, conn, input| {
///         let _ = conn.send(ev, input.peek());
///         input.consume_all();
///     });
///     let server = Server::builder(addr, echo).listener(ctx.into_listener()).start(&mut ev)?;
///     ev.run()?;
///     server.stop(&mut ev, std::time::Duration::from_secs(5))?;
///     Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Master {
    /// Taken by each forked child; the master's copy stays for restarts.
    listener: Option<Listener>,
    workers: usize,
    grace: Duration,
    quick_death: Duration,
    max_quick_deaths: u32,
    backoff: (Duration, Duration),
}

/// One worker slot.
#[derive(Debug)]
struct Slot {
    pid: Option<libc::pid_t>,
    started: Instant,
    quick_deaths: u32,
    /// When to fork this slot's next worker.
    restart_at: Option<Instant>,
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Running,
    /// SIGTERM sent; SIGKILL at the deadline.
    Stopping {
        kill_at: Instant,
    },
    /// SIGKILL sent: only reaping is left.
    Killed,
}

/// What the signal handlers saw since the master last looked.
#[derive(Debug, Default)]
struct Seen {
    stop_signals: u64,
}

impl Master {
    /// A master for `workers` processes serving `listener` (bound and
    /// listening: a [`Listener`], or a std `TcpListener` or `UnixListener`).
    /// A Unix listener's socket file is removed when the master returns. Defaults: grace 5 s, a death within 1 s of starting is
    /// quick, give up after 5 quick deaths in a row, back-off 100 ms doubling
    /// up to 5 s.
    pub fn new(listener: impl Into<Listener>, workers: usize) -> Master {
        Master {
            listener: Some(listener.into()),
            workers,
            grace: Duration::from_secs(5),
            quick_death: Duration::from_secs(1),
            max_quick_deaths: 5,
            backoff: (Duration::from_millis(100), Duration::from_secs(5)),
        }
    }

    /// How long workers get to exit after SIGTERM before SIGKILL.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// A worker that dies sooner than this after starting died *quickly*
    /// (at least 100 ms: a shorter window would let a crashing worker be
    /// re-forked without back-off as fast as it can die).
    pub fn quick_death(mut self, within: Duration) -> Self {
        self.quick_death = within.max(Duration::from_millis(100));
        self
    }

    /// Quick deaths in a row (in one slot) after which [`run`](Self::run)
    /// gives up with an error (at least 1).
    pub fn max_quick_deaths(mut self, k: u32) -> Self {
        self.max_quick_deaths = k.max(1);
        self
    }

    /// The delay before restarting a quickly dead worker: `first`, doubling
    /// with each quick death in a row, at most `max`.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = (first, max.max(first));
        self
    }

    /// Forks the workers, each running `worker(ctx)` in its own process, and
    /// supervises them until SIGTERM/SIGINT (`Ok` once all have exited) or
    /// until a slot exceeds the quick-death limit (an error of kind `Other`,
    /// after stopping the other workers). Returns only in the master.
    ///
    /// Errors before any fork: `InvalidInput` for zero workers,
    /// `Unsupported` if the process has more than one thread (see "Fork
    /// before any thread exists" in the [module docs](self)).
    pub fn run<F>(self, worker: F) -> io::Result<()>
    where
        F: Fn(WorkerContext) -> io::Result<()>,
    {
        if self.workers == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a master needs at least one worker"));
        }
        sys::check_single_threaded()?;
        let was_blocked: Vec<bool> =
            MASTER_SIGNALS.iter().map(|&s| sys::is_signal_blocked(s)).collect::<io::Result<_>>()?;
        let mut ev = EventLoop::<PollDispatcher>::new()?;
        // Not the self-pipe: its process-wide handler state would be copied
        // into workers and make their own `on_signal` refuse these signals.
        ev.set_signal_source(SignalSource::Signalfd)?;
        let seen = Rc::new(RefCell::new(Seen::default()));
        // Watched before the first fork, so no child's SIGCHLD is missed.
        ev.on_signal(libc::SIGCHLD, |_, _| {})?;
        for signal in [libc::SIGTERM, libc::SIGINT] {
            let seen = Rc::clone(&seen);
            ev.on_signal(signal, move |_, info| {
                debug!("master: signal {} x{} from {:?}", info.signal, info.count, info.pid);
                seen.borrow_mut().stop_signals += info.count;
            })?;
        }
        let mut supervisor = Supervisor {
            master: self,
            worker: &worker,
            was_blocked,
            master_pid: sys::getpid(),
            slots: Vec::new(),
            phase: Phase::Running,
            failure: None,
        };
        supervisor.supervise(&mut ev, &seen)
    }
}

/// The master's running state.
struct Supervisor<'a, F> {
    master: Master,
    worker: &'a F,
    /// For each of [`MASTER_SIGNALS`], whether it was blocked before the master's loop blocked it.
    was_blocked: Vec<bool>,
    master_pid: i32,
    slots: Vec<Slot>,
    phase: Phase,
    /// Why the master is giving up, if it is.
    failure: Option<io::Error>,
}

impl<F> Supervisor<'_, F>
where
    F: Fn(WorkerContext) -> io::Result<()>,
{
    fn supervise(&mut self, ev: &mut EventLoop<PollDispatcher>, seen: &Rc<RefCell<Seen>>) -> io::Result<()> {
        info!("master {}: starting {} workers", self.master_pid, self.master.workers);
        let now = Instant::now();
        for _ in 0..self.master.workers {
            self.slots.push(Slot { pid: None, started: now, quick_deaths: 0, restart_at: Some(now) });
        }
        loop {
            self.start_due_workers();
            if self.phase != Phase::Running && self.live() == 0 {
                break;
            }
            let timeout = self.next_deadline().map(|at| at.saturating_duration_since(Instant::now()));
            if let Err(e) = ev.run_once(timeout) {
                // Without its loop the master cannot supervise: leave nothing behind.
                error!("master: event loop failed: {e}; killing the workers");
                self.kill_and_reap_all();
                return Err(e);
            }
            let stops = std::mem::take(&mut seen.borrow_mut().stop_signals);
            if stops > 0 {
                self.on_stop_signal();
            }
            self.reap();
            if let Phase::Stopping { kill_at } = self.phase
                && Instant::now() >= kill_at
            {
                warn!("master: grace period over, killing {} worker(s)", self.live());
                self.signal_all(libc::SIGKILL);
                self.phase = Phase::Killed;
            }
        }
        info!("master {}: all workers have exited", self.master_pid);
        match self.failure.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn live(&self) -> usize {
        self.slots.iter().filter(|s| s.pid.is_some()).count()
    }

    /// The nearest restart or kill deadline.
    fn next_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Running => self.slots.iter().filter_map(|s| s.restart_at).min(),
            Phase::Stopping { kill_at } => Some(kill_at),
            Phase::Killed => None,
        }
    }

    fn on_stop_signal(&mut self) {
        match self.phase {
            Phase::Running => self.begin_stop(),
            Phase::Stopping { .. } => {
                info!("master: second stop signal, killing {} worker(s) now", self.live());
                self.signal_all(libc::SIGKILL);
                self.phase = Phase::Killed;
            }
            Phase::Killed => {}
        }
    }

    fn begin_stop(&mut self) {
        info!("master: stopping {} worker(s) (grace {:?})", self.live(), self.master.grace);
        for slot in &mut self.slots {
            slot.restart_at = None;
        }
        self.signal_all(libc::SIGTERM);
        self.phase = Phase::Stopping { kill_at: Instant::now() + self.master.grace };
    }

    fn signal_all(&self, signal: i32) {
        for pid in self.slots.iter().filter_map(|s| s.pid) {
            // ESRCH: it exited and was reaped meanwhile; nothing to do.
            if let Err(e) = sys::kill(pid, signal)
                && e.raw_os_error() != Some(libc::ESRCH)
            {
                warn!("master: signal {signal} to worker {pid}: {e}");
            }
        }
    }

    /// Collects every exited worker; schedules restarts or gives up.
    fn reap(&mut self) {
        for index in 0..self.slots.len() {
            let Some(pid) = self.slots[index].pid else { continue };
            let status = match sys::waitpid_child_nohang(pid) {
                Ok(None) => continue,
                Ok(Some(status)) => Some(status),
                // Someone else reaped it (a `waitpid(-1)` elsewhere): it is gone all the same.
                Err(e) if e.raw_os_error() == Some(libc::ECHILD) => None,
                Err(e) => {
                    warn!("master: waitpid({pid}): {e}");
                    continue;
                }
            };
            self.slots[index].pid = None;
            self.on_exit(index, pid, status);
        }
    }

    fn on_exit(&mut self, index: usize, pid: libc::pid_t, status: Option<ExitStatus>) {
        let shown = status.map_or_else(|| "status unknown".to_owned(), |s| s.to_string());
        if self.phase != Phase::Running {
            info!("worker {index} (pid {pid}) stopped: {shown}");
            return;
        }
        let slot = &mut self.slots[index];
        let lived = slot.started.elapsed();
        let now = Instant::now();
        if lived < self.master.quick_death {
            slot.quick_deaths += 1;
            if slot.quick_deaths >= self.master.max_quick_deaths {
                error!("worker {index} (pid {pid}) died {lived:?} after starting ({shown}); giving up");
                self.failure = Some(io::Error::other(format!(
                    "worker {index} died within {:?} of starting {} times in a row (last: {shown}); giving up",
                    self.master.quick_death, slot.quick_deaths
                )));
                self.begin_stop();
                return;
            }
            let (first, max) = self.master.backoff;
            let delay = first.saturating_mul(1 << (slot.quick_deaths - 1).min(20)).min(max);
            warn!(
                "worker {index} (pid {pid}) died {lived:?} after starting ({shown}); restart {} in {delay:?}",
                slot.quick_deaths
            );
            slot.restart_at = Some(now + delay);
        } else {
            warn!("worker {index} (pid {pid}) died unexpectedly ({shown}); restarting it");
            slot.quick_deaths = 0;
            slot.restart_at = Some(now);
        }
    }

    /// Forks the workers whose restart time has come.
    fn start_due_workers(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        let now = Instant::now();
        for index in 0..self.slots.len() {
            if self.slots[index].restart_at.is_some_and(|at| at <= now) {
                self.slots[index].restart_at = None;
                if let Err(e) = self.spawn(index) {
                    // EAGAIN (process limit) or ENOMEM: try again later.
                    warn!("master: cannot fork worker {index}: {e}; retrying");
                    self.slots[index].restart_at = Some(now + self.master.backoff.1);
                }
            }
        }
    }

    /// Last resort: SIGKILL every worker and reap it (bounded: SIGKILL cannot be refused).
    fn kill_and_reap_all(&mut self) {
        self.signal_all(libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.live() > 0 && Instant::now() < deadline {
            self.phase = Phase::Killed;
            self.reap();
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn spawn(&mut self, index: usize) -> io::Result<()> {
        // Output buffered in this process would otherwise be written twice.
        let _ = io::Write::flush(&mut io::stdout());
        // sys::fork refuses if a thread appeared (none can: the master starts none).
        match sys::fork()? {
            Forked::Parent(pid) => {
                info!("worker {index} started (pid {pid})");
                let slot = &mut self.slots[index];
                slot.pid = Some(pid);
                slot.started = Instant::now();
                Ok(())
            }
            Forked::Child => std::process::exit(self.child(index)),
        }
    }

    /// The worker's side of `fork`: reset the signal state, run, return the exit code.
    fn child(&mut self, index: usize) -> i32 {
        if let Err(e) = self.reset_child() {
            error!("worker {index}: cannot reset the signal state inherited from the master: {e}");
            return 1;
        }
        // The inherited fd itself: the worker holds one listener fd, not two.
        // The socket file is the master's to remove, not the worker's.
        let Some(listener) = self.master.listener.take().map(Listener::without_socket_file) else {
            error!("worker {index}: the listener is gone");
            return 1;
        };
        let ctx = WorkerContext { index, listener, master: self.master_pid };
        // A panic must not unwind into the master's code in this process.
        match catch_unwind(AssertUnwindSafe(|| (self.worker)(ctx))) {
            Ok(Ok(())) => {
                debug!("worker {index} ({}): done", sys::getpid());
                0
            }
            Ok(Err(e)) => {
                error!("worker {index} ({}): {e}", sys::getpid());
                1
            }
            Err(_) => 101,
        }
    }

    fn reset_child(&self) -> io::Result<()> {
        // SIGTERM and SIGINT stay blocked: one that arrives before the
        // worker's loop watches it must wait for the loop, not kill the worker.
        let unblock: Vec<i32> = MASTER_SIGNALS
            .iter()
            .zip(&self.was_blocked)
            .filter(|(s, was)| !**was && !STOP_SIGNALS.contains(s))
            .map(|(s, _)| *s)
            .collect();
        sys::unblock_signals(&unblock)?;
        if cfg!(muxloop_linux) {
            sys::set_parent_death_signal(libc::SIGTERM)?;
            // The master may have died before that took effect.
            if sys::getppid() != self.master_pid {
                return Err(io::Error::other("the master exited while this worker was starting"));
            }
        }
        Ok(())
    }
}
