//! 3,000 keep-alive requests over 10 connections are all answered, and the
//! server's memory does not grow after warm-up. (Its own test binary, so no
//! other test allocates meanwhile; the server runs in this process.)
#![cfg(feature = "http")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use muxloop::http::{HttpServer, Response};
use muxloop::{Dispatcher, EpollDispatcher, EventLoop, PollDispatcher, SelectDispatcher};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    statm.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 4096
}

/// `count` GET /hello on each stream, pipelined 10 deep; checks every body.
fn hammer(streams: &mut [(TcpStream, BufReader<TcpStream>)], count: usize) {
    for (writer, reader) in streams.iter_mut() {
        for _ in 0..count / 10 {
            writer.write_all(&b"GET /hello HTTP/1.1\r\nHost: m\r\n\r\n".repeat(10)).unwrap();
            for _ in 0..10 {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                assert!(line.starts_with("HTTP/1.1 200"), "{line:?}");
                let mut length = 0;
                loop {
                    line.clear();
                    reader.read_line(&mut line).unwrap();
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                assert_eq!(body, b"hello, world");
            }
        }
    }
}

fn no_growth<D: Dispatcher + 'static>() {
    let (tx, rx) = mpsc::channel();
    let server_thread = thread::spawn(move || {
        let mut ev = EventLoop::<D>::new().unwrap();
        let server = HttpServer::<D>::builder("127.0.0.1:0", |_| Response::text(200, "hello, world"))
            .threads(2)
            .start(&mut ev)
            .unwrap();
        tx.send((server.local_addr(), ev.handle())).unwrap();
        ev.run().unwrap();
        server.stop(&mut ev, Duration::from_secs(1)).unwrap();
    });
    let (addr, handle) = rx.recv().unwrap();
    let mut streams: Vec<_> = (0..10)
        .map(|_| {
            let s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            (s.try_clone().unwrap(), BufReader::new(s))
        })
        .collect();
    hammer(&mut streams, 300); // warm-up: buffers, thread arenas, date cache
    let before = rss_bytes();
    hammer(&mut streams, 300); // 10 x 300 = 3,000 requests
    let after = rss_bytes();
    let growth = after.saturating_sub(before);
    assert!(growth < 256 * 1024, "{}: RSS grew by {growth} bytes over 3,000 requests", D::NAME);
    drop(streams);
    handle.quit();
    server_thread.join().unwrap();
}

#[test]
fn keep_alive_requests_do_not_grow_memory() {
    no_growth::<SelectDispatcher>();
    no_growth::<PollDispatcher>();
    no_growth::<EpollDispatcher>();
}
