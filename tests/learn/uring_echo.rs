//! Echo integrity for the proactor example (`examples/uring_echo.rs`): the
//! real binary on a loopback port, many clients each sending a MiB of random
//! bytes in random chunks while reading back, some of them slow readers that
//! make the server pause receiving (a small `--max-output`); every stream
//! must come back byte for byte.
#![cfg(muxloop_has_uring)]

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use common::{IO_TIMEOUT, Rng, connect, fnv1a};

const CLIENTS: usize = 16;
const SLOW: usize = 4;
const BYTES: usize = 1 << 20;
/// A slow reader sends more than the socket buffers on both sides can hold
/// (loopback autotunes them to a few MiB), so the server's output piles up.
const SLOW_BYTES: usize = 8 << 20;

/// The example binary, built (or found up to date) by cargo first: `cargo
/// test --test learn` alone does not rebuild examples.
fn example_binary() -> PathBuf {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let profile_dir = deps.parent().unwrap().to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "--example", "uring_echo"]).current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build --example uring_echo");
    assert!(status.success(), "building the example failed");
    profile_dir.join("examples").join("uring_echo")
}

/// The running example; killed on drop. `log` collects its debug log.
struct Server {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(max_output: usize) -> (Server, SocketAddr) {
    let mut child = Command::new(example_binary())
        .args(["127.0.0.1:0", "--max-output", &max_output.to_string()])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn uring_echo");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&log);
    thread::spawn(move || {
        // Read it all the time: a full pipe would block the server.
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let server = Server { child, log };
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(IO_TIMEOUT).expect("the example announces its address");
    // "listening on 127.0.0.1:PORT (dispatcher: ...)"
    let addr = line.split_whitespace().nth(2).and_then(|a| a.parse().ok());
    (server, addr.unwrap_or_else(|| panic!("unexpected first line {line:?}")))
}

/// Sends `BYTES` random bytes in random chunks from one thread while this
/// one reads them back (slowly if `slow`); returns (sent hash, received hash, received length).
fn echo_client(addr: SocketAddr, seed: u64, slow: bool) -> (u64, u64, usize) {
    let mut stream = connect(addr);
    let mut rng = Rng::new(seed);
    let data = rng.bytes(if slow { SLOW_BYTES } else { BYTES });
    if slow {
        // Small enough that the echo piles up in the server, not in this socket;
        // not below a few loopback MSS (64 KiB), where TCP would crawl on window probes.
        muxloop::sys::set_buffer_sizes(stream.as_fd(), None, Some(512 * 1024)).unwrap();
    }
    let sent_hash = fnv1a(&data);
    let mut writer = stream.try_clone().unwrap();
    let sender = thread::spawn(move || {
        let mut rng = Rng::new(seed ^ 0xABCD);
        let mut at = 0;
        while at < data.len() {
            let n = rng.range(1, 64 * 1024).min(data.len() - at);
            writer.write_all(&data[at..at + n]).expect("client write");
            at += n;
        }
        writer.shutdown(Shutdown::Write).unwrap();
    });
    if slow {
        thread::sleep(Duration::from_millis(500)); // let the server's output pile up
    }
    let mut got = Vec::with_capacity(BYTES);
    let mut reads = 0usize;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("client {seed}: read after {} bytes: {e}", got.len()),
        }
        reads += 1;
        if slow && reads.is_multiple_of(16) {
            thread::sleep(Duration::from_millis(1)); // and then read slowly
        }
    }
    sender.join().unwrap();
    (sent_hash, fnv1a(&got), got.len())
}

#[test]
fn proactor_echo_is_byte_exact_for_many_clients_and_slow_readers() {
    if common::uring_unavailable() {
        return;
    }
    let (server, addr) = start_server(64 * 1024);
    let clients: Vec<_> =
        (0..CLIENTS).map(|i| thread::spawn(move || echo_client(addr, i as u64 + 1, i < SLOW))).collect();
    for (i, client) in clients.into_iter().enumerate() {
        let (sent, received, len) = client.join().unwrap();
        let want = if i < SLOW { SLOW_BYTES } else { BYTES };
        assert_eq!(len, want, "client {i} got {len} of {want} bytes");
        assert_eq!(sent, received, "client {i}: the echo differs");
    }
    // Still serving after all that (no connection state left behind).
    let (sent, received, len) = echo_client(addr, 99, false);
    assert_eq!((sent, len), (received, BYTES));
    // The slow readers did make the server pause and resume receiving, and
    // sends did complete partially: the paths above were really taken.
    let log = server.log.lock().unwrap().clone();
    for what in ["receiving paused", "receiving resumed", "partial send"] {
        assert!(log.contains(what), "the server never logged {what:?}; its log:\n{log}");
    }
}
