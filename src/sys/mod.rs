//! The system-call layer: with `dispatcher/` and `uring/`, the only code
//! that calls `libc`.
//!
//! It teaches one idea, borrowed from mio: each libc call is a single line
//! through the `syscall!` macro, which turns the C convention "returns -1 and
//! sets `errno`" into a Rust `io::Result`. This module wraps the calls fds,
//! sockets and buffers need, one file per resource (see [Files](self#files)): file
//! descriptors, socket addresses, stream sockets, datagram sockets, fd
//! passing (`SCM_RIGHTS`), shared memory, signals, processes and zero-copy
//! moves. The backends in `dispatcher/` make their own multiplexer calls (`epoll_*`,
//! `poll`, `select`, io_uring) through the same macro. Everything above
//! works with `OwnedFd`/`BorrowedFd` and `io::Result` and never sees `errno`.
//!
//! # Borrowed fds
//!
//! A function here that reads, writes or configures a descriptor takes a
//! `BorrowedFd<'_>`, not a `RawFd` (as the `polling` crate does): a raw
//! number can be closed, and then reused for another file by another
//! thread, between the moment it was read and the system call, which would
//! then act on a file the caller does not own. A `BorrowedFd`'s lifetime
//! proves the descriptor stays open for the call. Get one from an `OwnedFd`
//! (or a `TcpStream`, `File`, `io::stdin()`) with `as_fd()`. Functions that
//! only ask about a number ([`is_open`]) take a `RawFd`. A safe function
//! whose soundness would depend on its caller is an `unsafe fn` with a
//! `# Safety` section instead ([`signal_thread`], [`dup_onto`],
//! [`set_signal_handler`]).
//!
//! # Platforms
//!
//! With the `muxloop_linux` cfg (Linux and Android, see `build.rs`) the
//! wrappers use the Linux calls that save a system call or a race:
//! `accept4` and `socket(SOCK_NONBLOCK | SOCK_CLOEXEC)`, `pipe2`, `eventfd`,
//! `signalfd`, `recvmmsg`/`sendmmsg`, `sendfile`, `splice`, `TCP_CORK` and
//! `/proc`. Without it (another Unix, or Linux built with
//! `--cfg muxloop_portable`) they take the POSIX path: `accept`/`socket`/
//! `pipe` then `fcntl` for `O_NONBLOCK` and `FD_CLOEXEC`, loops of
//! `recvmsg`/`sendto`, `pread` + `send` for files; the Linux-only wrappers
//! are not compiled.
//!
//! The helpers are public so tests, benches and examples can build fixtures
//! (socket pairs, pipes) without unsafe code of their own. The pure test
//! fixtures (`dup_at_least`, `set_nofile_limit`, `open_fd_count`) are hidden
//! from the docs: they are not part of the API.
//!
//! # Files
//!
//! `fd.rs`, `addr.rs`, `socket.rs`, `datagram.rs`, `scm_rights.rs`, `shm.rs`,
//! `signal.rs` (with `signal_forward.rs`, the handler that sends a signal
//! landing on the wrong thread on to the one reading its signalfd),
//! `process.rs`, `zero_copy.rs`: re-exported here, the path is
//! always `sys::name`. [`teaching`] holds the helpers only examples and
//! tests use (rung 03's `SIGCHLD` flag, the herd lab's bare `epoll_*`
//! calls); it is not re-exported: its path is `sys::teaching::name`.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

mod addr;
mod datagram;
mod fd;
mod process;
mod scm_rights;
mod shm;
mod signal;
#[cfg(muxloop_linux)]
mod signal_forward;
mod socket;
pub mod teaching;
mod zero_copy;

pub use addr::*;
pub use datagram::*;
pub use fd::*;
pub use process::*;
pub use scm_rights::*;
pub use shm::*;
pub use signal::*;
#[cfg(muxloop_linux)]
pub(crate) use signal_forward::{forward_signal_here, stop_forwarding_signal};
pub use socket::*;
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

/// The simulated kernel's door ([`crate::sim`]): if `$fd` is a simulated
/// socket of this thread, returns from the enclosing function with what
/// `$body` (given the kernel `$k` and the socket `$id`) answers. Without a
/// simulator on the thread it costs one thread-local read.
macro_rules! simulated {
    ($fd:expr, |$k:ident, $id:ident| $body:expr) => {
        if let Some(answer) =
            crate::sim::kernel::on_fd(std::os::fd::AsRawFd::as_raw_fd(&$fd), |$k, $id| $body)
        {
            return answer;
        }
    };
}
pub(crate) use simulated;

/// Makes a simulated descriptor instead when this thread runs a simulated
/// kernel: returns from the enclosing function with `$body`'s answer.
macro_rules! simulated_new {
    (|$k:ident| $body:expr) => {
        if let Some(answer) = crate::sim::kernel::with(|$k| $body) {
            return answer;
        }
    };
}
pub(crate) use simulated_new;

/// The answer for a call the simulated kernel does not model.
pub(crate) fn not_simulated(call: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        format!("{call} on a simulated socket (see muxloop::sim)"),
    )
}

/// Wraps a freshly returned descriptor in an `OwnedFd`.
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful syscall, so it is open and
    // nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
