//! The clock the loop and the layers above read: the monotonic clock, or
//! the simulated kernel's virtual one ([`crate::sim`]) on a thread that
//! runs a simulation on virtual time. Timers, deadlines and statistics all
//! read it here, so under simulation a 60 s timeout is one jump of the
//! clock instead of a minute of waiting.

use std::time::Instant;

/// Now, by the clock this thread runs on.
#[inline]
pub(crate) fn now() -> Instant {
    crate::sim::virtual_now().unwrap_or_else(Instant::now)
}
