//! The server examples' shared flags: `--unix PATH`
//! serves each one's protocol over a Unix domain socket and removes the
//! socket file on SIGTERM; `--processes N` forks N workers that serve, and
//! SIGTERM to the master leaves none behind; chat and kv refuse
//! `--processes` (their state is one process's); `--unix` with an address is
//! a usage error. And `chat_client` with a pipe as stdin: every line reaches
//! another member, spliced or (`--copy`) read and sent, also when the socket
//! fills up.
//!
//! The examples are spawned as built by `cargo test` (or `cargo build
//! --examples`); no curl or other tool is needed.

use crate::common;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{alive, example_binary, live_children, wait_until};
use muxloop::framing::{self, MSG_PING, MSG_PONG};

/// Every wait on an example is bounded by this.
const DEADLINE: Duration = Duration::from_secs(15);

/// A running example: its announced address, its log lines; killed on drop.
struct Running {
    child: Child,
    /// What follows `listening on` (e.g. `127.0.0.1:4242` or `unix:/tmp/x.sock`).
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn start(name: &str, args: &[&str]) -> Running {
        let mut child = Command::new(example_binary(name))
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start examples/{name}: {e}"));
        let log = collect_lines(child.stderr.take().unwrap());
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        // Later lines ("stopped: ...") are drained so a full pipe never blocks it.
        thread::spawn(move || io::copy(&mut stdout, &mut io::sink()));
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("examples/{name} {args:?} did not announce itself: {line:?}"))
            .to_owned();
        Running { child, addr, log }
    }

    fn tcp(&self) -> SocketAddr {
        self.addr.parse().unwrap_or_else(|_| panic!("not a TCP address: {}", self.addr))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn logged(&self, text: &str) -> bool {
        wait_until(DEADLINE, || self.log.lock().unwrap().iter().any(|l| l.contains(text)))
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// SIGTERM, then its exit status within [`DEADLINE`] (`None`: still running, killed).
    fn terminate(&mut self) -> Option<ExitStatus> {
        muxloop::sys::kill(self.pid() as i32, libc::SIGTERM).unwrap();
        crate::common::exit_within(&mut self.child, DEADLINE)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect_lines(pipe: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let log = Arc::<Mutex<Vec<String>>>::default();
    let lines = Arc::clone(&log);
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            lines.lock().unwrap().push(line);
        }
    });
    log
}

/// A fresh directory for socket files, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("muxloop-flags-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A connected stream of either kind, with a read deadline.
trait Stream: Read + Write {
    fn half_close(&self);
}

impl Stream for UnixStream {
    fn half_close(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

impl Stream for TcpStream {
    fn half_close(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

fn connect(addr: &str) -> Box<dyn Stream> {
    let timeout = Some(DEADLINE);
    match addr.strip_prefix("unix:") {
        Some(path) => {
            let stream = match path.strip_prefix('@') {
                Some(name) => {
                    use std::os::linux::net::SocketAddrExt;
                    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
                    UnixStream::connect_addr(&addr)
                }
                None => UnixStream::connect(path),
            }
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
            stream.set_read_timeout(timeout).unwrap();
            Box::new(stream)
        }
        None => {
            let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
            stream.set_read_timeout(timeout).unwrap();
            Box::new(stream)
        }
    }
}

/// Reads until `expected.len()` bytes have arrived (or EOF/timeout) and
/// checks they are `expected`.
fn expect(stream: &mut dyn Stream, expected: &[u8], what: &str) {
    let mut got = vec![0; expected.len()];
    let mut filled = 0;
    while filled < got.len() {
        match stream.read(&mut got[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) => panic!("{what}: read after {filled} bytes: {e}"),
        }
    }
    assert_eq!(String::from_utf8_lossy(&got[..filled]), String::from_utf8_lossy(expected), "{what}");
}

/// One round trip of `name`'s protocol with the server at `addr`.
fn round_trip(name: &str, server: &Running, tag: &str) {
    let addr = server.addr.as_str();
    let what = format!("{name} on {addr} ({tag})");
    let mut stream = connect(addr);
    match name {
        "echo" | "pingpong_server" | "prefork" | "proxy" => {
            let payload = format!("{tag}: every byte comes back");
            stream.write_all(payload.as_bytes()).unwrap();
            expect(&mut *stream, payload.as_bytes(), &what);
        }
        "rot13" => {
            stream.write_all(b"Hello, World\n").unwrap();
            expect(&mut *stream, b"Uryyb, Jbeyq\n", &what);
        }
        "framed" | "heartbeat" => {
            stream.write_all(&framing::header(MSG_PING, 0)).unwrap();
            expect(&mut *stream, &framing::header(MSG_PONG, 0), &what);
        }
        "kv" => {
            stream.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
            expect(&mut *stream, b"+PONG\r\n", &what);
        }
        "http_server" => {
            stream.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            let mut response = Vec::new();
            stream.read_to_end(&mut response).unwrap();
            let response = String::from_utf8_lossy(&response);
            assert!(response.starts_with("HTTP/1.1 200"), "{what}: {response}");
            assert!(response.ends_with("hello, world"), "{what}: {response}");
        }
        "chat" => {
            // The first member is `stream`; a second one speaks.
            assert!(server.logged("(1 in the room)"), "{what}: {}", server.log_text());
            let mut speaker = connect(addr);
            assert!(server.logged("(2 in the room)"), "{what}: {}", server.log_text());
            speaker.write_all(b"hello, room\n").unwrap();
            expect(&mut *stream, b"hello, room\n", &what);
        }
        other => panic!("no protocol for {other}"),
    }
    stream.half_close();
}

/// The server examples and the arguments before the shared flags.
fn servers() -> Vec<(&'static str, &'static [&'static str])> {
    let mut servers: Vec<(&str, &[&str])> = vec![
        ("echo", &[]),
        ("rot13", &[]),
        ("framed", &[]),
        ("pingpong_server", &[]),
        ("heartbeat", &["server"]),
        ("chat", &[]),
        ("kv", &[]),
        ("prefork", &["--processes", "2"]),
    ];
    if cfg!(feature = "http") {
        servers.push(("http_server", &[]));
    }
    servers
}

#[test]
fn every_server_serves_over_unix_and_removes_its_socket_file() {
    let dir = TempDir::new("unix");
    for (name, pre) in servers() {
        let path = dir.path(&format!("{name}.sock"));
        let path_arg = path.to_str().unwrap();
        let args = [pre, &["--unix", path_arg, "--dispatcher", "poll"]].concat();
        let mut server = Running::start(name, &args);
        assert_eq!(server.addr, format!("unix:{path_arg}"), "{name} announces the unix address");
        assert!(path.exists(), "{name}: the socket file exists while serving");
        round_trip(name, &server, "unix path");
        let status = server.terminate();
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{name}: {status:?}\n{}", server.log_text());
        assert!(!path.exists(), "{name}: {} is left behind after SIGTERM", path.display());
    }
}

#[test]
fn an_abstract_name_serves_and_leaves_no_file() {
    let name = format!("@muxloop-flags-{}", std::process::id());
    for example in ["echo", "kv"] {
        let mut server = Running::start(example, &["--unix", &name]);
        assert_eq!(server.addr, format!("unix:{name}"));
        round_trip(example, &server, "abstract");
        assert_eq!(server.terminate().and_then(|s| s.code()), Some(0), "{}", server.log_text());
    }
}

/// Starts `name` with `--processes 2`, serves a few clients, SIGTERMs the
/// master: exit 0 and no worker left.
fn processes_serve_and_stop(name: &str, args: &[&str]) {
    let mut server = Running::start(name, args);
    assert!(
        wait_until(DEADLINE, || live_children(server.pid()).len() == 2),
        "{name}: expected 2 workers, have {:?}\n{}",
        live_children(server.pid()),
        server.log_text()
    );
    let workers = live_children(server.pid());
    for i in 0..4 {
        round_trip(name, &server, &format!("--processes 2, client {i}"));
    }
    let status = server.terminate();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{name}: master {status:?}\n{}", server.log_text());
    let left: Vec<u32> = workers.iter().copied().filter(|&pid| alive(pid)).collect();
    assert!(left.is_empty(), "{name}: workers {left:?} outlived the master");
    // Each stopped on the forwarded SIGTERM and exited 0 (not SIGKILLed at the grace deadline).
    for pid in workers {
        let stopped = format!("(pid {pid}) stopped: exit status: 0");
        assert!(server.logged(&stopped), "{name}: no {stopped:?}\n{}", server.log_text());
    }
    assert!(server.logged("all workers have exited"), "{}", server.log_text());
}

#[test]
fn processes_fork_workers_that_serve_and_stop_with_the_master() {
    // One sub-loop thread per worker: threads start only after the fork.
    let flags = ["127.0.0.1:0", "--processes", "2", "--threads", "1"];
    let mut runs: Vec<(&str, Vec<&str>)> = vec![
        ("echo", flags.to_vec()),
        ("rot13", flags.to_vec()),
        ("framed", flags.to_vec()),
        ("pingpong_server", flags.to_vec()),
        ("heartbeat", [&["server"], &flags[..]].concat()),
    ];
    if cfg!(feature = "http") {
        runs.push(("http_server", flags.to_vec()));
    }
    // The relay's workers relay to an echo server (the relay has no sub-loops).
    let upstream = Running::start("echo", &["127.0.0.1:0"]);
    runs.push(("proxy", vec!["127.0.0.1:0", upstream.addr.as_str(), "--processes", "2"]));
    for (name, args) in runs {
        processes_serve_and_stop(name, &args);
    }
}

#[test]
fn processes_over_a_unix_path_leave_neither_workers_nor_the_file() {
    let dir = TempDir::new("procs");
    for name in ["echo", "http_server"] {
        if name == "http_server" && !cfg!(feature = "http") {
            continue;
        }
        let path = dir.path(&format!("{name}.sock"));
        processes_serve_and_stop(name, &["--unix", path.to_str().unwrap(), "--processes", "2"]);
        assert!(!path.exists(), "{name}: the master left {} behind", path.display());
    }
}

/// Runs an example expected to exit at once; its status and stderr.
fn run(name: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new(example_binary(name))
        .args(args)
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let (stdout, stderr) = (drain(Box::new(stdout)), drain(Box::new(stderr)));
    let status = crate::common::exit_within(&mut child, DEADLINE);
    (status.and_then(|s| s.code()), stdout.join().unwrap(), stderr.join().unwrap())
}

#[test]
fn stateful_servers_refuse_processes_and_unix_conflicts_with_an_address() {
    for (name, why) in [("chat", "one room"), ("kv", "one store")] {
        let (code, stdout, stderr) = run(name, &["127.0.0.1:0", "--processes", "2"]);
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert!(stderr.contains("--processes") && stderr.contains(why), "{name}: {stderr}");
        assert!(stdout.is_empty(), "{name} started: {stdout}");
    }
    for (name, pre) in servers() {
        let args = [pre, &["127.0.0.1:0", "--unix", "/tmp/muxloop-never.sock"]].concat();
        let (code, stdout, stderr) = run(name, &args);
        assert_eq!(code, Some(2), "{name} {args:?}: {stderr}");
        assert!(stderr.contains("--unix") && stderr.contains("cannot be used with"), "{name}: {stderr}");
        assert!(stdout.is_empty(), "{name} started: {stdout}");
    }
    assert!(!Path::new("/tmp/muxloop-never.sock").exists());
}

/// `chat_client ARGS` with `input` written to its stdin pipe by a thread;
/// its exit status and log.
fn chat_client(args: &[&str], input: Vec<u8>) -> (Child, thread::JoinHandle<()>, Arc<Mutex<Vec<String>>>) {
    let mut child = Command::new(example_binary("chat_client"))
        .args(args)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = collect_lines(child.stderr.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
        // Dropped: EOF for the client.
    });
    (child, writer, log)
}

fn lines(count: usize) -> Vec<u8> {
    (0..count).flat_map(|i| format!("line {i:06} of the piped conversation\n").into_bytes()).collect()
}

/// Reads from `stream` until `len` bytes have arrived, EOF, or the deadline.
fn read_n(stream: &mut dyn Read, len: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(len);
    let mut buf = vec![0; 64 * 1024];
    let deadline = Instant::now() + DEADLINE;
    while got.len() < len && Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("member read after {} bytes: {e}", got.len()),
        }
    }
    got
}

#[test]
fn chat_client_pipes_every_line_to_another_member_spliced_or_copied() {
    let input = lines(16 * 1024); // ~660 KB: under the room's 1 MiB per-member bound
    let dir = TempDir::new("chat");
    let path = dir.path("chat.sock");
    let path = path.to_str().unwrap();
    for (unix, copy) in [(false, false), (false, true), (true, false)] {
        let what = format!("unix={unix} copy={copy}");
        let listen = if unix { vec!["--unix", path] } else { vec!["127.0.0.1:0"] };
        let server = Running::start("chat", &[&listen[..], &["--dispatcher", "poll"]].concat());
        let mut member = connect(&server.addr);
        assert!(server.logged("(1 in the room)"), "{}", server.log_text());
        let port = if unix { String::new() } else { server.tcp().port().to_string() };
        let mut args = if unix { vec!["--unix", path] } else { vec![port.as_str()] };
        if copy {
            args.push("--copy");
        }
        let (mut client, writer, log) = chat_client(&args, input.clone());
        let got = read_n(&mut *member, input.len());
        writer.join().unwrap();
        let status = crate::common::exit_within(&mut client, DEADLINE);
        let log = log.lock().unwrap().join("\n");
        assert_eq!(got.len(), input.len(), "{what}: bytes received\n{log}");
        assert!(got == input, "{what}: the lines arrived changed or out of order");
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{what}: {log}");
        let spliced = format!("stdin ended; {} bytes spliced", input.len());
        assert_eq!(log.contains(&spliced), !copy, "{what}: spliced iff not --copy\n{log}");
    }
}

#[test]
fn chat_client_splice_waits_for_room_when_the_socket_is_full() {
    // A server that reads nothing for a while: the socket fills, splice says
    // EAGAIN, and the client must wait for room, then deliver every byte.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let input: Vec<u8> = (0..24u32 << 20).map(|i| (i % 251) as u8).collect();
    let (mut client, writer, log) = chat_client(&[&port], input.clone());
    let (mut peer, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(DEADLINE)).unwrap();
    thread::sleep(Duration::from_millis(300));
    let got = read_n(&mut peer, input.len() + 1);
    drop(peer); // the server closes: the client ends
    writer.join().unwrap();
    let status = crate::common::exit_within(&mut client, DEADLINE);
    let log = log.lock().unwrap().join("\n");
    assert_eq!(got.len(), input.len(), "bytes received (then EOF)\n{log}");
    assert!(got == input, "the bytes arrived changed");
    assert!(log.contains("waiting for room"), "the socket never filled; the test proves nothing\n{log}");
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{log}");
}
