//! Echo integrity for the proactor example (`examples/uring_echo.rs`): the
//! real binary on a loopback port, many clients each sending a MiB of random
//! bytes in random chunks while reading back, some of them slow readers that
//! make the server pause receiving (a small `--max-output`); every stream
//! must come back byte for byte.
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{IO_TIMEOUT, Rng, connect, fnv1a};

const CLIENTS: usize = 16;
const SLOW: usize = 4;
const BYTES: usize = 1 << 20;

/// The example binary (built by `cargo test` with the examples; built here
/// if it is missing).
fn example_binary() -> PathBuf {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let path = deps.parent().unwrap().join("examples").join("uring_echo");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--example", "uring_echo"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build --example uring_echo");
        assert!(status.success(), "building the example failed");
    }
    path
}

/// The running example; killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(max_output: usize) -> (Server, SocketAddr) {
    let mut child = Command::new(example_binary())
        .args(["127.0.0.1:0", "--max-output", &max_output.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn uring_echo");
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
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
    let data = rng.bytes(BYTES);
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
        thread::sleep(Duration::from_millis(300)); // let the server's output pile up
    }
    let mut got = Vec::with_capacity(BYTES);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("client {seed}: read after {} bytes: {e}", got.len()),
        }
        if slow {
            thread::sleep(Duration::from_millis(2));
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
    let (_server, addr) = start_server(64 * 1024);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| thread::spawn(move || echo_client(addr, i as u64 + 1, i < SLOW)))
        .collect();
    for (i, client) in clients.into_iter().enumerate() {
        let (sent, received, len) = client.join().unwrap();
        assert_eq!(len, BYTES, "client {i} got {len} of {BYTES} bytes");
        assert_eq!(sent, received, "client {i}: the echo differs");
    }
    // Still serving after all that (no connection state left behind).
    let (sent, received, len) = echo_client(addr, 99, false);
    assert_eq!((sent, len), (received, BYTES));
}
