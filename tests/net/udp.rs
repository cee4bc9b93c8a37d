//! UDP behaviour on every dispatcher, over real loopback sockets: echo
//! integrity and counting, truncation, connected mode, IPv6, the per-wake-up
//! receive budget, close on drop. (Send-queue bounds are exercised with Unix
//! datagram sockets in `tests/net/unix_datagram.rs`: a UDP sender on loopback
//! almost never blocks, a Unix one does, and the queue code is the same.)

use crate::common;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket as StdUdp};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use std::{io, thread};

use common::{IO_TIMEOUT, Rng, fnv1a, run_until};
use muxloop::{DatagramOptions, Dispatcher, EventLoop, LoopHandle, PollDispatcher, UdpSocket};

const BIG_BUFFER: usize = 4 << 20;

/// A UDP echo server on its own loop thread; quits on drop.
struct EchoServer<D: Dispatcher + 'static> {
    addr: SocketAddr,
    handle: LoopHandle<D>,
    thread: Option<thread::JoinHandle<()>>,
}

fn spawn_echo<D: Dispatcher + 'static>(bind: &'static str) -> EchoServer<D> {
    let (tx, rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        let mut ev = EventLoop::<D>::new().unwrap();
        let options = DatagramOptions::new().buffers(Some(BIG_BUFFER), Some(BIG_BUFFER));
        let sock = UdpSocket::bind_with(&mut ev, bind, options, |ev, sock, d| {
            assert!(d.truncated_from.is_none(), "echo server got a truncated datagram");
            let _ = sock.send_to(ev, d.data, &d.peer);
        })
        .unwrap();
        tx.send((sock.local_addr(), ev.handle())).unwrap();
        ev.run().unwrap();
        assert_eq!(sock.stats().dropped, 0, "echo server dropped replies");
    });
    let (addr, handle) = rx.recv_timeout(IO_TIMEOUT).unwrap();
    EchoServer { addr, handle, thread: Some(thread) }
}

impl<D: Dispatcher + 'static> Drop for EchoServer<D> {
    fn drop(&mut self) {
        self.handle.quit();
        if let Some(t) = self.thread.take()
            && !thread::panicking()
        {
            t.join().expect("server thread ends cleanly");
        }
    }
}

fn std_client(bind: &str) -> StdUdp {
    let client = StdUdp::bind(bind).unwrap();
    use std::os::fd::AsFd;
    muxloop::sys::set_buffer_sizes(client.as_fd(), Some(BIG_BUFFER), Some(BIG_BUFFER)).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    client
}

/// 10,000 datagrams of 1..=65,507 bytes (mostly small, one in ten up to the
/// maximum, both extremes included), at most 64 / 2 MiB in flight; every one
/// must come back, in order, byte for byte, within the deadline.
fn echo_10k_datagrams<D: Dispatcher + 'static>() {
    const COUNT: usize = 10_000;
    const WINDOW: usize = 64;
    const WINDOW_BYTES: usize = 2 << 20;
    let server = spawn_echo::<D>("127.0.0.1:0");
    let client = std_client("127.0.0.1:0");
    client.connect(server.addr).unwrap();
    let mut rng = Rng::new(10);
    let sizes: Vec<usize> = (0..COUNT)
        .map(|i| match i {
            0 => 1,
            1 => 65_507,
            _ if i % 10 == 0 => rng.range(1, 65_507),
            _ => rng.range(1, 1_500),
        })
        .collect();
    let (mut sent_hash, mut got_hash) = (0u64, 0u64);
    let mut in_flight: VecDeque<u64> = VecDeque::new();
    let mut flight_bytes = 0;
    let mut buf = vec![0u8; 65_536];
    let (mut next, mut answered) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered < COUNT {
        assert!(Instant::now() < deadline, "{answered} of {COUNT} answered before the deadline");
        while next < COUNT && in_flight.len() < WINDOW && flight_bytes + sizes[next] <= WINDOW_BYTES {
            let payload = rng.bytes(sizes[next]);
            client.send(&payload).unwrap();
            let h = fnv1a(&payload) ^ sizes[next] as u64;
            sent_hash = sent_hash.rotate_left(5) ^ h;
            in_flight.push_back(h);
            flight_bytes += sizes[next];
            next += 1;
        }
        let n = client.recv(&mut buf).unwrap_or_else(|e| panic!("reply {answered} lost: {e}"));
        let h = fnv1a(&buf[..n]) ^ n as u64;
        assert_eq!(Some(h), in_flight.pop_front(), "reply {answered} differs from what was sent");
        got_hash = got_hash.rotate_left(5) ^ h;
        flight_bytes -= sizes[answered];
        answered += 1;
    }
    assert_eq!(sent_hash, got_hash);
}

type Log = Rc<RefCell<Vec<(Vec<u8>, SocketAddr, Option<usize>)>>>;

fn recorder<D: Dispatcher + 'static>(
    ev: &mut EventLoop<D>,
    bind: &str,
    options: DatagramOptions,
) -> (UdpSocket<D>, Log) {
    let log: Log = Rc::default();
    let sink = Rc::clone(&log);
    let sock = UdpSocket::bind_with(ev, bind, options, move |_, _, d| {
        sink.borrow_mut().push((d.data.to_vec(), d.peer, d.truncated_from));
    })
    .unwrap();
    (sock, log)
}

/// A datagram larger than the receive slot arrives cut, flagged with its real
/// length (Linux's `MSG_TRUNC` on receive; the POSIX path only knows it was
/// cut, and reports the slot size); one that fits exactly is not flagged.
fn truncation_reported<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (sock, log) = recorder(&mut ev, "127.0.0.1:0", DatagramOptions::new().max_datagram(1024));
    let client = std_client("127.0.0.1:0");
    let big = Rng::new(1).bytes(5000);
    client.send_to(&big, sock.local_addr()).unwrap();
    client.send_to(&big[..1024], sock.local_addr()).unwrap();
    assert!(run_until(&mut ev, || log.borrow().len() == 2));
    let log = log.borrow();
    assert_eq!(log[0].0, &big[..1024]);
    let real = if cfg!(muxloop_linux) { 5000 } else { 1024 };
    assert_eq!(log[0].2, Some(real), "truncation must be reported (with the real length on Linux)");
    assert_eq!(log[1].0, &big[..1024]);
    assert_eq!(log[1].2, None);
    assert_eq!(log[0].1, client.local_addr().unwrap());
    let stats = sock.stats();
    assert_eq!((stats.received, stats.truncated), (2, 1));
}

/// `connect` fixes the destination of `send` and filters out other senders.
fn connected_mode<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (sock, log) = recorder(&mut ev, "127.0.0.1:0", DatagramOptions::new());
    let err = sock.send(&mut ev, b"nowhere").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected);
    let peer = std_client("127.0.0.1:0");
    let stranger = std_client("127.0.0.1:0");
    sock.connect(&peer.local_addr().unwrap()).unwrap();
    assert_eq!(sock.peer_addr(), Some(peer.local_addr().unwrap()));
    sock.send(&mut ev, b"hello peer").unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"hello peer"[..], sock.local_addr()));
    stranger.send_to(b"from a stranger", sock.local_addr()).unwrap();
    peer.send_to(b"from the peer", sock.local_addr()).unwrap();
    assert!(run_until(&mut ev, || !log.borrow().is_empty()));
    // Give a stranger's datagram (wrongly let through) time to show up too.
    for _ in 0..5 {
        ev.run_once(Some(Duration::from_millis(10))).unwrap();
    }
    let log = log.borrow();
    assert_eq!(log.len(), 1, "only the connected peer's datagram is delivered");
    assert_eq!(log[0].0, b"from the peer");
    assert_eq!(sock.stats().sent, 1);
}

/// The same echo over IPv6 loopback.
fn ipv6_echo<D: Dispatcher + 'static>() {
    let server = spawn_echo::<D>("[::1]:0");
    assert!(server.addr.is_ipv6());
    let client = std_client("[::1]:0");
    client.connect(server.addr).unwrap();
    let mut rng = Rng::new(6);
    let mut buf = vec![0u8; 65_536];
    for i in 0..200 {
        let size = if i == 0 { 65_000 } else { rng.range(1, 2000) };
        let payload = rng.bytes(size);
        client.send(&payload).unwrap();
        let n = client.recv(&mut buf).expect("IPv6 reply");
        assert_eq!(&buf[..n], &payload[..]);
    }
}

/// A flood does not hold the loop: one wake-up handles at most the budget.
fn receive_budget_per_wakeup<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let options = DatagramOptions::new().recv_budget(100).recv_batch(16).buffers(Some(BIG_BUFFER), None);
    let (sock, log) = recorder(&mut ev, "127.0.0.1:0", options);
    let client = std_client("127.0.0.1:0");
    for i in 0..1000u32 {
        client.send_to(&i.to_be_bytes(), sock.local_addr()).unwrap();
    }
    ev.run_once(Some(IO_TIMEOUT)).unwrap();
    assert_eq!(log.borrow().len(), 100, "one wake-up must stop at the budget");
    assert!(run_until(&mut ev, || log.borrow().len() == 1000));
    let order: Vec<u32> =
        log.borrow().iter().map(|(d, _, _)| u32::from_be_bytes(d[..4].try_into().unwrap())).collect();
    assert_eq!(order, (0..1000).collect::<Vec<_>>());
}

/// Dropping the last handle deregisters and closes the socket (the port is
/// free again); `close` does it at once, and later sends fail cleanly.
fn close_and_drop<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (sock, _) = recorder(&mut ev, "127.0.0.1:0", DatagramOptions::new());
    let addr = sock.local_addr();
    assert_eq!(ev.registered_fds(), 1);
    drop(sock);
    ev.run_once(Some(Duration::from_millis(10))).unwrap();
    assert_eq!(ev.registered_fds(), 0);
    // Binding the same port again proves the fd was closed.
    let (again, _) = recorder(&mut ev, &addr.to_string(), DatagramOptions::new());
    again.close(&mut ev);
    assert!(again.is_closed());
    assert_eq!(ev.registered_fds(), 0);
    let err = again.send_to(&mut ev, b"x", &addr).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected);
    again.close(&mut ev); // idempotent
}

/// A datagram over the UDP limit is refused with the kernel's error, no panic.
fn oversized_send_is_an_error<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (sock, _) = recorder(&mut ev, "127.0.0.1:0", DatagramOptions::new());
    let err = sock.send_to(&mut ev, &vec![0u8; 70_000], &sock.local_addr()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc_emsgsize()));
    assert_eq!(sock.stats().sent, 0);
    // Sends from inside the callback are gathered; a failure there is counted.
    let count = Rc::new(Cell::new(0));
    let c = Rc::clone(&count);
    sock.set_on_datagram(move |ev, sock, d| {
        c.set(c.get() + 1);
        let _ = sock.send_to(ev, &vec![0u8; 70_000], &d.peer);
    });
    let client = std_client("127.0.0.1:0");
    client.send_to(b"provoke", sock.local_addr()).unwrap();
    assert!(run_until(&mut ev, || count.get() == 1 && sock.stats().send_errors == 1));
    assert_eq!(sock.stats().queued, 0);
}

fn libc_emsgsize() -> i32 {
    90 // EMSGSIZE on Linux
}

/// Bind errors are errors: an address in use, a name that resolves to nothing.
fn bind_errors<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (sock, _) = recorder(&mut ev, "127.0.0.1:0", DatagramOptions::new());
    let err = UdpSocket::bind(&mut ev, sock.local_addr(), |_, _, _| {}).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    assert!(UdpSocket::bind(&mut ev, "no-such-host.invalid:1", |_, _, _| {}).is_err());
    assert_eq!(ev.registered_fds(), 1);
}

/// A socket that joined a multicast group (on loopback) receives what is
/// sent to the group; after leaving, it does not.
fn multicast_on_loopback<D: Dispatcher + 'static>() {
    use std::net::Ipv4Addr;
    let lo = Ipv4Addr::LOCALHOST;
    // One group per backend: the three instances run in parallel.
    let group = Ipv4Addr::new(239, 255, 77, D::NAME.len() as u8);
    let mut ev = EventLoop::<D>::new().unwrap();
    let (member, log) = recorder(&mut ev, "0.0.0.0:0", DatagramOptions::new());
    member.join_multicast_v4(group, lo).unwrap();
    let (sender, _) = recorder(&mut ev, "127.0.0.1:0", DatagramOptions::new());
    sender.set_multicast_interface_v4(lo).unwrap();
    let to = SocketAddr::from((group, member.local_addr().port()));
    sender.send_to(&mut ev, b"to the group", &to).unwrap();
    assert!(run_until(&mut ev, || log.borrow().len() == 1));
    assert_eq!(log.borrow()[0].0, b"to the group");
    assert_eq!(log.borrow()[0].1, sender.local_addr());
    member.leave_multicast_v4(group, lo).unwrap();
    sender.send_to(&mut ev, b"after leaving", &to).unwrap();
    for _ in 0..10 {
        ev.run_once(Some(Duration::from_millis(10))).unwrap();
    }
    assert_eq!(log.borrow().len(), 1, "no delivery after leaving the group");
    // Leaving twice is the kernel's EADDRNOTAVAIL, an error, not a panic.
    assert!(member.leave_multicast_v4(group, lo).is_err());
}

// ---------------------------------------------------------------------------
// Exact cases that pin what the cases above left loose (each killed a mutant
// that survived them; `docs/mutants.md` lists which)
// ---------------------------------------------------------------------------

/// `options()` gives back what the socket was opened with, and `Debug` names
/// the socket, its fd and its addresses.
#[test]
fn datagram_socket_reports_its_options_and_itself() {
    let mut ev = EventLoop::<PollDispatcher>::new().unwrap();
    let options = DatagramOptions { recv_batch: 3, recv_budget: 7, ..DatagramOptions::default() };
    let sock = UdpSocket::bind_with(&mut ev, "127.0.0.1:0", options, |_, _, _| {}).unwrap();
    let got = sock.options();
    assert_eq!((got.recv_batch, got.recv_budget), (3, 7));
    assert_eq!(got.max_datagram, DatagramOptions::default().max_datagram);
    let text = format!("{sock:?}");
    let port = sock.local_addr().port();
    assert!(
        text.starts_with("DatagramSocket")
            && text.contains(&format!("fd: {}", sock.fd()))
            && text.contains(&port.to_string()),
        "{text}"
    );
    assert!(text.contains("closed: false"), "{text}");
}

/// A connected UDP socket whose peer port is closed: the ICMP "port
/// unreachable" comes back as a socket error, found either by the event
/// (an error flag: epoll, poll) or by the receive it makes readable (select),
/// and counted once in `recv_errors`; the `EAGAIN` after it is no error.
fn udp_port_unreachable_is_counted_once<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer = closed.local_addr().unwrap();
    drop(closed);
    let sock = UdpSocket::bind(&mut ev, "127.0.0.1:0", |_, _, _| {}).unwrap();
    sock.connect(&peer).unwrap();
    sock.send(&mut ev, b"anyone?").unwrap();
    assert!(
        run_until(&mut ev, || sock.stats().recv_errors > 0),
        "{}: no error reported: {:?}",
        D::NAME,
        sock.stats()
    );
    for _ in 0..5 {
        ev.run_once(Some(Duration::from_millis(10))).unwrap();
    }
    assert_eq!(sock.stats().recv_errors, 1, "{}: {:?}", D::NAME, sock.stats());
}

/// Replies sent from the datagram callback are queued for the batch and sent
/// when the batch ends, in the same loop pass: a client sees the echo right
/// after the one `run_once` that received its datagram.
#[test]
fn datagram_replies_leave_in_the_same_pass() {
    let mut ev = EventLoop::<PollDispatcher>::new().unwrap();
    let server = UdpSocket::bind(&mut ev, "127.0.0.1:0", |ev, sock, d| {
        sock.send_to(ev, d.data, &d.peer).unwrap();
    })
    .unwrap();
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_nonblocking(true).unwrap();
    for round in 0..3u8 {
        client.send_to(&[round; 32], server.local_addr()).unwrap();
        let mut passes = 0;
        while server.stats().received == u64::from(round) {
            ev.run_once(Some(Duration::from_secs(5))).unwrap();
            passes += 1;
            assert!(passes < 100, "round {round}: the datagram never arrived");
        }
        let mut buf = [0u8; 64];
        let (n, _) = client.recv_from(&mut buf).expect("the echo is already there");
        assert_eq!(&buf[..n], &[round; 32]);
    }
    assert_eq!(server.stats().sent, 3);
}

/// Choosing the multicast interface is the kernel's decision: loopback's
/// address is accepted, an address no interface has is refused.
#[test]
fn multicast_interface_choice_reaches_the_kernel() {
    let mut ev = EventLoop::<PollDispatcher>::new().unwrap();
    let sock = UdpSocket::bind(&mut ev, "127.0.0.1:0", |_, _, _| {}).unwrap();
    sock.set_multicast_interface_v4(std::net::Ipv4Addr::LOCALHOST).unwrap();
    let err = sock.set_multicast_interface_v4(std::net::Ipv4Addr::new(192, 0, 2, 77)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRNOTAVAIL), "{err}");
}

for_each_dispatcher!(
    multicast_on_loopback,
    echo_10k_datagrams,
    truncation_reported,
    connected_mode,
    ipv6_echo,
    receive_budget_per_wakeup,
    close_and_drop,
    oversized_send_is_an_error,
    bind_errors,
    udp_port_unreachable_is_counted_once,
);
