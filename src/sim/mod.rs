//! A simulated kernel: the whole stack under a virtual clock and seeded
//! faults, every run replayable from one seed.
//!
//! This module teaches how to test an event loop against a kernel that
//! misbehaves on cue. An idle loopback almost never takes the paths where
//! event loops break: a short write, `EAGAIN` right after a readiness
//! report, a reset mid-write, a late or coalesced wake-up, a batch cut
//! short. Here each is a [`Fault`] that happens when a seeded die says so,
//! and the same seed makes the same choices again, so a failure found
//! once can be replayed and narrated step by step (`RUST_LOG=trace` logs
//! every injected fault with target `muxloop::sim`).
//!
//! # How it fits
//!
//! The simulator sits **below the system-call layer**, where the real
//! kernel sits: on a thread that has [`Sim::start`]ed one, the wrappers in
//! [`sys`](crate::sys) that create stream sockets, listeners, socket pairs,
//! pipes and eventfds make simulated ones, and every read, write, accept,
//! shutdown and socket option on those fds is answered by the simulator.
//! [`SimDispatcher`](crate::dispatcher::SimDispatcher), a fifth backend,
//! reports their readiness under the same contract as the other four
//! (level, oneshot, edge; hang-up, error, read-closed; spurious wake-ups).
//! So the event loop, connections, servers and HTTP above run unchanged:
//! the thing tested is the real code. Real backends pay one thread-local
//! read per system call for the door.
//!
//! The event loop reads time through the simulator's clock. With
//! [`SimConfig::virtual_time`] (the default) a wait with nothing to do
//! jumps the clock to its timeout, so a 60 s idle timeout costs
//! microseconds and timers fire at exact virtual instants.
//!
//! # Limits
//!
//! * One simulated kernel per thread, and it serves only that thread: a
//!   server's sub-loops (other threads) and wake-ups from other threads
//!   are not simulated. Use `threads(0)`.
//! * TCP over IPv4/IPv6 and Unix socket pairs; no datagrams, no
//!   `SCM_RIGHTS`, no `sendfile` (those calls fail with `Unsupported`).
//! * A connect to a listener whose backlog is full is refused at once
//!   (Linux would retry the SYN), and a connect never times out.
//!
//! # Example
//!
//! ```
//! use muxloop::sim::{Sim, SimConfig};
//! use muxloop::{EventLoop, Server, SimDispatcher, Handler, Connection, Buffer};
//!
//! struct Echo;
//! impl Handler<SimDispatcher> for Echo {
//!     fn on_message(&mut self, ev: &mut EventLoop<SimDispatcher>, conn: &Connection<SimDispatcher>, input: &mut Buffer) {
//!         let _ = conn.send(ev, input.peek());
//!         input.consume_all();
//!     }
//! }
//!
//! let sim = Sim::start(SimConfig::new(42)).unwrap();
//! let mut ev: EventLoop<SimDispatcher> = EventLoop::new().unwrap();
//! let server = Server::builder("127.0.0.1:80", |_: &Connection<SimDispatcher>| Echo)
//!     .threads(0)
//!     .start(&mut ev)
//!     .unwrap();
//! let peer = sim.connect(server.local_addr().as_inet().unwrap()).unwrap();
//! peer.write(b"ping").unwrap();
//! let mut got = Vec::new();
//! while got.len() < 4 {
//!     ev.run_once(Some(std::time::Duration::from_millis(10))).unwrap();
//!     got.extend(peer.read_available().unwrap());
//! }
//! assert_eq!(got, b"ping");
//! ```

use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

mod faults;
pub(crate) mod kernel;
mod rng;
pub(crate) mod stream;

pub use faults::{Fault, Faults};
pub use rng::Rng;

use kernel::{Kernel, SockId};

/// How a simulated kernel behaves: its seed, its faults, its clock.
#[derive(Clone, Debug)]
pub struct SimConfig {
    seed: u64,
    faults: Faults,
    virtual_time: bool,
    fd_limit: usize,
    buffer: (usize, usize),
}

impl SimConfig {
    /// A well-behaved kernel on a virtual clock; `seed` fixes every choice
    /// (here: the buffer sizes, 512 B to 64 KiB per socket).
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            faults: Faults::none(),
            virtual_time: true,
            fd_limit: 1024,
            buffer: (512, 64 << 10),
        }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The faults to inject.
    pub fn faults(mut self, faults: Faults) -> SimConfig {
        self.faults = faults;
        self
    }

    /// `true` (default): waits jump the clock. `false`: the real monotonic
    /// clock, and a wait sleeps for real (what the dispatcher contract
    /// suite uses, since it measures time with `Instant`).
    pub fn virtual_time(mut self, on: bool) -> SimConfig {
        self.virtual_time = on;
        self
    }

    /// How many simulated fds the program may hold (`EMFILE` past it).
    pub fn fd_limit(mut self, limit: usize) -> SimConfig {
        self.fd_limit = limit;
        self
    }

    /// Each socket's receive queue gets a size in `min..=max` bytes.
    pub fn buffer_sizes(mut self, min: usize, max: usize) -> SimConfig {
        self.buffer = (min.max(1), max.max(min.max(1)));
        self
    }
}

/// The simulated kernel of this thread, while this value lives.
///
/// Not `Send`: the kernel belongs to the thread that started it.
#[derive(Debug)]
pub struct Sim {
    seed: u64,
    _thread_bound: PhantomData<*const ()>,
}

impl Sim {
    /// Installs a simulated kernel on this thread. `AlreadyExists` if one is
    /// already installed here.
    pub fn start(config: SimConfig) -> io::Result<Sim> {
        kernel::install(Kernel::new(&config))?;
        log::debug!("sim: kernel started, seed {}, {:?}", config.seed, config.faults);
        Ok(Sim { seed: config.seed, _thread_bound: PhantomData })
    }

    /// The seed this run replays from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Connects a peer (a client the test drives by hand) to a listener of
    /// the program. `ConnectionRefused` if nothing listens there or its
    /// backlog is full.
    pub fn connect(&self, to: SocketAddr) -> io::Result<Peer> {
        with_kernel(|k| k.connect(None, to)).map(|id| Peer { id, _thread_bound: PhantomData })
    }

    /// How much virtual time has passed since the start.
    pub fn elapsed(&self) -> Duration {
        with_kernel(|k| Ok(k.clock.elapsed())).unwrap_or_default()
    }

    /// Moves the virtual clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let _ = with_kernel(|k| {
            k.advance(by);
            Ok(())
        });
    }

    /// How many simulated fds the program still holds open.
    pub fn open_fds(&self) -> usize {
        with_kernel(|k| {
            k.reap();
            Ok(k.open_fds())
        })
        .unwrap_or(0)
    }

    /// How many faults of each kind were injected so far.
    pub fn injected(&self) -> Vec<(Fault, u64)> {
        with_kernel(|k| Ok(Fault::ALL.iter().copied().zip(k.injected).filter(|(_, n)| *n > 0).collect()))
            .unwrap_or_default()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        kernel::uninstall();
    }
}

/// Runs `f` on this thread's kernel, after it has looked for fds the
/// program closed (a real kernel acts on a close at once; this one learns
/// of it at its next entry, when one may have been closed).
fn with_kernel<R>(f: impl FnOnce(&mut Kernel) -> io::Result<R>) -> io::Result<R> {
    kernel::with(|k| {
        k.reap_if_needed();
        f(k)
    })
    .unwrap_or_else(|| {
        Err(io::Error::new(
            io::ErrorKind::NotConnected,
            "no simulated kernel on this thread (see Sim::start)",
        ))
    })
}

/// The virtual clock's reading, if this thread runs a simulated kernel on
/// virtual time (the event loop's clock asks this first).
#[inline]
pub(crate) fn virtual_now() -> Option<Instant> {
    if !kernel::active() {
        return None;
    }
    kernel::with(|k| k.clock.is_virtual().then(|| k.clock.now())).flatten()
}

/// A client socket in the simulated kernel that a test drives by hand. Its
/// reads and writes are exact (faults hit the program's sockets only).
/// Dropping it closes it (FIN, or RST with unread data).
#[derive(Debug)]
pub struct Peer {
    id: SockId,
    _thread_bound: PhantomData<*const ()>,
}

impl Peer {
    /// Writes what fits in the program's receive queue; `WouldBlock` if nothing does.
    pub fn write(&self, data: &[u8]) -> io::Result<usize> {
        with_kernel(|k| k.write(self.id, &[io::IoSlice::new(data)], false))
    }

    /// Reads what arrived; `Ok(0)` at end of file, `WouldBlock` if nothing yet.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        with_kernel(|k| k.read(self.id, &mut [io::IoSliceMut::new(buf)], false))
    }

    /// Everything queued for this peer now (empty if nothing).
    /// `UnexpectedEof` once the program has closed and all was read;
    /// the connection's error (`ConnectionReset`) if it was reset.
    pub fn read_available(&self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 16 << 10];
        loop {
            match self.read(&mut buf) {
                Ok(0) if out.is_empty() => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(0) => return Ok(out),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(out),
                Err(e) if out.is_empty() => return Err(e),
                Err(_) => return Ok(out),
            }
        }
    }

    /// Sends FIN (`shutdown(Write)`): the program reads end of file after the data.
    pub fn shutdown_write(&self) -> io::Result<()> {
        with_kernel(|k| k.shutdown(self.id, std::net::Shutdown::Write))
    }

    /// Resets the connection (RST, as `SO_LINGER` 0 would): the program's
    /// next read or write fails with `ECONNRESET`.
    pub fn reset(self) {
        let _ = with_kernel(|k| {
            k.reset(self.id);
            Ok(())
        });
    }

    /// Whether the program has closed its end (or the connection is dead):
    /// the peer sees end of file or an error once it has read everything.
    pub fn is_closed(&self) -> bool {
        with_kernel(|k| Ok(k.readiness(self.id).contains(crate::dispatcher::Ready::READ_CLOSED)))
            .unwrap_or(true)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = kernel::with(|k| k.close(self.id));
    }
}
