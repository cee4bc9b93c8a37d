//! Connection timers: one repeating sweep per loop instead of one timer per
//! connection.
//!
//! Idle timeouts, HTTP's header and body deadlines and any handler's own
//! [`set_timeout`](super::Connection::set_timeout) all store a deadline in
//! the connection; a single timer per loop walks the loop's connections and
//! calls [`Handler::on_timeout`](super::Handler::on_timeout) for each one past
//! its deadline. Re-arming a deadline on every read is then a store, not a
//! timer-queue operation; the price is precision: a deadline is noticed within
//! one sweep period (a quarter of the shortest timeout, 10 ms to 1 s).

use crate::event_loop::clock;
use std::time::Duration;

use log::trace;

use super::ConnectionTable;
use crate::dispatcher::Dispatcher;
use crate::event_loop::{EventLoop, TimerId};

/// The sweep of one loop.
#[derive(Debug, Default)]
pub(crate) struct Sweeper {
    timer: Option<(TimerId, Duration)>,
}

/// Makes sure `ev` sweeps often enough to notice a `timeout` in time.
pub(crate) fn watch<D: Dispatcher + 'static>(ev: &mut EventLoop<D>, timeout: Duration) {
    let period = (timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    match ev.context::<Sweeper>().timer {
        Some((_, current)) if current <= period => return,
        Some((timer, _)) => {
            ev.cancel(timer);
        }
        None => {}
    }
    let timer = ev.run_every(period, sweep::<D>);
    ev.context::<Sweeper>().timer = Some((timer, period));
}

/// Runs `on_timeout` for every connection past its deadline; stops sweeping
/// when no connection has a deadline left. That is decided before the
/// handlers run, so a timer a handler arms (which starts a new sweep if
/// this one was stopped) is never left without one.
fn sweep<D: Dispatcher + 'static>(ev: &mut EventLoop<D>) {
    let now = clock::now();
    let conns = ConnectionTable::<D>::all(ev);
    let expired: Vec<_> = conns.iter().filter(|c| c.take_expired(now)).collect();
    trace!("timer sweep: {} of {} connections timed out", expired.len(), conns.len());
    if !conns.iter().any(|c| c.has_deadline())
        && let Some((timer, _)) = ev.context::<Sweeper>().timer.take()
    {
        ev.cancel(timer);
    }
    for conn in expired {
        conn.timed_out(ev);
    }
}
