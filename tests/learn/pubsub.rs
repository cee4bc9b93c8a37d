//! The `pubsub` example, the program a new user wrote on the public API:
//! subscribers on different loops get every message, a subscriber that
//! never reads is dropped while the others go on (bounded broadcast), an
//! idle connection is closed, and SIGTERM stops it with exit 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::ExampleProcess;

fn client(addr: std::net::SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let reader = BufReader::new(stream.try_clone().unwrap());
    (stream, reader)
}

fn say(stream: &mut TcpStream, reader: &mut BufReader<TcpStream>, line: &str) -> String {
    stream.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut reply = String::new();
    reader.read_line(&mut reply).unwrap();
    reply
}

#[test]
fn subscribers_on_every_loop_get_every_message_and_a_silent_one_is_dropped() {
    for (dispatcher, threads) in [("epoll", "2"), ("poll", "0"), ("select", "3"), ("uring", "1")] {
        if dispatcher == "uring" && crate::common::uring_unavailable() {
            continue;
        }
        let broker = ExampleProcess::start(
            "pubsub",
            &["127.0.0.1:0", "--threads", threads, "--dispatcher", dispatcher],
        );
        let label = format!("{dispatcher} --threads {threads}");
        // Three readers (on different loops when there are several) and a silent one.
        let mut readers: Vec<_> = (0..3).map(|_| client(broker.addr)).collect();
        for (stream, reader) in &mut readers {
            assert_eq!(say(stream, reader, "SUB news"), "OK\n", "{label}");
        }
        let (mut silent, mut silent_reader) = client(broker.addr);
        muxloop::sys::set_buffer_sizes(silent.as_fd(), None, Some(4096)).unwrap();
        assert_eq!(say(&mut silent, &mut silent_reader, "SUB news"), "OK\n");
        let (mut publisher, mut acks) = client(broker.addr);
        assert!(say(&mut publisher, &mut acks, "HELLO").starts_with("ERR "), "{label}: a bad command");

        // 2,000 messages of ~1 KiB: 2 MB, eight times the subscriber limit.
        let text = "x".repeat(1000);
        let received: Arc<Vec<AtomicUsize>> = Arc::new((0..3).map(|_| AtomicUsize::new(0)).collect());
        let readers_done: Vec<_> = readers
            .into_iter()
            .enumerate()
            .map(|(i, (_stream, mut reader))| {
                let (text, received) = (text.clone(), Arc::clone(&received));
                thread::spawn(move || {
                    let mut line = String::new();
                    for n in 0..2000 {
                        line.clear();
                        reader.read_line(&mut line).unwrap();
                        assert_eq!(line, format!("MSG news {n} {text}\n"), "message {n}");
                        received[i].store(n + 1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for n in 0..2000 {
            // The publisher stays within 64 messages of the slowest reader (a
            // subscriber that keeps up is never dropped, however busy the
            // machine); the silent one falls behind by all of it.
            while received.iter().any(|r| n > r.load(Ordering::SeqCst) + 64) {
                thread::yield_now();
            }
            assert_eq!(say(&mut publisher, &mut acks, &format!("PUB news {n} {text}")), "OK\n");
        }
        for done in readers_done {
            done.join().unwrap_or_else(|_| panic!("{label}: a reading subscriber missed a message"));
        }
        let dropped = format!("{}: connection ", silent.local_addr().unwrap());
        assert!(
            broker.logged(&dropped, Duration::from_secs(10)),
            "{label}: the silent subscriber was not dropped"
        );
        assert!(
            broker.logged("output full", Duration::ZERO)
                && broker.logged("dropping the subscriber", Duration::ZERO)
        );
        let peak = broker.peak_rss();
        assert!(peak < 32 << 20, "{label}: peak RSS {} MB", peak >> 20);
        // Clients gone, the graceful stop has nothing to wait for.
        drop((publisher, acks, silent, silent_reader));
        let mut broker = broker;
        muxloop::sys::kill(broker.child.id() as i32, muxloop::signal::SIGTERM).unwrap();
        let status = crate::common::exit_within(&mut broker.child, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{label}: no exit within 10 s of SIGTERM"));
        assert!(status.success(), "{label}: exit {status}");
        assert!(broker.logged("stopped: ", Duration::from_secs(5)), "{label}: no stop summary");
    }
}

#[test]
fn an_idle_connection_is_closed() {
    let broker = ExampleProcess::start("pubsub", &["127.0.0.1:0", "--idle", "1"]);
    let (_stream, mut reader) = client(broker.addr);
    let started = Instant::now();
    let mut rest = Vec::new();
    assert_eq!(reader.read_to_end(&mut rest).unwrap(), 0, "closed without a word");
    assert!(started.elapsed() >= Duration::from_millis(900), "closed after {:?}", started.elapsed());
}
