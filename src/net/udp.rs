//! UDP on the event loop: [`UdpSocket`], a [`DatagramSocket`] addressed by
//! [`SocketAddr`] (IPv4 or IPv6).
//!
//! UDP is the course's second transport, and the contrast with TCP is the
//! lesson: there is no connection (one socket talks to any number of peers,
//! `sendto`/`recvfrom` name the peer on every call), messages keep their
//! boundaries (one `send_to` is one callback at the receiver, or nothing), the
//! network may drop, duplicate or reorder them, and nothing slows a fast
//! sender down. See [`super::datagram`] for how the loop receives in batches
//! and bounds what it queues.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};

use log::debug;

use super::datagram::{Datagram, DatagramAddr, DatagramOptions, DatagramSocket};
use crate::dispatcher::{AnyDispatcher, Dispatcher};
use crate::event_loop::EventLoop;
use crate::sys::{self, RawAddr};

/// A UDP socket on an event loop (IPv4 or IPv6).
pub type UdpSocket<D = AnyDispatcher> = DatagramSocket<D, SocketAddr>;

impl DatagramAddr for SocketAddr {
    fn to_raw(&self) -> io::Result<RawAddr> {
        Ok(RawAddr::from_inet(self))
    }
    fn from_raw(raw: &RawAddr) -> io::Result<Self> {
        raw.to_inet()
    }
}

impl<D: Dispatcher + 'static> DatagramSocket<D, SocketAddr> {
    /// Binds a UDP socket to the first address of `addr` that works (port 0:
    /// the kernel picks one; see [`local_addr`](Self::local_addr)) and
    /// registers it on `ev`; `on_datagram` runs for each datagram received.
    pub fn bind<F>(ev: &mut EventLoop<D>, addr: impl ToSocketAddrs, on_datagram: F) -> io::Result<Self>
    where
        F: FnMut(&mut EventLoop<D>, &UdpSocket<D>, &Datagram<'_, SocketAddr>) + 'static,
    {
        Self::bind_with(ev, addr, DatagramOptions::default(), on_datagram)
    }

    /// [`bind`](Self::bind) with explicit limits and buffer sizes.
    pub fn bind_with<F>(
        ev: &mut EventLoop<D>,
        addr: impl ToSocketAddrs,
        options: DatagramOptions,
        on_datagram: F,
    ) -> io::Result<Self>
    where
        F: FnMut(&mut EventLoop<D>, &UdpSocket<D>, &Datagram<'_, SocketAddr>) + 'static,
    {
        let mut last = None;
        for addr in addr.to_socket_addrs()? {
            match sys::datagram_socket(addr.is_ipv6(), false).and_then(|s| {
                sys::bind_raw(std::os::fd::AsFd::as_fd(&s), &RawAddr::from_inet(&addr))?;
                Ok(s)
            }) {
                Ok(socket) => {
                    let sock = DatagramSocket::open(ev, socket, options, on_datagram)?;
                    debug!("udp socket bound to {}", sock.local_addr());
                    return Ok(sock);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind to")))
    }

    /// Joins the IPv4 multicast group `group` on the interface with address
    /// `interface` (`0.0.0.0`: the kernel's choice).
    pub fn join_multicast_v4(&self, group: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.with_socket(|fd| sys::set_multicast_v4(fd, group, interface, true))
    }

    /// Leaves a group joined with [`join_multicast_v4`](Self::join_multicast_v4).
    pub fn leave_multicast_v4(&self, group: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.with_socket(|fd| sys::set_multicast_v4(fd, group, interface, false))
    }

    /// Sends multicast out of the interface with address `interface`
    /// (`127.0.0.1` keeps it on loopback).
    pub fn set_multicast_interface_v4(&self, interface: Ipv4Addr) -> io::Result<()> {
        self.with_socket(|fd| sys::set_multicast_if_v4(fd, interface))
    }
}
