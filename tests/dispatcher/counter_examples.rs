//! Counter-examples: each test does one classic thing wrong on purpose and
//! asserts the symptom, next to the right way, so the lesson is executable.
//!
//! * writable interest left on while idle spins (every backend), and its
//!   positive twin: the TCP layer turns it on while output is queued and off
//!   once drained;
//! * edge-triggered without draining stalls (epoll; the others refuse `Edge`);
//! * a blocking `accept` after a readiness report can hang (the course's
//!   RST-before-accept experiment; on Linux the hang comes from another
//!   acceptor taking the connection, and a reset one is still accepted);
//! * at the fd limit (`EMFILE`), a level-triggered listener without the
//!   spare-fd trick spins (in a child process with a lowered fd limit).
//!
//! Everything is bounded: dispatch timeouts, short observation windows,
//! a watchdog on the blocked thread, a time limit on the child.

use crate::common;

use std::io::{ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use muxloop::{Callbacks, Dispatcher, EventLoop, Events, Interest, Mode, Server, Trigger, sys};

/// How long each "what does the loop do while idle" window lasts.
const WINDOW: Duration = Duration::from_millis(200);
/// The dispatch timeout inside a window: a quiet loop wakes at most every 10 ms.
const TICK: Duration = Duration::from_millis(10);

/// Dispatch calls an idle loop makes in one window with `fd` watched for `interest`.
fn idle_dispatches<D: Dispatcher>(ev: &mut EventLoop<D>, fd: i32, interest: Interest) -> u64 {
    ev.set_interest(fd, interest).unwrap();
    let before = ev.stats().dispatch_calls;
    let start = Instant::now();
    while start.elapsed() < WINDOW {
        ev.run_once(Some(TICK)).unwrap();
    }
    ev.stats().dispatch_calls - before
}

/// Wrong: writable interest on a socket with nothing to send. A socket with
/// room in its send buffer is always writable, so level-triggered writable
/// interest reports it on every dispatch: the loop never sleeps.
/// Right: writable interest only while output is queued.
fn writable_interest_left_on_spins<D: Dispatcher>() {
    let (a, _b) = sys::socketpair().unwrap();
    let fd = a.as_raw_fd();
    let mut ev = EventLoop::<D>::new().unwrap();
    ev.register(fd, Interest::READABLE, Mode::Level, |_, _| {}).unwrap();
    let quiet = idle_dispatches(&mut ev, fd, Interest::READABLE);
    let spinning = idle_dispatches(&mut ev, fd, Interest::BOTH);
    let quiet_again = idle_dispatches(&mut ev, fd, Interest::READABLE);
    ev.deregister(fd).unwrap();
    // Quiet: about WINDOW / TICK = 20 calls. Spinning: one per event, tens of thousands.
    assert!(quiet <= 40 && quiet_again <= 40, "{}: idle loop made {quiet}/{quiet_again} calls", D::NAME);
    assert!(
        spinning >= 20 * quiet.max(1),
        "{}: writable left on: {spinning} calls vs {quiet} quiet",
        D::NAME
    );
}

/// Wrong: an edge-triggered handler that reads once. The unread rest is
/// never reported again, until new data makes a new edge.
/// Right: read until `WouldBlock`. Level-triggered reports the rest again.
#[cfg(muxloop_has_epoll)]
fn edge_without_draining_stalls(mode: Mode) -> (usize, usize) {
    let (reader, writer) = sys::socketpair().unwrap();
    let fd = reader.as_raw_fd();
    let mut epoll = muxloop::EpollDispatcher::new().unwrap();
    let mut events = Events::with_capacity(8);
    epoll.register(fd, Interest::READABLE, mode).unwrap();
    sys::write(writer.as_fd(), &[7u8; 100]).unwrap();
    epoll.dispatch(&mut events, Some(TICK)).unwrap();
    assert_eq!(events.len(), 1, "the first arrival is reported");
    let mut chunk = [0u8; 10];
    assert_eq!(sys::read(reader.as_fd(), &mut chunk).unwrap(), 10, "read once, 90 bytes left");
    // Is the rest reported? (For Edge, no: this is the stall.)
    epoll.dispatch(&mut events, Some(Duration::from_millis(50))).unwrap();
    let reported_again = events.len();
    // The bytes are there all the same; new data makes a new edge.
    sys::write(writer.as_fd(), b"more").unwrap();
    epoll.dispatch(&mut events, Some(TICK)).unwrap();
    let after_new_data = events.len();
    let mut rest = [0u8; 200];
    assert_eq!(sys::read(reader.as_fd(), &mut rest).unwrap(), 94, "the unreported bytes were never lost");
    epoll.deregister(fd).unwrap();
    (reported_again, after_new_data)
}

#[cfg(muxloop_has_epoll)]
#[test]
fn edge_triggered_without_draining_stalls() {
    assert_eq!(edge_without_draining_stalls(Mode::Edge), (0, 1), "edge: the rest is not reported again");
    assert_eq!(edge_without_draining_stalls(Mode::Level), (1, 1), "level: the rest is reported again");
}

/// select and poll cannot do edge-triggered: they refuse, never degrade.
fn edge_is_refused_where_unsupported<D: Dispatcher>() {
    let (a, _b) = sys::socketpair().unwrap();
    let mut backend = D::new().unwrap();
    let result = backend.register(a.as_raw_fd(), Interest::READABLE, Mode::Edge);
    if backend.supports(Mode::Edge) {
        assert!(result.is_ok());
        backend.deregister(a.as_raw_fd()).unwrap();
    } else {
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Unsupported, "{}", D::NAME);
    }
}

/// A client that connects and resets (SO_LINGER 0, close) before the server accepts.
fn connect_and_reset(addr: std::net::SocketAddr) {
    let client = TcpStream::connect(addr).unwrap();
    sys::set_linger(client.as_fd(), Some(Duration::ZERO)).unwrap();
    drop(client);
    std::thread::sleep(Duration::from_millis(50)); // let the RST arrive
}

/// The course's experiment: the listener is reported readable, the client
/// resets before we accept. On BSD kernels the connection leaves the accept
/// queue and a blocking `accept` hangs. Linux keeps it queued: `accept`
/// returns it and the first read says `ECONNRESET`, which a server must
/// treat as an ordinary close of a brand-new connection.
fn rst_before_accept<D: Dispatcher>() {
    let listener = sys::tcp_listener(&"127.0.0.1:0".parse().unwrap(), false, 16).unwrap();
    let lfd = listener.as_raw_fd();
    let addr = sys::local_addr(listener.as_fd()).unwrap().to_inet().unwrap();
    let mut backend = D::new().unwrap();
    let mut events = Events::with_capacity(4);
    backend.register(lfd, Interest::READABLE, Mode::Level).unwrap();
    connect_and_reset(addr);
    backend.dispatch(&mut events, Some(Duration::from_secs(5))).unwrap();
    assert_eq!(events.len(), 1, "{}: the listener is readable", D::NAME);
    let (socket, _) = sys::accept(listener.as_fd()).expect("Linux still hands out the reset connection");
    let err = sys::recv(socket.as_fd(), &mut [0u8; 8]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{}: first read of a reset connection", D::NAME);
    backend.deregister(lfd).unwrap();
}

/// The hang itself, as it happens on Linux: the listener is reported
/// readable, but another acceptor (a second thread or process on the same
/// listener: the thundering herd) takes the connection first. A *blocking*
/// accept then waits for the next client, and the whole loop with it; a
/// non-blocking one returns `WouldBlock` at once.
fn blocking_accept_hangs_after_stale_readiness<D: Dispatcher>() {
    let owned = sys::tcp_listener(&"127.0.0.1:0".parse().unwrap(), false, 16).unwrap();
    let lfd = owned.as_raw_fd();
    let addr = sys::local_addr(owned.as_fd()).unwrap().to_inet().unwrap();
    let mut backend = D::new().unwrap();
    let mut events = Events::with_capacity(4);
    backend.register(lfd, Interest::READABLE, Mode::Level).unwrap();
    let client = TcpStream::connect(addr).unwrap();
    backend.dispatch(&mut events, Some(Duration::from_secs(5))).unwrap();
    assert_eq!(events.len(), 1, "{}: readable", D::NAME);
    let (taken, _) = sys::accept(owned.as_fd()).unwrap(); // the other acceptor wins
    // Right: non-blocking, the stale report costs one EAGAIN.
    assert_eq!(sys::accept(owned.as_fd()).unwrap_err().kind(), ErrorKind::WouldBlock);
    // Wrong: blocking. It hangs until some other client comes along.
    backend.deregister(lfd).unwrap();
    sys::set_nonblocking(owned.as_fd(), false).unwrap();
    let listener = TcpListener::from(owned);
    let (tx, rx) = mpsc::channel();
    let blocked = std::thread::spawn(move || {
        let result = listener.accept().map(|_| ());
        let _ = tx.send(Instant::now());
        result
    });
    let started = Instant::now();
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "{}: the blocking accept returned without a client",
        D::NAME
    );
    let rescuer = TcpStream::connect(addr).unwrap(); // the watchdog: unblocks it
    let returned = rx.recv_timeout(Duration::from_secs(10)).expect("accept returns once a client comes");
    assert!(returned - started >= Duration::from_millis(300));
    blocked.join().unwrap().unwrap();
    drop((client, taken, rescuer));
}

/// The right way, as the TCP layer does it level-triggered: while a
/// connection has output queued its fd is watched for writable; once the
/// queue drains, writable interest is off again (the companion of the
/// spinning counter-example). Edge-triggered connections keep both interests
/// for good instead: "writable" is reported once per change, not forever
/// (`tests/net/edge_trigger.rs`).
fn write_interest_follows_the_output_queue<D: Dispatcher + 'static>() {
    const SIZE: usize = 8 << 20;
    let conn_fd = Arc::new(AtomicI32::new(-1));
    let seen = Arc::clone(&conn_fd);
    let callbacks = Callbacks::<D>::new().on_connection(move |ev, conn| {
        if conn.is_connected() {
            seen.store(conn.fd(), Ordering::SeqCst);
            let _ = conn.send(ev, &vec![5u8; SIZE]); // far more than the socket buffers hold
        }
    });
    let mut ev = EventLoop::<D>::new().unwrap();
    let server = Server::builder("127.0.0.1:0", callbacks).trigger(Trigger::Level).start(&mut ev).unwrap();
    let client = TcpStream::connect(server.local_addr()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while conn_fd.load(Ordering::SeqCst) < 0 {
        assert!(Instant::now() < deadline, "{}: no connection", D::NAME);
        ev.run_once(Some(TICK)).unwrap();
    }
    let fd = conn_fd.load(Ordering::SeqCst);
    ev.run_once(Some(TICK)).unwrap();
    let queued = ev.interest(fd).expect("registered");
    assert!(queued.is_writable(), "{}: output queued, interest {queued:?}", D::NAME);
    // The client reads everything; the queue drains.
    let reader = std::thread::spawn(move || {
        let mut client = client;
        client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut got = 0;
        let mut buf = vec![0u8; 1 << 16];
        while got < SIZE {
            match client.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        (got, client)
    });
    while !reader.is_finished() {
        assert!(Instant::now() < deadline, "{}: the client never got everything", D::NAME);
        ev.run_once(Some(TICK)).unwrap();
    }
    let (got, client) = reader.join().unwrap();
    assert_eq!(got, SIZE, "{}", D::NAME);
    ev.run_once(Some(TICK)).unwrap();
    let drained = ev.interest(fd).expect("still registered");
    assert_eq!(drained, Interest::READABLE, "{}: drained, writable interest must be off", D::NAME);
    drop(client);
    server.stop(&mut ev, Duration::from_secs(2)).unwrap();
}

for_each_dispatcher!(
    write_interest_follows_the_output_queue,
    writable_interest_left_on_spins,
    edge_is_refused_where_unsupported,
    rst_before_accept,
    blocking_accept_hangs_after_stale_readiness,
    emfile_without_spare_fd_spins,
);

// ---- EMFILE, in a child process with a lowered fd limit ----

const CHILD_ENV: &str = "MUXLOOP_COUNTER_EMFILE_CHILD";

/// Dispatch calls in one window while a connection waits that cannot be
/// accepted. `spare`: give the spare fd back, accept, close, take it again.
fn spin_at_the_limit<D: Dispatcher>(
    backend: &mut D,
    lfd: BorrowedFd<'_>,
    spare: &mut Option<OwnedFd>,
) -> u64 {
    let mut events = Events::with_capacity(4);
    let (mut calls, start) = (0, Instant::now());
    while start.elapsed() < WINDOW {
        backend.dispatch(&mut events, Some(TICK)).unwrap();
        calls += 1;
        if events.is_empty() {
            continue;
        }
        match sys::accept(lfd) {
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => {
                if spare.take().is_some() {
                    drop(sys::accept(lfd)); // accept and close: the client is told, the queue empties
                    *spare = sys::open_dev_null().ok();
                }
                // Without a spare fd we can only return, and be woken again at once.
            }
            other => panic!("expected EMFILE, got {other:?}"),
        }
    }
    calls
}

fn emfile_child<D: Dispatcher>() {
    let listener = sys::tcp_listener(&"127.0.0.1:0".parse().unwrap(), false, 16).unwrap();
    let lfd = listener.as_raw_fd();
    let addr = sys::local_addr(listener.as_fd()).unwrap().to_inet().unwrap();
    let mut backend = D::new().unwrap();
    backend.register(lfd, Interest::READABLE, Mode::Level).unwrap();
    // Two clients wait in the accept queue (connected by the kernel).
    let clients: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut spare = sys::open_dev_null().ok();
    // Use up every fd below the limit.
    sys::set_nofile_limit(sys::open_fd_count().unwrap() as u64 + 8).unwrap();
    let mut filler = Vec::new();
    while let Ok(fd) = sys::open_dev_null() {
        filler.push(fd);
    }
    let mut none = None;
    let naive = spin_at_the_limit(&mut backend, listener.as_fd(), &mut none);
    let trick = spin_at_the_limit(&mut backend, listener.as_fd(), &mut spare);
    println!("dispatches naive={naive} trick={trick}");
    drop((filler, clients));
}

#[test]
#[ignore = "entry point of the EMFILE counter-example's child process"]
fn emfile_counter_child_entry() {
    match std::env::var(CHILD_ENV).as_deref() {
        Ok("select") => emfile_child::<muxloop::SelectDispatcher>(),
        Ok("poll") => emfile_child::<muxloop::PollDispatcher>(),
        #[cfg(muxloop_has_epoll)]
        Ok("epoll") => emfile_child::<muxloop::EpollDispatcher>(),
        #[cfg(muxloop_has_uring)]
        Ok("uring") => emfile_child::<muxloop::UringDispatcher>(),
        Ok("any") => emfile_child::<muxloop::AnyDispatcher>(),
        other => panic!("run by emfile_without_spare_fd_spins only (got {other:?})"),
    }
}

/// Wrong: at the fd limit, return from the listener's handler after the
/// `EMFILE`. The connection stays queued, the level-triggered listener stays
/// readable: the loop spins. Right: the spare-fd trick drains the queue.
fn emfile_without_spare_fd_spins<D: Dispatcher>() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &common::test_name(module_path!(), "emfile_counter_child_entry"), "--ignored"])
        .args(["--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, D::NAME)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap(); // the child exits within ~1 s
    assert!(child.wait().unwrap().success(), "{}: child failed:\n{out}", D::NAME);
    assert!(out.contains(" 1 passed"), "{}: the child ran no test (a wrong name?):\n{out}", D::NAME);
    let line = out.lines().find_map(|l| Some(l.split_once("dispatches ")?.1)).expect("the child reports");
    let count = |key: &str| -> u64 {
        line.split_whitespace().find_map(|kv| kv.strip_prefix(key)?.parse().ok()).unwrap()
    };
    let (naive, trick) = (count("naive="), count("trick="));
    assert!(trick <= 40, "{}: with the spare fd the loop sleeps ({trick} calls)", D::NAME);
    assert!(naive >= 20 * trick.max(1), "{}: without it, it spins ({naive} vs {trick} calls)", D::NAME);
}
