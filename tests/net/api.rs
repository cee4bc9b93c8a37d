//! The connection API a newcomer relies on, over real sockets, once per
//! dispatcher: servers that outlive their handle, typed per-connection
//! handlers without `Send`, built-in backpressure that offers leftover input
//! again, write-complete timing, close-after-flush, connection timers, owned
//! and vectored sends, std interop, and loop identity.

use crate::common;

use std::cell::RefCell;
use std::io::{self, IoSlice, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use muxloop::{
    Buffer, Callbacks, Connection, Dispatcher, EventLoop, Handler, Interest, Listener, PollDispatcher,
    Server, StreamAddr, Trigger, UnixAddr, sys,
};

/// Runs `ev` until `done` or 10 s; panics if it did not get there.
fn drive<D: Dispatcher>(ev: &mut EventLoop<D>, done: impl FnMut() -> bool) {
    assert!(run_until(ev, done), "the loop did not get there in time");
}

/// Runs `ev` on this thread while `client` runs on another; returns its result.
fn with_client<D: Dispatcher, T: Send + 'static>(
    ev: &mut EventLoop<D>,
    client: impl FnOnce() -> T + Send + 'static,
) -> T {
    let client = thread::spawn(client);
    drive(ev, || client.is_finished());
    client.join().expect("client thread")
}

fn echo<D: Dispatcher + 'static>() -> Callbacks<D> {
    Callbacks::new().on_message(|ev, conn, input| {
        let _ = conn.send(ev, input.peek());
        input.consume_all();
    })
}

/// Dropping the `Server` value does not stop the server: it belongs to its loop.
fn server_outlives_its_handle<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let addr =
        Server::builder("127.0.0.1:0", echo::<D>()).start(&mut ev).unwrap().local_addr().as_inet().unwrap();
    // The handle is gone; the listener must still be registered and serving.
    assert!(with_client(&mut ev, move || echo_round_trip(addr, b"still here")));
}

/// A handler with `&mut self` state per connection, and loop-wide state in an
/// `Rc<RefCell<..>>` (not `Send`): a `local_builder` server.
struct Counter {
    lines: u64,
    total: Rc<RefCell<u64>>,
}

impl<D: Dispatcher + 'static> Handler<D> for Counter {
    fn on_message(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>, input: &mut Buffer) {
        while let Some(eol) = input.find_eol() {
            input.consume(eol + 1);
            self.lines += 1;
            *self.total.borrow_mut() += 1;
            let reply = format!("{} {}\n", self.lines, self.total.borrow());
            let _ = conn.send(ev, reply.as_bytes());
        }
    }
}

fn typed_state_without_send<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let total = Rc::new(RefCell::new(0u64));
    let shared = Rc::clone(&total);
    let factory = move |_: &Connection<D>| Counter { lines: 0, total: Rc::clone(&shared) };
    let addr =
        Server::local_builder("127.0.0.1:0", factory).start(&mut ev).unwrap().local_addr().as_inet().unwrap();
    let replies = with_client(&mut ev, move || {
        let mut streams = [connect(addr), connect(addr)];
        let mut replies = Vec::new();
        for (i, line) in [(0, "x\n"), (1, "y\n"), (0, "z\n")] {
            let stream = &mut streams[i];
            stream.write_all(line.as_bytes()).unwrap();
            let mut got = Vec::new();
            while !got.ends_with(b"\n") {
                got.extend(read_up_to(stream, 1));
            }
            replies.push(String::from_utf8(got).unwrap());
        }
        replies
    });
    // Per-connection counts are separate; the loop-wide one is shared.
    assert_eq!(replies, ["1 1\n", "1 2\n", "2 3\n"]);
    assert_eq!(*total.borrow(), 3);

    let err =
        Server::local_builder("127.0.0.1:0", |_: &Connection<D>| Counter { lines: 0, total: Rc::default() })
            .threads(2)
            .start(&mut ev)
            .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
}

/// A request/reply handler that answers at most `budget` requests per call,
/// leaving the rest in the input: it must be offered them again even though
/// no new byte arrives.
struct Budgeted {
    per_call: usize,
}

impl<D: Dispatcher + 'static> Handler<D> for Budgeted {
    fn on_message(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>, input: &mut Buffer) {
        for _ in 0..self.per_call {
            let Some(eol) = input.find_eol() else { return };
            let line = input.take(eol + 1);
            let _ = conn.send(ev, &line);
        }
        if input.find_eol().is_some() {
            conn.offer_input(ev);
        }
    }
}

fn leftover_input_is_offered_again<D: Dispatcher + 'static>() {
    let server = spawn_server::<D, _>(|_: &Connection<D>| Budgeted { per_call: 3 }, 0);
    let mut stream = connect(server.addr);
    let request: String = (0..1000).map(|i| format!("request {i}\n")).collect();
    stream.write_all(request.as_bytes()).unwrap(); // one write: every line is pipelined
    let got = read_up_to(&mut stream, request.len());
    assert_eq!(String::from_utf8(got).unwrap(), request, "every pipelined line answered, in order");
}

/// Replies to each `N\n` with N bytes; a client that pipelines many and does
/// not read must stop being read once the server's queue passes the output
/// limit: it can then only push what the kernel buffers hold.
fn output_limit_pauses_reading_and_resumes<D: Dispatcher + 'static>() {
    const REPLY: usize = 64 * 1024;
    const LIMIT: usize = 256 * 1024;
    let max_queued = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&max_queued);
    let callbacks = Callbacks::<D>::new().on_message(move |ev, conn, input| {
        while let Some(eol) = input.find_eol() {
            if conn.is_output_full() {
                return; // offered again once the output drains
            }
            input.consume(eol + 1);
            let _ = conn.send_owned(ev, vec![b'r'; REPLY]);
            seen.fetch_max(conn.queued_output(), Ordering::SeqCst);
        }
    });
    let server = spawn_server_with::<D, _, _>(callbacks, |b| b.output_limit(Some(LIMIT)));
    let stream = connect(server.addr);
    stream.set_nonblocking(true).unwrap();
    let mut writer = &stream;
    // 4000 x 4 KiB of requests (more than socket buffers hold) asking for
    // 4000 x 64 KiB = 250 MiB of replies if nothing held them back.
    let requests = 4000;
    let mut line = vec![b'q'; 4096];
    line[4095] = b'\n';
    let request = line.repeat(requests);
    let mut written = 0;
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline && written < request.len() {
        match writer.write(&request[written..]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("write: {e}"),
        }
    }
    assert!(written < request.len(), "the server kept reading: it buffered every reply");
    let bound = LIMIT + REPLY;
    assert!(
        max_queued.load(Ordering::SeqCst) <= bound,
        "queued {} > {bound}",
        max_queued.load(Ordering::SeqCst)
    );
    // Now read: the rest of the requests get in, and every reply arrives.
    stream.set_nonblocking(false).unwrap();
    let mut reader = stream.try_clone().unwrap();
    let expected = requests * REPLY;
    let reading = thread::spawn(move || {
        let mut buf = vec![0; 1 << 20];
        let mut got = 0;
        while got < expected {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        got
    });
    let mut writer = &stream;
    writer.write_all(&request[written..]).unwrap();
    assert_eq!(reading.join().unwrap(), expected, "all replies arrive once the client reads");
    assert!(max_queued.load(Ordering::SeqCst) <= bound);
}

/// `on_write_complete` runs after the batch, also for a send that completed
/// at once, and after a queued send drains; never inside `send`.
fn write_complete_is_deferred<D: Dispatcher + 'static>() {
    let log: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let (in_message, in_complete) = (Arc::clone(&log), Arc::clone(&log));
    let callbacks = Callbacks::<D>::new()
        .on_message(move |ev, conn, input| {
            let big = input.peek().starts_with(b"big");
            input.consume_all();
            in_message.lock().unwrap().push("send");
            let _ = conn.send(ev, &vec![b'x'; if big { 8 << 20 } else { 10 }]);
            in_message.lock().unwrap().push("sent");
        })
        .on_write_complete(move |_, _| in_complete.lock().unwrap().push("complete"));
    let server = spawn_server::<D, _>(callbacks, 0);
    let mut stream = connect(server.addr);
    stream.write_all(b"small").unwrap();
    assert_eq!(read_up_to(&mut stream, 10).len(), 10);
    assert!(wait_until(Duration::from_secs(5), || log.lock().unwrap().len() == 3));
    assert_eq!(*log.lock().unwrap(), ["send", "sent", "complete"]);
    stream.write_all(b"big").unwrap();
    assert_eq!(read_up_to(&mut stream, 8 << 20).len(), 8 << 20);
    assert!(wait_until(Duration::from_secs(5), || log.lock().unwrap().len() == 6));
    assert_eq!(log.lock().unwrap()[3..], ["send", "sent", "complete"]);
}

/// `close_after_flush` delivers everything queued, then closes without
/// waiting for the client's FIN.
fn close_after_flush_delivers_then_closes<D: Dispatcher + 'static>() {
    let callbacks = Callbacks::<D>::new().on_message(|ev, conn, input| {
        input.consume_all();
        let _ = conn.send_owned(ev, vec![b'q'; 4 << 20]);
        conn.close_after_flush(ev);
        assert!(conn.send(ev, b"late").is_err(), "no sends after close_after_flush");
    });
    let server = spawn_server::<D, _>(callbacks, 0);
    let mut stream = connect(server.addr);
    stream.write_all(b"QUIT\r\n").unwrap();
    // We never shut our side down: EOF can only come from the server closing.
    let got = read_to_eof(&mut stream).expect("read until the server closes");
    assert_eq!(got.len(), 4 << 20);
    assert!(got.iter().all(|&b| b == b'q'));
}

/// With an idle timeout, a silent connection is closed and an active one
/// is not; the default `on_timeout` closes.
fn idle_timeout_closes_silent_connections<D: Dispatcher + 'static>() {
    let closed = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&closed);
    let callbacks = echo::<D>().on_connection(move |_, conn| {
        if !conn.is_connected() {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    let server =
        spawn_server_with::<D, _, _>(callbacks, |b| b.idle_timeout(Some(Duration::from_millis(300))));
    let mut silent = connect(server.addr);
    let mut active = connect(server.addr);
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(900) {
        active.write_all(b"ping").unwrap();
        assert_eq!(read_up_to(&mut active, 4), b"ping", "the active connection stays open");
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(read_to_eof(&mut silent).unwrap(), b"", "the silent one was closed");
    let closed_after = started.elapsed();
    assert!(closed_after < Duration::from_secs(5), "closed within the timeout plus a sweep");
    assert_eq!(closed.load(Ordering::SeqCst), 1, "only the silent connection closed");
}

/// A handler's own timer: `set_timeout` then `on_timeout`, re-armed by the handler.
struct Ticker {
    ticks: Arc<AtomicUsize>,
}

impl<D: Dispatcher + 'static> Handler<D> for Ticker {
    fn on_connect(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        conn.set_timeout(ev, Some(Duration::from_millis(50)));
    }
    fn on_message(&mut self, _: &mut EventLoop<D>, _: &Connection<D>, input: &mut Buffer) {
        input.consume_all();
    }
    fn on_timeout(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        if self.ticks.fetch_add(1, Ordering::SeqCst) + 1 < 3 {
            conn.set_timeout(ev, Some(Duration::from_millis(50)));
        } else {
            let _ = conn.send(ev, b"done");
            conn.close_after_flush(ev);
        }
    }
}

fn handler_timer_fires_and_rearms<D: Dispatcher + 'static>() {
    let ticks = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&ticks);
    let server = spawn_server::<D, _>(move |_: &Connection<D>| Ticker { ticks: Arc::clone(&counted) }, 0);
    let mut stream = connect(server.addr);
    let started = Instant::now();
    assert_eq!(read_to_eof(&mut stream).unwrap(), b"done");
    assert_eq!(ticks.load(Ordering::SeqCst), 3);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(150), "three 50 ms timers took {took:?}");
    assert!(took < Duration::from_secs(5), "three 50 ms timers took {took:?}");
}

/// Owned and vectored sends arrive byte-exact and in order, also when they
/// queue behind earlier output.
fn owned_and_vectored_sends<D: Dispatcher + 'static>() {
    let payload = Arc::new(Rng::new(3).bytes(6 << 20));
    let data = Arc::clone(&payload);
    let callbacks = Callbacks::<D>::new().on_message(move |ev, conn, input| {
        input.consume_all();
        let (a, b) = data.split_at(2 << 20);
        let (b, c) = b.split_at(3);
        conn.send_owned(ev, a.to_vec()).unwrap();
        conn.send_vectored(ev, &[IoSlice::new(b), IoSlice::new(&[]), IoSlice::new(c)]).unwrap();
        let tail = conn.send_with(ev, |out| {
            out.extend_from_slice(b"-");
            out.extend_from_slice(b"end");
            out.len()
        });
        assert_eq!(tail.unwrap(), 4);
    });
    let server = spawn_server::<D, _>(callbacks, 0);
    let mut stream = connect(server.addr);
    stream.write_all(b"go").unwrap();
    let got = read_up_to(&mut stream, payload.len() + 4);
    assert_eq!(got.len(), payload.len() + 4);
    assert_eq!(fnv1a(&got[..payload.len()]), fnv1a(&payload));
    assert_eq!(&got[payload.len()..], b"-end");
}

/// `ToSocketAddrs` (a host name), an adopted std listener, and `AsRawFd`.
fn std_interop<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let named = Server::builder("localhost:0", echo::<D>()).start(&mut ev).unwrap();
    assert!(named.local_addr().as_inet().unwrap().ip().is_loopback());

    let std_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let adopted_addr = std_listener.local_addr().unwrap();
    let (fd_tx, fd_rx) = mpsc::channel();
    let callbacks = echo::<D>().on_connection(move |_, conn| {
        if conn.is_connected() {
            fd_tx.send((conn.as_raw_fd(), conn.fd())).unwrap();
        }
    });
    let adopted = Server::builder(adopted_addr, callbacks).listener(std_listener).start(&mut ev).unwrap();
    assert_eq!(adopted.local_addr(), adopted_addr);
    assert!(with_client(&mut ev, move || echo_round_trip(adopted_addr, b"adopted")));
    let (raw, fd) = fd_rx.try_recv().unwrap();
    assert_eq!(raw, fd);

    // A std stream connected elsewhere, adopted by the loop.
    let peer_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let std_stream = TcpStream::connect(peer_listener.local_addr().unwrap()).unwrap();
    let adopted_conn =
        Connection::from_std(&mut ev, std_stream, echo::<D>(), muxloop::ConnectionOptions::default())
            .unwrap();
    assert_eq!(adopted_conn.peer_addr(), peer_listener.local_addr().unwrap());
    let (mut far_end, _) = peer_listener.accept().unwrap();
    let echoed = with_client(&mut ev, move || {
        far_end.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        far_end.write_all(b"adopted stream").unwrap();
        read_up_to(&mut far_end, 14)
    });
    assert_eq!(echoed, b"adopted stream");

    // IPv6: a server on [::1] and a client (the connector) over it.
    let v6 = Server::builder("[::1]:0", echo::<D>()).start(&mut ev).unwrap();
    assert!(v6.local_addr().as_inet().unwrap().is_ipv6());
    let v6_addr = v6.local_addr().as_inet().unwrap();
    assert!(with_client(&mut ev, move || echo_round_trip(v6_addr, b"over ipv6")));
    let (up_tx, up_rx) = mpsc::channel();
    let client = Callbacks::<D>::new()
        .on_connection(move |ev, conn| {
            if conn.is_connected() {
                let _ = conn.send(ev, b"v6 client");
            }
        })
        .on_message(move |_, _, input| {
            if input.len() >= 9 {
                let _ = up_tx.send(input.take_all());
            }
        });
    muxloop::Client::new(v6_addr, client).connect(&mut ev);
    let mut got = None;
    drive(&mut ev, || {
        got = got.take().or_else(|| up_rx.try_recv().ok());
        got.is_some()
    });
    assert_eq!(got.unwrap(), b"v6 client");

    let err = Server::builder("no-such-host.invalid:0", echo::<D>()).start(&mut ev).unwrap_err();
    assert!(!err.to_string().is_empty());
}

/// A connection refuses to be driven by another loop: a clear error, and the
/// connection stays registered on its own loop.
fn other_loop_is_refused<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let mut other = EventLoop::<D>::new().unwrap();
    let conns: Rc<RefCell<Vec<Connection<D>>>> = Rc::default();
    let kept = Rc::clone(&conns);
    let factory = move |conn: &Connection<D>| {
        kept.borrow_mut().push(conn.clone());
        echo::<D>()
    };
    let addr =
        Server::local_builder("127.0.0.1:0", factory).start(&mut ev).unwrap().local_addr().as_inet().unwrap();
    let client = TcpStream::connect(addr).unwrap();
    drive(&mut ev, || !conns.borrow().is_empty());
    let conn = conns.borrow()[0].clone();
    let err = conn.send(&mut other, b"x").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    conn.force_close(&mut other);
    assert!(conn.is_connected(), "force_close through another loop is ignored");
    assert!(ev.is_registered(conn.fd()), "still registered on its own loop");
    assert!(!other.is_registered(conn.fd()));
    conn.force_close(&mut ev);
    assert!(!conn.is_connected());
    drop(client);
}

/// Level-triggered, write interest is on exactly while output is queued, and
/// a connection with drained output causes no dispatches while idle (the
/// edge-triggered counterpart, fixed interest, is in `tests/net/edge_trigger.rs`).
fn write_interest_follows_the_queue<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let conns: Rc<RefCell<Vec<Connection<D>>>> = Rc::default();
    let kept = Rc::clone(&conns);
    let factory = move |conn: &Connection<D>| {
        kept.borrow_mut().push(conn.clone());
        Callbacks::<D>::new()
    };
    let addr = Server::local_builder("127.0.0.1:0", factory)
        .output_limit(None)
        .trigger(Trigger::Level)
        .start(&mut ev)
        .unwrap()
        .local_addr();
    let mut client = TcpStream::connect(addr).unwrap();
    drive(&mut ev, || !conns.borrow().is_empty());
    let conn = conns.borrow()[0].clone();
    assert_eq!(ev.interest(conn.fd()), Some(Interest::READABLE));
    conn.send(&mut ev, &vec![b'w'; 16 << 20]).unwrap();
    assert!(conn.queued_output() > 0, "16 MiB cannot all fit in the socket buffers");
    assert_eq!(ev.interest(conn.fd()), Some(Interest::BOTH), "write interest on while output is queued");
    let reader = thread::spawn(move || read_up_to(&mut client, 16 << 20).len());
    drive(&mut ev, || conn.queued_output() == 0);
    assert_eq!(ev.interest(conn.fd()), Some(Interest::READABLE), "write interest off once drained");
    assert_eq!(reader.join().unwrap(), 16 << 20);
    // Idle, drained: the loop sleeps (a writable fd left registered would wake it every time).
    ev.run_once(Some(Duration::ZERO)).unwrap();
    let before = ev.stats().dispatch_calls;
    let started = Instant::now();
    ev.run_once(Some(Duration::from_millis(200))).unwrap();
    assert_eq!(ev.stats().dispatch_calls - before, 1);
    assert!(started.elapsed() >= Duration::from_millis(150), "the dispatch slept instead of spinning");
}

// ---------------------------------------------------------------------------
// Exact cases that pin what the cases above left loose (each killed a mutant
// that survived them; `docs/mutants.md` lists which)
// ---------------------------------------------------------------------------

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

/// A loop the test drives, with a local server whose connections the test
/// keeps (each handler from `handler`), and `clients` TCP clients connected
/// and accepted.
fn kept_connections<H: Handler<PollDispatcher>>(
    clients: usize,
    configure: impl FnOnce(muxloop::ServerBuilder<PollDispatcher>) -> muxloop::ServerBuilder<PollDispatcher>,
    handler: impl Fn() -> H + 'static,
) -> (EventLoop<PollDispatcher>, Server<PollDispatcher>, Vec<TcpStream>, Vec<Connection<PollDispatcher>>) {
    let mut ev = EventLoop::<PollDispatcher>::new().unwrap();
    let conns: Rc<RefCell<Vec<Connection<PollDispatcher>>>> = Rc::default();
    let kept = Rc::clone(&conns);
    let factory = move |conn: &Connection<PollDispatcher>| {
        kept.borrow_mut().push(conn.clone());
        handler()
    };
    let server = configure(Server::local_builder("127.0.0.1:0", factory)).start(&mut ev).unwrap();
    let addr = server.local_addr().as_inet().unwrap();
    let clients: Vec<_> = (0..clients).map(|_| connect(addr)).collect();
    drive(&mut ev, || conns.borrow().len() == clients.len());
    let conns = conns.borrow().clone();
    (ev, server, clients, conns)
}

/// Runs `ev` while reading `client` (made non-blocking) until EOF, `enough`
/// bytes or `limit`; what arrived, and whether EOF did.
fn read_while_driving(
    ev: &mut EventLoop<PollDispatcher>,
    client: &mut TcpStream,
    enough: usize,
    limit: Duration,
) -> (Vec<u8>, bool) {
    client.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 256 << 10];
    while got.len() < enough && Instant::now() < deadline {
        match client.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                ev.run_once(Some(Duration::from_millis(5))).unwrap();
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    (got, false)
}

/// `ConnectionHandle::send_from` on the connection's own loop writes at
/// once, before that loop runs again; from another loop it is queued to
/// the connection's loop and goes out when that loop runs.
#[test]
fn handle_send_from_writes_on_its_own_loop_and_queues_from_another() {
    let (mut ev, _server, mut clients, conns) = kept_connections(1, |b| b, Callbacks::new);
    let handle = conns[0].handle();
    let mut client = clients.remove(0);
    client.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    handle.send_from(&mut ev, b"direct").unwrap();
    // The loop does not run here: only a direct write can have sent it.
    assert_eq!(read_up_to(&mut client, 6), b"direct", "send_from on its own loop writes at once");

    let mut other = EventLoop::<PollDispatcher>::new().unwrap();
    handle.send_from(&mut other, b"queued").unwrap();
    let (got, _) = read_while_driving(&mut ev, &mut client, 6, Duration::from_secs(5));
    assert_eq!(got, b"queued", "send_from on another loop is queued to the connection's loop");
}

/// `ConnectionHandle::shutdown` half-closes: the queued output, then FIN;
/// the connection still reads, and closes when the client closes.
#[test]
fn handle_shutdown_half_closes() {
    let received: Arc<Mutex<Vec<u8>>> = Arc::default();
    let sink = Arc::clone(&received);
    let (mut ev, server, mut clients, conns) = kept_connections(
        1,
        |b| b,
        move || {
            let sink = Arc::clone(&sink);
            Callbacks::new().on_message(move |_, _, input| sink.lock().unwrap().extend(input.take_all()))
        },
    );
    let handle = conns[0].handle();
    let payload = Rng::new(11).bytes(1 << 20);
    handle.send(payload.clone()).unwrap();
    handle.shutdown().unwrap();
    let (got, eof) = read_while_driving(&mut ev, &mut clients[0], usize::MAX, Duration::from_secs(5));
    assert!(eof, "no FIN after shutdown ({} bytes arrived)", got.len());
    assert!(got == payload, "{} of {} bytes, then FIN", got.len(), payload.len());
    assert_eq!(server.live_connections(), 1, "a half-closed connection stays open");
    clients[0].write_all(b"after FIN").unwrap();
    drive(&mut ev, || received.lock().unwrap().len() == 9);
    assert_eq!(*received.lock().unwrap(), b"after FIN", "a half-closed connection still reads");
    clients.clear();
    drive(&mut ev, || server.live_connections() == 0);
}

/// `ConnectionHandle::close_after_flush` delivers what is queued, then
/// closes, without waiting for the client.
#[test]
fn handle_close_after_flush_delivers_then_closes() {
    let (mut ev, server, mut clients, conns) = kept_connections(1, |b| b, Callbacks::new);
    let handle = conns[0].handle();
    let payload = Rng::new(12).bytes(1 << 20);
    handle.send(payload.clone()).unwrap();
    handle.close_after_flush().unwrap();
    let (got, eof) = read_while_driving(&mut ev, &mut clients[0], usize::MAX, Duration::from_secs(5));
    assert!(eof, "not closed after the flush ({} bytes arrived)", got.len());
    assert!(got == payload, "{} of {} bytes, then the close", got.len(), payload.len());
    drive(&mut ev, || server.live_connections() == 0);
    assert!(!conns[0].is_connected());
}

/// `ConnectionHandle::force_close` closes at once and drops the output
/// the client has not made room for.
#[test]
fn handle_force_close_closes_now() {
    const SENT: usize = 4 << 20;
    let (mut ev, server, mut clients, conns) =
        kept_connections(1, |b| b.output_limit(None).send_buffer(Some(64 << 10)), Callbacks::new);
    sys::set_buffer_sizes(clients[0].as_fd(), None, Some(64 << 10)).unwrap();
    let handle = conns[0].handle();
    handle.send(vec![b'f'; SENT]).unwrap();
    handle.force_close().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.live_connections() > 0 && Instant::now() < deadline {
        ev.run_once(Some(Duration::from_millis(10))).unwrap();
    }
    assert_eq!(
        server.live_connections(),
        0,
        "force_close did not close ({} bytes still queued)",
        conns[0].queued_output()
    );
    assert!(!conns[0].is_connected());
    assert_eq!(handle.queued_output(), 0, "the dropped output is gone from the handle's count too");
    let (got, eof) = read_while_driving(&mut ev, &mut clients[0], usize::MAX, Duration::from_secs(5));
    assert!(eof);
    assert!(got.len() < SENT, "the unsent output was dropped: {} of {SENT} bytes arrived", got.len());
}

/// A handler that records when each connection's timer ran out.
struct TimedOut(Rc<RefCell<Vec<(u64, Instant)>>>);

impl Handler<PollDispatcher> for TimedOut {
    fn on_message(
        &mut self,
        _: &mut EventLoop<PollDispatcher>,
        _: &Connection<PollDispatcher>,
        input: &mut Buffer,
    ) {
        input.consume_all();
    }
    fn on_timeout(&mut self, _: &mut EventLoop<PollDispatcher>, conn: &Connection<PollDispatcher>) {
        self.0.borrow_mut().push((conn.id(), Instant::now()));
    }
}

/// The loop's timer sweep runs often enough for its shortest timeout,
/// whatever order the timeouts are armed in: a short one after a long one
/// speeds it up, a long one after a short one does not slow it down (a
/// 40 ms timeout would otherwise wait for a 10 s timeout's 1 s sweep).
#[test]
fn the_sweep_follows_the_shortest_timeout() {
    const SHORT: Duration = Duration::from_millis(40);
    const LONG: Duration = Duration::from_secs(10);
    let fired: Rc<RefCell<Vec<(u64, Instant)>>> = Rc::default();
    let log = Rc::clone(&fired);
    let (mut ev, _server, _clients, conns) = kept_connections(2, |b| b, move || TimedOut(Rc::clone(&log)));
    let (short, long) = (&conns[0], &conns[1]);
    for long_first in [true, false] {
        fired.borrow_mut().clear();
        if long_first {
            long.set_timeout(&mut ev, Some(LONG));
            short.set_timeout(&mut ev, Some(SHORT));
        } else {
            short.set_timeout(&mut ev, Some(SHORT));
            long.set_timeout(&mut ev, Some(LONG));
        }
        let armed = Instant::now();
        drive(&mut ev, || !fired.borrow().is_empty());
        let (id, at) = fired.borrow()[0];
        assert_eq!(id, short.id());
        let took = at - armed;
        assert!(
            took < Duration::from_millis(500),
            "long first: {long_first}: the 40 ms timeout took {took:?}"
        );
    }
}

/// Output sent while output is queued waits behind it even when the socket
/// has room again (the client read, the loop has not written since): the
/// stream keeps its order.
#[test]
fn a_send_behind_queued_output_keeps_its_place() {
    let (mut ev, _server, mut clients, conns) =
        kept_connections(1, |b| b.output_limit(None).send_buffer(Some(64 << 10)), Callbacks::new);
    let (conn, client) = (&conns[0], &mut clients[0]);
    sys::set_buffer_sizes(client.as_fd(), None, Some(64 << 10)).unwrap();
    let payload = Rng::new(13).bytes(4 << 20);
    conn.send(&mut ev, &payload).unwrap();
    assert!(conn.queued_output() > 0, "4 MiB cannot all fit in the socket buffers");
    // Empty the kernel's buffers without running the loop: the socket has
    // room, and the queue is still there.
    client.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        match client.read(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(50));
                match client.read(&mut buf) {
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("read: {e}"),
                }
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    assert!(!got.is_empty() && conn.queued_output() > 0);
    conn.send(&mut ev, b"END").unwrap();
    conn.close_after_flush(&mut ev);
    let (rest, eof) = read_while_driving(&mut ev, client, usize::MAX, Duration::from_secs(10));
    got.extend(rest);
    assert!(eof);
    assert_eq!(got.len(), payload.len() + 3);
    assert!(got[..payload.len()] == payload[..], "the queued bytes arrived intact and in order");
    assert_eq!(&got[payload.len()..], b"END", "the later send came last");
}

for_each_dispatcher!(
    server_outlives_its_handle,
    typed_state_without_send,
    leftover_input_is_offered_again,
    output_limit_pauses_reading_and_resumes,
    write_complete_is_deferred,
    close_after_flush_delivers_then_closes,
    idle_timeout_closes_silent_connections,
    handler_timer_fires_and_rearms,
    owned_and_vectored_sends,
    std_interop,
    other_loop_is_refused,
    write_interest_follows_the_queue,
);
