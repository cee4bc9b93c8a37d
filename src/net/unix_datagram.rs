//! Unix domain datagram sockets on the event loop: [`UnixDatagram`], a
//! [`DatagramSocket`] addressed by [`UnixAddr`].
//!
//! It teaches local IPC with message boundaries: the same `sendto`/`recvfrom`
//! as UDP, but addresses are file-system paths (or Linux abstract names, or
//! nothing for a `socketpair`), delivery is reliable and ordered, and, unlike
//! UDP, a sender *is* held back when the receiver's queue is full (its send
//! would block, so muxloop's bounded send queue comes into play).
//!
//! Binding to a path creates a socket file that outlives the process if it
//! dies: [`UnixDatagram::bind`] replaces a stale file and refuses a live one
//! (see [`addr`](super::addr); connecting a datagram socket sends nothing, so
//! the live owner never notices the probe), and removes the file at close if
//! it is still the one it bound.

use std::io;
use std::os::fd::AsFd;

use log::debug;

use super::addr::{UnixAddr, bind_unix};
use super::datagram::{Datagram, DatagramAddr, DatagramOptions, DatagramSocket};
use crate::dispatcher::{AnyDispatcher, Dispatcher};
use crate::event_loop::EventLoop;
use crate::sys::{self, RawAddr};

/// A Unix domain datagram socket on an event loop.
pub type UnixDatagram<D = AnyDispatcher> = DatagramSocket<D, UnixAddr>;

impl DatagramAddr for UnixAddr {
    fn to_raw(&self) -> io::Result<RawAddr> {
        self.to_raw_addr()
    }

    fn from_raw(raw: &RawAddr) -> io::Result<Self> {
        UnixAddr::from_raw_addr(raw)
    }
}

impl<D: Dispatcher + 'static> DatagramSocket<D, UnixAddr> {
    /// Binds a Unix datagram socket to a path or an abstract name (`"@name"`)
    /// and registers it on `ev`. A stale socket file is replaced; a live one
    /// is `AddrInUse`. The file is removed at close.
    pub fn bind<F>(ev: &mut EventLoop<D>, addr: impl Into<UnixAddr>, on_datagram: F) -> io::Result<Self>
    where
        F: FnMut(&mut EventLoop<D>, &UnixDatagram<D>, &Datagram<'_, UnixAddr>) + 'static,
    {
        Self::bind_with(ev, addr, DatagramOptions::default(), on_datagram)
    }

    /// [`bind`](Self::bind) with explicit limits and buffer sizes.
    pub fn bind_with<F>(
        ev: &mut EventLoop<D>,
        addr: impl Into<UnixAddr>,
        options: DatagramOptions,
        on_datagram: F,
    ) -> io::Result<Self>
    where
        F: FnMut(&mut EventLoop<D>, &UnixDatagram<D>, &Datagram<'_, UnixAddr>) + 'static,
    {
        let addr = addr.into();
        let socket = sys::unix_socket(false)?;
        let file = bind_unix(socket.as_fd(), &addr, false)?;
        let remove = move || drop(file);
        let sock = match DatagramSocket::open(ev, socket, options, on_datagram) {
            Ok(sock) => sock,
            Err(e) => {
                remove();
                return Err(e);
            }
        };
        sock.set_on_close(Box::new(remove));
        debug!("unix datagram socket bound to {addr}");
        Ok(sock)
    }

    /// A socket with no name: it can send to named sockets (which cannot
    /// answer it) or [`connect`](Self::connect) to one.
    pub fn unbound<F>(ev: &mut EventLoop<D>, on_datagram: F) -> io::Result<Self>
    where
        F: FnMut(&mut EventLoop<D>, &UnixDatagram<D>, &Datagram<'_, UnixAddr>) + 'static,
    {
        DatagramSocket::open(ev, sys::datagram_socket(false, true)?, DatagramOptions::default(), on_datagram)
    }

    /// Two connected, unnamed sockets (`socketpair(AF_UNIX, SOCK_DGRAM)`),
    /// both on `ev`: what one [`send`](Self::send)s, the other receives.
    pub fn pair<F, G>(ev: &mut EventLoop<D>, on_a: F, on_b: G) -> io::Result<(Self, Self)>
    where
        F: FnMut(&mut EventLoop<D>, &UnixDatagram<D>, &Datagram<'_, UnixAddr>) + 'static,
        G: FnMut(&mut EventLoop<D>, &UnixDatagram<D>, &Datagram<'_, UnixAddr>) + 'static,
    {
        Self::pair_with(ev, DatagramOptions::default(), on_a, on_b)
    }

    /// [`pair`](Self::pair) with explicit limits and buffer sizes.
    pub fn pair_with<F, G>(
        ev: &mut EventLoop<D>,
        options: DatagramOptions,
        on_a: F,
        on_b: G,
    ) -> io::Result<(Self, Self)>
    where
        F: FnMut(&mut EventLoop<D>, &UnixDatagram<D>, &Datagram<'_, UnixAddr>) + 'static,
        G: FnMut(&mut EventLoop<D>, &UnixDatagram<D>, &Datagram<'_, UnixAddr>) + 'static,
    {
        let (a, b) = sys::datagram_socketpair()?;
        let a = DatagramSocket::open(ev, a, options, on_a)?;
        let b = DatagramSocket::open(ev, b, options, on_b)?;
        Ok((a, b))
    }
}
