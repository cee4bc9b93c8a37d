//! One event loop per thread: muduo's `EventLoopThread` and
//! `EventLoopThreadPool`.
//!
//! This module teaches how a reactor scales past one core without sharing
//! its data structures: each thread creates, owns and runs its own
//! [`EventLoop`] (so nothing in it needs a lock), and other threads reach it
//! only through its [`LoopHandle`], by queueing closures. A server's main
//! loop accepts and hands each new connection to the next loop, round-robin.

use std::io;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use log::{debug, error};

use crate::dispatcher::{AnyDispatcher, Dispatcher};
use crate::event_loop::{COMMON_SIGNALS, EventLoop, LoopHandle};
use crate::sys;

/// A thread running its own [`EventLoop`]; stopped and joined on drop.
///
/// The thread blocks [`COMMON_SIGNALS`] before creating its loop (see
/// [`signal`](crate::event_loop::signal)).
#[derive(Debug)]
pub struct EventLoopThread<D: Dispatcher + 'static = AnyDispatcher> {
    handle: LoopHandle<D>,
    thread: Option<JoinHandle<()>>,
}

impl<D: Dispatcher + 'static> EventLoopThread<D> {
    /// Spawns a thread named `name`, creates a loop on it and runs it.
    /// Returns once the loop exists (an error creating it is returned here).
    pub fn spawn(name: String) -> io::Result<Self> {
        Self::spawn_with(name, EventLoop::<D>::new)
    }

    /// Like [`spawn`](Self::spawn), with the loop around `dispatcher` (made
    /// on this thread, e.g. with [`EventLoop::fresh_dispatcher`], so a
    /// backend chosen at run time is the same on every loop).
    pub fn spawn_on(name: String, dispatcher: D) -> io::Result<Self> {
        Self::spawn_with(name, move || EventLoop::with_dispatcher(dispatcher))
    }

    fn spawn_with<F>(name: String, make: F) -> io::Result<Self>
    where
        F: FnOnce() -> io::Result<EventLoop<D>> + Send + 'static,
    {
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = thread::Builder::new().name(name.clone()).spawn(move || {
            // So a process-directed signal reaches the loop that asked for it
            // (by signalfd, or by a handler on another thread), never this one.
            if let Err(e) = sys::block_signals(&COMMON_SIGNALS) {
                error!("event loop thread {name}: could not block signals: {e}");
            }
            let mut ev = match make() {
                Ok(ev) => ev,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(ev.handle()));
            if let Err(e) = ev.run() {
                error!("event loop thread {name} failed: {e}");
            }
        })?;
        match ready_rx.recv() {
            Ok(Ok(handle)) => Ok(EventLoopThread { handle, thread: Some(thread) }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(io::Error::other("event loop thread exited before its loop was created")),
        }
    }

    /// The handle of the loop running on this thread.
    pub fn handle(&self) -> &LoopHandle<D> {
        &self.handle
    }

    /// Asks the loop to quit and waits for the thread to end. Idempotent.
    pub fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.handle.quit();
            let name = thread.thread().name().unwrap_or("?").to_owned();
            if thread.join().is_err() {
                error!("event loop thread {name} panicked");
            } else {
                debug!("event loop thread {name} joined");
            }
        }
    }
}

impl<D: Dispatcher + 'static> Drop for EventLoopThread<D> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// N event loop threads, handed out round-robin.
#[derive(Debug)]
pub struct EventLoopThreadPool<D: Dispatcher + 'static = AnyDispatcher> {
    threads: Vec<EventLoopThread<D>>,
    next: usize,
}

impl<D: Dispatcher + 'static> EventLoopThreadPool<D> {
    /// Starts `count` threads named `{name}-0`, `{name}-1`, ... (`count` may be 0).
    pub fn new(name: &str, count: usize) -> io::Result<Self> {
        let threads =
            (0..count).map(|i| EventLoopThread::spawn(format!("{name}-{i}"))).collect::<io::Result<_>>()?;
        Ok(EventLoopThreadPool { threads, next: 0 })
    }

    /// Starts `count` threads whose loops use dispatchers made by `make`
    /// (on this thread): the way to give every sub-loop the backend the main
    /// loop was given at run time.
    pub fn with_dispatchers(
        name: &str,
        count: usize,
        mut make: impl FnMut() -> io::Result<D>,
    ) -> io::Result<Self> {
        let threads = (0..count)
            .map(|i| EventLoopThread::spawn_on(format!("{name}-{i}"), make()?))
            .collect::<io::Result<_>>()?;
        Ok(EventLoopThreadPool { threads, next: 0 })
    }

    /// How many threads the pool has.
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    /// Whether the pool has no threads (everything then runs on the caller's loop).
    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }

    /// The next loop in round-robin order, or `None` if the pool is empty.
    pub fn next_loop(&mut self) -> Option<&LoopHandle<D>> {
        let thread = self.threads.get(self.next)?;
        self.next = (self.next + 1) % self.threads.len();
        Some(thread.handle())
    }

    /// Handles of all loops, in thread order.
    pub fn handles(&self) -> Vec<LoopHandle<D>> {
        self.threads.iter().map(|t| t.handle().clone()).collect()
    }

    /// Quits and joins every thread.
    pub fn stop(&mut self) {
        self.threads.iter_mut().for_each(EventLoopThread::stop);
    }
}

/// The other kind of pool: worker threads that take jobs from one shared
/// queue, the course's "thread pool" (a mutex around a `VecDeque`, and
/// condition variables the threads sleep on).
///
/// Unlike [`EventLoopThreadPool`] (each thread owns its connections and
/// runs its own loop), a worker here owns nothing: any worker may take any
/// job, so jobs must be independent. The queue is bounded (the classic
/// bounded buffer): [`pop`](Self::pop) sleeps while it is empty,
/// [`push`](Self::push) while it is full, each in `Condvar::wait`, which
/// releases the mutex while asleep and takes it again before returning (in
/// a loop: a wake-up may find the state changed by another thread, or be
/// spurious). [`try_push`](Self::try_push) refuses instead of sleeping, for
/// a producer that must not block (an event loop: answer 503, drop, retry
/// later). [`close`](Self::close) wakes everyone; workers return `None`
/// once the queue is drained.
#[derive(Debug)]
pub struct BlockingQueue<T> {
    state: std::sync::Mutex<QueueState<T>>,
    /// Signalled when a job arrives or the queue closes.
    not_empty: std::sync::Condvar,
    /// Signalled when a job leaves or the queue closes.
    not_full: std::sync::Condvar,
}

#[derive(Debug)]
struct QueueState<T> {
    jobs: std::collections::VecDeque<T>,
    capacity: usize,
    closed: bool,
}

impl<T> BlockingQueue<T> {
    /// An empty, open queue that holds at most `capacity` jobs (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        BlockingQueue {
            state: std::sync::Mutex::new(QueueState {
                jobs: std::collections::VecDeque::with_capacity(capacity.min(1024)),
                capacity,
                closed: false,
            }),
            not_empty: std::sync::Condvar::new(),
            not_full: std::sync::Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a job, sleeping while the queue is full, and wakes one
    /// waiting worker. Gives the job back once the queue is closed.
    pub fn push(&self, job: T) -> Result<(), T> {
        let mut state = self.lock();
        while !state.closed && state.jobs.len() >= state.capacity {
            state = self.not_full.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        if state.closed {
            return Err(job);
        }
        state.jobs.push_back(job);
        drop(state);
        self.not_empty.notify_one();
        Ok(())
    }

    /// Appends a job if there is room; gives it back if the queue is full
    /// or closed (it never sleeps).
    pub fn try_push(&self, job: T) -> Result<(), T> {
        let mut state = self.lock();
        if state.closed || state.jobs.len() >= state.capacity {
            return Err(job);
        }
        state.jobs.push_back(job);
        drop(state);
        self.not_empty.notify_one();
        Ok(())
    }

    /// Takes the oldest job, sleeping while the queue is empty; `None` once
    /// it is closed and empty.
    pub fn pop(&self) -> Option<T> {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.jobs.pop_front() {
                drop(state);
                self.not_full.notify_one();
                return Some(job);
            }
            if state.closed {
                return None;
            }
            state = self.not_empty.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Jobs waiting.
    pub fn len(&self) -> usize {
        self.lock().jobs.len()
    }

    /// Whether no job is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Refuses new jobs and wakes every sleeper; the queued jobs are still
    /// handed out.
    pub fn close(&self) {
        self.lock().closed = true;
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }
}
