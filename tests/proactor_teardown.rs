//! Dropping a `Proactor` with work in flight: it cancels everything, waits
//! for the kernel's completions (bounded), and then frees every buffer.
//! Leaking is its answer only when the kernel never answers; here it always
//! answers, so nothing may be leaked, and the drop must not sit out its 2 s
//! deadline either.
//!
//! A counting global allocator (`tests/common/counting_alloc.rs`) keeps the
//! bytes allocated minus the bytes freed by this test binary, which has one test
//! (a crate of its own: the allocator counts every thread of the process).
#![cfg(muxloop_has_uring)]

mod common;

use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::counting_alloc::{Counting, LIVE};
use muxloop::dispatcher::proactor::{Completion, Proactor};

#[global_allocator]
static COUNTING: Counting = Counting;

const BUFFERS: u16 = 64;
const BUFFER_SIZE: usize = 16 * 1024;
const SEND: usize = 8 << 20;
const SLACK: isize = 64 * 1024;

#[test]
fn drop_with_work_in_flight_frees_everything_promptly() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    let (c, _c_peer) = UnixStream::pair().unwrap();
    let before = LIVE.load(Ordering::Relaxed);
    let mut p = match Proactor::new(8, BUFFERS, BUFFER_SIZE) {
        Ok(p) => p,
        Err(e) => return eprintln!("skipped: io_uring unavailable ({e})"),
    };
    // A multishot accept, a multishot receive, and a send that cannot finish
    // (nobody reads `b`): all three are in the kernel when the drop comes.
    p.accept_multishot(listener.as_raw_fd()).unwrap();
    p.recv_multishot(c.as_raw_fd()).unwrap();
    p.send(a.as_raw_fd(), vec![7; SEND], 0).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut partial = false;
    while !partial {
        assert!(Instant::now() < deadline, "the send neither completed partially nor stalled");
        for completion in p.wait(Some(Duration::from_millis(50))).unwrap() {
            if let Completion::Sent { fd, buf, offset, result } = completion {
                let n = result.unwrap();
                assert!(n < SEND, "the whole send fit in the socket buffer");
                p.send(fd, buf, offset + n).unwrap(); // the rest: stays in flight
                partial = true;
            }
        }
    }
    assert!(p.wait(Some(Duration::from_millis(20))).unwrap().is_empty());
    assert_eq!(p.sends_in_flight(), 1);
    let held = LIVE.load(Ordering::Relaxed) - before;
    assert!(held >= (SEND + usize::from(BUFFERS) * BUFFER_SIZE) as isize, "{held} bytes held");

    let started = Instant::now();
    drop(p);
    let took = started.elapsed();
    // A generous bound: the completions come in microseconds; a drop that
    // waits for its 2 s deadline did not see them.
    assert!(took < Duration::from_millis(1500), "drop took {took:?}");
    // SLACK: the counter is process-wide, and the test harness's own thread
    // allocates a little meanwhile; what the drop could leak is the buffer
    // ring (1 MiB) or the send (8 MiB).
    let leaked = LIVE.load(Ordering::Relaxed) - before;
    assert!(leaked < SLACK, "{leaked} bytes not freed by the drop");
    drop(b);
}
