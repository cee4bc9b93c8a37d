//! The concept index (`docs/tour/concepts.md`) stays honest: every file,
//! example and test it names exists. Plus the small tests some of its rows
//! point to: socket basics that had no test elsewhere (the 4-tuple, reference
//! counts, TIME_WAIT and SO_REUSEADDR, socket options, partial writes, EINTR,
//! zombies).

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use muxloop::{Dispatcher, Events, Interest, Mode, sys};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Example names: `[[example]]` entries, `examples/NAME.rs`, `examples/NAME/main.rs`.
fn example_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut in_example = false;
    for line in read("Cargo.toml").lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_example = line == "[[example]]";
        } else if in_example && let Some(value) = line.strip_prefix("name") {
            names.insert(value.trim_start_matches([' ', '=']).trim_matches('"').to_owned());
        }
    }
    for entry in std::fs::read_dir(root().join("examples")).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "rs") || path.join("main.rs").exists() {
            names.insert(path.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    names
}

/// The `backticked` tokens of a table cell.
fn tokens(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

/// What is wrong with one cell; `kind` is "code", "example" or "test".
fn check_cell(kind: &str, cell: &str, examples: &BTreeSet<String>, problems: &mut Vec<String>) {
    let cell = cell.trim();
    let pending = cell.contains("pending (issue ")
        && cell
            .split("pending (issue ")
            .skip(1)
            .all(|rest| rest.split(')').next().unwrap().parse::<u32>().is_ok());
    let mut named = false;
    for token in tokens(cell) {
        if token.contains("::") && kind == "test" {
            named = true;
            let (file, name) = token.split_once("::").unwrap();
            let Ok(text) = std::fs::read_to_string(root().join(file)) else {
                problems.push(format!("test file {file} does not exist ({token})"));
                continue;
            };
            if !text.contains(&format!("fn {name}(")) && !text.contains(&format!("fn {name}<")) {
                problems.push(format!("{file} has no fn {name}"));
            }
        } else if token.ends_with(".rs") || token.contains('/') {
            named = true;
            if !root().join(token).exists() {
                problems.push(format!("file {token} does not exist"));
            }
        } else if kind == "example" {
            named = true;
            if !examples.contains(token) {
                problems.push(format!("no example named {token}"));
            }
        }
    }
    if kind == "code" && (cell.contains("](crate::") || cell.contains(".md)")) {
        named = true; // rustdoc checks these links; `links` checks a chapter's (`14-http.md`)
    }
    if !named && !pending {
        problems.push(format!("empty {kind} cell (name something or say \"pending (issue N)\"): {cell:?}"));
    }
}

#[test]
fn every_name_in_the_index_exists() {
    let examples = example_names();
    let index = read("docs/tour/concepts.md");
    let mut problems = Vec::new();
    let mut rows = 0;
    for line in index.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| Concept")) {
        let cells: Vec<&str> = line.split('|').collect();
        assert_eq!(cells.len(), 6, "a row with 4 cells: {line}");
        if cells[1].trim().starts_with("**") && cells[2].trim().is_empty() {
            continue; // a section heading
        }
        rows += 1;
        let before = problems.len();
        check_cell("code", cells[2], &examples, &mut problems);
        check_cell("example", cells[3], &examples, &mut problems);
        check_cell("test", cells[4], &examples, &mut problems);
        for p in &mut problems[before..] {
            *p = format!("{}: {p}", cells[1].trim());
        }
    }
    assert!(rows >= 50, "the index lost rows ({rows})");
    assert!(problems.is_empty(), "the concept index names what does not exist:\n{}", problems.join("\n"));
}

#[test]
fn every_tour_chapter_is_in_the_rustdoc() {
    let tour = read("src/tour.rs");
    for entry in std::fs::read_dir(root().join("docs/tour")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            assert!(
                tour.contains(&format!("docs/tour/{name}")),
                "docs/tour/{name} is not included in src/tour.rs"
            );
        }
    }
}

// ---- socket basics ----

fn pair(addr: &str) -> Option<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind(addr).ok()?; // None: no IPv6 here
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    Some((client, server))
}

/// getsockname on one end is getpeername on the other, for IPv4 and IPv6.
#[test]
fn four_tuple_matches_on_both_ends() {
    for addr in ["127.0.0.1:0", "[::1]:0"] {
        let Some((client, server)) = pair(addr) else {
            eprintln!("skipping {addr}: not available here");
            continue;
        };
        let (c, s) = (client.as_fd(), server.as_fd());
        let inet = |raw: sys::RawAddr| raw.to_inet().unwrap();
        assert_eq!(inet(sys::local_addr(c).unwrap()), inet(sys::peer_addr(s).unwrap()), "{addr}");
        assert_eq!(inet(sys::peer_addr(c).unwrap()), inet(sys::local_addr(s).unwrap()), "{addr}");
        assert_eq!(inet(sys::local_addr(c).unwrap()).is_ipv6(), addr.starts_with('['));
    }
}

/// Like a fork, `dup` makes two descriptors for one socket: closing one
/// does not end the connection; closing the last does (the peer reads EOF).
#[test]
fn a_connection_ends_with_its_last_descriptor() {
    let (mut client, server) = pair("127.0.0.1:0").unwrap();
    let copy = server.try_clone().unwrap(); // dup(2)
    client.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    drop(server);
    let err = client.read(&mut [0u8; 8]).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "still open: {err}");
    drop(copy);
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(client.read(&mut [0u8; 8]).unwrap(), 0, "EOF once the last descriptor is closed");
}

/// A threaded process must not fork (the child inherits locks held by
/// threads that do not exist in it); the test harness runs us on a thread.
#[test]
fn fork_refuses_in_a_threaded_process() {
    let err = sys::fork().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.to_string().contains("threads"), "{err}");
}

/// Local port `port` has a connection in TIME_WAIT (state 06 in /proc/net/tcp).
fn in_time_wait(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() > 3 && fields[1].ends_with(&format!(":{port:04X}")) && fields[3] == "06"
    })
}

/// The side that closes first keeps the 4-tuple in TIME_WAIT; with
/// SO_REUSEADDR (which `sys::tcp_listener` sets) a restarted server can bind
/// the port anyway instead of failing with "address in use".
#[test]
fn reuseaddr_rebinds_a_port_in_time_wait() {
    let listener = sys::tcp_listener(&"127.0.0.1:0".parse().unwrap(), false, 16).unwrap();
    let addr: SocketAddr = sys::local_addr(listener.as_fd()).unwrap().to_inet().unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let server = loop {
        match sys::accept(listener.as_fd()) {
            Ok((server, _)) => break server,
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    drop(server); // the server closes first ...
    assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0);
    drop(client); // ... and the client's FIN puts the server's side in TIME_WAIT
    drop(listener);
    let start = Instant::now();
    while !in_time_wait(addr.port()) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(in_time_wait(addr.port()), "the server's side of the connection is in TIME_WAIT");
    let again = sys::tcp_listener(&addr, false, 16);
    assert!(again.is_ok(), "rebinding {addr} during TIME_WAIT: {:?}", again.err());
}

/// Socket options take effect on sockets and are refused elsewhere.
#[test]
fn socket_options_apply() {
    let (client, _server) = pair("127.0.0.1:0").unwrap();
    let fd = client.as_fd();
    sys::set_nodelay(fd, true).unwrap();
    assert!(client.nodelay().unwrap(), "TCP_NODELAY reads back on");
    sys::set_nodelay(fd, false).unwrap();
    assert!(!client.nodelay().unwrap(), "and off");
    sys::set_keepalive(fd, true).unwrap();
    sys::set_buffer_sizes(fd, Some(8192), Some(8192)).unwrap();
    let (pipe, _) = sys::pipe().unwrap();
    let p = pipe.as_fd();
    for result in
        [sys::set_nodelay(p, true), sys::set_keepalive(p, true), sys::set_buffer_sizes(p, Some(1), None)]
    {
        assert_eq!(result.unwrap_err().raw_os_error(), Some(libc::ENOTSOCK));
    }
}

/// A non-blocking send into a small send buffer, to a peer that does not
/// read, takes only part of the data; the next one says `WouldBlock`.
#[test]
fn small_send_buffer_makes_partial_writes() {
    let (client, _server) = pair("127.0.0.1:0").unwrap();
    let fd = client.as_fd();
    sys::set_nonblocking(fd, true).unwrap();
    sys::set_buffer_sizes(fd, Some(4096), None).unwrap();
    let data = vec![1u8; 8 << 20];
    let mut sent = sys::send(fd, &data).unwrap();
    assert!(sent < data.len(), "a partial write: {sent} of {} bytes", data.len());
    // Fill what room is left, then the socket is full.
    let err = loop {
        match sys::send(fd, &data[sent..]) {
            Ok(n) => sent += n,
            Err(e) => break e,
        }
        assert!(sent < data.len(), "the peer does not read: 8 MiB cannot all fit");
    };
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
}

// ---- signals and processes, in child processes (signals are process-wide) ----

const CHILD_ENV: &str = "MUXLOOP_CONCEPT_CHILD";

/// Runs the ignored test `entry` of this binary in a child process.
fn in_child(entry: &str, arg: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &crate::common::test_name(module_path!(), entry), "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CHILD_ENV, arg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{entry} ({arg}) failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(" 1 passed"),
        "{entry} ({arg}): the child ran no test (a wrong name?):\n{stdout}"
    );
}

fn interrupted_wait<D: Dispatcher>() {
    sys::teaching::catch_sigchld().unwrap();
    let (a, _b) = sys::socketpair().unwrap();
    let mut backend = D::new().unwrap();
    backend.register(a.as_raw_fd(), Interest::READABLE, Mode::Level).unwrap();
    // This thread forks the child, so the kernel prefers it for SIGCHLD.
    let mut child = Command::new("sleep").arg("0.2").spawn().unwrap();
    let mut events = Events::with_capacity(4);
    let start = Instant::now();
    let result = backend.dispatch(&mut events, Some(Duration::from_secs(20)));
    let waited = start.elapsed();
    child.wait().unwrap();
    assert!(result.is_ok(), "{}: EINTR is not an error: {result:?}", D::NAME);
    assert!(events.is_empty(), "{}: an interrupted wait is an empty batch", D::NAME);
    assert!(waited < Duration::from_secs(10), "{}: the signal cut the wait short ({waited:?})", D::NAME);
    assert!(sys::teaching::take_sigchld(), "SIGCHLD was caught");
}

#[test]
#[ignore = "run in a child process by a_signal_interrupts_a_wait_as_an_empty_batch"]
fn eintr_child_entry() {
    match std::env::var(CHILD_ENV).as_deref() {
        Ok("select") => interrupted_wait::<muxloop::SelectDispatcher>(),
        Ok("poll") => interrupted_wait::<muxloop::PollDispatcher>(),
        #[cfg(muxloop_has_epoll)]
        Ok("epoll") => interrupted_wait::<muxloop::EpollDispatcher>(),
        other => panic!("child entry only ({other:?})"),
    }
}

/// A signal that interrupts `select`/`poll`/`epoll_wait` (`EINTR`) comes
/// back as an empty batch, not an error, on every backend.
#[test]
fn a_signal_interrupts_a_wait_as_an_empty_batch() {
    for backend in ["select", "poll", "epoll"] {
        in_child("eintr_child_entry", backend);
    }
}

#[test]
#[ignore = "run in a child process by zombies_stay_until_reaped"]
fn zombie_child_entry() {
    assert_eq!(std::env::var(CHILD_ENV).as_deref(), Ok("zombie"), "child entry only");
    sys::teaching::catch_sigchld().unwrap();
    let pid = Command::new("true").spawn().unwrap().id(); // dropped: nobody waits
    let start = Instant::now();
    while !sys::teaching::take_sigchld() {
        assert!(start.elapsed() < Duration::from_secs(10), "SIGCHLD never came");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(crate::common::proc_state(pid), Some('Z'), "an exited, unreaped child is a zombie");
    let (reaped, status) = sys::teaching::waitpid_nohang().unwrap().expect("one child to reap");
    assert_eq!((reaped as u32, status.success()), (pid, true));
    assert_eq!(crate::common::proc_state(pid), None, "reaped: gone from /proc");
    assert_eq!(sys::teaching::waitpid_nohang().unwrap_err().raw_os_error(), Some(libc::ECHILD));
}

/// An exited child stays a zombie until `waitpid` collects it.
#[test]
fn zombies_stay_until_reaped() {
    in_child("zombie_child_entry", "zombie");
}
