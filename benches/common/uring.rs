//! Whether io_uring can be benched here, for the benches that compare every
//! backend. Included with `#[path = "common/uring.rs"] mod uring;`.

use muxloop::{Dispatcher, UringDispatcher};

/// io_uring may be refused here (old kernel, sandbox): then say so and leave its rows out.
pub fn available() -> bool {
    match <UringDispatcher as Dispatcher>::new() {
        Ok(_) => true,
        Err(e) => {
            eprintln!("skipped: io_uring unavailable ({e})");
            false
        }
    }
}
