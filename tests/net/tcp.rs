//! The TCP layer over real loopback sockets, once per dispatcher: echo
//! integrity under backpressure, half-close, resets, high-water mark,
//! cross-thread sends, the connector, and a chat room across sub-loops.

use crate::common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use muxloop::{Callbacks, Client, ConnectOptions, ConnectionHandle, Dispatcher, EventLoop, sys};

/// 50 clients each send 1-4 MiB of random bytes in random-size writes while
/// reading slowly; every byte comes back in order.
fn echo_integrity<D: Dispatcher + 'static>(threads: usize) {
    let server = spawn_server_with::<D, _, _>(echo_callbacks(), move |b| {
        b.threads(threads).output_limit(Some(256 * 1024))
    });
    let clients: Vec<_> = (0..50u64)
        .map(|i| {
            let addr = server.addr;
            thread::spawn(move || {
                let mut rng = Rng::new(i + 1);
                let len = rng.range(1 << 20, 4 << 20);
                let data = rng.bytes(len);
                let stream = connect(addr);
                let mut writer = stream.try_clone().unwrap();
                let sent = data.clone();
                let writing = thread::spawn(move || {
                    let mut rng = Rng::new(i + 1000);
                    let mut off = 0;
                    while off < sent.len() {
                        let n = rng.range(1, 64 * 1024).min(sent.len() - off);
                        writer.write_all(&sent[off..off + n]).unwrap();
                        off += n;
                    }
                });
                let mut reader = stream;
                let mut got = Vec::with_capacity(data.len());
                let mut chunk = vec![0; 16 * 1024];
                while got.len() < data.len() {
                    let n = reader.read(&mut chunk).expect("echo read");
                    assert!(n > 0, "server closed early after {} of {} bytes", got.len(), data.len());
                    got.extend_from_slice(&chunk[..n]);
                    if rng.range(0, 7) == 0 {
                        thread::sleep(Duration::from_millis(1)); // a slow reader
                    }
                }
                writing.join().unwrap();
                assert_eq!(got.len(), data.len());
                assert_eq!(fnv1a(&got), fnv1a(&data), "client {i}: bytes differ");
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client thread");
    }
}

fn echo_integrity_main_loop<D: Dispatcher + 'static>() {
    echo_integrity::<D>(0);
}

fn echo_integrity_four_threads<D: Dispatcher + 'static>() {
    echo_integrity::<D>(4);
}

/// The client half-closes with 8 MiB still to be echoed: the server delivers
/// all of it, then closes.
fn half_close_delivers_pending_output<D: Dispatcher + 'static>() {
    let server = spawn_server_with::<D, _, _>(echo_callbacks(), |b| b.output_limit(Some(64 * 1024 * 1024)));
    let data = Rng::new(7).bytes(8 << 20);
    let mut stream = connect(server.addr);
    let mut reader = stream.try_clone().unwrap();
    let expected = data.len();
    let reading = thread::spawn(move || read_to_eof(&mut reader).expect("read until the server closes"));
    stream.write_all(&data).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let got = reading.join().unwrap();
    assert_eq!(got.len(), expected, "all pending output arrives before the close");
    assert_eq!(fnv1a(&got), fnv1a(&data));
}

/// A peer that resets in the middle of a large write is closed; the server
/// keeps serving others (and, with MSG_NOSIGNAL, raises no SIGPIPE).
fn peer_reset_during_large_write<D: Dispatcher + 'static>() {
    let downs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&downs);
    let big = Arc::new(vec![b'x'; 32 << 20]);
    let callbacks = Callbacks::<D>::new()
        .on_connection(move |_, conn| {
            if !conn.is_connected() {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        })
        .on_message(move |ev, conn, input| {
            if input.find_eol().is_some() && input.peek().starts_with(b"big") {
                let _ = conn.send(ev, &big); // far more than the socket buffers hold
            } else {
                let _ = conn.send(ev, input.peek());
            }
            input.consume_all();
        });
    let server = spawn_server::<D, _>(callbacks, 2);
    let mut victim = connect(server.addr);
    victim.write_all(b"big\n").unwrap();
    let mut first = [0u8; 1024];
    victim.read_exact(&mut first).unwrap(); // the large write has started
    sys::set_linger(victim.as_fd(), Some(Duration::ZERO)).unwrap();
    drop(victim); // RST
    assert!(
        wait_until(Duration::from_secs(10), || downs.load(Ordering::SeqCst) == 1),
        "reset connection closed"
    );
    for i in 0..5u8 {
        assert!(echo_round_trip(server.addr, &[b'a' + i; 100]), "server still serves after a reset");
    }
}

/// The high-water-mark callback fires once each time the queue crosses it.
fn high_water_mark_fires_once_per_crossing<D: Dispatcher + 'static>() {
    let crossings = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&crossings);
    const BURST: usize = 8 << 20;
    let callbacks = Callbacks::<D>::new()
        .on_connection(|_, conn| {
            // Small kernel buffers: loopback autotuning could otherwise
            // absorb the whole burst and nothing would ever queue.
            if conn.is_connected() {
                conn.with_fd(|fd| sys::set_buffer_sizes(fd, Some(128 << 10), None)).unwrap();
            }
        })
        .on_message(|ev, conn, input| {
            while let Some(eol) = input.find_eol() {
                input.consume(eol + 1);
                let chunk = vec![b'z'; 64 * 1024];
                for _ in 0..BURST / chunk.len() {
                    let _ = conn.send(ev, &chunk);
                }
            }
        })
        .on_high_water_mark(move |_, _, queued| {
            assert!(queued >= 1 << 20);
            counted.fetch_add(1, Ordering::SeqCst);
        });
    let server = spawn_server_with::<D, _, _>(callbacks, |b| b.high_water_mark(1 << 20));
    let mut stream = connect(server.addr);
    sys::set_buffer_sizes(stream.as_fd(), None, Some(128 << 10)).unwrap();
    for round in 1..=2 {
        stream.write_all(b"go\n").unwrap();
        assert!(wait_until(Duration::from_secs(20), || crossings.load(Ordering::SeqCst) >= round));
        thread::sleep(Duration::from_millis(50));
        assert_eq!(crossings.load(Ordering::SeqCst), round, "one callback per crossing, not per send");
        assert_eq!(read_up_to(&mut stream, BURST).len(), BURST);
    }
}

/// Any thread can send through a `ConnectionHandle`; connections on four
/// sub-loops each get their own message.
fn cross_thread_send<D: Dispatcher + 'static>() {
    let handles: Arc<Mutex<Vec<ConnectionHandle<D>>>> = Arc::default();
    let registry = Arc::clone(&handles);
    let callbacks = Callbacks::<D>::new().on_connection(move |_, conn| {
        if conn.is_connected() {
            registry.lock().unwrap().push(conn.handle());
        }
    });
    let server = spawn_server::<D, _>(callbacks, 4);
    let mut clients: Vec<_> = (0..4).map(|_| connect(server.addr)).collect();
    assert!(wait_until(Duration::from_secs(5), || handles.lock().unwrap().len() == 4));
    let by_peer: HashMap<muxloop::StreamAddr, ConnectionHandle<D>> =
        handles.lock().unwrap().iter().map(|h| (h.peer_addr(), h.clone())).collect();
    let senders: Vec<_> = clients
        .iter()
        .map(|c| {
            let handle = by_peer[&c.local_addr().unwrap().into()].clone();
            thread::spawn(move || handle.send(format!("hello {}\n", handle.peer_addr())).unwrap())
        })
        .collect();
    senders.into_iter().for_each(|s| s.join().unwrap());
    for client in &mut clients {
        let expected = format!("hello {}\n", client.local_addr().unwrap());
        assert_eq!(read_up_to(client, expected.len()), expected.as_bytes());
    }
}

/// Runs `ev` until `done` or 10 s.
fn drive<D: Dispatcher>(ev: &mut EventLoop<D>, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() && Instant::now() < deadline {
        ev.run_once(Some(Duration::from_millis(20))).unwrap();
    }
    assert!(done(), "the loop did not get there in 10 s");
}

/// Connecting to a closed port reports ECONNREFUSED (after the retries);
/// to a listening port, the connection comes up.
fn connector_refused_and_connected<D: Dispatcher + 'static>() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap(); // bound, then closed
    let mut ev = EventLoop::<D>::new().unwrap();
    let outcome: Arc<Mutex<Option<ErrorKind>>> = Arc::default();
    let recorded = Arc::clone(&outcome);
    let options = ConnectOptions {
        retries: 2,
        initial_backoff: Duration::from_millis(20),
        ..ConnectOptions::default()
    };
    let started = Instant::now();
    Client::new(closed, Callbacks::<D>::new())
        .options(options)
        .on_connect_error(move |_, e| *recorded.lock().unwrap() = Some(e.kind()))
        .connect(&mut ev);
    drive(&mut ev, || outcome.lock().unwrap().is_some());
    assert_eq!(*outcome.lock().unwrap(), Some(ErrorKind::ConnectionRefused));
    assert!(started.elapsed() >= Duration::from_millis(60), "two retries waited 20 + 40 ms");

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (up_tx, up_rx) = mpsc::channel();
    let callbacks = Callbacks::<D>::new().on_connection(move |_, conn| {
        if conn.is_connected() {
            up_tx.send((conn.local_addr(), conn.peer_addr())).unwrap();
        }
    });
    Client::new(listener.local_addr().unwrap(), callbacks).connect(&mut ev);
    let got: Arc<Mutex<Option<(muxloop::StreamAddr, muxloop::StreamAddr)>>> = Arc::default();
    drive(&mut ev, || {
        if let Ok(pair) = up_rx.try_recv() {
            *got.lock().unwrap() = Some(pair);
        }
        got.lock().unwrap().is_some()
    });
    let (local, peer) = got.lock().unwrap().clone().unwrap();
    assert_eq!(peer, listener.local_addr().unwrap());
    let (_, accepted_from) = listener.accept().unwrap();
    assert_eq!(local, accepted_from);
}

/// The chat room: each line reaches the other two clients exactly once,
/// across sub-loops.
fn chat_lines_reach_the_others_once<D: Dispatcher + 'static>() {
    type Room<D> = Arc<Mutex<HashMap<u64, ConnectionHandle<D>>>>;
    let room: Room<D> = Arc::default();
    let members = Arc::clone(&room);
    let joined = Arc::clone(&room);
    let callbacks = Callbacks::<D>::new()
        .on_connection(move |_, conn| {
            let mut members = members.lock().unwrap();
            if conn.is_connected() {
                members.insert(conn.id(), conn.handle());
            } else {
                members.remove(&conn.id());
            }
        })
        .on_message(move |_, conn, input| {
            while let Some(eol) = input.find_eol() {
                let line = input.take(eol + 1);
                let others: Vec<_> =
                    room.lock().unwrap().values().filter(|h| h.id() != conn.id()).cloned().collect();
                for other in others {
                    other.send(line.clone()).unwrap();
                }
            }
        });
    let server = spawn_server::<D, _>(callbacks, 4);
    let mut clients: Vec<_> = (0..3).map(|_| connect(server.addr)).collect();
    assert!(wait_until(Duration::from_secs(10), || joined.lock().unwrap().len() == 3), "all three joined");
    for (i, client) in clients.iter_mut().enumerate() {
        client.write_all(format!("line from {i}\n").as_bytes()).unwrap();
    }
    for (i, client) in clients.iter_mut().enumerate() {
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut reader = BufReader::new(client.try_clone().unwrap());
        let mut got: Vec<String> = (0..2)
            .map(|_| {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                line
            })
            .collect();
        got.sort();
        let expected: Vec<String> = (0..3).filter(|&j| j != i).map(|j| format!("line from {j}\n")).collect();
        assert_eq!(got, expected, "client {i}");
        client.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let mut extra = [0u8; 64];
        loop {
            match reader.read(&mut extra) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue, // a signal, not data
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                other => panic!("client {i} got more than two lines: {other:?}"),
            }
        }
    }
}

for_each_dispatcher!(
    echo_integrity_main_loop,
    echo_integrity_four_threads,
    half_close_delivers_pending_output,
    peer_reset_during_large_write,
    high_water_mark_fires_once_per_crossing,
    cross_thread_send,
    connector_refused_and_connected,
    chat_lines_reach_the_others_once,
);
