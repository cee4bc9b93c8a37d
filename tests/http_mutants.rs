//! Small, exact HTTP tests that kill mutants `cargo mutants` found surviving
//! `http_suite`, `http_files` and the unit tests (see `docs/mutants.md`).
//! The server runs on a loop this test drives with `run_once`, so what the
//! loop does in between (tasks run, time asleep) can be read from its stats.
#![cfg(feature = "http")]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::http::get;
use common::run_for;
use muxloop::http::{HttpConfig, HttpServer, Response};
use muxloop::{EventLoop, PollDispatcher};

type Loop = EventLoop<PollDispatcher>;

fn start(ev: &mut Loop, config: HttpConfig) -> (HttpServer<PollDispatcher>, TcpStream) {
    let server = HttpServer::<PollDispatcher>::builder("127.0.0.1:0", |_| Response::text(200, "hi"))
        .config(config)
        .start(ev)
        .unwrap();
    let client = TcpStream::connect(server.local_addr().as_inet().unwrap()).unwrap();
    client.set_nonblocking(true).unwrap();
    (server, client)
}

/// Runs the loop until `client` has a complete `hi` response to read (or
/// the server closed it: `None`).
fn response(ev: &mut Loop, client: &mut TcpStream) -> Option<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while !got.ends_with(b"\r\n\r\nhi") {
        assert!(Instant::now() < deadline, "no response: {:?}", String::from_utf8_lossy(&got));
        ev.run_once(Some(Duration::from_millis(10))).unwrap();
        let mut buf = [0u8; 4096];
        match client.read(&mut buf) {
            Ok(0) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    Some(got)
}

/// Every finished request restarts the idle clock: a client that sends a
/// request every 100 ms is served for a second although `idle_timeout` is
/// 300 ms.
#[test]
fn each_request_restarts_the_idle_clock() {
    let mut ev = Loop::new().unwrap();
    let config = HttpConfig { idle_timeout: Duration::from_millis(300), ..HttpConfig::default() };
    let (_server, mut client) = start(&mut ev, config);
    for round in 0..10 {
        client.write_all(&get("/")).unwrap();
        assert!(response(&mut ev, &mut client).is_some(), "round {round}: closed while in use");
        run_for(&mut ev, Duration::from_millis(100));
    }
}

/// A request whose head has not fully arrived costs nothing while the loop
/// waits for the rest: no task offers the partial input again and again.
#[test]
fn a_partial_request_waits_without_work() {
    let mut ev = Loop::new().unwrap();
    let (_server, mut client) = start(&mut ev, HttpConfig::default());
    client.write_all(&get("/")).unwrap();
    assert!(response(&mut ev, &mut client).is_some());
    client.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    for _ in 0..5 {
        ev.run_once(Some(Duration::from_millis(10))).unwrap(); // the partial head arrives
    }
    let before = ev.stats();
    for _ in 0..10 {
        ev.run_once(Some(Duration::from_millis(10))).unwrap();
    }
    let after = ev.stats();
    assert_eq!(after.tasks_run, before.tasks_run, "tasks ran while waiting");
    assert_eq!(after.events_delivered, before.events_delivered, "events while waiting");
    client.write_all(b"st: a\r\n\r\n").unwrap();
    assert!(response(&mut ev, &mut client).is_some(), "the rest completes the request");
}

/// An idle keep-alive connection is closed one `idle_timeout` after its last
/// response, not two (the extension for a response still going out applies
/// only while output is queued).
#[test]
fn idle_connection_closes_after_one_timeout() {
    const IDLE: Duration = Duration::from_millis(1000);
    let mut ev = Loop::new().unwrap();
    let (_server, mut client) = start(&mut ev, HttpConfig { idle_timeout: IDLE, ..HttpConfig::default() });
    client.write_all(&get("/")).unwrap();
    assert!(response(&mut ev, &mut client).is_some());
    let answered = Instant::now();
    let mut buf = [0u8; 16];
    loop {
        ev.run_once(Some(Duration::from_millis(10))).unwrap();
        match client.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => panic!("unexpected {n} bytes"),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read: {e}"),
        }
        // Generous, but below two periods.
        assert!(answered.elapsed() < IDLE * 9 / 5, "still open after {:?}", answered.elapsed());
    }
    assert!(answered.elapsed() >= IDLE * 9 / 10, "closed early, after {:?}", answered.elapsed());
}

/// `live_connections` counts the open connections; `Debug` of the builder
/// shows its config.
#[test]
fn live_connections_and_builder_debug() {
    let mut ev = Loop::new().unwrap();
    let builder = HttpServer::<PollDispatcher>::builder("127.0.0.1:0", |_| Response::text(200, "hi"));
    let text = format!("{builder:?}");
    assert!(text.starts_with("HttpServerBuilder") && text.contains("max_header_bytes: 8192"), "{text}");
    let server = builder.start(&mut ev).unwrap();
    let addr = server.local_addr().as_inet().unwrap();
    let clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.live_connections() < clients.len() {
        assert!(Instant::now() < deadline, "{} of 3 accepted", server.live_connections());
        ev.run_once(Some(Duration::from_millis(10))).unwrap();
    }
    assert_eq!(server.live_connections(), 3);
    drop(clients);
    while server.live_connections() > 0 {
        assert!(Instant::now() < deadline, "{} still open", server.live_connections());
        ev.run_once(Some(Duration::from_millis(10))).unwrap();
    }
}

/// Stray CRLFs between requests (allowed by RFC 9112) leave the connection
/// idle, under `idle_timeout`, not reading a request under the shorter
/// `header_timeout`.
#[test]
fn stray_crlf_keeps_the_connection_idle() {
    let mut ev = Loop::new().unwrap();
    let config = HttpConfig {
        header_timeout: Duration::from_millis(200),
        idle_timeout: Duration::from_secs(5),
        ..HttpConfig::default()
    };
    let (_server, mut client) = start(&mut ev, config);
    let mut first = get("/");
    first.extend_from_slice(b"\r\n");
    client.write_all(&first).unwrap();
    assert!(response(&mut ev, &mut client).is_some());
    run_for(&mut ev, Duration::from_millis(600));
    client.write_all(&get("/")).unwrap();
    let second = response(&mut ev, &mut client).expect("still open after three header timeouts");
    assert!(second.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&second));
}
