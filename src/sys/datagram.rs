//! Datagram sockets (UDP and Unix): one datagram per call, or a batch with
//! `recvmmsg`/`sendmmsg`; multicast membership.

use std::io;
use std::mem;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use super::*;

/// A new non-blocking, close-on-exec datagram socket: UDP for an IP family,
/// or `AF_UNIX`/`SOCK_DGRAM` when `unix` is true.
pub fn datagram_socket(ipv6: bool, unix: bool) -> io::Result<OwnedFd> {
    let domain = match (unix, ipv6) {
        (true, _) => libc::AF_UNIX,
        (false, false) => libc::AF_INET,
        (false, true) => libc::AF_INET6,
    };
    new_socket(domain, libc::SOCK_DGRAM, 0)
}

/// A connected, non-blocking, close-on-exec `AF_UNIX` datagram socket pair.
pub fn datagram_socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    new_socketpair(libc::SOCK_DGRAM)
}

/// `bind(2)` to any address.
pub fn bind_raw(fd: BorrowedFd<'_>, addr: &RawAddr) -> io::Result<()> {
    // SAFETY: `addr` holds a valid address of `addr.len` bytes.
    syscall!(bind(fd.as_raw_fd(), addr.ptr(), addr.len))?;
    Ok(())
}

/// `connect(2)` to any address (for a datagram socket: fixes the default
/// destination and filters what is received).
pub fn connect_raw(fd: BorrowedFd<'_>, addr: &RawAddr) -> io::Result<()> {
    // SAFETY: `addr` holds a valid address of `addr.len` bytes.
    syscall!(connect(fd.as_raw_fd(), addr.ptr(), addr.len))?;
    Ok(())
}

/// `sendto(2)` one datagram (`to: None` on a connected socket), with
/// `MSG_NOSIGNAL`. A datagram is sent whole or not at all.
pub fn send_to(fd: BorrowedFd<'_>, buf: &[u8], to: Option<&RawAddr>) -> io::Result<usize> {
    let (ptr, len) = to.map_or((std::ptr::null(), 0), |a| (a.ptr(), a.len));
    // SAFETY: the kernel reads `buf.len()` bytes from `buf` and `len` bytes from `ptr` (or none).
    let n = syscall!(sendto(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL, ptr, len))?;
    Ok(n as usize)
}

/// One received datagram: its length as sent (larger than the buffer when
/// it was truncated) and the sender.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    /// The datagram's real length (Linux reports it with `MSG_TRUNC`).
    pub len: usize,
    /// Whether it did not fit the buffer and was cut.
    pub truncated: bool,
    /// The sender.
    pub from: RawAddr,
}

#[cfg(muxloop_linux)]
const RECV_FLAGS: libc::c_int = libc::MSG_TRUNC;
#[cfg(not(muxloop_linux))]
const RECV_FLAGS: libc::c_int = 0;

/// `recvmsg(2)` one datagram into `buf`. A datagram larger than `buf` is cut
/// by the kernel; the answer says so, and on Linux gives its real length.
pub fn recv_from(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Received> {
    let mut from = RawAddr::empty();
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: all-zero bytes are a valid msghdr.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = (&mut from.storage as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = from.len;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: `msg` points to `iov` (writable `buf`) and `from.storage`, both
    // alive across the call and of the stated sizes.
    let n = syscall!(recvmsg(fd.as_raw_fd(), &mut msg, RECV_FLAGS))? as usize;
    from.len = msg.msg_namelen;
    let truncated = msg.msg_flags & libc::MSG_TRUNC != 0;
    Ok(Received { len: if truncated { n.max(buf.len()) } else { n }, truncated, from })
}

/// Buffers for receiving up to `slots` datagrams of up to `slot_size` bytes
/// with one `recvmmsg(2)` call (`muxloop_linux`), or a `recvmsg` loop elsewhere.
/// Pages are only touched as datagrams land in them.
pub struct RecvBatch {
    slot_size: usize,
    data: Vec<u8>,
    got: Vec<Received>,
    #[cfg(muxloop_linux)]
    headers: Vec<libc::mmsghdr>,
    #[cfg(muxloop_linux)]
    iovs: Vec<libc::iovec>,
    #[cfg(muxloop_linux)]
    names: Vec<RawAddr>,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch").field("slots", &self.slots()).field("slot_size", &self.slot_size).finish()
    }
}

impl RecvBatch {
    /// Room for `slots` (at least 1) datagrams of `slot_size` (at least 1) bytes.
    pub fn new(slots: usize, slot_size: usize) -> RecvBatch {
        let (slots, slot_size) = (slots.max(1), slot_size.max(1));
        RecvBatch {
            slot_size,
            data: vec![0; slots * slot_size],
            got: Vec::with_capacity(slots),
            #[cfg(muxloop_linux)]
            // SAFETY: all-zero bytes are a valid mmsghdr.
            headers: (0..slots).map(|_| unsafe { mem::zeroed() }).collect(),
            #[cfg(muxloop_linux)]
            iovs: (0..slots).map(|_| libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }).collect(),
            #[cfg(muxloop_linux)]
            names: vec![RawAddr::empty(); slots],
        }
    }

    /// How many datagrams one call can receive.
    pub fn slots(&self) -> usize {
        self.data.len() / self.slot_size
    }

    /// Receives up to `max` (and at most [`slots`](Self::slots)) datagrams;
    /// returns how many. `WouldBlock` when none is waiting.
    #[cfg(muxloop_linux)]
    pub fn recv(&mut self, fd: BorrowedFd<'_>, max: usize) -> io::Result<usize> {
        let n = max.clamp(1, self.slots());
        self.got.clear();
        for i in 0..n {
            let slot = &mut self.data[i * self.slot_size..(i + 1) * self.slot_size];
            self.iovs[i] = libc::iovec { iov_base: slot.as_mut_ptr().cast(), iov_len: slot.len() };
            self.names[i].len = mem::size_of::<libc::sockaddr_storage>() as _;
            let hdr = &mut self.headers[i].msg_hdr;
            hdr.msg_name = (&mut self.names[i].storage as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = self.names[i].len;
            hdr.msg_iov = &mut self.iovs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_control = std::ptr::null_mut();
            hdr.msg_controllen = 0;
            hdr.msg_flags = 0;
            self.headers[i].msg_len = 0;
        }
        // SAFETY: the first `n` headers point to live iovecs (into `data`) and
        // name buffers of the stated sizes; nothing moves until the call returns.
        let got = syscall!(recvmmsg(
            fd.as_raw_fd(),
            self.headers.as_mut_ptr(),
            n as _,
            RECV_FLAGS,
            std::ptr::null_mut()
        ))? as usize;
        for i in 0..got {
            let hdr = &self.headers[i].msg_hdr;
            self.names[i].len = hdr.msg_namelen;
            let truncated = hdr.msg_flags & libc::MSG_TRUNC != 0;
            let len = self.headers[i].msg_len as usize;
            let len = if truncated { len.max(self.slot_size) } else { len };
            self.got.push(Received { len, truncated, from: self.names[i] });
        }
        Ok(got)
    }

    /// Receives up to `max` datagrams with a `recvmsg` loop.
    #[cfg(not(muxloop_linux))]
    pub fn recv(&mut self, fd: BorrowedFd<'_>, max: usize) -> io::Result<usize> {
        let n = max.clamp(1, self.slots());
        self.got.clear();
        for i in 0..n {
            let slot = &mut self.data[i * self.slot_size..(i + 1) * self.slot_size];
            match recv_from(fd, slot) {
                Ok(r) => self.got.push(r),
                Err(e) if i > 0 && e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(self.got.len())
    }

    /// Datagram `i` of the last [`recv`](Self::recv): its bytes (at most the
    /// slot size) and what the kernel said about it.
    pub fn get(&self, i: usize) -> (&[u8], &Received) {
        let r = &self.got[i];
        let start = i * self.slot_size;
        (&self.data[start..start + r.len.min(self.slot_size)], r)
    }
}

/// One datagram to send with [`send_batch`]: bytes and destination (`None`
/// on a connected socket).
pub type OutDatagram<'a> = (&'a [u8], Option<&'a RawAddr>);

/// Sends datagrams in order with one `sendmmsg(2)` call per 64 (`muxloop_linux`; a
/// `sendto` loop elsewhere); returns how many the kernel took. The first one
/// failing is an error only if none was sent (as `sendmmsg` reports it).
#[cfg(muxloop_linux)]
pub fn send_batch(fd: BorrowedFd<'_>, datagrams: &[OutDatagram<'_>]) -> io::Result<usize> {
    const MAX: usize = 64;
    let mut sent = 0;
    for chunk in datagrams.chunks(MAX) {
        let mut iovs: [libc::iovec; MAX] = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; MAX];
        // SAFETY: all-zero bytes are a valid mmsghdr.
        let mut headers: [libc::mmsghdr; MAX] = unsafe { mem::zeroed() };
        for (i, (data, to)) in chunk.iter().enumerate() {
            iovs[i] = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
            let hdr = &mut headers[i].msg_hdr;
            if let Some(to) = to {
                hdr.msg_name = to.ptr() as *mut libc::c_void;
                hdr.msg_namelen = to.len;
            }
            hdr.msg_iov = &mut iovs[i];
            hdr.msg_iovlen = 1;
        }
        // SAFETY: the first `chunk.len()` headers point to iovecs and names that
        // live across the call; the kernel only reads the data (sendmmsg).
        match syscall!(sendmmsg(fd.as_raw_fd(), headers.as_mut_ptr(), chunk.len() as _, libc::MSG_NOSIGNAL)) {
            Ok(n) => {
                sent += n as usize;
                if (n as usize) < chunk.len() {
                    break;
                }
            }
            Err(e) if sent == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(sent)
}

/// Sends datagrams in order with a `sendto` loop; returns how many were taken.
#[cfg(not(muxloop_linux))]
pub fn send_batch(fd: BorrowedFd<'_>, datagrams: &[OutDatagram<'_>]) -> io::Result<usize> {
    for (i, (data, to)) in datagrams.iter().enumerate() {
        match send_to(fd, data, *to) {
            Ok(_) => {}
            Err(e) if i == 0 => return Err(e),
            Err(_) => return Ok(i),
        }
    }
    Ok(datagrams.len())
}

/// Joins (or leaves) an IPv4 multicast group on the interface with address
/// `interface` (`0.0.0.0`: the kernel's choice).
pub fn set_multicast_v4(
    fd: BorrowedFd<'_>,
    group: Ipv4Addr,
    interface: Ipv4Addr,
    join: bool,
) -> io::Result<()> {
    let mreq = libc::ip_mreq {
        imr_multiaddr: libc::in_addr { s_addr: u32::from(group).to_be() },
        imr_interface: libc::in_addr { s_addr: u32::from(interface).to_be() },
    };
    let name = if join { libc::IP_ADD_MEMBERSHIP } else { libc::IP_DROP_MEMBERSHIP };
    let len = mem::size_of::<libc::ip_mreq>() as libc::socklen_t;
    // SAFETY: `mreq` lives across the call and `len` is its size.
    syscall!(setsockopt(
        fd.as_raw_fd(),
        libc::IPPROTO_IP,
        name,
        (&mreq as *const libc::ip_mreq).cast(),
        len
    ))?;
    Ok(())
}

/// `IP_MULTICAST_IF`: the interface (by its IPv4 address) multicast leaves by.
pub fn set_multicast_if_v4(fd: BorrowedFd<'_>, interface: Ipv4Addr) -> io::Result<()> {
    let addr = libc::in_addr { s_addr: u32::from(interface).to_be() };
    let len = mem::size_of::<libc::in_addr>() as libc::socklen_t;
    // SAFETY: `addr` lives across the call and `len` is its size.
    syscall!(setsockopt(
        fd.as_raw_fd(),
        libc::IPPROTO_IP,
        libc::IP_MULTICAST_IF,
        (&addr as *const libc::in_addr).cast(),
        len
    ))?;
    Ok(())
}
