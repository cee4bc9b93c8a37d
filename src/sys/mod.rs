//! The system-call layer: with `dispatcher/`, the only code that calls
//! `libc`.
//!
//! It teaches one idea, borrowed from mio: each libc call is a single line
//! through the `syscall!` macro, which turns the C convention "returns -1 and
//! sets `errno`" into a Rust `io::Result`. This module wraps the calls fds,
//! sockets and buffers need, one file per resource (see [Files](self#files)): file
//! descriptors, socket addresses, stream sockets, datagram sockets, fd
//! passing (`SCM_RIGHTS`), signals, processes and zero-copy moves. The
//! backends in `dispatcher/` make their own multiplexer calls (`epoll_*`,
//! `poll`, `select`, io_uring) through the same macro; the bare `epoll_*`
//! wrappers here ([`teaching`]) exist only for the `herd` example. Everything
//! above those two works with `OwnedFd`/`RawFd` and `io::Result` and never
//! sees `errno`.
//!
//! The helpers are public so tests, benches and examples can build fixtures
//! (socket pairs, pipes) without unsafe code of their own. The pure test
//! fixtures (`dup_at_least`, `set_nofile_limit`, `open_fd_count`) are hidden
//! from the docs: they are not part of the API.
//!
//! # Files
//!
//! `fd.rs`, `addr.rs`, `socket.rs`, `datagram.rs`, `scm_rights.rs`,
//! `signal.rs`, `process.rs`, `zero_copy.rs`, and `teaching.rs` for the
//! helpers only examples use. Everything is re-exported here: the path is
//! always `sys::name`.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

mod addr;
mod datagram;
mod fd;
mod process;
mod scm_rights;
mod signal;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod signal_forward;
mod socket;
pub mod teaching;
mod zero_copy;

pub use addr::*;
pub use datagram::*;
pub use fd::*;
pub use process::*;
pub use scm_rights::*;
pub use signal::*;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use signal_forward::{forward_signal_here, stop_forwarding_signal};
pub use socket::*;
pub use teaching::*;
pub use zero_copy::*;

/// Calls a libc function and maps a `-1` return to `io::Error::last_os_error()`.
///
/// `syscall!(close(fd))` expands to an `unsafe` call of `libc::close(fd)`; the
/// caller writes the `// SAFETY:` comment for the arguments it passes.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        #[allow(unused_unsafe)]
        // SAFETY: the caller of `syscall!` justifies the arguments; the call itself
        // only reads/writes what those arguments point to.
        let res = unsafe { libc::$fn($($arg),*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}
pub(crate) use syscall;

/// Wraps a freshly returned descriptor in an `OwnedFd`.
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful syscall, so it is open and
    // nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
