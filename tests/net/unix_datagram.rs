//! Unix datagram sockets on every dispatcher: round trips over a path, an
//! abstract name and a socketpair; stale and live socket files; the bound
//! file removed at close; the bounded send queue and its drop counter (a Unix
//! sender blocks when its receiver's queue is full, so the queue fills).

use crate::common;

use std::cell::{Cell, RefCell};
use std::io;
use std::os::unix::net::UnixDatagram as StdUnixDatagram;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use common::{IO_TIMEOUT, Rng, run_until};
use muxloop::{DatagramOptions, Dispatcher, EventLoop, Interest, PollDispatcher, UnixAddr, UnixDatagram};

/// A fresh directory for this test's socket files, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("muxloop-unix-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

type Log = Rc<RefCell<Vec<(Vec<u8>, UnixAddr)>>>;

fn echo_server<D: Dispatcher + 'static>(ev: &mut EventLoop<D>, addr: impl Into<UnixAddr>) -> UnixDatagram<D> {
    UnixDatagram::bind(ev, addr, |ev, sock, d| {
        sock.send_to(ev, d.data, &d.peer).expect("echo");
    })
    .unwrap()
}

fn recorder<D: Dispatcher + 'static>(
    ev: &mut EventLoop<D>,
    addr: impl Into<UnixAddr>,
) -> (UnixDatagram<D>, Log) {
    let log: Log = Rc::default();
    let sink = Rc::clone(&log);
    let sock = UnixDatagram::bind(ev, addr, move |_, _, d| {
        sink.borrow_mut().push((d.data.to_vec(), d.peer.clone()))
    })
    .unwrap();
    (sock, log)
}

/// 100 datagrams of up to 16 KiB each way between two sockets on `ev`.
fn round_trip<D: Dispatcher + 'static>(
    ev: &mut EventLoop<D>,
    server: &UnixDatagram<D>,
    client: &UnixDatagram<D>,
    log: &Log,
) {
    let mut rng = Rng::new(3);
    let payloads: Vec<Vec<u8>> = (0..100)
        .map(|_| {
            let n = rng.range(1, 16 * 1024);
            rng.bytes(n)
        })
        .collect();
    for p in &payloads {
        client.send_to(ev, p, &server.local_addr()).unwrap();
        // One in flight: the receiver's default queue is short (max_dgram_qlen).
        let want = log.borrow().len() + 1;
        assert!(run_until(ev, || log.borrow().len() == want));
    }
    let log = log.borrow();
    for (got, sent) in log.iter().zip(&payloads) {
        assert_eq!(&got.0, sent);
        assert_eq!(got.1, server.local_addr());
    }
}

fn path_round_trip<D: Dispatcher + 'static>() {
    let dir = TempDir::new(&format!("path-{}", D::NAME));
    let mut ev = EventLoop::<D>::new().unwrap();
    let server = echo_server(&mut ev, dir.path("server.sock"));
    assert_eq!(server.local_addr(), UnixAddr::Path(dir.path("server.sock")));
    let (client, log) = recorder(&mut ev, dir.path("client.sock"));
    round_trip(&mut ev, &server, &client, &log);
}

fn abstract_round_trip<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let name = format!("@muxloop-test-{}-{}", std::process::id(), D::NAME);
    let server = echo_server(&mut ev, name.as_str());
    assert_eq!(server.local_addr(), UnixAddr::from(name.as_str()));
    let (client, log) = recorder(&mut ev, format!("{name}-client").as_str());
    round_trip(&mut ev, &server, &client, &log);
    // An abstract name is in use while its socket lives, free once it closes.
    let err = UnixDatagram::bind(&mut ev, name.as_str(), |_, _, _| {}).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    server.close(&mut ev);
    let _again = UnixDatagram::bind(&mut ev, name.as_str(), |_, _, _| {}).expect("name free after close");
}

fn pair_round_trip<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let log: Log = Rc::default();
    let sink = Rc::clone(&log);
    let (a, b) = UnixDatagram::pair(
        &mut ev,
        move |_, _, d| sink.borrow_mut().push((d.data.to_vec(), d.peer.clone())),
        |ev, sock, d| sock.send(ev, &[d.data, b"!"].concat()).unwrap(),
    )
    .unwrap();
    assert_eq!(a.local_addr(), UnixAddr::Unnamed);
    for i in 0..50u32 {
        a.send(&mut ev, &i.to_be_bytes()).unwrap();
        let want = i as usize + 1;
        assert!(run_until(&mut ev, || log.borrow().len() == want));
    }
    for (i, (data, peer)) in log.borrow().iter().enumerate() {
        assert_eq!(data, &[&(i as u32).to_be_bytes()[..], b"!"].concat());
        assert_eq!(peer, &UnixAddr::Unnamed);
    }
    // An unnamed peer cannot be addressed.
    assert!(b.send_to(&mut ev, b"x", &UnixAddr::Unnamed).is_err());
}

/// A socket file left by a dead socket is replaced; a live one is AddrInUse;
/// a file that is not a socket is never touched.
fn stale_and_live_files<D: Dispatcher + 'static>() {
    let dir = TempDir::new(&format!("stale-{}", D::NAME));
    let mut ev = EventLoop::<D>::new().unwrap();
    let path = dir.path("s.sock");
    drop(StdUnixDatagram::bind(&path).unwrap()); // leaves the file behind
    assert!(path.exists());
    let server = echo_server(&mut ev, &*path);
    let client = StdUnixDatagram::bind(dir.path("c.sock")).unwrap();
    client.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    client.send_to(b"still works", &path).unwrap();
    assert!(run_until(&mut ev, || server.stats().sent == 1));
    let mut buf = [0u8; 32];
    let n = client.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"still works");

    let live_path = dir.path("live.sock");
    let live = StdUnixDatagram::bind(&live_path).unwrap();
    let err = UnixDatagram::bind(&mut ev, &*live_path, |_, _, _| {}).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    live.send_to(b"alive", dir.path("c.sock")).expect("the live socket was left alone");

    let file = dir.path("plain");
    std::fs::write(&file, b"data").unwrap();
    let err = UnixDatagram::bind(&mut ev, &*file, |_, _, _| {}).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    assert_eq!(std::fs::read(&file).unwrap(), b"data");
    assert_eq!(ev.registered_fds(), 1);
}

/// The bound file goes away at close and when the last handle is dropped,
/// but never when another socket has taken the path since.
fn file_removed_on_close<D: Dispatcher + 'static>() {
    let dir = TempDir::new(&format!("rm-{}", D::NAME));
    let mut ev = EventLoop::<D>::new().unwrap();
    let path = dir.path("a.sock");
    let sock = echo_server(&mut ev, &*path);
    assert!(path.exists());
    sock.close(&mut ev);
    assert!(!path.exists(), "close removes the socket file");

    let sock = echo_server(&mut ev, &*path);
    drop(sock);
    assert!(!path.exists(), "drop removes the socket file");
    ev.run_once(Some(Duration::from_millis(10))).unwrap();
    assert_eq!(ev.registered_fds(), 0);

    // Someone else's file at our path (we were replaced) survives our close.
    let sock = echo_server(&mut ev, &*path);
    std::fs::remove_file(&path).unwrap();
    let successor = StdUnixDatagram::bind(&path).unwrap();
    sock.close(&mut ev);
    assert!(path.exists(), "a successor's file must not be removed");
    drop(successor);
}

/// A receiver that never reads: the kernel takes a few, then sends would
/// block; the queue holds up to its bound, the rest are dropped and counted;
/// once the receiver reads, everything queued is delivered in order and write
/// interest goes off again.
fn send_queue_bound_and_drop_counter<D: Dispatcher + 'static>() {
    const QUEUE: usize = 100;
    const SENT: usize = 1000;
    let mut ev = EventLoop::<D>::new().unwrap();
    let got: Rc<RefCell<Vec<u32>>> = Rc::default();
    let sink = Rc::clone(&got);
    let options = DatagramOptions::new().send_queue(QUEUE, 1 << 20);
    let (sender, receiver) = UnixDatagram::pair_with(
        &mut ev,
        options,
        |_, _, _| {},
        move |_, _, d| sink.borrow_mut().push(u32::from_be_bytes(d.data.try_into().unwrap())),
    )
    .unwrap();
    // The receiver does not read until told to.
    ev.set_interest(receiver.fd(), Interest::NONE).unwrap();
    let mut refused = 0;
    for i in 0..SENT as u32 {
        if let Err(e) = sender.send(&mut ev, &i.to_be_bytes()) {
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
            refused += 1;
        }
    }
    let stats = sender.stats();
    assert_eq!(stats.queued, QUEUE, "the queue fills to its bound: {stats:?}");
    assert_eq!(stats.dropped as usize, refused);
    assert_eq!(stats.sent as usize + QUEUE + refused, SENT);
    assert!(refused > 0);
    assert_eq!(ev.interest(sender.fd()), Some(Interest::BOTH));
    ev.set_interest(receiver.fd(), Interest::READABLE).unwrap();
    let delivered = SENT - refused;
    assert!(run_until(&mut ev, || got.borrow().len() == delivered), "{} of {delivered}", got.borrow().len());
    // In order, with one gap where the queue was full.
    let got = got.borrow();
    assert!(got.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(got[..stats.sent as usize], (0..stats.sent as u32).collect::<Vec<_>>());
    let stats = sender.stats();
    assert_eq!((stats.queued, stats.sent as usize), (0, delivered));
    assert_eq!(ev.interest(sender.fd()), Some(Interest::READABLE), "write interest off once drained");
}

/// Errors, not panics: binding to an unnamed address, a path too long for
/// `sun_path`, a missing directory; sending to a path nobody is bound to.
fn bad_addresses<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let err = UnixDatagram::bind(&mut ev, UnixAddr::Unnamed, |_, _, _| {}).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let long = format!("/tmp/{}", "x".repeat(200));
    assert_eq!(
        UnixDatagram::bind(&mut ev, long.as_str(), |_, _, _| {}).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(
        UnixDatagram::bind(&mut ev, "/nonexistent-dir/x.sock", |_, _, _| {}).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    let sock = UnixDatagram::unbound(&mut ev, |_, _, _| {}).unwrap();
    let err = sock.send_to(&mut ev, b"x", &UnixAddr::from("/nonexistent-dir/y.sock")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert_eq!(ev.registered_fds(), 1);
}

// ---------------------------------------------------------------------------
// Exact cases that pin what the cases above left loose (each killed a mutant
// that survived them; `docs/mutants.md` lists which)
// ---------------------------------------------------------------------------

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

for_each_dispatcher!(
    path_round_trip,
    abstract_round_trip,
    pair_round_trip,
    stale_and_live_files,
    file_removed_on_close,
    send_queue_bound_and_drop_counter,
    bad_addresses,
);
