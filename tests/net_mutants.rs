//! Small, exact tests that kill mutants `cargo mutants` found surviving the
//! socket suites (`tcp_suite`, `udp_suite`, `unix_datagram`, `pipe_reader`,
//! `faults`, ...): see `docs/mutants.md` for each one and its mutant.

mod common;

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use common::{run_for, run_until};
use muxloop::{
    DatagramOptions, Dispatcher, EventLoop, Interest, Listener, PipeReader, PollDispatcher, SelectDispatcher,
    Server, StreamAddr, UdpSocket, UnixAddr, UnixDatagram, sys,
};

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

/// A Unix datagram pair (both ends with `options`); the counter is the
/// number of datagrams the receiver got.
fn counting_pair(
    ev: &mut EventLoop<PollDispatcher>,
    options: DatagramOptions,
) -> (UnixDatagram<PollDispatcher>, UnixDatagram<PollDispatcher>, Rc<Cell<usize>>) {
    let got = Rc::new(Cell::new(0));
    let sink = Rc::clone(&got);
    let (sender, receiver) =
        UnixDatagram::pair_with(ev, options, |_, _, _| {}, move |_, _, _| sink.set(sink.get() + 1)).unwrap();
    (sender, receiver, got)
}

/// Calls `send_one` until a datagram has to wait in `sender`'s queue (the
/// kernel took all it would); returns how many the kernel took.
fn fill_kernel(sender: &UnixDatagram<PollDispatcher>, mut send_one: impl FnMut()) -> usize {
    let mut sent = 0;
    while sender.stats().queued == 0 {
        send_one();
        sent += 1;
        assert!(sent < 100_000, "the kernel never pushed back");
    }
    sent - 1
}

/// The send queue's byte bound is inclusive: datagrams that fill it exactly
/// are queued, one byte more is refused (`WouldBlock`) and counted; once
/// the queue has gone out (here in one batch), the whole bound is free again.
#[test]
fn datagram_send_queue_byte_bound_is_exact() {
    const BYTES: usize = 1000;
    let mut ev = EventLoop::<PollDispatcher>::new().unwrap();
    let (sender, receiver, got) = counting_pair(&mut ev, DatagramOptions::new().send_queue(1000, BYTES));
    for round in 0..2 {
        ev.set_interest(receiver.fd(), Interest::NONE).unwrap(); // stops reading
        let to_kernel = fill_kernel(&sender, || sender.send(&mut ev, &[1; 100]).unwrap());
        sender.send(&mut ev, &vec![2; BYTES - 200]).unwrap();
        sender.send(&mut ev, &[3; 100]).unwrap(); // exactly BYTES queued now
        assert_eq!(sender.stats().queued, 3, "round {round}");
        let err = sender.send(&mut ev, &[4]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
        assert!(err.to_string().contains("send queue full"), "{err}");
        assert_eq!((sender.stats().queued, sender.stats().dropped), (3, round + 1));
        ev.set_interest(receiver.fd(), Interest::READABLE).unwrap();
        let before = got.get();
        assert!(run_until(&mut ev, || got.get() - before == to_kernel + 3), "round {round}");
        assert_eq!(sender.stats().queued, 0);
    }
}

/// Fills a sender's kernel buffer (its peer does not read), then its send
/// queue to exactly `bytes` with 64-byte datagrams; returns how many went to
/// the kernel and how many were queued.
fn fill_kernel_then_queue(
    ev: &mut EventLoop<PollDispatcher>,
    sender: &UnixDatagram<PollDispatcher>,
    bytes: usize,
) -> (usize, usize) {
    let to_kernel = fill_kernel(sender, || sender.send(ev, &[1; 64]).unwrap());
    for _ in 1..bytes / 64 {
        sender.send(ev, &[2; 64]).unwrap();
    }
    assert_eq!(sender.stats().queued, bytes / 64);
    (to_kernel, bytes / 64)
}

/// A queue longer than the kernel takes at once: flushing sends until the
/// kernel pushes back (`EAGAIN` ends a flush and drops nothing), everything
/// arrives, and the queue's byte count returns to zero, so its whole bound
/// is available again.
#[test]
fn datagram_queue_drains_through_pushback_and_frees_its_bytes() {
    const BYTES: usize = 64 * 1024;
    let mut ev = EventLoop::<PollDispatcher>::new().unwrap();
    let (sender, receiver, got) = counting_pair(&mut ev, DatagramOptions::new().send_queue(100_000, BYTES));
    for round in 0..2 {
        ev.set_interest(receiver.fd(), Interest::NONE).unwrap();
        let (to_kernel, queued) = fill_kernel_then_queue(&mut ev, &sender, BYTES);
        assert!(
            queued > to_kernel,
            "round {round}: more queued ({queued}) than the kernel holds ({to_kernel})"
        );
        assert_eq!(sender.send(&mut ev, &[3]).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        ev.set_interest(receiver.fd(), Interest::READABLE).unwrap();
        let before = got.get();
        let wanted = to_kernel + queued;
        assert!(
            run_until(&mut ev, || got.get() - before == wanted),
            "round {round}: {} of {wanted}",
            got.get() - before
        );
        let stats = sender.stats();
        assert_eq!(
            (stats.queued, stats.send_errors, stats.dropped),
            (0, 0, round + 1),
            "round {round}: {stats:?}"
        );
    }
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

#[test]
fn udp_port_unreachable_is_counted_once_select() {
    udp_port_unreachable_is_counted_once::<SelectDispatcher>();
}

#[test]
fn udp_port_unreachable_is_counted_once_poll() {
    udp_port_unreachable_is_counted_once::<PollDispatcher>();
}

#[test]
fn udp_port_unreachable_is_counted_once_epoll() {
    #[cfg(muxloop_has_epoll)]
    udp_port_unreachable_is_counted_once::<muxloop::EpollDispatcher>();
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

/// Closing a datagram socket with datagrams still queued counts them as dropped.
#[test]
fn datagram_close_counts_the_queue_as_dropped() {
    let mut ev = EventLoop::<PollDispatcher>::new().unwrap();
    let options = DatagramOptions::new().send_queue(100_000, 64 * 1024);
    let (sender, receiver) = UnixDatagram::pair_with(&mut ev, options, |_, _, _| {}, |_, _, _| {}).unwrap();
    ev.set_interest(receiver.fd(), Interest::NONE).unwrap();
    let (_, queued) = fill_kernel_then_queue(&mut ev, &sender, 64 * 64);
    assert_eq!(sender.stats().dropped, 0);
    sender.close(&mut ev);
    assert_eq!(sender.stats().dropped, queued as u64);
}

type Collected = Rc<RefCell<Vec<u8>>>;
type Ending = Rc<RefCell<Option<io::Result<()>>>>;

/// A `PipeReader` that collects what it reads and how it ended.
fn collecting_reader(
    ev: &mut EventLoop<PollDispatcher>,
    fd: OwnedFd,
) -> (PipeReader<PollDispatcher>, Collected, Ending) {
    let (bytes, end) = (Collected::default(), Ending::default());
    let (sink, result) = (Rc::clone(&bytes), Rc::clone(&end));
    let reader = PipeReader::new(
        ev,
        fd,
        move |_, _, data| sink.borrow_mut().extend_from_slice(data),
        move |_, _, r| *result.borrow_mut() = Some(r),
    )
    .unwrap();
    (reader, bytes, end)
}

/// `pause` stops reading (the data waits in the pipe), `resume` goes on;
/// `fd()` and `Debug` name the pipe.
#[test]
fn pipe_reader_pauses_and_resumes() {
    let mut ev = EventLoop::<PollDispatcher>::new().unwrap();
    let (r, w) = sys::pipe().unwrap();
    let raw = r.as_raw_fd();
    let (reader, bytes, _) = collecting_reader(&mut ev, r);
    assert_eq!(reader.fd(), raw);
    reader.pause(&mut ev).unwrap();
    sys::write(w.as_fd(), b"held").unwrap();
    for _ in 0..5 {
        ev.run_once(Some(Duration::from_millis(10))).unwrap();
    }
    assert!(bytes.borrow().is_empty(), "read while paused");
    reader.resume(&mut ev).unwrap();
    assert!(run_until(&mut ev, || bytes.borrow().len() == 4));
    let text = format!("{reader:?}");
    assert!(
        text.starts_with("PipeReader")
            && text.contains(&format!("fd: {raw}"))
            && text.contains("bytes_read: 4"),
        "{text}"
    );
}

/// A read error ends the reader with that error (here `EISDIR`: a directory
/// is always "readable" to poll, and reading it fails), instead of being
/// retried or taken for "nothing yet".
#[test]
fn pipe_reader_ends_with_a_read_error() {
    let mut ev = EventLoop::<PollDispatcher>::new().unwrap();
    let dir: OwnedFd = std::fs::File::open(env!("CARGO_MANIFEST_DIR")).unwrap().into();
    let (reader, _, end) = collecting_reader(&mut ev, dir);
    assert!(run_until(&mut ev, || end.borrow().is_some()), "the error never ended the reader");
    let err = end.borrow_mut().take().unwrap().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EISDIR), "{err}");
    assert!(reader.is_closed());
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

/// Queued datagrams the kernel refuses when their turn comes (their
/// receiver went away) are counted in `send_errors`, and their bytes leave
/// the queue's count: afterwards the whole byte bound is free again.
#[test]
fn refused_queued_datagrams_free_their_bytes() {
    const BYTES: usize = 64 * 64;
    let dir = std::env::temp_dir().join(format!("muxloop-net-mutants-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a.sock"), dir.join("b.sock"));
    let to = UnixAddr::from(b.as_path());
    let mut ev = EventLoop::<PollDispatcher>::new().unwrap();
    let options = DatagramOptions::new().send_queue(100_000, BYTES);
    let sender = UnixDatagram::bind_with(&mut ev, a.as_path(), options, |_, _, _| {}).unwrap();
    let mut refused = 0;
    for round in 0..2 {
        let receiver = UnixDatagram::bind(&mut ev, b.as_path(), |_, _, _| {}).unwrap();
        ev.set_interest(receiver.fd(), Interest::NONE).unwrap();
        fill_kernel(&sender, || sender.send_to(&mut ev, &[1; 64], &to).unwrap());
        // One datagram in the first round, the whole bound in the second.
        let queued = if round == 0 { 1 } else { BYTES / 64 };
        for _ in 1..queued {
            sender.send_to(&mut ev, &[2; 64], &to).unwrap();
        }
        assert_eq!(sender.stats().queued, queued, "round {round}");
        receiver.close(&mut ev);
        assert!(run_until(&mut ev, || sender.stats().queued == 0), "round {round}: {:?}", sender.stats());
        refused += queued;
        assert_eq!(sender.stats().send_errors as usize, refused, "round {round}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A listener whose `accept` fails with a hard error (here it was shut
/// down: poll keeps calling it readable and `accept` says `EINVAL`) is
/// paused for a moment each time, not retried in a busy loop.
#[test]
fn a_failing_listener_is_paused_not_spun() {
    let mut ev = EventLoop::<PollDispatcher>::new().unwrap();
    let listener = Listener::bind_tcp(&["127.0.0.1:0".parse().unwrap()], false, 16).unwrap();
    // A second fd for the same socket: shutdown acts on the socket.
    let probe = sys::dup(listener.as_fd()).unwrap();
    let _server = Server::builder("127.0.0.1:0", common::echo_callbacks::<PollDispatcher>())
        .listener(listener)
        .start(&mut ev)
        .unwrap();
    sys::shutdown(probe.as_fd(), std::net::Shutdown::Both).unwrap();
    let before = ev.stats();
    run_for(&mut ev, Duration::from_millis(300));
    let events = ev.stats().events_delivered - before.events_delivered;
    assert!((1..20).contains(&events), "{events} listener events in 300 ms");
}

/// `set_keepalive` and `set_nodelay` reach the socket.
#[test]
fn socket_options_reach_the_socket() {
    use std::sync::{Arc, Mutex};
    let mut ev = EventLoop::<PollDispatcher>::new().unwrap();
    let seen: Arc<Mutex<Vec<(bool, bool)>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let callbacks = muxloop::Callbacks::new().on_connection(move |_, conn| {
        if !conn.is_connected() {
            return;
        }
        let options = || conn.with_fd(|fd| Ok((sys::keepalive(fd)?, sys::nodelay(fd)?))).unwrap();
        let mut seen = sink.lock().unwrap();
        conn.set_keepalive(true).unwrap();
        conn.set_nodelay(false).unwrap();
        seen.push(options());
        conn.set_keepalive(false).unwrap();
        conn.set_nodelay(true).unwrap();
        seen.push(options());
    });
    let server = Server::builder("127.0.0.1:0", callbacks).start(&mut ev).unwrap();
    let _client = std::net::TcpStream::connect(server.local_addr().as_inet().unwrap()).unwrap();
    assert!(run_until(&mut ev, || seen.lock().unwrap().len() == 2));
    assert_eq!(*seen.lock().unwrap(), [(true, false), (false, true)]);
}

/// One message carries at most 253 fds (the kernel's `SCM_MAX_FD`):
/// `send_fds` refuses 254 with `InvalidInput` and sends 253.
#[test]
fn fd_passing_takes_at_most_253_fds() {
    use std::os::fd::AsFd;
    use std::sync::{Arc, Mutex};
    type Outcome = Result<(), io::ErrorKind>;
    let path = std::env::temp_dir().join(format!("muxloop-net-mutants-fds-{}.sock", std::process::id()));
    let mut ev = EventLoop::<PollDispatcher>::new().unwrap();
    let seen: Arc<Mutex<Vec<(Outcome, Outcome)>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let callbacks = muxloop::Callbacks::new().on_connection(move |ev, conn| {
        if !conn.is_connected() {
            return;
        }
        let file = std::fs::File::open("/dev/null").unwrap();
        let fds = vec![file.as_fd(); 254];
        let too_many = conn.send_fds(ev, b"x", &fds).map_err(|e| e.kind());
        let most = conn.send_fds(ev, b"y", &fds[..253]).map_err(|e| e.kind());
        sink.lock().unwrap().push((too_many, most));
    });
    let server = Server::unix_builder(path.as_path(), callbacks).start(&mut ev).unwrap();
    let mut client = std::os::unix::net::UnixStream::connect(&path).unwrap();
    assert!(run_until(&mut ev, || !seen.lock().unwrap().is_empty()));
    assert_eq!(seen.lock().unwrap()[0], (Err(io::ErrorKind::InvalidInput), Ok(())));
    let mut byte = [0u8; 1];
    std::io::Read::read_exact(&mut client, &mut byte).unwrap();
    assert_eq!(&byte, b"y", "only the message with 253 fds went out");
    drop(server);
    let _ = std::fs::remove_file(&path);
}

/// Every write re-arms a connection's idle timer, not only reads: a
/// connection that only sends (a feed the client just reads) stays open
/// past `idle_timeout`.
#[test]
fn sending_counts_as_activity_for_the_idle_timeout() {
    use std::io::Read;
    use std::time::Instant;
    let mut ev = EventLoop::<PollDispatcher>::new().unwrap();
    let server = Server::builder("127.0.0.1:0", muxloop::Callbacks::<PollDispatcher>::new())
        .idle_timeout(Some(Duration::from_millis(300)))
        .start(&mut ev)
        .unwrap();
    let mut client = std::net::TcpStream::connect(server.local_addr().as_inet().unwrap()).unwrap();
    client.set_nonblocking(true).unwrap();
    assert!(run_until(&mut ev, || server.live_connections() == 1));
    let started = Instant::now();
    let mut got = 0;
    while started.elapsed() < Duration::from_millis(1000) {
        server.for_each_connection(&mut ev, |ev, conn| {
            let _ = conn.send(ev, b"x");
        });
        run_for(&mut ev, Duration::from_millis(100));
        let mut buf = [0u8; 64];
        match client.read(&mut buf) {
            Ok(0) => panic!("closed after {:?} although it kept sending", started.elapsed()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    assert!(got >= 5, "{got} bytes arrived");
    assert_eq!(server.live_connections(), 1);
}

/// Bytes sent with fds while other output is still queued wait their turn:
/// the peer reads them after everything sent before.
#[test]
fn passed_fds_wait_behind_queued_bytes() {
    use std::io::Read;
    use std::os::fd::AsFd;
    const BIG: usize = 4 << 20;
    let path = std::env::temp_dir().join(format!("muxloop-net-mutants-order-{}.sock", std::process::id()));
    let mut ev = EventLoop::<PollDispatcher>::new().unwrap();
    let server = Server::unix_builder(path.as_path(), muxloop::Callbacks::<PollDispatcher>::new())
        .start(&mut ev)
        .unwrap();
    let mut client = std::os::unix::net::UnixStream::connect(&path).unwrap();
    client.set_nonblocking(true).unwrap();
    assert!(run_until(&mut ev, || server.live_connections() == 1));
    server.for_each_connection(&mut ev, |ev, conn| {
        conn.send(ev, &vec![b'a'; BIG]).unwrap();
        assert!(conn.queued_output() > 0, "the kernel took all {BIG} bytes");
    });
    // The client reads some, so the kernel has room again while the rest is
    // still queued (the loop has not run to flush it).
    let mut got = Vec::with_capacity(BIG + 1);
    let mut buf = [0u8; 65536];
    while let Ok(n) = client.read(&mut buf) {
        got.extend_from_slice(&buf[..n]);
    }
    assert!(!got.is_empty());
    server.for_each_connection(&mut ev, |ev, conn| {
        let file = std::fs::File::open("/dev/null").unwrap();
        conn.send_fds(ev, b"Z", &[file.as_fd()]).unwrap();
    });
    assert!(
        run_until(&mut ev, || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = client.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
                if n == 0 {
                    break;
                }
            }
            got.len() == BIG + 1
        }),
        "{} of {} bytes",
        got.len(),
        BIG + 1
    );
    assert_eq!(got.iter().position(|&b| b == b'Z'), Some(BIG), "the fds' byte came last");
    drop(server);
    let _ = std::fs::remove_file(&path);
}

/// A closed connection leaves its loop's table: `for_each_connection` no
/// longer visits it (the table holding it would keep it, and its buffers,
/// alive for good).
#[test]
fn closed_connections_leave_the_loop() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut ev = EventLoop::<PollDispatcher>::new().unwrap();
    let server =
        Server::builder("127.0.0.1:0", muxloop::Callbacks::<PollDispatcher>::new()).start(&mut ev).unwrap();
    let visits = |ev: &mut EventLoop<PollDispatcher>| {
        let count = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&count);
        server.for_each_connection(ev, move |_, _| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        count.load(Ordering::Relaxed)
    };
    let client = std::net::TcpStream::connect(server.local_addr().as_inet().unwrap()).unwrap();
    assert!(run_until(&mut ev, || server.live_connections() == 1));
    assert_eq!(visits(&mut ev), 1);
    // While here: `Debug` names the connection, its fd and its peer.
    let peer = client.local_addr().unwrap().to_string();
    server.for_each_connection(&mut ev, move |_, conn| {
        let text = format!("{conn:?}");
        assert!(text.starts_with("Connection") && text.contains(&format!("fd: {}", conn.fd())), "{text}");
        assert!(text.contains(&peer), "{text}");
    });
    drop(client);
    assert!(run_until(&mut ev, || server.live_connections() == 0));
    assert_eq!(visits(&mut ev), 0, "the closed connection is still in the loop's table");
}

/// A TCP `StreamAddr` equals exactly its own socket address.
#[test]
fn stream_addr_equals_only_its_socket_address() {
    let a: std::net::SocketAddr = "127.0.0.1:80".parse().unwrap();
    let b: std::net::SocketAddr = "127.0.0.1:81".parse().unwrap();
    let (inet, unix) = (StreamAddr::from(a), StreamAddr::from(UnixAddr::from("/tmp/x.sock")));
    assert!(inet == a);
    assert!(inet != b);
    assert!(unix != a);
}
