//! Bounded pushes: `try_send` refuses a full connection and sends nothing,
//! on the loop and from other threads; `Server::loops` and `LoopHandle`
//! give a broadcast its loops.

use std::io::ErrorKind;
use std::sync::{Mutex, mpsc};
use std::thread;
use std::time::Duration;

use muxloop::{Callbacks, ConnectionHandle, Dispatcher, EventLoop, Server};

use crate::common::{self, IO_TIMEOUT, connect, read_to_eof, spawn_server_with};

const LIMIT: usize = 64 * 1024;
const MESSAGE: usize = 16 * 1024;
/// Far more than the limit and the kernel's buffers of an unread socket hold.
const MAX_TRIES: u32 = 10_000;

/// Message `seq`: its number, then a fill byte that differs between neighbours.
fn message(seq: u32) -> Vec<u8> {
    let mut m = vec![(seq % 251) as u8; MESSAGE];
    m[..4].copy_from_slice(&seq.to_be_bytes());
    m
}

/// A server whose connections hand their handle to the test, with a small
/// output limit and a small kernel send buffer, so a client that does not
/// read fills it soon.
fn server_and_handle<D: Dispatcher + 'static>()
-> (common::TestServer<D>, std::net::TcpStream, ConnectionHandle<D>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let callbacks = Callbacks::<D>::new().on_connection(move |_, conn| {
        if conn.is_connected() {
            tx.lock().unwrap().send(conn.handle()).unwrap();
        }
    });
    let server = spawn_server_with(callbacks, |b| b.threads(1).output_limit(LIMIT).send_buffer(Some(4096)));
    let client = connect(server.addr);
    let handle = rx.recv_timeout(IO_TIMEOUT).expect("the server reports its connection");
    (server, client, handle)
}

/// What the client must read: the accepted messages in order, then `END`.
fn expect_exactly(client: &mut std::net::TcpStream, accepted: u32) {
    let got = read_to_eof(client).unwrap();
    let mut expected: Vec<u8> = (0..accepted).flat_map(message).collect();
    expected.extend_from_slice(b"END");
    assert_eq!(got.len(), expected.len(), "{accepted} messages accepted, then END");
    assert!(got == expected, "the stream is the accepted messages in order, then END, nothing refused");
}

fn handle_try_send_refuses_and_sends_nothing<D: Dispatcher + 'static>() {
    let (_server, mut client, handle) = server_and_handle::<D>();
    let mut accepted = 0;
    let refusal = loop {
        assert!(accepted < MAX_TRIES, "try_send never refused");
        match handle.try_send(message(accepted)) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(refusal.kind(), ErrorKind::WouldBlock, "{refusal}");
    assert!(refusal.to_string().contains("nothing sent"), "{refusal}");
    assert!(accepted >= (LIMIT / MESSAGE) as u32, "refused before the limit: {accepted} accepted");
    // The unbounded send still goes out, after everything accepted.
    handle.send(b"END".to_vec()).unwrap();
    handle.close_after_flush().unwrap();
    expect_exactly(&mut client, accepted);
}

fn connection_try_send_refuses_and_sends_nothing<D: Dispatcher + 'static>() {
    let (_server, mut client, handle) = server_and_handle::<D>();
    let (tx, rx) = mpsc::channel();
    handle
        .run(move |ev, conn| {
            let mut accepted = 0;
            let refusal = loop {
                if accepted == MAX_TRIES {
                    break None;
                }
                match conn.try_send(ev, &message(accepted)) {
                    Ok(()) => accepted += 1,
                    Err(e) => break Some(e),
                }
            };
            let queued = conn.queued_output();
            conn.send(ev, b"END").unwrap();
            conn.close_after_flush(ev);
            tx.send((accepted, refusal, queued)).unwrap();
        })
        .unwrap();
    let (accepted, refusal, queued) = rx.recv_timeout(IO_TIMEOUT).unwrap();
    let refusal = refusal.expect("try_send never refused");
    assert_eq!(refusal.kind(), ErrorKind::WouldBlock, "{refusal}");
    assert!(queued >= LIMIT, "refused at {queued} bytes queued, under the limit");
    assert!(queued < LIMIT + MESSAGE, "{queued} bytes queued: more than the limit plus one message");
    expect_exactly(&mut client, accepted);
}

fn loops_include_the_main_loop_without_threads<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let alone = Server::builder("127.0.0.1:0", Callbacks::<D>::new()).threads(0).start(&mut ev).unwrap();
    let loops = alone.loops();
    assert_eq!(loops.len(), 1, "with 0 threads the main loop runs the connections");
    assert_eq!(loops[0].id(), ev.id());
    assert!(loops[0].is_current());
    let elsewhere = loops[0].clone();
    assert!(!thread::spawn(move || elsewhere.is_current()).join().unwrap());

    let pooled = Server::builder("127.0.0.1:0", Callbacks::<D>::new()).threads(2).start(&mut ev).unwrap();
    let loops = pooled.loops();
    assert_eq!(loops.len(), 2);
    assert!(loops.iter().all(|l| l.id() != ev.id() && !l.is_current()));
    assert_ne!(loops[0].id(), loops[1].id());
    let (tx, rx) = mpsc::channel();
    for l in &loops {
        let (tx, me) = (tx.clone(), l.clone());
        l.run_in_loop(move |ev| tx.send((me.is_current(), me.id() == ev.id())).unwrap()).unwrap();
    }
    for _ in 0..2 {
        assert_eq!(rx.recv_timeout(IO_TIMEOUT).unwrap(), (true, true), "a loop's own thread is current");
    }
    pooled.stop(&mut ev, Duration::from_secs(2)).unwrap();
    alone.stop(&mut ev, Duration::from_secs(2)).unwrap();
}

for_each_dispatcher!(
    handle_try_send_refuses_and_sends_nothing,
    connection_try_send_refuses_and_sends_nothing,
    loops_include_the_main_loop_without_threads,
);
