//! `examples/chat_processes` (course note 004: a child process per client,
//! the lines in one shared-memory region, socketpair notifications) as a
//! black box: every line reaches every *other* client exactly once and in
//! order; a full room refuses, a leaving client's child is reaped (no
//! zombie) and its slot taken by the next client; SIGTERM stops the room
//! with status 0, no child left and no process still holding the memfd.
#![cfg(muxloop_linux)]

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use common::{ExampleProcess, IO_TIMEOUT, exit_within, proc_state, wait_until};

/// The children of `pid` (`/proc/PID/task/PID/children`; zombies included).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// Processes with `needle` among their fds' targets or their mappings.
fn holders(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten();
        let in_fds = fds
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|t| t.to_string_lossy().contains(needle));
        if maps.contains(needle) || in_fds {
            found.push(pid);
        }
    }
    found
}

/// How many log lines contain `text`.
fn count(room: &ExampleProcess, text: &str) -> usize {
    room.log.lock().unwrap().iter().filter(|l| l.contains(text)).count()
}

/// Starts the example, refusing a binary older than its source (`cargo
/// test --test learn` alone does not rebuild examples).
fn start(args: &[&str]) -> ExampleProcess {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/chat_processes.rs");
    let modified = |p: &std::path::Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let binary = common::example_binary("chat_processes");
    assert!(
        modified(&binary) >= modified(&source),
        "examples/chat_processes is older than its source: run `cargo build --examples` first"
    );
    ExampleProcess::start("chat_processes", args)
}

fn join(room: &ExampleProcess) -> TcpStream {
    let client = TcpStream::connect(room.addr).unwrap();
    client.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    client
}

/// 5 clients each send 300 lines at once (more than a slot's 64-line ring,
/// so the writers wait for FREED): each client gets the 4 × 300 lines of the
/// others, each once, each sender's in order, and none of its own. With the
/// children's loops on select, poll and epoll.
#[test]
fn every_line_reaches_every_other_client_exactly_once() {
    for dispatcher in ["select", "poll", "epoll"] {
        room_of_five(dispatcher);
    }
}

/// One run of [`every_line_reaches_every_other_client_exactly_once`], the
/// children on `dispatcher`.
fn room_of_five(dispatcher: &str) {
    const CLIENTS: usize = 5;
    const LINES: usize = 300;
    let args = ["127.0.0.1:0", "--max-clients", "5", "--dispatcher", dispatcher];
    let room = start(&args);
    let clients: Vec<TcpStream> = (0..CLIENTS).map(|_| join(&room)).collect();
    assert!(room.logged("(5 in the room)", IO_TIMEOUT), "five clients joined");
    let readers: Vec<_> = clients
        .iter()
        .map(|c| {
            let reader = BufReader::new(c.try_clone().unwrap());
            thread::spawn(move || {
                reader.lines().map_while(Result::ok).take((CLIENTS - 1) * LINES).collect::<Vec<String>>()
            })
        })
        .collect();
    let writers: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut c = c.try_clone().unwrap();
            thread::spawn(move || {
                let all: String = (0..LINES).map(|j| format!("client {i} line {j}\n")).collect();
                c.write_all(all.as_bytes()).unwrap();
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    for (i, reader) in readers.into_iter().enumerate() {
        let got = reader.join().unwrap();
        for k in 0..CLIENTS {
            let from_k: Vec<&String> =
                got.iter().filter(|l| l.starts_with(&format!("client {k} "))).collect();
            if k == i {
                assert!(from_k.is_empty(), "client {i} got {} of its own lines back", from_k.len());
                continue;
            }
            let expected: Vec<String> = (0..LINES).map(|j| format!("client {k} line {j}")).collect();
            let from_k: Vec<String> = from_k.into_iter().cloned().collect();
            assert!(
                from_k == expected,
                "{dispatcher}: client {i} got {} lines from client {k} (want {LINES}, once each, in order); first: {:?}",
                from_k.len(),
                from_k.first()
            );
        }
    }
    assert_eq!(count(&room, "was overwritten"), 0, "no reader found its line overwritten");
}

/// `--max-clients 2`: a third client is told `room full`; when one member
/// leaves, its child is reaped (gone from /proc, not a zombie) and a new
/// client takes the slot and hears the room.
#[test]
fn a_leaving_client_is_reaped_and_frees_its_slot() {
    let room = start(&["127.0.0.1:0", "--max-clients", "2"]);
    let parent = room.child.id();
    let a = join(&room);
    let mut b = join(&room);
    assert!(room.logged("(2 in the room)", IO_TIMEOUT), "two clients joined");
    let mut refused = String::new();
    join(&room).read_to_string(&mut refused).unwrap();
    assert_eq!(refused, "room full (2 clients), try later\n");
    assert!(wait_until(IO_TIMEOUT, || children(parent).len() == 2), "two children: {:?}", children(parent));
    let before = children(parent);
    drop(a);
    let exited = || before.iter().copied().find(|&p| proc_state(p).is_none_or(|s| s == 'Z'));
    assert!(wait_until(IO_TIMEOUT, || exited().is_some()), "a child exits when its client leaves");
    let kid = exited().unwrap();
    // Reaped: no zombie (`Z`) left behind for the leaving client.
    let reaped = wait_until(Duration::from_secs(5), || proc_state(kid).is_none());
    assert!(reaped, "child {kid} is still there 5 s after exiting (state {:?}: not reaped)", proc_state(kid));
    assert!(room.logged("left: child", IO_TIMEOUT), "the parent logged the leave");
    // The freed slot takes a new client, who hears the others.
    let mut c = BufReader::new(join(&room));
    let joined = wait_until(IO_TIMEOUT, || count(&room, "(2 in the room)") == 2);
    assert!(joined, "a new client took the freed slot");
    b.write_all(b"hello newcomer\n").unwrap();
    let mut line = String::new();
    c.read_line(&mut line).unwrap();
    assert_eq!(line, "hello newcomer\n");
}

/// SIGTERM with three clients in the room: the parent forwards it, reaps
/// every child and exits 0; no child process is left, and no process holds
/// the memfd (`/memfd:chat_processes-PID`, seen in the fds and the
/// mappings of the parent and every child while the room runs).
#[test]
fn sigterm_stops_every_child_and_leaves_no_shared_memory() {
    let mut room = start(&["127.0.0.1:0", "--max-clients", "4"]);
    let parent = room.child.id();
    let clients: Vec<TcpStream> = (0..3).map(|_| join(&room)).collect();
    assert!(room.logged("(3 in the room)", IO_TIMEOUT), "three clients joined");
    let kids = children(parent);
    assert_eq!(kids.len(), 3, "a child per client");
    let memfd = format!("/memfd:chat_processes-{parent}");
    let mut held: Vec<String> = holders(&memfd);
    held.sort();
    let mut expected: Vec<String> =
        std::iter::once(parent).chain(kids.iter().copied()).map(|p| p.to_string()).collect();
    expected.sort();
    assert_eq!(held, expected, "the parent and its children share {memfd}");
    // Each child keeps two sockets, its client's and its socketpair end: the
    // listener and the other children's socketpair ends it inherited are closed.
    for kid in &kids {
        let sockets = std::fs::read_dir(format!("/proc/{kid}/fd"))
            .unwrap()
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .filter(|t| t.to_string_lossy().starts_with("socket:"))
            .count();
        assert_eq!(sockets, 2, "child {kid}'s sockets");
    }

    muxloop::sys::kill(parent as i32, libc::SIGTERM).unwrap();
    let status = exit_within(&mut room.child, Duration::from_secs(15)).expect("exits within 15 s of SIGTERM");
    assert!(status.success(), "exit status 0, got {status}");
    // Reaped by the parent before it exited: no pid of theirs is left (not
    // even a zombie inherited by init, which would show until reaped).
    for kid in &kids {
        assert!(proc_state(*kid).is_none(), "child {kid} still exists ({:?})", proc_state(*kid));
    }
    assert!(
        wait_until(Duration::from_secs(5), || holders(&memfd).is_empty()),
        "{memfd} still held by {:?} after the stop",
        holders(&memfd)
    );
    assert!(room.logged("every child reaped: bye", Duration::from_secs(1)));
    drop(clients);
}

/// A crash takes down one client, not the room: after `kill -9` of one
/// child, its client sees the connection close, the parent reaps it and
/// frees its slot, and the two others still hear each other.
#[test]
fn a_killed_child_takes_only_its_client() {
    let room = start(&["127.0.0.1:0", "--max-clients", "3"]);
    let parent = room.child.id();
    let mut clients: Vec<TcpStream> = (0..3).map(|_| join(&room)).collect();
    assert!(room.logged("(3 in the room)", IO_TIMEOUT), "three clients joined");
    assert!(wait_until(IO_TIMEOUT, || children(parent).len() == 3), "three children");
    let victim = children(parent)[0];
    muxloop::sys::kill(victim as i32, libc::SIGKILL).unwrap();
    assert!(room.logged("(signal: 9 (SIGKILL))", IO_TIMEOUT), "the parent reaped the killed child");
    assert!(wait_until(Duration::from_secs(5), || proc_state(victim).is_none()), "child {victim} reaped");
    // Which client was it? The one whose connection closed.
    let mut closed = None;
    for (i, c) in clients.iter_mut().enumerate() {
        c.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let mut byte = [0u8; 1];
        if matches!(c.read(&mut byte), Ok(0)) {
            closed = Some(i);
        }
        c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    }
    let closed = closed.expect("the killed child's client sees its connection close");
    let mut alive: Vec<TcpStream> =
        clients.into_iter().enumerate().filter(|(i, _)| *i != closed).map(|(_, c)| c).collect();
    alive[0].write_all(b"still here\n").unwrap();
    let mut line = String::new();
    BufReader::new(&alive[1]).read_line(&mut line).unwrap();
    assert_eq!(line, "still here\n", "the room goes on");
}

/// A client that never reads cannot stall the room: its child keeps copying
/// (and answering "copied") and closes it once 1 MiB of lines wait for it,
/// while a reading client gets every line.
#[test]
fn a_client_that_does_not_read_is_closed_and_the_room_goes_on() {
    use std::os::fd::AsFd;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    const LINE: usize = 1000;
    const MAX_LINES: usize = 40_000;
    let room = start(&["127.0.0.1:0", "--max-clients", "3"]);
    let silent = TcpStream::connect(room.addr).unwrap();
    muxloop::sys::set_buffer_sizes(silent.as_fd(), None, Some(16 * 1024)).unwrap();
    let reader = join(&room);
    let mut talker = join(&room);
    assert!(room.logged("(3 in the room)", IO_TIMEOUT), "three clients joined");
    let closing = format!("{}: 1048576 bytes wait for this client, closing it", silent.local_addr().unwrap());
    let received = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&received);
    let reading = thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            match line {
                Ok(l) if l.len() == LINE - 1 => counted.fetch_add(1, Ordering::SeqCst),
                _ => break,
            };
        }
    });
    let line = [vec![b'm'; LINE - 1], vec![b'\n']].concat();
    let mut sent = 0;
    while sent < MAX_LINES && count(&room, &closing) == 0 {
        // Within 256 lines of the reader: the reading client always keeps up.
        while sent > received.load(Ordering::SeqCst) + 256 {
            assert!(!reading.is_finished(), "the reading client's connection ended");
            thread::yield_now();
        }
        talker.write_all(&line).unwrap();
        sent += 1;
    }
    assert!(
        room.logged(&closing, Duration::from_secs(5)),
        "the silent client was closed ({sent} lines sent)"
    );
    assert!(
        wait_until(IO_TIMEOUT, || received.load(Ordering::SeqCst) == sent),
        "the reading client got {} of {sent} lines",
        received.load(Ordering::SeqCst)
    );
    assert!(room.logged("(2 in the room)", IO_TIMEOUT), "the silent client's child left");
    assert_eq!(count(&room, "was overwritten"), 0);
}

/// A stopped child (SIGSTOP) stops answering "copied", so the writers
/// would wait for it at the end of their rings forever: with `--stall 2`
/// (not 1: a healthy child on a loaded machine must not look stuck) the
/// parent kills it, and a 200-line burst (three rings' worth) reaches
/// the client still reading.
#[test]
fn a_stopped_child_is_killed_and_the_room_goes_on() {
    const LINES: usize = 200;
    let room = start(&["127.0.0.1:0", "--max-clients", "3", "--stall", "2"]);
    let parent = room.child.id();
    let stopped = join(&room);
    assert!(room.logged("(1 in the room)", IO_TIMEOUT));
    let victim = children(parent)[0];
    let reader = BufReader::new(join(&room));
    let mut talker = join(&room);
    assert!(room.logged("(3 in the room)", IO_TIMEOUT), "three clients joined");
    muxloop::sys::kill(victim as i32, libc::SIGSTOP).unwrap();
    let all: String = (0..LINES).map(|j| format!("line {j}\n")).collect();
    talker.write_all(all.as_bytes()).unwrap();
    let got: Vec<String> = reader.lines().map_while(Result::ok).take(LINES).collect();
    assert_eq!(got.len(), LINES, "the reading client got the whole burst");
    assert!(room.logged("has not copied lines sent to it 2s ago, killing it", IO_TIMEOUT));
    assert!(room.logged("(signal: 9 (SIGKILL))", IO_TIMEOUT), "the stopped child was killed and reaped");
    drop(stopped);
}
