//! Keep-alive requests leave no net allocation behind, on every dispatcher.
//!
//! A counting global allocator (`tests/common/counting_alloc.rs`) keeps the
//! bytes allocated minus the bytes freed by this whole test binary. After a warm-up of 500
//! keep-alive requests (buffers grown, thread arenas and the date cache set
//! up), 3,000 more must leave the count where it was, up to [`SLACK`]: a leak
//! of 87 bytes per request (261 KB over 3,000) fails, which the RSS threshold
//! this replaces (256 KiB of RSS, page-granular and arena-dependent) let through.
//!
//! The server runs in this process, so its allocations are counted; the
//! tests take [`SERIAL`] so only one of them allocates at a time. A test crate
//! of its own: the allocator counts every thread of the process, so any other
//! suite running beside it would be counted too.
#![cfg(feature = "http")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, mpsc};
use std::thread;
use std::time::Duration;

use common::counting_alloc::{Counting, LIVE};
use muxloop::http::{HttpServer, Response};
use muxloop::{Dispatcher, EventLoop};

mod common;

/// Net allocation growth allowed over 3,000 requests: a constant, not a rate
/// (under 6 bytes per request; measured growth is 0).
const SLACK: isize = 16 * 1024;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One measurement at a time: the counter is process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

/// `count` GET /hello on each stream, pipelined 10 deep; checks every body.
fn hammer(streams: &mut [(TcpStream, BufReader<TcpStream>)], count: usize) {
    let request = b"GET /hello HTTP/1.1\r\nHost: m\r\n\r\n".repeat(10);
    let mut line = String::with_capacity(256);
    let mut body = [0u8; 64];
    for (writer, reader) in streams.iter_mut() {
        for _ in 0..count / 10 {
            writer.write_all(&request).unwrap();
            for _ in 0..10 {
                line.clear();
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
                assert!(length <= body.len(), "body of {length} bytes");
                reader.read_exact(&mut body[..length]).unwrap();
                assert_eq!(&body[..length], b"hello, world");
            }
        }
    }
}

/// The counter once the server has settled (responses already read, so its
/// per-request work is done; a short pause lets any tail finish).
fn settled_live() -> isize {
    thread::sleep(Duration::from_millis(50));
    LIVE.load(Ordering::Relaxed)
}

fn keep_alive_requests_leave_no_net_allocation<D: Dispatcher + 'static>() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (tx, rx) = mpsc::channel();
    let server_thread = thread::spawn(move || {
        let mut ev = EventLoop::<D>::new().unwrap();
        let server = HttpServer::<D>::builder("127.0.0.1:0", |_| Response::text(200, "hello, world"))
            .threads(2)
            .start(&mut ev)
            .unwrap();
        tx.send((server.local_addr().as_inet().unwrap(), ev.handle())).unwrap();
        ev.run().unwrap();
        server.stop(&mut ev, Duration::from_secs(1)).unwrap();
    });
    let (addr, handle) = rx.recv_timeout(common::IO_TIMEOUT).unwrap();
    let mut streams: Vec<_> = (0..10)
        .map(|_| {
            let s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            (s.try_clone().unwrap(), BufReader::new(s))
        })
        .collect();
    hammer(&mut streams, 50); // warm-up: 10 x 50 = 500 requests
    let before = settled_live();
    hammer(&mut streams, 300); // 10 x 300 = 3,000 requests
    let after = settled_live();
    let growth = after - before;
    eprintln!("{}: net allocation growth over 3,000 requests: {growth} bytes", D::NAME);
    drop(streams);
    handle.quit();
    server_thread.join().unwrap();
    assert!(
        growth < SLACK,
        "{}: 3,000 keep-alive requests left {growth} bytes allocated ({:.1} per request)",
        D::NAME,
        growth as f64 / 3000.0
    );
}

/// The counter itself works: a deliberate 87-byte-per-request leak over
/// 3,000 iterations is seen (so a green run above means something).
#[test]
fn the_counter_sees_a_small_leak() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = LIVE.load(Ordering::Relaxed);
    let mut leaked = Vec::with_capacity(3000);
    for _ in 0..3000 {
        leaked.push(std::hint::black_box(vec![0u8; 87]));
    }
    let growth = LIVE.load(Ordering::Relaxed) - before;
    drop(leaked);
    assert!(growth >= SLACK, "counted {growth} bytes for 3,000 x 87");
    assert!(LIVE.load(Ordering::Relaxed) - before < 1024, "freeing is counted too");
}

for_each_dispatcher!(keep_alive_requests_leave_no_net_allocation);
