//! Chat room, one process per client (course note 004's multi-process
//! server): every line a client sends goes to every *other* client, through
//! one shared-memory region instead of the parent's sockets.
//!
//! ```text
//! cargo run --example chat_processes -- [ADDR] [--max-clients N] [--dispatcher NAME] [--grace SECS] [--stall SECS]   # default 127.0.0.1:9006
//! cargo run --example chat_client -- 127.0.0.1:9006                                                # in two terminals
//! ```
//!
//! * **The parent** (the master) accepts on its loop and `fork`s one child
//!   per client. Its loop watches the listener, one `socketpair` end per
//!   child, SIGCHLD (reap every exited child with `waitpid(-1, WNOHANG)` in
//!   a loop, free its slot, close its socketpair) and SIGTERM/SIGINT
//!   (forward SIGTERM to the children, wait for them up to `--grace`
//!   seconds, SIGKILL what is left, exit 0). Its loop is a `poll` loop: an
//!   epoll or io_uring instance would be inherited by every child and
//!   shared with it in the kernel.
//! * **The shared memory**: one memfd mapped `MAP_SHARED` before the first
//!   fork ([`SharedRegion`]), cut into `--max-clients` slots, one per client.
//!   A slot is a ring of [`RING`] entries; an entry holds a line (at most
//!   [`LINE_MAX`] bytes, newline included), its length and its sequence
//!   number. A client past `--max-clients` is told `room full` and closed.
//! * **A child** runs its own [`EventLoop`] on its client's socket and its
//!   socketpair end. A line from its client goes into its slot's next entry
//!   (seq n) and the child tells the parent `LINE slot k seq n` (16 bytes).
//!   The parent sends the same record to every *other* child; each copies
//!   the line out of slot k, queues it for its client and answers `COPIED k
//!   n`. Once every other child has copied entry n, the parent tells the
//!   writer `FREED n`: a writer never has more than [`RING`] lines that not
//!   every reader has copied, so it never overwrites one (it stops reading
//!   its client instead, and TCP pushes back on the client).
//!
//! What a reader may see, and why it never sends a torn line: see
//! [`write_line`] and [`read_line`] (a seqlock per entry).
//!
//! Bounds: every queue has one. A line longer than [`LINE_MAX`] closes its
//! client; a child reads at most [`INPUT_MAX`] bytes ahead of what it has
//! written into its slot; a client that does not read its lines is closed
//! (its child exits) once [`OUTPUT_MAX`] bytes wait for it, so it cannot
//! stall the room: its child keeps copying and acknowledging. The parent's
//! queue towards a child is at most [`TO_CHILD_MAX`] bytes; a child that
//! lets it fill is killed, and so is one that has not copied lines sent to
//! it `--stall` seconds ago (default 5: a stopped child would otherwise
//! hold every writer at its ring's end). Every wait is bounded: the stop
//! waits `--grace` seconds, then SIGKILLs and waits 5 s more.
//!
//! Why a memfd and not an anonymous `MAP_SHARED` mapping (POSIX, which
//! [`SharedRegion::anonymous`] also makes): the example needs Linux anyway
//! (`sys::fork` counts the process's threads in `/proc`), and a memfd has a
//! name: `/proc/PID/fd/N -> /memfd:chat_processes-PID (deleted)` and a line
//! of `/proc/PID/maps` in the parent and every child, which is how a reader
//! (and the test) sees who holds the region, and that nobody does after
//! the stop.
//!
//! `RUST_LOG=debug` narrates forks, slot writes, notifications and frees.
//! Linux only (memfd, and `sys::fork` counts threads in `/proc`).

#[path = "common/cli.rs"]
mod cli;

use std::process::ExitCode;

#[cfg(muxloop_linux)]
use room::*;

#[cfg(not(muxloop_linux))]
fn main() -> ExitCode {
    let _ = cli::parse_addr; // the module is shared with the other examples
    eprintln!(
        "error: chat_processes needs Linux (memfd_create for its shared memory, /proc for sys::fork's thread check)"
    );
    ExitCode::FAILURE
}

#[cfg(muxloop_linux)]
fn main() -> ExitCode {
    use clap::Parser;
    let cli = Cli::parse();
    if let Err(e) = muxloop::AnyDispatcher::by_name(&cli.dispatcher) {
        eprintln!("error: --dispatcher: {e}");
        return ExitCode::from(2);
    }
    cli::main(|| run(cli))
}

#[cfg(muxloop_linux)]
mod room {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::io::{self, Write};
    use std::net::{SocketAddr, TcpListener};
    use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
    use std::rc::Rc;
    use std::sync::atomic::{AtomicU64, Ordering, fence};
    use std::time::{Duration, Instant};

    use clap::Parser;
    use clap::builder::PossibleValuesParser;
    use libc::SIGKILL;
    use log::{debug, info, warn};
    use muxloop::signal::{SIGCHLD, SIGINT, SIGTERM};
    pub use muxloop::sys::SharedRegion;
    use muxloop::sys::{self, Forked};
    use muxloop::{Dispatcher, EventLoop, Interest, Mode, PollDispatcher};

    use super::cli;

    /// Entries in each client's ring: lines a writer may have that not every reader has copied.
    pub const RING: usize = 64;
    /// The longest line, newline included.
    pub const LINE_MAX: usize = 1024;
    /// Words of one entry: the seqlock word, the length, the line.
    const ENTRY_WORDS: usize = 2 + LINE_MAX / 8;
    /// What a child reads from its client ahead of its slot.
    pub const INPUT_MAX: usize = 64 * 1024;
    /// Lines waiting for one client; past it the client is closed.
    pub const OUTPUT_MAX: usize = 1024 * 1024;
    /// Records the parent queues for one child; past it the child is killed.
    pub const TO_CHILD_MAX: usize = 64 * 1024;
    /// Bytes of one socketpair record: kind (u32), slot (u32), seq (u64).
    const RECORD: usize = 16;

    /// Child -> parent: "I wrote line `seq` in my slot". Parent -> child: "slot k has line `seq`".
    const LINE: u32 = 1;
    /// Child -> parent: "I copied slot k's lines up to `seq`".
    const COPIED: u32 = 2;
    /// Parent -> child: "every other child copied your lines up to `seq`".
    const FREED: u32 = 3;

    /// Chat room with one process per client and the lines in shared memory.
    #[derive(Parser)]
    #[command(name = "chat_processes", version)]
    pub struct Cli {
        /// Address to listen on: HOST:PORT, :PORT or PORT
        #[arg(default_value = "127.0.0.1:9006", value_parser = cli::parse_addr)]
        addr: SocketAddr,
        /// Clients in the room at once (one shared-memory slot each); more are refused
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(2..=256))]
        max_clients: u16,
        /// The I/O multiplexer of each child's loop (the parent's is poll)
        #[arg(long, value_name = "NAME", default_value = muxloop::default_dispatcher_name(),
              value_parser = PossibleValuesParser::new(muxloop::AnyDispatcher::names()), ignore_case = true)]
        pub dispatcher: String,
        /// Seconds the children get to exit after SIGTERM before SIGKILL
        #[arg(long, default_value_t = 3)]
        grace: u64,
        /// Seconds a child may leave lines uncopied (stopped, stuck) before it is killed
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
        stall: u64,
    }

    // ---------------------------------------------------------------- slots

    /// The first word of slot `slot`'s entry for line `seq`.
    fn entry(slot: usize, seq: u64) -> usize {
        (slot * RING + (seq % RING as u64) as usize) * ENTRY_WORDS
    }

    /// Writes line `seq` (`line.len() <= LINE_MAX`) into its entry of `slot`.
    ///
    /// A seqlock with one writer per slot (the slot's child, nobody else
    /// ever writes it): the entry's first word is `2 * seq + 1` (odd) while
    /// the line is being written and `2 * seq + 2` once it is complete. The
    /// release fence after the odd store keeps the line's stores after it;
    /// the release store of the even value keeps them before it.
    fn write_line(words: &[AtomicU64], slot: usize, seq: u64, line: &[u8]) {
        let at = entry(slot, seq);
        words[at].store(2 * seq + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        words[at + 1].store(line.len() as u64, Ordering::Relaxed);
        for (i, chunk) in line.chunks(8).enumerate() {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            words[at + 2 + i].store(u64::from_ne_bytes(word), Ordering::Relaxed);
        }
        words[at].store(2 * seq + 2, Ordering::Release);
    }

    /// Copies line `seq` of `slot` out, or `None` if the entry does not hold
    /// it, whole, from start to end of the copy.
    ///
    /// Why a reader never sends a torn line: it reads the seqlock word
    /// (acquire), copies, then reads it again after an acquire fence. The
    /// line is sent only if both reads give `2 * seq + 2`: the entry held
    /// line `seq`, complete, before the copy, and no writer started on it
    /// (which would have made the word odd first) before the copy ended. A
    /// rewrite in the middle changes the word, and the copy is thrown away.
    /// The flow control (`FREED`) makes that case impossible for a
    /// well-behaved room; the check is what makes it harmless if it happens.
    fn read_line(words: &[AtomicU64], slot: usize, seq: u64) -> Option<Vec<u8>> {
        let at = entry(slot, seq);
        let before = words[at].load(Ordering::Acquire);
        if before != 2 * seq + 2 {
            return None;
        }
        let len = (words[at + 1].load(Ordering::Relaxed) as usize).min(LINE_MAX);
        let mut line = Vec::with_capacity(len.next_multiple_of(8));
        for i in 0..len.div_ceil(8) {
            line.extend_from_slice(&words[at + 2 + i].load(Ordering::Relaxed).to_ne_bytes());
        }
        line.truncate(len);
        fence(Ordering::Acquire);
        (words[at].load(Ordering::Relaxed) == before).then_some(line)
    }

    // --------------------------------------------------------- the records

    fn record(kind: u32, slot: usize, seq: u64) -> [u8; RECORD] {
        let mut r = [0u8; RECORD];
        r[..4].copy_from_slice(&kind.to_ne_bytes());
        r[4..8].copy_from_slice(&(slot as u32).to_ne_bytes());
        r[8..].copy_from_slice(&seq.to_ne_bytes());
        r
    }

    fn parse(r: &[u8]) -> (u32, usize, u64) {
        let kind = u32::from_ne_bytes(r[..4].try_into().unwrap());
        let slot = u32::from_ne_bytes(r[4..8].try_into().unwrap()) as usize;
        (kind, slot, u64::from_ne_bytes(r[8..16].try_into().unwrap()))
    }

    /// Bytes waiting to be written to a non-blocking fd, at most `limit`.
    #[derive(Default)]
    struct Outbox {
        bytes: Vec<u8>,
        limit: usize,
    }

    impl Outbox {
        fn new(limit: usize) -> Outbox {
            Outbox { bytes: Vec::new(), limit }
        }

        /// Queues `data`; `false` (and nothing queued) if it would pass the limit.
        fn push(&mut self, data: &[u8]) -> bool {
            if self.bytes.len() + data.len() > self.limit {
                return false;
            }
            self.bytes.extend_from_slice(data);
            true
        }

        /// Sends what it can; `Ok(true)` once empty.
        fn flush(&mut self, fd: &OwnedFd) -> io::Result<bool> {
            while !self.bytes.is_empty() {
                match sys::send(fd.as_fd(), &self.bytes) {
                    Ok(n) => drop(self.bytes.drain(..n)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(true)
        }
    }

    /// Reads what `fd` has into `into` (at most `max` bytes in all);
    /// `Ok(true)` at end of file. A short read ends it: the loops are
    /// level-triggered, so what arrives later wakes them again (one `recv`
    /// per wake-up, not a second one that fails with `EAGAIN`).
    fn read_some(fd: &OwnedFd, into: &mut Vec<u8>, max: usize) -> io::Result<bool> {
        let mut buf = [0u8; 16 * 1024];
        while into.len() < max {
            let room = buf.len().min(max - into.len());
            match sys::recv(fd.as_fd(), &mut buf[..room]) {
                Ok(0) => return Ok(true),
                Ok(n) if n < room => {
                    into.extend_from_slice(&buf[..n]);
                    break;
                }
                Ok(n) => into.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// Sets `fd`'s interest if it changed (each change is an `epoll_ctl`).
    fn want<D: Dispatcher>(ev: &mut EventLoop<D>, fd: RawFd, interest: Interest) {
        if ev.interest(fd).is_some_and(|now| now != interest) {
            let _ = ev.set_interest(fd, interest);
        }
    }

    // ------------------------------------------------------------- parent

    /// One client, as the parent sees it.
    struct Member {
        pid: libc::pid_t,
        peer: SocketAddr,
        /// The parent's end of the socketpair; `None` once the child closed it.
        sock: Option<OwnedFd>,
        input: Vec<u8>,
        out: Outbox,
        /// For each writer slot, the last of its lines this member copied.
        copied: Vec<u64>,
        /// The last of this member's own lines every other member copied.
        freed: u64,
        /// Since when it has been behind, and the lines it must reach to catch up.
        behind: Option<(Instant, Vec<u64>)>,
    }

    /// The parent's state, shared by its handlers.
    struct Room {
        region: Rc<SharedRegion>,
        members: Vec<Option<Member>>,
        /// For each slot, the last sequence number its writers announced
        /// (it carries on across occupants, so an old notification can never
        /// name a new occupant's line).
        last_seq: Vec<u64>,
        /// Accepted clients waiting for their fork.
        arriving: Vec<(OwnedFd, SocketAddr)>,
        stopping: Option<Instant>,
        /// Members whose sockets wait for WRITABLE.
        dirty: Vec<usize>,
    }

    impl Room {
        fn present(&self) -> usize {
            self.members.iter().flatten().count()
        }

        /// The last line of `writer` every live other member has copied.
        fn copied_by_all(&self, writer: usize) -> u64 {
            let readers = self.members.iter().enumerate().filter(|(j, _)| *j != writer);
            readers
                .filter_map(|(_, m)| m.as_ref().filter(|m| m.sock.is_some()))
                .map(|m| m.copied[writer])
                .min()
                .unwrap_or(self.last_seq[writer])
        }

        /// Queues `rec` for member `slot`; a child whose queue is full is stuck: killed.
        fn send_to(&mut self, slot: usize, rec: &[u8]) {
            let Some(m) = self.members[slot].as_mut() else { return };
            if m.sock.is_none() {
                return;
            }
            if !m.out.push(rec) {
                warn!(
                    "slot {slot}: child {} does not read its socketpair ({TO_CHILD_MAX} bytes queued), killing it",
                    m.pid
                );
                let _ = sys::kill(m.pid, SIGKILL);
                m.out.bytes.clear();
                return;
            }
            if !self.dirty.contains(&slot) {
                self.dirty.push(slot);
            }
        }

        /// Tells writer `slot` how far every reader has copied, if that moved.
        fn update_freed(&mut self, slot: usize) {
            let all = self.copied_by_all(slot);
            let Some(m) = self.members[slot].as_mut() else { return };
            if all > m.freed {
                m.freed = all;
                debug!("slot {slot}: lines up to {all} copied by every reader: FREED");
                self.send_to(slot, &record(FREED, slot, all));
            }
        }

        /// One record from member `from`.
        fn on_record(&mut self, from: usize, kind: u32, slot: usize, seq: u64) {
            match kind {
                LINE if slot == from => {
                    self.last_seq[slot] = seq;
                    let others: Vec<usize> = (0..self.members.len())
                        .filter(|&j| j != from && self.members[j].as_ref().is_some_and(|m| m.sock.is_some()))
                        .collect();
                    debug!("slot {slot} seq {seq}: telling slots {others:?}");
                    for j in others {
                        self.send_to(j, &record(LINE, slot, seq));
                    }
                    self.update_freed(slot);
                }
                COPIED if slot < self.members.len() => {
                    if let Some(m) = self.members[from].as_mut() {
                        m.copied[slot] = m.copied[slot].max(seq);
                    }
                    self.update_freed(slot);
                }
                _ => warn!("slot {from}: bad record ({kind}, {slot}, {seq}), ignored"),
            }
        }

        /// Member `slot` closed its socketpair: no more notifications to it.
        fn hang_up<D: Dispatcher>(&mut self, ev: &mut EventLoop<D>, slot: usize) {
            let Some(m) = self.members[slot].as_mut() else { return };
            if let Some(sock) = m.sock.take() {
                let _ = ev.deregister(sock.as_raw_fd());
                debug!("slot {slot}: socketpair closed (child {})", m.pid);
            }
            // It no longer holds the writers back.
            for writer in 0..self.members.len() {
                self.update_freed(writer);
            }
        }

        /// Sends the queued records; WRITABLE interest for those that wait.
        fn flush<D: Dispatcher>(&mut self, ev: &mut EventLoop<D>) {
            for slot in std::mem::take(&mut self.dirty) {
                let Some(m) = self.members[slot].as_mut() else { continue };
                let Some(sock) = m.sock.as_ref() else { continue };
                let fd = sock.as_raw_fd();
                match m.out.flush(sock) {
                    Ok(done) => {
                        want(ev, fd, if done { Interest::READABLE } else { Interest::BOTH });
                    }
                    Err(e) => {
                        debug!("slot {slot}: socketpair: {e}");
                        self.hang_up(ev, slot);
                    }
                }
            }
        }

        /// Kills the children that have not copied lines sent to them
        /// `stall` ago: the writers wait for them (FREED), so one stopped
        /// child (SIGSTOP, a debugger) would otherwise stall the whole room.
        fn check_stalls(&mut self, stall: Duration) {
            let now = Instant::now();
            for slot in 0..self.members.len() {
                let last_seq = self.last_seq.clone();
                let Some(m) = self.members[slot].as_mut().filter(|m| m.sock.is_some()) else { continue };
                let caught_up = |m: &Member, target: &[u64]| {
                    (0..target.len()).all(|k| k == slot || m.copied[k] >= target[k])
                };
                if let Some((since, target)) = &m.behind {
                    if caught_up(m, target) {
                        m.behind = None;
                    } else if now.duration_since(*since) >= stall {
                        warn!(
                            "slot {slot}: child {} has not copied lines sent to it {stall:?} ago, killing it",
                            m.pid
                        );
                        let _ = sys::kill(m.pid, SIGKILL);
                        continue;
                    }
                }
                if m.behind.is_none() && !caught_up(m, &last_seq) {
                    m.behind = Some((now, last_seq));
                }
            }
        }

        /// Collects every exited child; frees its slot.
        fn reap<D: Dispatcher>(&mut self, ev: &mut EventLoop<D>) {
            loop {
                match sys::teaching::waitpid_nohang() {
                    Ok(Some((pid, status))) => {
                        let Some(slot) =
                            self.members.iter().position(|m| m.as_ref().is_some_and(|m| m.pid == pid))
                        else {
                            continue;
                        };
                        self.hang_up(ev, slot);
                        let m = self.members[slot].take().expect("a member");
                        info!(
                            "{} left: child {pid} reaped ({status}), slot {slot} free ({} in the room)",
                            m.peer,
                            self.present()
                        );
                    }
                    Ok(None) => break,
                    Err(e) if e.raw_os_error() == Some(libc::ECHILD) => break,
                    Err(e) => {
                        warn!("waitpid: {e}");
                        break;
                    }
                }
            }
        }
    }

    /// What a forked child starts from.
    pub struct Start {
        slot: usize,
        client: OwnedFd,
        peer: SocketAddr,
        sock: OwnedFd,
        region: Rc<SharedRegion>,
        parent_pid: libc::pid_t,
        /// Its first line is `base + 1`.
        base: u64,
        freed: u64,
        dispatcher: String,
    }

    /// Which side of the forks `parent` returns on.
    enum Role {
        Parent,
        Child(Start),
    }

    pub fn run(cli: Cli) -> io::Result<()> {
        // Blocked before any loop watches them, and so in every child from
        // its birth: a SIGTERM the parent forwards before the child's loop
        // watches it stays pending for that loop instead of killing the
        // child, and dropping the parent's loop in a child (below) leaves
        // them blocked (a loop restores only what it changed).
        sys::block_signals(&[SIGCHLD, SIGTERM, SIGINT])?;
        match parent(&cli)? {
            Role::Parent => Ok(()),
            // Here in a child: `parent` has returned, so its loop, its
            // listener, the other children's socketpair ends and its room
            // were dropped, closing this process's copies of their fds.
            Role::Child(start) => std::process::exit(child(start)),
        }
    }

    fn parent(cli: &Cli) -> io::Result<Role> {
        let listener = TcpListener::bind(cli.addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let max = usize::from(cli.max_clients);
        let name = format!("chat_processes-{}", sys::getpid());
        let region = Rc::new(SharedRegion::memfd(&name, max * RING * ENTRY_WORDS * 8)?);
        info!(
            "shared memory: /memfd:{name}, {} bytes: {max} slots of {RING} lines of {LINE_MAX} bytes",
            region.len()
        );
        let room = Rc::new(RefCell::new(Room {
            region: Rc::clone(&region),
            members: (0..max).map(|_| None).collect(),
            last_seq: vec![0; max],
            arriving: Vec::new(),
            stopping: None,
            dirty: Vec::new(),
        }));
        let mut ev = EventLoop::<PollDispatcher>::new()?;
        ev.set_name("parent");
        let fd = listener.as_raw_fd();
        let r = Rc::clone(&room);
        ev.register(fd, Interest::READABLE, Mode::Level, move |_, _| accept_all(&listener, &r, max))?;
        let r = Rc::clone(&room);
        ev.on_signal(SIGCHLD, move |ev, _| r.borrow_mut().reap(ev))?;
        for signal in [SIGTERM, SIGINT] {
            let r = Rc::clone(&room);
            let grace = Duration::from_secs(cli.grace);
            ev.on_signal(signal, move |ev, info| {
                let mut room = r.borrow_mut();
                if room.stopping.is_some() {
                    return;
                }
                info!("signal {}: stopping {} child(ren) (grace {grace:?})", info.signal, room.present());
                room.stopping = Some(Instant::now() + grace);
                let _ = ev.deregister(fd); // drops the handler, so the listener: no new clients
                room.arriving.clear();
                for m in room.members.iter().flatten() {
                    let _ = sys::kill(m.pid, SIGTERM);
                }
            })?;
        }
        let r = Rc::clone(&room);
        let stall = Duration::from_secs(cli.stall);
        ev.run_every(Duration::from_secs(1).min(stall), move |_| r.borrow_mut().check_stalls(stall));
        println!("listening on {addr} (dispatcher: {})", cli.dispatcher);
        io::stdout().flush()?;
        let mut killed: Option<Instant> = None;
        loop {
            let stopping = room.borrow().stopping;
            if let Some(deadline) = stopping {
                if room.borrow().present() == 0 {
                    info!("every child reaped: bye");
                    return Ok(Role::Parent);
                }
                match killed {
                    None if Instant::now() >= deadline => {
                        let room = room.borrow();
                        warn!("grace over: SIGKILL to {} child(ren)", room.present());
                        for m in room.members.iter().flatten() {
                            let _ = sys::kill(m.pid, SIGKILL);
                        }
                        killed = Some(Instant::now() + Duration::from_secs(5));
                    }
                    Some(at) if Instant::now() >= at => {
                        return Err(io::Error::other("children still not reaped 5 s after SIGKILL"));
                    }
                    _ => {}
                }
            }
            let timeout = stopping.map(|_| Duration::from_millis(50));
            ev.run_once(timeout)?;
            let arriving = std::mem::take(&mut room.borrow_mut().arriving);
            for (client, peer) in arriving {
                if let Some(start) = admit(&mut ev, &room, client, peer, &cli.dispatcher)? {
                    return Ok(Role::Child(start));
                }
            }
            room.borrow_mut().flush(&mut ev);
        }
    }

    /// Accepts every waiting client; refuses those past the room's size.
    fn accept_all(listener: &TcpListener, room: &Rc<RefCell<Room>>, max: usize) {
        loop {
            let (client, peer) = match sys::accept(listener.as_fd()) {
                Ok((fd, raw)) => (fd, raw.to_inet().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    warn!("accept: {e}");
                    return;
                }
            };
            let mut room = room.borrow_mut();
            if room.present() + room.arriving.len() >= max {
                warn!("{peer}: room full ({max} clients), refused");
                // A new socket's send buffer is empty: a short line fits.
                let _ =
                    sys::send(client.as_fd(), format!("room full ({max} clients), try later\n").as_bytes());
                continue;
            }
            room.arriving.push((client, peer));
        }
    }

    /// Gives `client` a slot, a socketpair and a child process. In the child,
    /// returns what it starts from.
    fn admit(
        ev: &mut EventLoop<PollDispatcher>,
        room_rc: &Rc<RefCell<Room>>,
        client: OwnedFd,
        peer: SocketAddr,
        dispatcher: &str,
    ) -> io::Result<Option<Start>> {
        let mut room = room_rc.borrow_mut();
        let slot = room.members.iter().position(Option::is_none).expect("admitted within the room's size");
        let (ours, theirs) = sys::socketpair()?;
        let base = room.last_seq[slot];
        let freed = room.copied_by_all(slot);
        let parent_pid = sys::getpid();
        debug!("forking a child for {peer}: slot {slot}, lines from {}", base + 1);
        // Anything buffered would be written twice, once by each process.
        io::stdout().flush()?;
        match sys::fork()? {
            Forked::Child => {
                // This process's copy of the parent's end; the rest of the
                // parent's state is dropped when `parent` returns.
                drop(ours);
                Ok(Some(Start {
                    slot,
                    client,
                    peer,
                    sock: theirs,
                    region: Rc::clone(&room.region),
                    parent_pid,
                    base,
                    freed,
                    dispatcher: dispatcher.to_owned(),
                }))
            }
            Forked::Parent(pid) => {
                drop(theirs);
                drop(client);
                let fd = ours.as_raw_fd();
                let copied = room.last_seq.clone();
                room.members[slot] = Some(Member {
                    pid,
                    peer,
                    sock: Some(ours),
                    input: Vec::new(),
                    out: Outbox::new(TO_CHILD_MAX),
                    copied,
                    freed,
                    behind: None,
                });
                info!("{peer} joined: slot {slot}, child pid {pid} ({} in the room)", room.present());
                drop(room);
                let r = Rc::clone(room_rc);
                ev.register(fd, Interest::READABLE, Mode::Level, move |ev, event| {
                    on_child_socket(
                        ev,
                        &r,
                        slot,
                        event.is_readable() || event.is_hangup() || event.is_error(),
                    );
                })?;
                Ok(None)
            }
        }
    }

    /// The parent's handler for member `slot`'s socketpair.
    fn on_child_socket<D: Dispatcher>(
        ev: &mut EventLoop<D>,
        room: &Rc<RefCell<Room>>,
        slot: usize,
        readable: bool,
    ) {
        let mut room = room.borrow_mut();
        let Some(m) = room.members[slot].as_mut() else { return };
        let Some(sock) = m.sock.as_ref() else { return };
        let mut eof = false;
        if readable {
            match read_some(sock, &mut m.input, 64 * RECORD * 16) {
                Ok(end) => eof = end,
                Err(e) => {
                    debug!("slot {slot}: socketpair: {e}");
                    eof = true;
                }
            }
        }
        if !room.dirty.contains(&slot) {
            room.dirty.push(slot); // WRITABLE, or a record to send
        }
        let m = room.members[slot].as_mut().expect("a member");
        let whole = m.input.len() / RECORD * RECORD;
        let records: Vec<u8> = m.input.drain(..whole).collect();
        for r in records.chunks(RECORD) {
            let (kind, s, seq) = parse(r);
            room.on_record(slot, kind, s, seq);
        }
        if eof {
            room.hang_up(ev, slot);
        }
        room.flush(ev);
    }

    // -------------------------------------------------------------- child

    /// A child's state, shared by its handlers.
    struct Child {
        slot: usize,
        peer: SocketAddr,
        region: Rc<SharedRegion>,
        client: OwnedFd,
        sock: OwnedFd,
        /// Bytes from the client not yet written into the slot.
        input: Vec<u8>,
        client_eof: bool,
        out: Outbox,
        from_parent: Vec<u8>,
        to_parent: Outbox,
        /// The last line written into the slot, and the last every reader copied.
        written: u64,
        freed: u64,
        /// Why the child is leaving, once it is.
        done: Option<&'static str>,
    }

    impl Child {
        /// Queues a record for the parent; one that cannot be queued (the
        /// parent has not read [`TO_CHILD_MAX`] bytes of them) ends the child.
        fn tell_parent(&mut self, rec: [u8; RECORD]) {
            if !self.to_parent.push(&rec) && self.done.is_none() {
                warn!("slot {}: the parent does not read its socketpair, leaving", self.slot);
                self.done = Some("the parent is stuck");
            }
        }

        /// Writes the client's complete lines into the slot while the ring has room.
        fn publish(&mut self) {
            while self.written - self.freed < RING as u64 {
                let Some(eol) = self.input.iter().position(|&b| b == b'\n') else { break };
                if eol + 1 > LINE_MAX {
                    break;
                }
                let line: Vec<u8> = self.input.drain(..=eol).collect();
                self.written += 1;
                write_line(self.region.words(), self.slot, self.written, &line);
                debug!("slot {}: line {} ({} bytes) written", self.slot, self.written, line.len());
                // At most RING lines are ever unanswered, so this queue stays small.
                self.tell_parent(record(LINE, self.slot, self.written));
            }
            let pending_line = self.input.iter().position(|&b| b == b'\n');
            if pending_line.unwrap_or(self.input.len()) + 1 > LINE_MAX && self.done.is_none() {
                let _ = self.out.push(format!("line longer than {LINE_MAX} bytes, bye\n").as_bytes());
                self.done = Some("line too long");
            }
        }

        /// Handles the parent's records: copies the lines it names.
        fn on_parent(&mut self) {
            let whole = self.from_parent.len() / RECORD * RECORD;
            let records: Vec<u8> = self.from_parent.drain(..whole).collect();
            let mut copied: BTreeMap<usize, u64> = BTreeMap::new();
            for r in records.chunks(RECORD) {
                match parse(r) {
                    (LINE, slot, seq) => {
                        match read_line(self.region.words(), slot, seq) {
                            Some(line) => {
                                debug!(
                                    "slot {}: copied slot {slot} line {seq} ({} bytes)",
                                    self.slot,
                                    line.len()
                                );
                                if self.done.is_none() && !self.out.push(&line) {
                                    warn!(
                                        "{}: {OUTPUT_MAX} bytes wait for this client, closing it",
                                        self.peer
                                    );
                                    // Not worth sending any more: the child leaves at once.
                                    self.out.bytes.clear();
                                    self.done = Some("slow client");
                                }
                            }
                            None => warn!("slot {}: slot {slot} line {seq} was overwritten: lost", self.slot),
                        }
                        let c = copied.entry(slot).or_default();
                        *c = (*c).max(seq);
                    }
                    (FREED, _, seq) => {
                        self.freed = self.freed.max(seq);
                        debug!("slot {}: lines up to {seq} freed", self.slot);
                    }
                    other => warn!("slot {}: bad record {other:?}", self.slot),
                }
            }
            for (slot, seq) in copied {
                self.tell_parent(record(COPIED, slot, seq));
            }
            self.publish();
        }

        /// Sends what is queued; sets both fds' interest; quits when done.
        fn settle<D: Dispatcher>(&mut self, ev: &mut EventLoop<D>) {
            if let Err(e) = self.to_parent.flush(&self.sock) {
                debug!("slot {}: socketpair: {e}", self.slot);
                self.done = Some("the parent is gone");
            }
            let sent = match self.out.flush(&self.client) {
                Ok(sent) => sent,
                Err(e) => {
                    self.done.get_or_insert("client error");
                    debug!("{}: {e}", self.peer);
                    true
                }
            };
            let has_line = self.input.contains(&b'\n');
            let reading =
                !self.client_eof && self.input.len() < INPUT_MAX && !has_line && self.done.is_none();
            let mut client = if reading { Interest::READABLE } else { Interest::NONE };
            if !sent {
                client = client.add(Interest::WRITABLE);
            }
            let mut sock = Interest::READABLE;
            if !self.to_parent.bytes.is_empty() {
                sock = sock.add(Interest::WRITABLE);
            }
            want(ev, self.client.as_raw_fd(), client);
            want(ev, self.sock.as_raw_fd(), sock);
            if self.client_eof && !has_line && self.to_parent.bytes.is_empty() && self.done.is_none() {
                self.done = Some("the client left");
            }
            // Leave once the goodbye and the last notifications are out, or
            // at once if the parent cannot take them.
            let parent_lost = matches!(self.done, Some("the parent is gone" | "the parent is stuck"));
            let flushed = (sent || self.client_eof) && self.to_parent.bytes.is_empty();
            if parent_lost || (self.done.is_some() && flushed) {
                ev.quit();
            }
        }
    }

    /// The child's life: its own loop on its client and its socketpair end.
    /// Returns the exit status.
    fn child(start: Start) -> i32 {
        match serve(start) {
            Ok(()) => 0,
            Err(e) => {
                warn!("child {}: {e}", sys::getpid());
                1
            }
        }
    }

    fn serve(start: Start) -> io::Result<()> {
        let parent_pid = start.parent_pid;
        // Not outliving a parent killed with SIGKILL.
        sys::set_parent_death_signal(SIGTERM)?;
        let mut ev = EventLoop::with_backend(&start.dispatcher)?;
        ev.set_name(format!("slot-{}", start.slot));
        debug!("child {} (parent {parent_pid}): slot {}, client {}", sys::getpid(), start.slot, start.peer);
        let client_fd = start.client.as_raw_fd();
        let sock_fd: RawFd = start.sock.as_raw_fd();
        let me = Rc::new(RefCell::new(Child {
            slot: start.slot,
            peer: start.peer,
            region: start.region,
            client: start.client,
            sock: start.sock,
            input: Vec::new(),
            client_eof: false,
            out: Outbox::new(OUTPUT_MAX),
            from_parent: Vec::new(),
            to_parent: Outbox::new(TO_CHILD_MAX),
            written: start.base,
            freed: start.freed,
            done: None,
        }));
        for signal in [SIGTERM, SIGINT] {
            let me = Rc::clone(&me);
            ev.on_signal(signal, move |ev, info| {
                debug!("slot {}: signal {}, leaving", me.borrow().slot, info.signal);
                ev.quit();
            })?;
        }
        let c = Rc::clone(&me);
        ev.register(client_fd, Interest::READABLE, Mode::Level, move |ev, event| {
            let mut me = c.borrow_mut();
            if event.is_readable() || event.is_hangup() || event.is_error() {
                let me = &mut *me;
                match read_some(&me.client, &mut me.input, INPUT_MAX) {
                    Ok(eof) => me.client_eof |= eof,
                    Err(e) => {
                        debug!("{}: {e}", me.peer);
                        me.client_eof = true;
                    }
                }
                me.publish();
            }
            me.settle(ev);
        })?;
        let p = Rc::clone(&me);
        ev.register(sock_fd, Interest::READABLE, Mode::Level, move |ev, event| {
            let mut me = p.borrow_mut();
            if event.is_readable() || event.is_hangup() || event.is_error() {
                let me = &mut *me;
                match read_some(&me.sock, &mut me.from_parent, 1024 * RECORD) {
                    Ok(true) => me.done = Some("the parent is gone"),
                    Ok(false) => {}
                    Err(e) => {
                        debug!("slot {}: socketpair: {e}", me.slot);
                        me.done = Some("the parent is gone");
                    }
                }
                me.on_parent();
            }
            me.settle(ev);
        })?;
        if sys::getppid() != parent_pid {
            return Err(io::Error::other("the parent exited while this child was starting"));
        }
        me.borrow_mut().settle(&mut ev);
        ev.run()?;
        let why = me.borrow().done.unwrap_or("stopped");
        debug!("slot {}: child {} exits ({why})", me.borrow().slot, sys::getpid());
        let _ = ev.deregister(client_fd);
        let _ = ev.deregister(sock_fd);
        Ok(())
    }
}
