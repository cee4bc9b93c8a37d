//! `examples/kv`, the Redis-like server, as a black box: RESP over a real
//! socket, pipelining answered in order, `QUIT` closes after the reply, and
//! 300 pipelined GETs of a 1 MB value stay within a memory bound (the
//! output limit makes the server stop and resume instead of buffering all
//! 300 MB). redis-cli and redis-benchmark are used when installed.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::ExampleProcess;

/// The kv example on a free port, killed on drop.
struct Kv {
    process: ExampleProcess,
    port: u16,
}

impl Kv {
    fn start(dispatcher: &str) -> Kv {
        let process = ExampleProcess::start("kv", &["127.0.0.1:0", "--dispatcher", dispatcher]);
        let port = process.addr.port();
        Kv { process, port }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        stream
    }

    fn peak_rss(&self) -> usize {
        self.process.peak_rss()
    }
}

fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn read_exactly(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut out = vec![0; n];
    stream.read_exact(&mut out).unwrap();
    out
}

#[test]
fn commands_pipelining_and_quit() {
    for dispatcher in ["select", "poll", "epoll"] {
        let kv = Kv::start(dispatcher);
        let mut s = kv.connect();
        let mut batch = command(&[b"SET", b"k", b"hello"]);
        batch.extend(command(&[b"GET", b"k"]));
        batch.extend(b"PING\r\nINCR n\r\nINCR n\r\n");
        batch.extend(command(&[b"GET", b"missing"]));
        batch.extend(command(&[b"DEL", b"k", b"n", b"x"]));
        batch.extend(command(&[b"NOPE"]));
        batch.extend(command(&[b"QUIT"]));
        s.write_all(&batch).unwrap();
        let expected: &[u8] =
            b"+OK\r\n$5\r\nhello\r\n+PONG\r\n:1\r\n:2\r\n$-1\r\n:2\r\n-ERR unknown command 'nope'\r\n+OK\r\n";
        let mut got = Vec::new();
        s.read_to_end(&mut got).expect("QUIT closes after the reply");
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(expected), "{dispatcher}");

        let mut bad = kv.connect();
        bad.write_all(b"*1\r\n$-7\r\n").unwrap();
        let mut got = Vec::new();
        bad.read_to_end(&mut got).unwrap();
        assert!(got.starts_with(b"-ERR Protocol error"), "{dispatcher}: {:?}", String::from_utf8_lossy(&got));
    }
}

/// 300 pipelined GETs of a 1 MB value: all answered byte-exact, while the
/// server's peak RSS stays far below the 300 MB it would buffer unbounded.
#[test]
fn pipelined_big_gets_stay_bounded() {
    const VALUE: usize = 1 << 20;
    const GETS: usize = 300;
    const BOUND: usize = 48 << 20;
    let kv = Kv::start("epoll");
    let mut s = kv.connect();
    let value: Vec<u8> = (0..VALUE).map(|i| (i % 251) as u8).collect();
    s.write_all(&command(&[b"SET", b"big", &value])).unwrap();
    assert_eq!(read_exactly(&mut s, 5), b"+OK\r\n");
    s.write_all(&command(&[b"GET", b"big"]).repeat(GETS)).unwrap();
    std::thread::sleep(Duration::from_millis(500)); // let it fill whatever it would
    let header = format!("${VALUE}\r\n");
    for i in 0..GETS {
        let reply = read_exactly(&mut s, header.len() + VALUE + 2);
        assert_eq!(&reply[..header.len()], header.as_bytes(), "reply {i}");
        assert!(reply[header.len()..header.len() + VALUE] == value[..], "reply {i} byte-exact");
    }
    let peak = kv.peak_rss();
    assert!(peak < BOUND, "peak RSS {} MB over the {} MB bound", peak >> 20, BOUND >> 20);
}

/// The real clients, when installed (skipped with a reason otherwise).
#[test]
fn redis_cli_and_benchmark() {
    let kv = Kv::start("epoll");
    let port = kv.port.to_string();
    match Command::new("redis-cli").args(["-p", &port, "set", "greeting", "hello"]).output() {
        Err(e) => println!("skipped redis-cli: {e}"),
        Ok(out) => {
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
            let out = Command::new("redis-cli").args(["-p", &port, "get", "greeting"]).output().unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello");
        }
    }
    let bench = Command::new("timeout")
        .args(["60", "redis-benchmark", "-p", &port, "-t", "set,get", "-n", "20000", "-P", "16", "-q"])
        .output();
    match bench {
        Ok(out) if out.status.code() != Some(127) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "redis-benchmark failed: {text}");
            assert!(text.contains("SET:") && text.contains("GET:"), "{text}");
        }
        _ => println!("skipped redis-benchmark: not installed"),
    }
}
