//! libevent's test/bench.c workload, shared by the `backends` example and
//! the `dispatch` bench: N socket pairs registered for reading; A tokens
//! (single bytes) are written into evenly spaced pairs, and every read passes
//! its token to the next pair until W writes have happened. Only that
//! passing is timed; creating and registering the pairs is not.

use std::cell::Cell;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use muxloop::{Dispatcher, EventLoop, Interest, Mode, Stats, TimerId, sys};

/// Per-run counters shared by all handlers (one thread, so `Cell` is enough).
#[derive(Default)]
struct Counters {
    reads: Cell<usize>,
    fired: Cell<usize>,
    writes_left: Cell<usize>,
}

/// N registered socket pairs on one `EventLoop<D>`.
pub struct Ring<D: Dispatcher + 'static> {
    ev: EventLoop<D>,
    readers: Rc<Vec<OwnedFd>>,
    writers: Rc<Vec<OwnedFd>>,
    counters: Rc<Counters>,
}

// recv/send rather than read/write, as bench.c does: on a socket they skip the VFS layer.
fn send_token(fd: BorrowedFd<'_>) -> bool {
    sys::send(fd, b"e").is_ok_and(|n| n == 1)
}

impl<D: Dispatcher + 'static> Ring<D> {
    /// Creates and registers `n` pairs. With `timers`, every read also
    /// re-arms a per-pair timeout, as libev's bench does with `-t`.
    pub fn new(n: usize, timers: bool) -> io::Result<Ring<D>> {
        Ring::on(EventLoop::<D>::new()?, n, timers)
    }

    /// Like [`new`](Self::new), on a loop the caller made (e.g. with a backend chosen at run time).
    pub fn on(mut ev: EventLoop<D>, n: usize, timers: bool) -> io::Result<Ring<D>> {
        let wanted = (2 * n + 64) as u64;
        if sys::nofile_limit()?.0 < wanted && sys::set_nofile_limit(wanted)? < wanted {
            return Err(io::Error::other(format!("{n} pairs need {wanted} fds; the hard limit is lower")));
        }
        let (readers, writers): (Vec<_>, Vec<_>) =
            (0..n).map(|_| sys::socketpair()).collect::<io::Result<Vec<_>>>()?.into_iter().unzip();
        let (readers, writers) = (Rc::new(readers), Rc::new(writers));
        let counters = Rc::new(Counters::default());
        for (i, reader) in readers.iter().enumerate() {
            let (counters, readers, writers) =
                (Rc::clone(&counters), Rc::clone(&readers), Rc::clone(&writers));
            let timer: Option<Rc<Cell<TimerId>>> =
                timers.then(|| Rc::new(Cell::new(ev.run_after(timeout_for(i), |_| {}))));
            ev.register(reader.as_raw_fd(), Interest::READABLE, Mode::Level, move |ev, _| {
                if let Ok(1) = sys::recv(readers[i].as_fd(), &mut [0u8; 1]) {
                    counters.reads.set(counters.reads.get() + 1);
                }
                if let Some(timer) = &timer {
                    ev.cancel(timer.get());
                    timer.set(ev.run_after(timeout_for(i), |_| {}));
                }
                if counters.writes_left.get() > 0 && send_token(writers[(i + 1) % n].as_fd()) {
                    counters.writes_left.set(counters.writes_left.get() - 1);
                    counters.fired.set(counters.fired.get() + 1);
                }
            })?;
        }
        Ok(Ring { ev, readers, writers, counters })
    }

    /// One run: `active` tokens, `writes` passes. Returns the time it took.
    pub fn run(&mut self, active: usize, writes: usize) -> io::Result<Duration> {
        let n = self.readers.len();
        let spacing = (n / active.max(1)).max(1);
        let counters = &self.counters;
        counters.reads.set(0);
        counters.fired.set(0);
        counters.writes_left.set(writes);
        for a in 0..active.min(n) {
            if send_token(self.writers[a * spacing].as_fd()) {
                counters.fired.set(counters.fired.get() + 1);
            }
        }
        let start = Instant::now();
        // Non-blocking dispatches, as bench.c does (EVLOOP_NONBLOCK): a token is
        // always in flight, and with a zero timeout the kernel skips setting up
        // wait queues, so the comparison with libevent is like for like.
        let mut turns = 0u32;
        while counters.reads.get() != counters.fired.get() {
            self.ev.run_once(Some(Duration::ZERO))?;
            turns = turns.wrapping_add(1);
            if turns.is_multiple_of(4096) && start.elapsed() > Duration::from_secs(10) {
                return Err(io::Error::other(format!(
                    "{}: a token got lost (n={n})",
                    self.ev.dispatcher_name()
                )));
            }
        }
        Ok(start.elapsed())
    }

    /// The loop's counters.
    pub fn stats(&self) -> Stats {
        self.ev.stats()
    }
}

impl<D: Dispatcher + 'static> Drop for Ring<D> {
    fn drop(&mut self) {
        for reader in self.readers.iter() {
            let _ = self.ev.deregister(reader.as_raw_fd());
        }
    }
}

/// libev uses 10-11 s random timeouts; a fixed spread does the same job.
fn timeout_for(i: usize) -> Duration {
    Duration::from_millis(10_000 + (i as u64 * 7919) % 1000)
}
