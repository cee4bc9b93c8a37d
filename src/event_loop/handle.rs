//! `LoopHandle`: how other threads reach a loop (muduo's `runInLoop`).
//!
//! A loop is not `Send`; what other threads may touch is this shared part:
//! a locked task queue and the waker. Queueing a task writes the waker only
//! if no wake-up is already in flight, so a burst of tasks costs one write.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use log::warn;

use super::waker::Waker;
use super::{EventLoop, RemoteTask};
use crate::dispatcher::{AnyDispatcher, Dispatcher};

/// Cross-thread task queue; `open` turns false when the loop is dropped.
pub(super) struct TaskQueue<D: Dispatcher> {
    pub(super) tasks: Vec<RemoteTask<D>>,
    pub(super) open: bool,
}

/// The part of a loop other threads can touch.
pub(super) struct Shared<D: Dispatcher> {
    /// The loop's [`EventLoop::id`].
    pub(super) loop_id: u64,
    /// The thread the loop was made on, the only one that can run it.
    pub(super) thread: std::thread::ThreadId,
    pub(super) queue: Mutex<TaskQueue<D>>,
    pub(super) waker: Waker,
    /// Set while a wake-up is in flight, so a burst of tasks writes the waker once.
    pub(super) wake_pending: AtomicBool,
    pub(super) quit: AtomicBool,
}

impl<D: Dispatcher> Shared<D> {
    pub(super) fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::AcqRel)
            && let Err(e) = self.waker.wake()
        {
            warn!("could not wake event loop: {e}");
        }
    }
}

/// A `Send + Sync + Clone` way to reach an [`EventLoop`] from other threads.
///
/// Handles share the loop's waker, so its fd stays open until the loop and
/// every handle are gone (never a dangling fd number a late `wake` could hit).
pub struct LoopHandle<D: Dispatcher = AnyDispatcher> {
    pub(super) shared: Arc<Shared<D>>,
}

impl<D: Dispatcher> Clone for LoopHandle<D> {
    fn clone(&self) -> Self {
        LoopHandle { shared: Arc::clone(&self.shared) }
    }
}

impl<D: Dispatcher> fmt::Debug for LoopHandle<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle").field("dispatcher", &D::NAME).finish()
    }
}

impl<D: Dispatcher> LoopHandle<D> {
    /// The loop's [`EventLoop::id`].
    pub fn id(&self) -> u64 {
        self.shared.loop_id
    }

    /// Whether the calling thread is the loop's own (a loop is not `Send`:
    /// it runs where it was made). Code that may run on either side uses it
    /// to act at once instead of queuing a task to itself.
    pub fn is_current(&self) -> bool {
        std::thread::current().id() == self.shared.thread
    }

    /// Queues `f` to run on the loop's thread and wakes the loop. Tasks run in
    /// the order they were queued. Fails with `BrokenPipe` if the loop has
    /// been dropped (the task is dropped too).
    pub fn run_in_loop<F>(&self, f: F) -> io::Result<()>
    where
        F: FnOnce(&mut EventLoop<D>) + Send + 'static,
    {
        {
            let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            if !queue.open {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the event loop has been dropped"));
            }
            queue.tasks.push(Box::new(f));
        }
        self.shared.wake();
        Ok(())
    }

    /// Asks the loop's [`run`](EventLoop::run) to return, and wakes it.
    pub fn quit(&self) {
        self.shared.quit.store(true, Ordering::Release);
        self.shared.wake();
    }

    /// Wakes the loop without giving it anything to do.
    pub fn wake(&self) {
        self.shared.wake();
    }

    /// Whether the loop still exists.
    pub fn is_alive(&self) -> bool {
        self.shared.queue.lock().unwrap_or_else(|e| e.into_inner()).open
    }
}
