//! The examples as command-line tools: `--help` prints
//! usage and exits 0, an unknown flag or a bad value exits 2 naming the flag,
//! a runtime error prints `error: ...` (Display, not Debug) and exits 1, and
//! every server starts on `127.0.0.1:0 --dispatcher poll`, announces itself
//! and answers.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{ExampleProcess, example_binary};

/// Server examples, with the arguments before the shared flags.
fn servers() -> Vec<(&'static str, &'static [&'static str])> {
    let mut servers: Vec<(&str, &[&str])> = vec![
        ("echo", &[]),
        ("rot13", &[]),
        ("chat", &[]),
        ("framed", &[]),
        ("pingpong_server", &[]),
        ("kv", &[]),
        ("heartbeat", &["server"]),
    ];
    if cfg!(feature = "http") {
        servers.push(("http_server", &[]));
    }
    servers
}

/// Every example this suite runs, checked not to be older than its source:
/// `cargo test --test learn` alone does not rebuild the examples, and
/// a stale binary would test yesterday's command line.
fn assert_fresh_binaries() {
    use std::fs;
    use std::time::SystemTime;
    let newest = |path: &std::path::Path| -> SystemTime {
        let meta = fs::metadata(path).unwrap();
        if !meta.is_dir() {
            return meta.modified().unwrap();
        }
        fs::read_dir(path)
            .unwrap()
            .map(|e| fs::metadata(e.unwrap().path()).unwrap().modified().unwrap())
            .max()
            .unwrap()
    };
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut names: Vec<&str> = servers().into_iter().map(|(name, _)| name).collect();
    names.extend(["chat_client", "pingpong_client", "udp_echo", "proxy", "herd"]);
    for name in names {
        let file = examples.join(format!("{name}.rs"));
        let source = if file.exists() { newest(&file) } else { newest(&examples.join(name)) };
        let built = fs::metadata(example_binary(name)).unwrap().modified().unwrap();
        assert!(
            built >= source,
            "examples/{name} is older than its source: run `cargo build --examples` first"
        );
    }
}

/// Runs an example that is expected to exit at once; one that is still
/// running after 10 s (it took a bad command line and started serving) is
/// killed and reported with no exit code.
fn run(name: &str, args: &[&str]) -> Output {
    let mut child = Command::new(example_binary(name))
        .args(args)
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run examples/{name}: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        thread::sleep(Duration::from_millis(10));
    };
    Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(name: &str, args: &[&str], out: &Output) -> String {
    format!(
        "examples/{name} {}: {:?}\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// `args` must be refused with exit status 2 and a message containing `needle`.
fn assert_usage_error(name: &str, args: &[&str], needle: &str) {
    let out = run(name, args);
    let what = describe(name, args, &out);
    assert_eq!(out.status.code(), Some(2), "{what}");
    assert!(text(&out.stderr).contains(needle), "stderr should name {needle:?}; {what}");
    assert!(out.stdout.is_empty(), "a refused command line starts nothing; {what}");
}

#[test]
fn help_prints_usage_and_exits_0() {
    assert_fresh_binaries();
    let mut all = servers();
    all.push(("chat_client", &[]));
    all.push(("pingpong_client", &[]));
    for (name, pre) in all {
        let args = [pre, &["--help"]].concat();
        let out = run(name, &args);
        let what = describe(name, &args, &out);
        assert_eq!(out.status.code(), Some(0), "{what}");
        let help = text(&out.stdout);
        assert!(help.contains("Usage:") && help.contains("--dispatcher"), "{what}");
        assert!(help.contains("[ADDR]"), "the listen/connect address is documented; {what}");
    }
}

#[test]
fn unknown_flags_and_bad_values_exit_2_naming_the_flag() {
    assert_fresh_binaries();
    let mut all = servers();
    all.push(("chat_client", &[]));
    all.push(("pingpong_client", &[]));
    for (name, pre) in &all {
        let with = |tail: &[&'static str]| [*pre, tail].concat();
        assert_usage_error(name, &with(&["127.0.0.1:0", "--bogus"]), "--bogus");
        assert_usage_error(name, &with(&["not-an-address:x"]), "ADDR");
        assert_usage_error(name, &with(&["127.0.0.1:0", "--dispatcher", "kqueue"]), "--dispatcher");
        // The refusal lists what would have been accepted.
        let out = run(name, &with(&["--dispatcher", "kqueue"]));
        for backend in muxloop::AnyDispatcher::names() {
            assert!(
                text(&out.stderr).contains(backend),
                "{}",
                describe(name, &with(&["--dispatcher"]), &out)
            );
        }
    }
    for (name, pre) in servers() {
        assert_usage_error(name, &[pre, &["127.0.0.1:0", "--threads", "x"]].concat(), "--threads");
    }
    assert_usage_error("pingpong_client", &["--threads", "x"], "--threads");
    assert_usage_error("pingpong_client", &["--sessions", "0"], "--sessions");
    assert_usage_error("pingpong_client", &["--seconds", "0"], "--seconds");
    assert_usage_error("echo", &["--nofile", "many"], "--nofile");
    assert_usage_error("framed", &["--max-body", "lots"], "--max-body");
    assert_usage_error("heartbeat", &["client", "--interval", "0"], "--interval");
    assert_usage_error("heartbeat", &["server", "--misses", "0"], "--misses");
    assert_usage_error("heartbeat", &["sever"], "sever");
    assert_usage_error("kv", &["--threads", "2"], "--threads");
}

#[test]
fn every_server_starts_on_a_chosen_backend_and_announces_itself() {
    assert_fresh_binaries();
    for (name, pre) in servers() {
        let args = [pre, &["127.0.0.1:0", "--dispatcher", "poll"]].concat();
        let server = ExampleProcess::start(name, &args);
        assert!(server.addr.port() != 0, "examples/{name} announced its real port");
        // The announcement came after the listener was up: it accepts.
        TcpStream::connect(server.addr).unwrap_or_else(|e| panic!("connect to examples/{name}: {e}"));
    }
    // The other address forms: `:PORT` and `PORT` mean 127.0.0.1.
    for addr in [":0", "0"] {
        let server = ExampleProcess::start("echo", &[addr, "--dispatcher", "select"]);
        assert!(server.addr.ip().is_loopback() && server.addr.port() != 0, "{addr} -> {}", server.addr);
    }
}

/// Sends `request` and reads until `expected.len()` bytes have come back.
fn exchange(addr: std::net::SocketAddr, request: &[u8], expected: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request).unwrap();
    let mut got = vec![0; expected.len()];
    stream.read_exact(&mut got).unwrap_or_else(|e| panic!("{addr}: {e} (got {:?} so far)", got));
    got
}

#[test]
fn servers_answer_on_the_backend_named_on_the_command_line() {
    assert_fresh_binaries();
    use muxloop::framing::{self, MSG_PING, MSG_PONG, MSG_TYPE2};
    for backend in ["select", "epoll"] {
        let echo = ExampleProcess::start("echo", &["127.0.0.1:0", "--dispatcher", backend, "--threads", "2"]);
        assert_eq!(exchange(echo.addr, b"ping\n", b"ping\n"), b"ping\n");
        let rot13 = ExampleProcess::start("rot13", &["127.0.0.1:0", "--dispatcher", backend]);
        assert_eq!(exchange(rot13.addr, b"Hello\n", b"Uryyb\n"), b"Uryyb\n");
        let framed = ExampleProcess::start("framed", &["127.0.0.1:0", "--dispatcher", backend]);
        let reply = framing::encode(MSG_TYPE2, b"Hello, bob");
        assert_eq!(exchange(framed.addr, &framing::encode(MSG_TYPE2, b"bob"), &reply), reply);
        let heartbeat =
            ExampleProcess::start("heartbeat", &["server", "127.0.0.1:0", "--dispatcher", backend]);
        let pong = framing::encode(MSG_PONG, &[]);
        assert_eq!(exchange(heartbeat.addr, &framing::encode(MSG_PING, &[]), &pong), pong);
    }
}

#[test]
fn runtime_errors_print_with_display_and_exit_1() {
    assert_fresh_binaries();
    let first = ExampleProcess::start("echo", &["127.0.0.1:0"]);
    let taken = first.addr.to_string();
    for (name, pre) in servers() {
        let args = [pre, &[taken.as_str()]].concat();
        let out = run(name, &args);
        let what = describe(name, &args, &out);
        assert_eq!(out.status.code(), Some(1), "{what}");
        let stderr = text(&out.stderr);
        assert!(stderr.starts_with("error: ") && stderr.contains(&taken), "{what}");
        assert!(!stderr.contains("Os {") && !stderr.contains("kind:"), "Debug formatting leaked; {what}");
    }
    let out = run("heartbeat", &["client", "127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe("heartbeat", &["client"], &out));
    assert!(text(&out.stderr).starts_with("error: cannot connect to 127.0.0.1:1"));
}

#[test]
fn udp_echo_server_and_client_modes() {
    assert_fresh_binaries();
    let out = run("udp_echo", &["--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe("udp_echo", &["--help"], &out));
    assert!(text(&out.stdout).contains("--dispatcher") && text(&out.stdout).contains("flood"));
    assert_usage_error("udp_echo", &["127.0.0.1:0", "--bogus"], "--bogus");
    assert_usage_error("udp_echo", &["127.0.0.1:0", "--dispatcher", "kqueue"], "--dispatcher");
    assert_usage_error("udp_echo", &["client"], "<ADDR>");
    assert_usage_error("udp_echo", &["client", "127.0.0.1:9", "--size", "70000"], "--size");
    assert_usage_error("udp_echo", &["flood", "127.0.0.1:9", "--seconds", "0"], "--seconds");

    let server = ExampleProcess::start("udp_echo", &["127.0.0.1:0", "--dispatcher", "poll"]);
    let addr = server.addr.to_string();
    let args = ["client", addr.as_str(), "--count", "200", "--dispatcher", "select"];
    let out = run("udp_echo", &args);
    let what = describe("udp_echo", &args, &out);
    assert_eq!(out.status.code(), Some(0), "{what}");
    assert!(text(&out.stdout).contains("sent=200 answered=200 lost=0"), "{what}");
    // The port is taken: a second server says so and exits 1.
    let out = run("udp_echo", &[addr.as_str()]);
    let what = describe("udp_echo", &[addr.as_str()], &out);
    assert_eq!(out.status.code(), Some(1), "{what}");
    assert!(text(&out.stderr).starts_with("error: ") && text(&out.stderr).contains(&addr), "{what}");
}

#[test]
fn proxy_relays_and_herd_refuses_bad_flags() {
    assert_fresh_binaries();
    for name in ["proxy", "herd"] {
        let out = run(name, &["--help"]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(name, &["--help"], &out));
        assert!(text(&out.stdout).contains("--dispatcher"));
        assert_usage_error(name, &["--bogus"], "--bogus");
        assert_usage_error(name, &["--dispatcher", "kqueue"], "--dispatcher");
    }
    assert_usage_error("proxy", &["127.0.0.1:0"], "<UPSTREAM>");
    assert_usage_error("proxy", &["127.0.0.1:0", "nowhere:x"], "UPSTREAM");
    assert_usage_error("herd", &["--loops", "x"], "--loops");
    assert_usage_error("herd", &["--strategy", "stampede"], "--strategy");

    let echo = ExampleProcess::start("echo", &["127.0.0.1:0"]);
    let upstream = echo.addr.to_string();
    for relay in ["--copy", "--splice"] {
        let proxy = ExampleProcess::start(
            "proxy",
            &["127.0.0.1:0", upstream.as_str(), relay, "--dispatcher", "poll"],
        );
        assert_eq!(exchange(proxy.addr, b"through the relay", b"through the relay"), b"through the relay");
    }
    // Its listening port taken: `error: ...`, exit 1.
    let out = run("proxy", &[upstream.as_str(), upstream.as_str()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe("proxy", &[], &out));
    let what = describe("proxy", &[], &out);
    assert!(text(&out.stderr).starts_with(&format!("error: cannot listen on {upstream}")), "{what}");
}

#[test]
fn heartbeat_closes_a_silent_peer_and_the_client_pings() {
    assert_fresh_binaries();
    let server = ExampleProcess::start(
        "heartbeat",
        &["server", "127.0.0.1:0", "--interval", "0.1", "--misses", "2", "--dispatcher", "poll"],
    );
    let mut silent = TcpStream::connect(server.addr).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut byte = [0; 1];
    assert_eq!(silent.read(&mut byte).unwrap(), 0, "the server closes a peer that sends nothing");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
    assert!(server.logged("missed heartbeats", Duration::from_secs(5)));

    // A client that stops after 2 pings is closed by the server: it exits 0.
    let addr = server.addr.to_string();
    let args = ["client", addr.as_str(), "--interval", "0.1", "--misses", "5", "--pings", "2"];
    let out = run("heartbeat", &args);
    assert_eq!(out.status.code(), Some(0), "{}", describe("heartbeat", &args, &out));
}

#[test]
fn echo_stops_reading_a_client_that_does_not_read() {
    assert_fresh_binaries();
    const OFFERED: usize = 64 << 20;
    let echo = ExampleProcess::start("echo", &["127.0.0.1:0", "--dispatcher", "poll"]);
    let mut client = TcpStream::connect(echo.addr).unwrap();
    client.set_write_timeout(Some(Duration::from_millis(500))).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut written = 0;
    while written < OFFERED {
        match client.write(&chunk) {
            Ok(n) => written += n,
            Err(_) => break, // timed out: the server stopped reading
        }
    }
    // 4 MiB of queued output plus what the kernel buffers hold both ways.
    assert!(written < 32 << 20, "the server took {} MiB from a client that never reads", written >> 20);
}

/// Starts `name` and returns it with its stdout lines (collected by a thread)
/// once it has announced its address.
fn start_with_stdout(
    name: &str,
    args: &[&str],
) -> (std::process::Child, std::net::SocketAddr, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = Command::new(example_binary(name))
        .args(args)
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("run examples/{name}: {e}"));
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(10)).expect("a listening line");
    let addr = first.split_whitespace().nth(2).and_then(|a| a.parse().ok()).expect(&first);
    (child, addr, rx)
}

fn wait_exit(child: &mut std::process::Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// SIGTERM (and Ctrl-C's SIGINT) stops every server gracefully: exit code 0
/// and a one-line summary; a connected client is counted as closed cleanly
/// once it closes its side after the server's half-close.
#[test]
fn servers_stop_gracefully_on_sigterm_and_sigint() {
    for (i, (name, extra)) in servers().into_iter().enumerate() {
        let signal = if i % 2 == 0 { libc::SIGTERM } else { libc::SIGINT };
        let args: Vec<&str> = extra.iter().copied().chain(["127.0.0.1:0", "--threads", "0"]).collect();
        let args = if name == "kv" || name == "heartbeat" { &args[..args.len() - 2] } else { &args[..] };
        let (mut child, addr, lines) = start_with_stdout(name, args);
        let mut client = TcpStream::connect(addr).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        thread::sleep(Duration::from_millis(100));
        muxloop::sys::kill(child.id() as i32, signal).unwrap();
        // The server half-closes (or closes) our connection: read to EOF, then close ours.
        let mut sink = Vec::new();
        let _ = client.read_to_end(&mut sink);
        drop(client);
        let status =
            wait_exit(&mut child, Duration::from_secs(10)).unwrap_or_else(|| panic!("{name}: did not exit"));
        assert_eq!(status.code(), Some(0), "{name}: exit code after signal {signal}");
        // The process has exited: its stdout is at EOF, so this ends.
        let summary: Vec<String> = lines.iter().collect();
        assert!(
            summary.iter().any(|l| l == "stopped: 1 connection(s) closed cleanly, 0 forced"),
            "{name}: summary line, got {summary:?}"
        );
    }
}

/// A second signal during the graceful stop ends the process at once.
#[test]
fn a_second_signal_exits_at_once() {
    let (mut child, addr, _lines) = start_with_stdout("echo", &["127.0.0.1:0"]);
    let client = TcpStream::connect(addr).unwrap(); // never closes: the stop would wait its 5 s grace
    thread::sleep(Duration::from_millis(100));
    let pid = child.id() as i32;
    muxloop::sys::kill(pid, libc::SIGTERM).unwrap();
    thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "still in its grace period");
    let started = Instant::now();
    muxloop::sys::kill(pid, libc::SIGTERM).unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(3)).expect("the second signal ends it");
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(client);
}
