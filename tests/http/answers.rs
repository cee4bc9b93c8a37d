//! Answers that are not a finished `Response` at once, over real sockets on
//! every dispatcher: streamed bodies (chunked for HTTP/1.1, close-delimited
//! for HTTP/1.0, pulled only while the output has room), answers that come
//! later from other threads (in request order under pipelining, 500 when a
//! responder is dropped, waited for by a graceful stop), the router, the
//! error-page hook and the request accessors a service needs.
#![cfg(feature = "http")]

use crate::common;

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use common::http::{Client, get, read_reply, spawn_built, spawn_http_server};
use muxloop::Dispatcher;
use muxloop::http::{BodyWaker, BodyWriter, Fill, HttpConfig, HttpServer, Request, Response, Router};

/// The bytes of the streamed body at `offset`: a pattern that shows a lost,
/// repeated or reordered piece.
fn pattern(offset: u64) -> u8 {
    (offset % 251) as u8
}

/// A body of `total` bytes in pieces of at most `piece` (and at most what
/// the server offers), counting what it has produced into `produced` and
/// the largest offer into `largest_room`.
fn counted_stream(
    total: u64,
    piece: usize,
    produced: Arc<AtomicU64>,
    largest_room: Arc<AtomicU64>,
) -> Response {
    let mut sent = 0u64;
    Response::stream(200, move |body: &mut BodyWriter<'_>| {
        largest_room.fetch_max(body.room() as u64, Ordering::SeqCst);
        let n = (body.room().min(piece) as u64).min(total - sent);
        let part: Vec<u8> = (sent..sent + n).map(pattern).collect();
        body.write(&part);
        sent += n;
        produced.fetch_add(n, Ordering::SeqCst);
        if sent == total {
            body.trailer("X-Total", &total.to_string());
            Fill::End
        } else {
            Fill::More
        }
    })
}

fn check_pattern(body: &[u8]) {
    if let Some(at) = (0..body.len()).find(|&i| body[i] != pattern(i as u64)) {
        panic!("byte {at} of {} is {} (expected {})", body.len(), body[at], pattern(at as u64));
    }
}

fn route(req: &Request<'_>) -> Response {
    match req.path() {
        "/stream" => {
            let total = req.query_value("bytes").map_or(100_000, |v| v.parse().unwrap());
            counted_stream(total, 10_000, Arc::default(), Arc::default())
        }
        "/later" => {
            let ms: u64 = req.query_value("ms").map_or(0, |v| v.parse().unwrap());
            let tag = req.query_value("tag").unwrap_or_default().into_owned();
            Response::later(move |responder| {
                thread::spawn(move || {
                    thread::sleep(Duration::from_millis(ms));
                    responder.send(Response::text(200, tag)).unwrap();
                });
            })
        }
        "/dropped" => Response::later(drop),
        "/panic-later" => Response::later(|_| panic!("start function bug")),
        "/panic-stream" => {
            let mut calls = 0;
            Response::stream(200, move |body: &mut BodyWriter<'_>| {
                calls += 1;
                assert!(calls < 3, "source bug");
                body.write(b"part");
                Fill::More
            })
        }
        "/now" => Response::text(200, req.query_value("tag").unwrap_or_default().into_owned()),
        "/echo" => Response::new(200).body(req.body()),
        "/whoami" => {
            let peer = req.peer_addr().map(|p| p.to_string()).unwrap_or_default();
            let pairs: Vec<String> = req.query_pairs().map(|(n, v)| format!("{n}={v}")).collect();
            let accept: Vec<&str> = req.header_values("accept").collect();
            Response::text(200, format!("{peer}|{}|{}", pairs.join("&"), accept.join("+")))
        }
        _ => Response::text(404, "not found"),
    }
}

/// Streamed to HTTP/1.1: `Transfer-Encoding: chunked`, no `Content-Length`,
/// every byte in order, the trailer after the last chunk (RFC 9112 §7.1),
/// and the connection stays usable.
fn streamed_body_is_chunked<D: Dispatcher + 'static>() {
    let server = spawn_http_server::<D, _>(route, HttpConfig::default(), 0);
    let mut client = Client::connect(server.addr);
    let reply = client.get("/stream?bytes=1000003");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("transfer-encoding"), Some("chunked"));
    assert_eq!(reply.header("content-length"), None);
    assert_eq!(reply.body.len(), 1_000_003);
    check_pattern(&reply.body);
    assert_eq!(reply.trailers, [("X-Total".to_owned(), "1000003".to_owned())]);
    assert_eq!(client.get("/now?tag=after").body, b"after", "keep-alive after a stream");
    let empty = client.get("/stream?bytes=0");
    assert_eq!((empty.status, empty.body.len()), (200, 0));
}

/// HTTP/1.0 has no chunks: the body ends when the server closes, and the
/// head says `Connection: close` (RFC 9112 §6.3 rule 8). HEAD gets the head
/// only (RFC 9110 §9.3.2).
fn streamed_body_to_http10_ends_by_closing<D: Dispatcher + 'static>() {
    let server = spawn_http_server::<D, _>(route, HttpConfig::default(), 0);
    let mut client = Client::connect(server.addr);
    client.send(b"GET /stream?bytes=300000 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let reply = client.reply(); // no length, no chunks: read to EOF
    assert!(reply.closes());
    assert_eq!(reply.header("transfer-encoding"), None);
    assert_eq!(reply.body.len(), 300_000);
    check_pattern(&reply.body);

    let mut client = Client::connect(server.addr);
    client.send(b"HEAD /stream HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = client.reply_head();
    assert_eq!(head.status, 200);
    client.send(&get("/now?tag=next"));
    assert_eq!(client.reply().body, b"next", "no body bytes followed the HEAD answer");
}

/// The server pulls a streamed body only while the connection's output is
/// under its limit: it never offers the source more room than the limit
/// leaves, and a client that does not read holds the producer at about the
/// limit plus what the kernel's socket buffers take, not the whole body.
fn streamed_body_waits_for_a_slow_reader<D: Dispatcher + 'static>() {
    const TOTAL: u64 = 64 << 20;
    const LIMIT: usize = 64 * 1024;
    let (produced, largest_room) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (counter, rooms) = (Arc::clone(&produced), Arc::clone(&largest_room));
    // Small socket buffers, so that what the kernel holds is small too.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    muxloop::sys::set_buffer_sizes(listener.as_fd(), Some(64 * 1024), Some(64 * 1024)).unwrap();
    // The source takes all the room it is offered.
    let app =
        move |_: &Request<'_>| counted_stream(TOTAL, usize::MAX, Arc::clone(&counter), Arc::clone(&rooms));
    let server = spawn_built(Duration::from_secs(1), move || {
        HttpServer::<D>::builder("127.0.0.1:0", app).listener(listener).output_limit(LIMIT)
    });
    let addr = server.addr;
    let mut client = Client::connect(addr);
    muxloop::sys::set_buffer_sizes(client.writer.as_fd(), Some(64 * 1024), Some(64 * 1024)).unwrap();
    client.send(&get("/"));
    thread::sleep(Duration::from_millis(500)); // not reading
    let stalled = produced.load(Ordering::SeqCst);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(produced.load(Ordering::SeqCst), stalled, "the producer stopped while nobody read");
    let offered = largest_room.load(Ordering::SeqCst);
    assert!(
        offered as usize <= LIMIT,
        "the source was offered {offered} bytes of room; the limit is {LIMIT}"
    );
    // The limit plus the kernel's buffers (64 KiB asked for on each side,
    // which Linux doubles): far below the 64 MiB body.
    println!("produced while stalled: {stalled} bytes");
    assert!(stalled < 1 << 20, "{stalled} bytes produced for a client that read nothing");
    assert!(stalled > 0);
    let reply = client.reply();
    assert_eq!(reply.body.len() as u64, TOTAL);
    check_pattern(&reply.body);
}

/// A source may pause and be woken from another thread (a feed that has
/// nothing yet): the body arrives whole, in order.
fn paused_stream_resumes_when_woken<D: Dispatcher + 'static>() {
    let app = |_: &Request<'_>| {
        let (parts_tx, parts) = mpsc::channel::<Option<Vec<u8>>>();
        let waker: Arc<Mutex<Option<BodyWaker>>> = Arc::default();
        let waker_for_feed = Arc::clone(&waker);
        thread::spawn(move || {
            for i in 0..5u8 {
                thread::sleep(Duration::from_millis(30));
                parts_tx.send(Some(vec![b'a' + i; 3])).unwrap();
                if let Some(w) = waker_for_feed.lock().unwrap().as_ref() {
                    w.wake();
                }
            }
            parts_tx.send(None).unwrap();
            if let Some(w) = waker_for_feed.lock().unwrap().as_ref() {
                w.wake();
            }
        });
        Response::stream(200, move |body: &mut BodyWriter<'_>| {
            *waker.lock().unwrap() = Some(body.waker());
            loop {
                match parts.try_recv() {
                    Ok(Some(part)) => body.write(&part),
                    Ok(None) => return Fill::End,
                    Err(_) => return Fill::Pause,
                }
            }
        })
    };
    let server = spawn_http_server::<D, _>(app, HttpConfig::default(), 0);
    let mut client = Client::connect(server.addr);
    let reply = client.get("/");
    assert_eq!(reply.body, b"aaabbbcccdddeee");
}

/// A source that panics after the head went out: the connection is closed,
/// so the client sees an unfinished chunked body (no last chunk), never a
/// body that looks complete; the loop goes on serving.
fn panicking_stream_closes_the_connection<D: Dispatcher + 'static>() {
    let server = spawn_http_server::<D, _>(route, HttpConfig::default(), 0);
    let mut client = Client::connect(server.addr);
    client.send(&get("/panic-stream"));
    assert!(read_reply(&mut client.reader, false).is_none(), "an unfinished chunked body does not parse");
    assert_eq!(Client::connect(server.addr).get("/now?tag=alive").body, b"alive");
}

/// Pipelined requests whose answers come later, from threads that finish
/// in reverse order, interleaved with answers ready at once: the responses
/// leave in request order (RFC 9112 §9.3.2), 1,000 of them, more than the
/// answer queue holds at once (reading pauses and resumes).
fn later_answers_keep_request_order<D: Dispatcher + 'static>() {
    let server = spawn_http_server::<D, _>(route, HttpConfig::default(), 0);
    let mut client = Client::connect(server.addr);
    let requests: Vec<u8> = (0..1000)
        .flat_map(|i| match i % 3 {
            0 => get(&format!("/later?ms={}&tag={i}", (1000 - i) % 7)),
            _ => get(&format!("/now?tag={i}")),
        })
        .collect();
    let mut writer = client.writer.try_clone().unwrap();
    let sending = thread::spawn(move || writer.write_all(&requests));
    for i in 0..1000 {
        let reply = client.reply();
        assert_eq!((reply.status, reply.body), (200, i.to_string().into_bytes()), "response {i} in order");
    }
    sending.join().unwrap().unwrap();
}

/// `100 Continue` is an interim answer to the request being read; sent
/// while an earlier request's answer is still owed, the client would take
/// it for that one's (RFC 9110 §15.2). So it is not sent then: the client
/// sends its body after its own wait, and the answers stay in order.
fn no_interim_continue_ahead_of_an_owed_answer<D: Dispatcher + 'static>() {
    let server = spawn_http_server::<D, _>(route, HttpConfig::default(), 0);
    let mut client = Client::connect(server.addr);
    client.send(&get("/later?ms=300&tag=first"));
    client.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    let first = client.reply();
    assert_eq!(
        (first.status, first.body.as_slice()),
        (200, b"first".as_slice()),
        "the owed answer comes first"
    );
    client.send(b"body");
    let second = client.reply();
    assert_eq!((second.status, second.body.as_slice()), (200, b"body".as_slice()));
}

/// A responder dropped unanswered, or a start function that panics, answers
/// 500; the connection goes on (the answer's place was kept).
fn dropped_responder_answers_500<D: Dispatcher + 'static>() {
    let server = spawn_http_server::<D, _>(route, HttpConfig::default(), 0);
    let mut client = Client::connect(server.addr);
    client.send(&[get("/dropped"), get("/panic-later"), get("/now?tag=third")].concat());
    assert_eq!(client.reply().status, 500);
    assert_eq!(client.reply().status, 500);
    assert_eq!(client.reply().body, b"third");
}

/// Waiting for the application is not idling: a later answer that takes
/// longer than `idle_timeout` still arrives, and then the idle clock runs.
fn idle_timer_spares_a_connection_waiting_for_its_answer<D: Dispatcher + 'static>() {
    let config = HttpConfig { idle_timeout: Duration::from_millis(200), ..HttpConfig::default() };
    let server = spawn_http_server::<D, _>(route, config, 0);
    let mut client = Client::connect(server.addr);
    let reply = client.get("/later?ms=700&tag=slow");
    assert_eq!(reply.body, b"slow");
    let started = Instant::now();
    assert!(client.is_closed(), "idle after the answer: closed");
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// An answer for a client that has gone is dropped; the server is fine.
fn later_answer_for_a_closed_connection_is_dropped<D: Dispatcher + 'static>() {
    let server = spawn_http_server::<D, _>(route, HttpConfig::default(), 0);
    let mut client = Client::connect(server.addr);
    client.send(&get("/later?ms=200&tag=late"));
    drop(client);
    thread::sleep(Duration::from_millis(400));
    assert_eq!(Client::connect(server.addr).get("/now?tag=ok").body, b"ok");
}

/// A client may half-close after sending its requests (RFC 9112 §9.6 lets
/// the server answer what it received): answers still to come are sent,
/// then the server closes.
fn later_answers_reach_a_client_that_half_closed<D: Dispatcher + 'static>() {
    let server = spawn_http_server::<D, _>(route, HttpConfig::default(), 0);
    let mut client = Client::connect(server.addr);
    client.send(&[get("/later?ms=200&tag=one"), get("/now?tag=two"), get("/stream?bytes=3000")].concat());
    client.writer.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(client.reply().body, b"one");
    assert_eq!(client.reply().body, b"two");
    assert_eq!(client.reply().body.len(), 3000);
    assert!(client.is_closed(), "closed once everything owed is out");
}

/// A graceful stop waits for answers still to come, within its grace: the
/// client gets its answer with `Connection: close`, and nothing is forced.
fn graceful_stop_waits_for_later_answers<D: Dispatcher + 'static>() {
    let server =
        spawn_built(Duration::from_secs(5), || HttpServer::<D>::builder("127.0.0.1:0", route).threads(1));
    let mut client = Client::connect(server.addr);
    client.send(&get("/later?ms=500&tag=finished"));
    thread::sleep(Duration::from_millis(100)); // the request is in
    server.main_loop.quit();
    let reply = client.reply();
    assert_eq!(reply.body, b"finished");
    assert!(reply.closes(), "the last answer before the stop says Connection: close");
    assert!(client.is_closed());
    let summary = server.stop();
    assert_eq!((summary.closed_cleanly, summary.forced), (1, 0), "{summary}");
}

/// The router over the wire: 405 with `Allow`, HEAD answered by the GET
/// route with no body, `OPTIONS` with `Allow`, 404 elsewhere (RFC 9110
/// §9.3.2, §9.3.7, §15.5.6).
fn router_answers_405_head_and_options<D: Dispatcher + 'static>() {
    let router = Router::new()
        .get("/r", |_| Response::text(200, "got r"))
        .post("/r", |req| Response::new(201).body(req.body()));
    let app = move |req: &Request<'_>| router.respond(req);
    let server = spawn_http_server::<D, _>(app, HttpConfig::default(), 0);
    let mut client = Client::connect(server.addr);
    assert_eq!(client.get("/r").body, b"got r");
    client.send(b"POST /r HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody");
    assert_eq!(client.reply().status, 201);
    client.send(b"DELETE /r HTTP/1.1\r\nHost: t\r\n\r\n");
    let refused = client.reply();
    assert_eq!((refused.status, refused.header("allow")), (405, Some("GET, HEAD, POST, OPTIONS")));
    client.send(b"HEAD /r HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = client.reply_head();
    assert_eq!((head.status, head.header("content-length")), (200, Some("5")));
    client.send(b"OPTIONS /r HTTP/1.1\r\nHost: t\r\n\r\n");
    let options = client.reply();
    assert_eq!((options.status, options.header("allow")), (204, Some("GET, HEAD, POST, OPTIONS")));
    assert_eq!(client.get("/elsewhere").status, 404);
}

/// The error-page hook renders the server's own replies (here as JSON),
/// which still close the connection.
fn error_page_shapes_server_errors<D: Dispatcher + 'static>() {
    let server = spawn_built(Duration::from_secs(1), || {
        HttpServer::<D>::builder("127.0.0.1:0", route)
            .error_page(|status, reason| Response::json(status, format!("{{\"error\":{reason:?}}}")))
    });
    let mut client = Client::connect(server.addr);
    client.send(b"GET / HTTP/1.1\r\n\r\n"); // no Host
    let reply = client.reply();
    assert_eq!((reply.status, reply.header("content-type")), (400, Some("application/json")));
    assert!(reply.body.starts_with(b"{\"error\":\"HTTP/1.1 request without a Host"), "{reply:?}");
    assert!(reply.closes() && client.is_closed());
}

/// The client's address, decoded query pairs and every value of a
/// repeated header reach the service.
fn request_accessors_over_the_wire<D: Dispatcher + 'static>() {
    let server = spawn_http_server::<D, _>(route, HttpConfig::default(), 0);
    let mut client = Client::connect(server.addr);
    client.send(b"GET /whoami?a=1&b=x+y%21 HTTP/1.1\r\nHost: t\r\nAccept: x\r\nAccept: y\r\n\r\n");
    let reply = client.reply();
    let local = client.writer.local_addr().unwrap();
    assert_eq!(String::from_utf8(reply.body).unwrap(), format!("{local}|a=1&b=x y!|x+y"));
}

/// Real clients on the new paths: curl and python's http.client send
/// chunked bodies and read chunked and close-delimited ones.
fn real_clients_send_and_read_chunked<D: Dispatcher + 'static>() {
    let echo = |req: &Request<'_>| match req.path() {
        "/echo" => Response::new(200).body(req.body()),
        _ => route(req),
    };
    let server = spawn_http_server::<D, _>(echo, HttpConfig::default(), 2);
    let url = format!("http://{}", server.addr);
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let cargo_toml = std::fs::read(file).unwrap();
    let curl = |args: &[&str]| {
        std::process::Command::new("curl").args(["-sS", "--max-time", "10"]).args(args).output()
    };
    match curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &format!("@{file}"),
        &format!("{url}/echo"),
    ]) {
        Ok(out) => {
            assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(out.stdout, cargo_toml, "curl's chunked upload echoed");
            let streamed = curl(&[&format!("{url}/stream?bytes=2000000")]).unwrap();
            assert_eq!(streamed.stdout.len(), 2_000_000);
            check_pattern(&streamed.stdout);
            let old = curl(&["--http1.0", &format!("{url}/stream?bytes=70000")]).unwrap();
            assert_eq!(old.stdout.len(), 70_000, "HTTP/1.0: read to the close");
        }
        Err(e) => println!("SKIPPED curl part: curl is not installed ({e})"),
    }
    let script = r#"
import http.client, sys
conn = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=10)
parts = [b"x" * 1000, b"", b"y" * 70000, b"z"]
conn.request("POST", "/echo", body=iter(parts), encode_chunked=True)
r = conn.getresponse()
assert r.status == 200 and r.read() == b"".join(parts), r.status
conn.request("GET", "/stream?bytes=123457")
r = conn.getresponse()
assert r.getheader("Transfer-Encoding") == "chunked"
body = r.read()
assert len(body) == 123457 and all(body[i] == i % 251 for i in range(len(body)))
conn.request("GET", "/later?ms=50&tag=late")
r = conn.getresponse()
assert r.read() == b"late"
print("python ok")
"#;
    let (host, port) = (server.addr.ip().to_string(), server.addr.port().to_string());
    match std::process::Command::new("python3").args(["-c", script, &host, &port]).output() {
        Ok(out) => {
            assert!(out.status.success(), "python3: {}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(out.stdout, b"python ok\n");
        }
        Err(e) => println!("SKIPPED python part: python3 is not installed ({e})"),
    }
}

/// Many later answers on many connections and sub-loops at once: each
/// client gets its own answers, in order.
fn later_answers_across_sub_loops<D: Dispatcher + 'static>() {
    let server = spawn_http_server::<D, _>(route, HttpConfig::default(), 2);
    let done = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (addr, done) = (server.addr, Arc::clone(&done));
            thread::spawn(move || {
                let mut client = Client::connect(addr);
                let batch: Vec<u8> =
                    (0..50).flat_map(|i| get(&format!("/later?ms={}&tag={c}-{i}", i % 3))).collect();
                client.send(&batch);
                for i in 0..50 {
                    assert_eq!(client.reply().body, format!("{c}-{i}").into_bytes());
                }
                let mut rest = Vec::new();
                client.writer.shutdown(std::net::Shutdown::Write).unwrap();
                client.reader.read_to_end(&mut rest).unwrap();
                assert!(rest.is_empty(), "nothing more than the 50 answers");
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    assert_eq!(done.load(Ordering::SeqCst), 8);
}

/// The `http_server` example's memory, `/proc/PID/status` VmRSS, in bytes.
fn rss(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<usize>().unwrap() * 1024
}

/// Four clients that ask for a 64 MiB streamed body and do not read raise
/// the server's resident memory by at most 4 x the output limit (1 MiB) +
/// 8 MiB, on every backend; then each gets all 64 MiB.
#[test]
fn four_stalled_streams_hold_bounded_memory() {
    const BODY: usize = 64 << 20;
    // Every backend this build compiled (select and poll only under --cfg muxloop_portable).
    for &dispatcher in muxloop::AnyDispatcher::names() {
        if dispatcher == "uring" && common::uring_unavailable() {
            continue;
        }
        let server =
            common::ExampleProcess::start("http_server", &["127.0.0.1:0", "--dispatcher", dispatcher]);
        let warm = Client::connect(server.addr).get("/stream?bytes=4000000"); // code and buffers paged in
        assert_eq!(warm.body.len(), 4_000_000);
        let before = rss(server.child.id());
        let request = get(&format!("/stream?bytes={BODY}"));
        let mut stalled: Vec<Client> = (0..4).map(|_| Client::connect(server.addr)).collect();
        for client in &mut stalled {
            client.send(&request);
        }
        thread::sleep(Duration::from_millis(1500));
        let grown = rss(server.child.id()).saturating_sub(before);
        let bound = 4 * (1 << 20) + (8 << 20);
        println!(
            "{dispatcher}: RSS {before} -> +{grown} bytes with four stalled 64 MiB streams (bound {bound})"
        );
        assert!(grown <= bound, "{dispatcher}: RSS grew by {grown} bytes (bound {bound})");
        for client in &mut stalled {
            let reply = client.reply();
            assert_eq!(reply.body.len(), BODY, "{dispatcher}: the whole body once read");
        }
    }
}

for_each_dispatcher!(
    streamed_body_is_chunked,
    streamed_body_to_http10_ends_by_closing,
    streamed_body_waits_for_a_slow_reader,
    paused_stream_resumes_when_woken,
    panicking_stream_closes_the_connection,
    later_answers_keep_request_order,
    no_interim_continue_ahead_of_an_owed_answer,
    dropped_responder_answers_500,
    idle_timer_spares_a_connection_waiting_for_its_answer,
    later_answer_for_a_closed_connection_is_dropped,
    later_answers_reach_a_client_that_half_closed,
    graceful_stop_waits_for_later_answers,
    router_answers_405_head_and_options,
    error_page_shapes_server_errors,
    request_accessors_over_the_wire,
    real_clients_send_and_read_chunked,
    later_answers_across_sub_loops,
);
