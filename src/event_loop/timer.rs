//! The timer queue: deadlines ordered so the nearest one is found in O(log n)
//! and becomes the dispatcher's timeout.
//!
//! This is how a single-threaded reactor waits for "fd ready *or* time up"
//! with one system call: it asks the queue for the nearest deadline and passes
//! the time left as the `select`/`poll`/`epoll_wait` timeout. A `BTreeMap`
//! keyed by `(deadline, id)` keeps deadline order (ties in arming order); a
//! side table from id to deadline makes `cancel` O(log n) without a scan.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Identifies an armed timer; pass it to [`EventLoop::cancel`](crate::EventLoop::cancel).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub(crate) u64);

/// Values of type `T` ordered by deadline.
#[derive(Debug)]
pub(crate) struct TimerQueue<T> {
    by_deadline: BTreeMap<(Instant, TimerId), T>,
    deadline_of: HashMap<TimerId, Instant>,
    next_id: u64,
}

impl<T> TimerQueue<T> {
    pub(crate) fn new() -> Self {
        TimerQueue { by_deadline: BTreeMap::new(), deadline_of: HashMap::new(), next_id: 0 }
    }

    /// Arms a new timer.
    pub(crate) fn insert(&mut self, deadline: Instant, value: T) -> TimerId {
        let id = TimerId(self.next_id);
        self.next_id += 1;
        self.reinsert(id, deadline, value);
        id
    }

    /// Arms `id` again (a repeating timer that just fired keeps its id).
    pub(crate) fn reinsert(&mut self, id: TimerId, deadline: Instant, value: T) {
        self.by_deadline.insert((deadline, id), value);
        self.deadline_of.insert(id, deadline);
    }

    /// Disarms `id`; `None` if it is not armed (fired, cancelled, or unknown).
    pub(crate) fn cancel(&mut self, id: TimerId) -> Option<T> {
        let deadline = self.deadline_of.remove(&id)?;
        self.by_deadline.remove(&(deadline, id))
    }

    /// The nearest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.first_key_value().map(|((deadline, _), _)| *deadline)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(TimerId, Instant, T)> {
        if self.next_deadline()? > now {
            return None;
        }
        let ((deadline, id), value) = self.by_deadline.pop_first()?;
        self.deadline_of.remove(&id);
        Some((id, deadline, value))
    }

    /// How many timers are armed.
    pub(crate) fn len(&self) -> usize {
        self.by_deadline.len()
    }

    /// Whether no timer is armed.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_deadline.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn pops_in_deadline_order_then_arming_order() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        q.insert(t0 + ms(30), "c");
        q.insert(t0 + ms(10), "a");
        q.insert(t0 + ms(20), "b1");
        q.insert(t0 + ms(20), "b2");
        assert_eq!(q.next_deadline(), Some(t0 + ms(10)));
        assert!(q.pop_due(t0).is_none(), "nothing is due before the first deadline");
        let order: Vec<_> = std::iter::from_fn(|| q.pop_due(t0 + ms(30)).map(|(_, _, v)| v)).collect();
        assert_eq!(order, ["a", "b1", "b2", "c"]);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn cancel_removes_once_and_only_armed_timers() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        let a = q.insert(t0 + ms(5), 1);
        let b = q.insert(t0 + ms(6), 2);
        assert_eq!(q.cancel(a), Some(1));
        assert_eq!(q.cancel(a), None, "a second cancel finds nothing");
        assert_eq!(q.next_deadline(), Some(t0 + ms(6)));
        let (id, deadline, v) = q.pop_due(t0 + ms(6)).unwrap();
        assert_eq!((id, deadline, v), (b, t0 + ms(6), 2));
        assert_eq!(q.cancel(b), None, "a fired timer is no longer armed");
        q.reinsert(b, t0 + ms(12), 3);
        assert_eq!(q.cancel(b), Some(3), "a re-armed timer keeps its id");
    }
}
