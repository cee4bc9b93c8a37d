//! Byte streams in the simulated kernel: what `read`, `write`, `shutdown`
//! and `close` do to the two ends of a connection, as Linux's TCP does it.
//!
//! The rules, each one a thing a real event loop has to cope with:
//! * a write takes what fits in the peer's receive queue (its buffer size
//!   is seeded), `EAGAIN` when nothing fits;
//! * a read returns queued bytes first; then a pending error (`ECONNRESET`)
//!   once; then end of file if the peer sent FIN or the connection is dead;
//! * `shutdown(Write)` sends FIN: the peer reads what was queued, then 0;
//! * closing with unread data sends RST instead of FIN;
//! * writing to a peer that has closed succeeds once and draws its RST:
//!   the next write fails with `EPIPE` (the connection was half-closed,
//!   Linux's `CLOSE_WAIT`) or `ECONNRESET`, and every write after with `EPIPE`.
//!
//! A Unix socket pair (`AF_UNIX`, what `socketpair` and a simulated `pipe`
//! make) closes as `unix_release_sock` does instead: no FIN or RST, the
//! survivor has both directions shut at once (hang-up; reads drain what is
//! queued, then 0; every write fails with `EPIPE`), and if the closed end
//! left unread data, `ECONNRESET` is pending on the survivor (error flag;
//! reported once by a read after the queued bytes).

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;

use super::Fault;
use super::kernel::{Kernel, Kind, SockId};
use crate::dispatcher::Ready;
use crate::sys::RawAddr;

/// A simulated socket's address.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Addr {
    Inet(SocketAddr),
    /// An unnamed `AF_UNIX` socket (a socket pair's ends).
    Unnamed,
}

impl Addr {
    pub(crate) fn raw(self) -> RawAddr {
        match self {
            Addr::Inet(addr) => RawAddr::from_inet(&addr),
            Addr::Unnamed => RawAddr::from_unix_bytes(&[]).expect("an empty name fits"),
        }
    }
}

/// One end of a connection.
#[derive(Debug)]
pub(crate) struct Stream {
    /// The other end, while the connection is alive and the peer open.
    pub(crate) peer: Option<SockId>,
    pub(crate) local_addr: Addr,
    pub(crate) peer_addr: Addr,
    /// Bytes that arrived and were not read yet.
    pub(crate) incoming: VecDeque<u8>,
    /// The receive queue's size (the sender's buffer folded in).
    capacity: usize,
    /// The peer sent FIN: once `incoming` is read, reads return 0.
    fin_received: bool,
    /// This end sent FIN (`shutdown(Write)`).
    pub(crate) write_shut: bool,
    /// A write found the peer's queue full (Linux's `SOCK_NOSPACE`): the
    /// next read that frees room wakes this writer. Without it no read
    /// does: an edge-triggered writer hears of room only after running out.
    nospace: bool,
    /// `shutdown(Read)`: reads return 0.
    read_shut: bool,
    /// `SO_ERROR`: reported once by the next read, write or `take_error`.
    error: Option<i32>,
    /// The connection is dead (RST sent or received, or refused).
    reset: bool,
    /// One end of a Unix socket pair (both ends unnamed), not TCP.
    unix: bool,
}

impl Stream {
    pub(crate) fn new(local_addr: Addr, peer_addr: Addr, capacity: usize) -> Stream {
        Stream {
            peer: None,
            local_addr,
            peer_addr,
            incoming: VecDeque::new(),
            capacity: capacity.max(1),
            fin_received: false,
            write_shut: false,
            nospace: false,
            read_shut: false,
            error: None,
            reset: false,
            unix: local_addr == Addr::Unnamed && peer_addr == Addr::Unnamed,
        }
    }

    /// A connect that found no listener.
    pub(crate) fn refused(peer_addr: Addr) -> Stream {
        let mut s = Stream::new(Addr::Unnamed, peer_addr, 1);
        s.error = Some(libc::ECONNREFUSED);
        s.reset = true;
        s
    }

    pub(crate) fn room(&self) -> usize {
        self.capacity.saturating_sub(self.incoming.len())
    }

    /// An RST arrived: `ECONNRESET`, or `EPIPE` if the peer had already
    /// sent FIN (Linux's `tcp_reset` in `CLOSE_WAIT`). Queued bytes stay readable.
    pub(crate) fn receive_reset(&mut self) {
        if !self.reset {
            self.error = Some(if self.fin_received { libc::EPIPE } else { libc::ECONNRESET });
            self.reset = true;
        }
        self.peer = None;
    }

    /// The peer closed; `fin` if this is also its FIN (it had not shut down).
    pub(crate) fn peer_closed(&mut self, fin: bool) {
        self.fin_received |= fin;
        self.peer = None;
    }

    /// A Unix stream's peer was closed (`unix_release_sock`): this end's
    /// both directions are shut (`SHUTDOWN_MASK`), and `ECONNRESET` is
    /// pending if the peer left unread data.
    pub(crate) fn unix_peer_released(&mut self, unread: bool) {
        self.fin_received = true;
        self.write_shut = true;
        if unread {
            self.error.get_or_insert(libc::ECONNRESET);
        }
        self.peer = None;
    }

    /// Whether this is one end of a Unix socket pair.
    pub(crate) fn is_unix(&self) -> bool {
        self.unix
    }

    /// `tcp_poll`'s answer (`unix_poll`'s too: the same bits), in the contract's terms; `room` is the space the
    /// peer has for our writes (`None`: no live peer, so a write "succeeds").
    pub(crate) fn readiness(&self, room: Option<usize>) -> Ready {
        let mut ready = Ready::EMPTY;
        if self.reset || self.fin_received || self.read_shut {
            ready = ready | Ready::READ_CLOSED | Ready::READABLE;
        }
        if !self.incoming.is_empty() {
            ready = ready | Ready::READABLE;
        }
        if self.reset || self.write_shut || room.is_none_or(|r| r > 0) {
            ready = ready | Ready::WRITABLE;
        }
        if self.reset || (self.write_shut && self.fin_received) {
            ready = ready | Ready::with_flag(Ready::HANGUP);
        }
        if self.error.is_some() {
            ready = ready | Ready::with_flag(Ready::ERROR);
        }
        ready
    }
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl Kernel {
    /// `read`/`recvmsg` on `id`. `faulty`: the program's socket, which the
    /// fault plan may hit (a scenario's peers read exactly).
    pub(crate) fn read(
        &mut self,
        id: SockId,
        bufs: &mut [IoSliceMut<'_>],
        faulty: bool,
    ) -> io::Result<usize> {
        let wanted: usize = bufs.iter().map(|b| b.len()).sum();
        if let Kind::Counter(n) = &mut self.sockets[id].kind {
            let Some(first) = bufs.first_mut().filter(|b| b.len() >= 8) else {
                return Err(errno(libc::EINVAL));
            };
            if *n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            first[..8].copy_from_slice(&std::mem::take(n).to_ne_bytes());
            return Ok(8);
        }
        if faulty && self.roll(Fault::Reset, || format!("socket {id} reset before a read")) {
            self.reset(id);
        }
        let queued = self.stream(id)?.incoming.len();
        if queued > 0 && wanted > 0 {
            if let Some(refused) = self.refused_by_fault(id, Fault::ReadWouldBlock, faulty) {
                return Err(refused);
            }
            let mut n = wanted.min(queued);
            if faulty && n > 1 && self.roll(Fault::ShortRead, || format!("read on socket {id}: short")) {
                n = self.rng.between(1, n as u64 - 1) as usize;
                // Linux's TCP read stops short only at an empty queue: the
                // rest counts as arriving just after, with its own wake-up.
                self.wake_reader(id);
            }
            let stream = self.stream(id)?;
            let mut left = n;
            for buf in bufs.iter_mut() {
                let take = left.min(buf.len());
                let (front, back) = stream.incoming.as_slices();
                let first = take.min(front.len());
                buf[..first].copy_from_slice(&front[..first]);
                buf[first..take].copy_from_slice(&back[..take - first]);
                stream.incoming.drain(..take);
                left -= take;
                if left == 0 {
                    break;
                }
            }
            if let Some(peer) = stream.peer {
                self.room_freed(peer);
            }
            self.moves += 1;
            return Ok(n);
        }
        let stream = self.stream(id)?;
        if let Some(code) = stream.error.take() {
            return Err(errno(code));
        }
        if stream.fin_received || stream.reset || stream.read_shut || wanted == 0 {
            return Ok(0);
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    /// Faults on a read or write of the program's socket `id` that could
    /// go ahead: `would_block` (`ReadWouldBlock` or `WriteWouldBlock`), then
    /// `Interrupted`. A refused call's data or room raises a new wake-up,
    /// as if it had arrived just after.
    fn refused_by_fault(&mut self, id: SockId, would_block: Fault, faulty: bool) -> Option<io::Error> {
        if !faulty {
            return None;
        }
        let reading = would_block == Fault::ReadWouldBlock;
        let call = if reading { "read" } else { "write" };
        for (fault, kind) in
            [(would_block, io::ErrorKind::WouldBlock), (Fault::Interrupted, io::ErrorKind::Interrupted)]
        {
            if self.roll(fault, || format!("{call} on socket {id}: {kind:?} though it could go ahead")) {
                if reading {
                    self.wake_reader(id);
                } else {
                    self.wake_writer(id);
                }
                return Some(kind.into());
            }
        }
        None
    }

    /// The reader of `writer`'s bytes took some: wake the writer if it was
    /// waiting for room (`sk_stream_write_space`).
    fn room_freed(&mut self, writer: SockId) {
        if let Kind::Stream(w) = &mut self.sockets[writer].kind
            && std::mem::take(&mut w.nospace)
        {
            self.wake_writer(writer);
        }
    }

    /// `write`/`sendmsg` on `id` (never `SIGPIPE`: every write here is
    /// `MSG_NOSIGNAL`).
    pub(crate) fn write(&mut self, id: SockId, bufs: &[IoSlice<'_>], faulty: bool) -> io::Result<usize> {
        let offered: usize = bufs.iter().map(|b| b.len()).sum();
        if let Kind::Counter(n) = &mut self.sockets[id].kind {
            let Some(value) = bufs.first().filter(|b| b.len() == 8) else { return Err(errno(libc::EINVAL)) };
            *n = n.saturating_add(u64::from_ne_bytes(value[..8].try_into().expect("8 bytes")));
            self.wake_reader(id);
            return Ok(8);
        }
        if faulty && self.roll(Fault::Reset, || format!("socket {id} reset before a write")) {
            self.reset(id);
        }
        let stream = self.stream(id)?;
        if stream.unix && stream.write_shut {
            // `unix_stream_sendmsg` checks the shutdown, never `sk_err`.
            return Err(errno(libc::EPIPE));
        }
        if let Some(code) = stream.error.take() {
            return Err(errno(code));
        }
        if stream.write_shut || stream.reset {
            return Err(errno(libc::EPIPE));
        }
        if offered == 0 {
            return Ok(0);
        }
        let room = match stream.peer {
            None => offered, // the peer closed: these bytes draw its RST
            Some(peer) => match &self.sockets[peer].kind {
                Kind::Stream(p) => p.room(),
                _ => 0,
            },
        };
        if room == 0 {
            self.stream(id)?.nospace = true;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if let Some(refused) = self.refused_by_fault(id, Fault::WriteWouldBlock, faulty) {
            return Err(refused);
        }
        let mut n = offered.min(room);
        if faulty && n > 1 && self.roll(Fault::ShortWrite, || format!("write on socket {id}: short")) {
            n = self.rng.between(1, n as u64 - 1) as usize;
        }
        if n < offered {
            self.stream(id)?.nospace = true;
        }
        let Some(peer) = self.stream(id)?.peer else {
            self.stream(id)?.receive_reset();
            self.wake_reader(id);
            self.wake_writer(id);
            return Ok(n);
        };
        let mut left = n;
        let Kind::Stream(p) = &mut self.sockets[peer].kind else {
            unreachable!("a stream's peer is a stream")
        };
        for buf in bufs {
            let take = left.min(buf.len());
            p.incoming.extend(&buf[..take]);
            left -= take;
            if left == 0 {
                break;
            }
        }
        self.wake_reader(peer);
        Ok(n)
    }

    /// `shutdown(2)`.
    pub(crate) fn shutdown(&mut self, id: SockId, how: std::net::Shutdown) -> io::Result<()> {
        let stream = self.stream(id)?;
        if stream.reset {
            return Err(errno(libc::ENOTCONN));
        }
        let peer = stream.peer;
        if matches!(how, std::net::Shutdown::Read | std::net::Shutdown::Both) {
            stream.read_shut = true;
        }
        if matches!(how, std::net::Shutdown::Write | std::net::Shutdown::Both) && !stream.write_shut {
            stream.write_shut = true;
            if let Some(peer) = peer {
                if let Kind::Stream(p) = &mut self.sockets[peer].kind {
                    p.fin_received = true;
                }
                self.wake_reader(peer);
                self.wake_writer(peer);
            }
        }
        self.wake_reader(id);
        self.wake_writer(id);
        Ok(())
    }

    /// `getsockopt(SO_ERROR)`: reads and clears the pending error.
    pub(crate) fn take_error(&mut self, id: SockId) -> Option<i32> {
        match &mut self.sockets[id].kind {
            Kind::Stream(s) => s.error.take(),
            _ => None,
        }
    }

    /// `getsockname` / `getpeername`.
    pub(crate) fn address(&self, id: SockId, peer: bool) -> io::Result<RawAddr> {
        match &self.sockets[id].kind {
            Kind::Stream(s) if peer && s.reset => Err(errno(libc::ENOTCONN)),
            Kind::Stream(s) => Ok(if peer { s.peer_addr } else { s.local_addr }.raw()),
            Kind::Listener { addr, .. } if !peer => Ok(RawAddr::from_inet(addr)),
            _ => Err(errno(libc::ENOTCONN)),
        }
    }

    /// `connect(2)` of the program's socket `id`: in progress, done by the
    /// next look (writable), or refused (`SO_ERROR` = `ECONNREFUSED`).
    pub(crate) fn start_connect(&mut self, id: SockId, to: SocketAddr) -> io::Result<bool> {
        if !matches!(self.sockets[id].kind, Kind::Fresh) {
            return Err(errno(libc::EISCONN));
        }
        if let Err(e) = self.connect(Some(id), to) {
            let code = e.raw_os_error().unwrap_or(libc::ECONNREFUSED);
            let mut refused = Stream::refused(Addr::Inet(to));
            refused.error = Some(code);
            self.sockets[id].kind = Kind::Stream(refused);
            self.wake_reader(id);
            self.wake_writer(id);
        }
        Ok(false)
    }
}
