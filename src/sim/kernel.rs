//! The simulated kernel's state: its sockets, the fd numbers the program
//! holds for them, its clock and its dice. One per thread, installed by
//! [`Sim::start`](super::Sim::start).
//!
//! **Fd numbers are real.** Every simulated socket the program gets is
//! backed by the read end of a real pipe (a *placeholder*): the number is
//! the kernel's, so an `OwnedFd` owns it and closes it like any other,
//! numbers are reused lowest-first as Linux reuses them, and `is_open` is
//! true. The simulator keeps the pipe's write end (the *witness*): once the
//! program has closed the number, the witness's `poll` reports `POLLERR`
//! (no reader left), and the simulated socket is closed the way Linux
//! closes one (FIN, or RST if unread data was left). Nothing else ever
//! happens on the pipes.
//!
//! **Order never comes from fd numbers.** Other threads take numbers too,
//! so two runs of one seed can give one socket different numbers. Sockets
//! are therefore identified by [`SockId`], their creation order, and
//! everything the simulator iterates is ordered by it: the same seed makes
//! the same choices in the same order.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use log::trace;

use super::stream::{Addr, Stream};
use super::{Fault, Faults, Rng, SimConfig};
use crate::dispatcher::Ready;
use crate::sys;

/// Dispatches between two looks for fds closed without being deregistered.
const LOOK_EVERY: u32 = 64;

/// A simulated socket's identity: its creation order, never reused in a run.
pub(crate) type SockId = usize;

/// A new socket, with the fd the program holds for it (if it asked for one).
type Created = (SockId, Option<OwnedFd>);

thread_local! {
    /// Read on every system call: whether this thread has a simulated kernel.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    static KERNEL: RefCell<Option<Kernel>> = const { RefCell::new(None) };
}

/// Whether a simulated kernel is installed on this thread (one
/// thread-local read: all the real backends pay for the simulator).
#[inline]
pub(crate) fn active() -> bool {
    ACTIVE.with(Cell::get)
}

/// Runs `f` on this thread's simulated kernel, if there is one and this
/// is not the kernel itself calling the system-call layer (for its pipe
/// placeholders: those calls are real).
pub(crate) fn with<R>(f: impl FnOnce(&mut Kernel) -> R) -> Option<R> {
    if !active() {
        return None;
    }
    KERNEL.with(|k| k.try_borrow_mut().ok()?.as_mut().map(f))
}

/// The system-call layer's door: `Some(f(..))` if `fd` is a simulated
/// socket of this thread, `None` (do the real call) otherwise.
#[inline]
pub(crate) fn on_fd<R>(
    fd: RawFd,
    f: impl FnOnce(&mut Kernel, SockId) -> io::Result<R>,
) -> Option<io::Result<R>> {
    if !active() {
        return None;
    }
    with(|k| k.lookup(fd).map(|id| f(k, id))).flatten()
}

/// Tells the kernel an fd was deregistered: the close that follows must
/// be seen at the next look.
pub(crate) fn deregistered() {
    with(|k| k.closes_pending = true);
}

pub(crate) fn install(kernel: Kernel) -> io::Result<()> {
    KERNEL.with(|k| {
        let mut slot = k.borrow_mut();
        if slot.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "this thread already runs a simulated kernel (one Sim per thread)",
            ));
        }
        *slot = Some(kernel);
        ACTIVE.with(|a| a.set(true));
        Ok(())
    })
}

pub(crate) fn uninstall() -> Option<Kernel> {
    ACTIVE.with(|a| a.set(false));
    KERNEL.with(|k| k.borrow_mut().take())
}

/// What a simulated socket is.
#[derive(Debug)]
pub(crate) enum Kind {
    /// Created by `socket(2)`, not yet connected.
    Fresh,
    /// One end of a byte stream (TCP or a Unix socket pair).
    Stream(Stream),
    /// A listening socket: connections waiting for `accept`, in order.
    Listener { addr: SocketAddr, backlog: std::collections::VecDeque<SockId>, limit: usize },
    /// An `eventfd`: an 8-byte counter (the POSIX build's waker is a pipe).
    #[cfg_attr(not(muxloop_linux), allow(dead_code))]
    Counter(u64),
}

#[derive(Debug)]
struct Placeholder {
    fd: RawFd,
    /// The pipe's write end: `POLLERR` once the program closed `fd`.
    witness: OwnedFd,
}

#[derive(Debug)]
pub(crate) struct Socket {
    pub(crate) kind: Kind,
    placeholder: Option<Placeholder>,
    pub(crate) open: bool,
    /// Bumped by every change that wakes a reader (data, FIN, RST, a
    /// connection to accept): an edge for edge-triggered waiters.
    pub(crate) read_gen: u64,
    /// Bumped by every change that wakes a writer (room, connect done).
    pub(crate) write_gen: u64,
}

/// The virtual clock: `base` plus how far simulated time has moved.
#[derive(Debug)]
pub(crate) struct Clock {
    base: Instant,
    elapsed: Duration,
    virtual_time: bool,
}

impl Clock {
    pub(crate) fn now(&self) -> Instant {
        if self.virtual_time { self.base + self.elapsed } else { Instant::now() }
    }
    pub(crate) fn is_virtual(&self) -> bool {
        self.virtual_time
    }
    /// Time since the kernel started: virtual, or real under the real clock.
    pub(crate) fn elapsed(&self) -> Duration {
        if self.virtual_time { self.elapsed } else { self.base.elapsed() }
    }
}

/// This thread's simulated kernel.
#[derive(Debug)]
pub(crate) struct Kernel {
    pub(crate) sockets: Vec<Socket>,
    fds: HashMap<RawFd, SockId>,
    listeners: HashMap<SocketAddr, SockId>,
    next_port: u16,
    pub(crate) rng: Rng,
    pub(crate) faults: Faults,
    pub(crate) clock: Clock,
    fd_limit: usize,
    buffer: (usize, usize),
    /// How many faults were injected, by kind (in `Fault::ALL` order).
    pub(crate) injected: [u64; Fault::ALL.len()],
    /// An fd was deregistered since the last look for closed fds: a program
    /// closes a registered fd only after deregistering it, so only then is
    /// a look needed, while every fd the program holds is registered (the
    /// dispatcher looks at every dispatch otherwise; and every
    /// `LOOK_EVERY` dispatches in any case).
    pub(crate) closes_pending: bool,
    /// Dispatches since the last look.
    pub(crate) since_look: u32,
    /// Bumped by everything that moves: a byte read or written, a wake-up
    /// (data, room, FIN, RST, a connection), the clock.
    pub(crate) moves: u64,
}

impl Kernel {
    pub(crate) fn new(config: &SimConfig) -> Kernel {
        let mut rng = Rng::new(config.seed);
        Kernel {
            sockets: Vec::new(),
            fds: HashMap::new(),
            listeners: HashMap::new(),
            next_port: 40_000,
            rng: rng.fork(),
            faults: config.faults.clone(),
            clock: Clock { base: Instant::now(), elapsed: Duration::ZERO, virtual_time: config.virtual_time },
            fd_limit: config.fd_limit,
            buffer: config.buffer,
            injected: [0; Fault::ALL.len()],
            closes_pending: false,
            since_look: 0,
            moves: 0,
        }
    }

    /// Rolls the dice for `fault`; logs and counts it when it happens.
    pub(crate) fn roll(&mut self, fault: Fault, what: impl FnOnce() -> String) -> bool {
        let odds = self.faults.odds(fault);
        if odds == 0.0 || !self.rng.chance(odds) {
            return false;
        }
        self.injected[Fault::ALL.iter().position(|&f| f == fault).unwrap_or(0)] += 1;
        trace!("sim: fault {fault:?}: {}", what());
        true
    }

    /// Moves virtual time forward (nothing under the real clock).
    pub(crate) fn advance(&mut self, by: Duration) {
        self.moves += 1;
        if self.clock.virtual_time {
            self.clock.elapsed += by;
        }
    }

    // -- fds -----------------------------------------------------------------

    /// The socket behind `fd`, if it is a live one of ours.
    ///
    /// The table is trusted between looks ([`reap`](Self::reap)): a number
    /// the program closed is forgotten at the next dispatch, at the next
    /// move of a test's peer, or when the simulator hands the number out
    /// again, whichever comes first. (A program that closes a simulated
    /// socket and does real I/O on a real file that got the same number,
    /// before any of those, would reach the simulator: none here does.)
    pub(crate) fn lookup(&mut self, fd: RawFd) -> Option<SockId> {
        self.fds.get(&fd).copied()
    }

    /// Closes every socket whose number the program has closed since the
    /// last look, in `SockId` order (one `poll` of all the witnesses).
    pub(crate) fn reap(&mut self) {
        self.closes_pending = false;
        self.since_look = 0;
        let mut held: Vec<(SockId, BorrowedFd<'_>)> = self
            .fds
            .values()
            .filter_map(|&id| self.sockets[id].placeholder.as_ref().map(|p| (id, p.witness.as_fd())))
            .collect();
        held.sort_unstable_by_key(|&(id, _)| id);
        let witnesses: Vec<BorrowedFd<'_>> = held.iter().map(|&(_, fd)| fd).collect();
        let closed: Vec<SockId> = sys::closed_readers(&witnesses).into_iter().map(|i| held[i].0).collect();
        for id in closed {
            self.close(id);
        }
    }

    /// Looks for closed fds if one may have been closed (see `closes_pending`).
    pub(crate) fn reap_if_needed(&mut self) {
        if self.closes_pending || self.since_look >= LOOK_EVERY {
            self.reap();
        }
    }

    /// How many simulated sockets the program still holds.
    pub(crate) fn open_fds(&self) -> usize {
        self.fds.len()
    }

    /// A new socket; `with_fd` gives it a real number for the program.
    fn create(&mut self, kind: Kind, with_fd: bool) -> io::Result<Created> {
        let id = self.sockets.len();
        let socket = Socket { kind, placeholder: None, open: true, read_gen: 0, write_gen: 0 };
        if with_fd {
            self.reap();
            if self.fds.len() >= self.fd_limit {
                return Err(io::Error::from_raw_os_error(libc::EMFILE));
            }
        }
        self.sockets.push(socket);
        let handed = if with_fd { Some(self.give_fd(id)?) } else { None };
        Ok((id, handed))
    }

    /// A real number for socket `id`: the read end of a new pipe, whose
    /// write end the kernel keeps as the witness of its close.
    fn give_fd(&mut self, id: SockId) -> io::Result<OwnedFd> {
        let (read, write) = sys::real_pipe()?;
        let fd = read.as_raw_fd();
        if let Some(stale) = self.fds.get(&fd).copied() {
            // The number was closed and reused before we looked.
            self.close(stale);
        }
        self.fds.insert(fd, id);
        self.sockets[id].placeholder = Some(Placeholder { fd, witness: write });
        Ok(read)
    }

    // -- readiness -------------------------------------------------------------

    /// What `poll` would report for `id` now (epoll's mapping: HUP and ERR
    /// come with readable and writable).
    pub(crate) fn readiness(&self, id: SockId) -> Ready {
        let socket = &self.sockets[id];
        if !socket.open {
            return Ready::with_flag(Ready::INVALID);
        }
        match &socket.kind {
            Kind::Fresh => Ready::WRITABLE | Ready::with_flag(Ready::HANGUP),
            Kind::Listener { backlog, .. } => {
                if backlog.is_empty() {
                    Ready::EMPTY
                } else {
                    Ready::READABLE
                }
            }
            Kind::Counter(n) => {
                if *n > 0 {
                    Ready::READABLE | Ready::WRITABLE
                } else {
                    Ready::WRITABLE
                }
            }
            Kind::Stream(s) => s.readiness(self.peer_room(s)),
        }
    }

    /// Room in the peer's receive queue for `s`'s writes (0 without a live peer).
    fn peer_room(&self, s: &Stream) -> Option<usize> {
        let peer = s.peer?;
        match &self.sockets[peer].kind {
            Kind::Stream(p) if self.sockets[peer].open => Some(p.room()),
            _ => None,
        }
    }

    pub(crate) fn stream(&mut self, id: SockId) -> io::Result<&mut Stream> {
        match &mut self.sockets[id].kind {
            Kind::Stream(s) => Ok(s),
            Kind::Fresh => Err(io::Error::from_raw_os_error(libc::ENOTCONN)),
            _ => Err(io::Error::from_raw_os_error(libc::ENOTSOCK)),
        }
    }

    pub(crate) fn wake_reader(&mut self, id: SockId) {
        self.moves += 1;
        self.sockets[id].read_gen += 1;
    }

    pub(crate) fn wake_writer(&mut self, id: SockId) {
        self.moves += 1;
        self.sockets[id].write_gen += 1;
    }

    fn buffer_size(&mut self) -> usize {
        let (low, high) = self.buffer;
        self.rng.between(low as u64, high as u64) as usize
    }

    // -- streams ---------------------------------------------------------------

    /// Two connected stream ends with fresh buffers; the program gets fds
    /// for the ends it asks for.
    pub(crate) fn stream_pair(
        &mut self,
        (a_addr, b_addr): (Addr, Addr),
        fds: (bool, bool),
    ) -> io::Result<(Created, Created)> {
        let (a_size, b_size) = (self.buffer_size(), self.buffer_size());
        let a = self.create(Kind::Stream(Stream::new(a_addr, b_addr, a_size)), fds.0)?;
        let b = self.create(Kind::Stream(Stream::new(b_addr, a_addr, b_size)), fds.1)?;
        self.stream(a.0)?.peer = Some(b.0);
        self.stream(b.0)?.peer = Some(a.0);
        Ok((a, b))
    }

    /// `socketpair(AF_UNIX, SOCK_STREAM)`.
    pub(crate) fn socketpair(&mut self) -> io::Result<(OwnedFd, OwnedFd)> {
        let ((_, a), (_, b)) = self.stream_pair((Addr::Unnamed, Addr::Unnamed), (true, true))?;
        Ok((a.expect("asked for an fd"), b.expect("asked for an fd")))
    }

    /// A listener bound to `addr` (port 0: the next free one).
    pub(crate) fn listen(&mut self, addr: SocketAddr, backlog: i32) -> io::Result<OwnedFd> {
        let addr = self.bindable(addr)?;
        let limit = backlog.clamp(1, 4096) as usize;
        let (id, fd) =
            self.create(Kind::Listener { addr, backlog: std::collections::VecDeque::new(), limit }, true)?;
        self.listeners.insert(addr, id);
        trace!("sim: socket {id} listens on {addr}");
        Ok(fd.expect("asked for an fd"))
    }

    fn bindable(&mut self, mut addr: SocketAddr) -> io::Result<SocketAddr> {
        if addr.port() == 0 {
            addr.set_port(self.ephemeral_port());
        }
        if self.listeners.get(&addr).is_some_and(|&id| self.sockets[id].open) {
            return Err(io::Error::from_raw_os_error(libc::EADDRINUSE));
        }
        Ok(addr)
    }

    fn ephemeral_port(&mut self) -> u16 {
        self.next_port = if self.next_port >= 60_999 { 40_000 } else { self.next_port + 1 };
        self.next_port
    }

    /// `socket(2)` for a TCP connection the program will `connect`.
    pub(crate) fn fresh_socket(&mut self) -> io::Result<OwnedFd> {
        let (_, fd) = self.create(Kind::Fresh, true)?;
        Ok(fd.expect("asked for an fd"))
    }

    /// Connects a new stream to the listener at `to`. The client end is
    /// `client` (a `Fresh` socket the program holds) or a new peer end.
    /// Returns the client end's id; `ECONNREFUSED` with no listener.
    pub(crate) fn connect(&mut self, client: Option<SockId>, to: SocketAddr) -> io::Result<SockId> {
        self.reap();
        let Some(&listener) = self.listeners.get(&to).filter(|&&id| self.sockets[id].open) else {
            return Err(io::Error::from_raw_os_error(libc::ECONNREFUSED));
        };
        let local = SocketAddr::new(
            if to.is_ipv4() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { to.ip() },
            self.ephemeral_port(),
        );
        let Kind::Listener { backlog, limit, .. } = &self.sockets[listener].kind else { unreachable!() };
        if backlog.len() >= *limit {
            // Linux drops the SYN and the client retries; here it fails at once.
            return Err(io::Error::from_raw_os_error(libc::ECONNREFUSED));
        }
        let ((client_end, _), (server_end, _)) =
            self.stream_pair((Addr::Inet(local), Addr::Inet(to)), (false, false))?;
        let client_end = match client {
            None => client_end,
            Some(fresh) => {
                // The program's socket becomes the client end.
                let kind = std::mem::replace(&mut self.sockets[client_end].kind, Kind::Fresh);
                self.sockets[client_end].open = false;
                self.sockets[fresh].kind = kind;
                self.stream(server_end)?.peer = Some(fresh);
                self.wake_writer(fresh);
                fresh
            }
        };
        if let Kind::Listener { backlog, .. } = &mut self.sockets[listener].kind {
            backlog.push_back(server_end);
        }
        self.wake_reader(listener);
        trace!("sim: socket {client_end} connected to {to} (server end {server_end})");
        Ok(client_end)
    }

    /// `accept4(2)`.
    pub(crate) fn accept(&mut self, listener: SockId) -> io::Result<(OwnedFd, Addr)> {
        let Kind::Listener { backlog, .. } = &self.sockets[listener].kind else {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        };
        if backlog.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if self.roll(Fault::AcceptEmfile, || format!("accept on socket {listener}: EMFILE")) {
            return Err(io::Error::from_raw_os_error(libc::EMFILE));
        }
        let Kind::Listener { backlog, .. } = &mut self.sockets[listener].kind else { unreachable!() };
        let id = backlog.pop_front().expect("checked non-empty");
        if self.roll(Fault::AcceptAborted, || format!("accept on socket {listener}: ECONNABORTED")) {
            self.reset(id);
            self.close(id);
            return Err(io::Error::from_raw_os_error(libc::ECONNABORTED));
        }
        if self.fds.len() >= self.fd_limit {
            self.reap();
        }
        if self.fds.len() >= self.fd_limit {
            if let Kind::Listener { backlog, .. } = &mut self.sockets[listener].kind {
                backlog.push_front(id);
            }
            return Err(io::Error::from_raw_os_error(libc::EMFILE));
        }
        let read = self.give_fd(id)?;
        let fd = read.as_raw_fd();
        let peer = self.stream(id)?.peer_addr;
        trace!("sim: socket {listener} accepted socket {id} as fd {fd}");
        Ok((read, peer))
    }

    /// An `eventfd`.
    #[cfg_attr(not(muxloop_linux), allow(dead_code))]
    pub(crate) fn counter(&mut self) -> io::Result<OwnedFd> {
        let (_, fd) = self.create(Kind::Counter(0), true)?;
        Ok(fd.expect("asked for an fd"))
    }

    /// Resets the connection `id` is one end of: both ends get `ECONNRESET`.
    pub(crate) fn reset(&mut self, id: SockId) {
        let peer = match &mut self.sockets[id].kind {
            Kind::Stream(s) => s.peer.take(),
            _ => None,
        };
        for end in [Some(id), peer].into_iter().flatten() {
            if let Kind::Stream(s) = &mut self.sockets[end].kind {
                s.receive_reset();
            }
            self.wake_reader(end);
            self.wake_writer(end);
        }
    }

    /// The last close of a socket: FIN to the peer, or RST if unread data
    /// was left (RFC 2525 2.17, what Linux does); a Unix socket pair's
    /// survivor is shut both ways instead (see `stream`); a listener resets
    /// what it had not accepted.
    pub(crate) fn close(&mut self, id: SockId) {
        if !self.sockets[id].open {
            return;
        }
        self.sockets[id].open = false;
        if let Some(p) = self.sockets[id].placeholder.take() {
            self.fds.remove(&p.fd);
        }
        match std::mem::replace(&mut self.sockets[id].kind, Kind::Fresh) {
            Kind::Stream(s) => {
                let Some(peer) = s.peer else { return };
                if s.is_unix() {
                    trace!("sim: socket {id} closed: its Unix peer {peer} is shut both ways");
                    if let Kind::Stream(p) = &mut self.sockets[peer].kind {
                        p.unix_peer_released(!s.incoming.is_empty());
                    }
                    self.wake_reader(peer);
                    self.wake_writer(peer);
                    return;
                }
                if !s.incoming.is_empty() {
                    trace!("sim: socket {id} closed with {} unread bytes: RST", s.incoming.len());
                    self.sockets[id].kind = Kind::Stream(s);
                    self.reset(id);
                    self.sockets[id].kind = Kind::Fresh;
                    return;
                }
                trace!("sim: socket {id} closed: FIN");
                if let Kind::Stream(p) = &mut self.sockets[peer].kind {
                    p.peer_closed(!s.write_shut);
                }
                self.wake_reader(peer);
                self.wake_writer(peer);
            }
            Kind::Listener { addr, backlog, .. } => {
                self.listeners.remove(&addr);
                for pending in backlog {
                    self.reset(pending);
                    self.close(pending);
                }
            }
            Kind::Fresh | Kind::Counter(_) => {}
        }
    }
}
