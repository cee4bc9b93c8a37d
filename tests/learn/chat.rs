//! `examples/chat` as a black box: lines reach the other members, and a
//! member that never reads is dropped from the room once 1 MiB of lines wait
//! for it, instead of the server buffering the conversation (without the
//! bound, one silent member took the server to 380 MB in 3 s).

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use common::ExampleProcess;

#[test]
fn silent_member_is_dropped_and_memory_stays_bounded() {
    const LINES: usize = 40_000;
    const LINE: usize = 1024; // 40 MB of conversation
    for threads in ["0", "2"] {
        let chat = ExampleProcess::start("chat", &["127.0.0.1:0", "--threads", threads]);
        let silent = TcpStream::connect(chat.addr).unwrap();
        muxloop::sys::set_buffer_sizes(silent.as_fd(), None, Some(16 * 1024)).unwrap();
        let listener = TcpStream::connect(chat.addr).unwrap();
        listener.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut talker = TcpStream::connect(chat.addr).unwrap();
        thread::sleep(Duration::from_millis(200)); // all three have joined
        let received = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&received);
        let reading = thread::spawn(move || {
            let mut lines = BufReader::new(listener).lines();
            while lines.next().is_some_and(|l| l.is_ok_and(|l| l.len() == LINE - 1)) {
                if counted.fetch_add(1, Ordering::SeqCst) + 1 == LINES {
                    break;
                }
            }
            counted.load(Ordering::SeqCst)
        });
        // The talker stays within 256 lines of the reader (a member that keeps
        // up is never dropped, however busy the machine); the silent member
        // falls behind by all of it.
        let line = [vec![b'm'; LINE - 1], vec![b'\n']].concat();
        for sent in 0..LINES {
            while sent > received.load(Ordering::SeqCst) + 256 && !reading.is_finished() {
                thread::yield_now();
            }
            talker.write_all(&line).unwrap();
        }
        assert_eq!(reading.join().unwrap(), LINES, "threads={threads}: the reading member got every line");
        let peak = chat.peak_rss();
        assert!(peak < 32 << 20, "threads={threads}: peak RSS {} MB with a silent member", peak >> 20);
        // The silent member was dropped (its socket then drains what the
        // kernel still holds, at whatever pace its tiny window allows).
        let dropped = format!("{}: dropping it from the room", silent.local_addr().unwrap());
        assert!(
            chat.logged(&dropped, Duration::from_secs(5)),
            "threads={threads}: the silent member was not dropped"
        );
    }
}

/// `chat_client` waits on stdin and the socket in one loop: lines written to
/// its stdin (a pipe, then EOF) reach another member, and it exits 0 once
/// the server closes after its half-close. Also with a regular file as stdin
/// (epoll refuses files; the client sends it whole).
#[test]
fn chat_client_reads_stdin_from_a_pipe_and_a_file() {
    use std::process::{Command, Stdio};
    let chat = ExampleProcess::start("chat", &["127.0.0.1:0"]);
    let lines: String = (0..2000).map(|i| format!("line {i} {}\n", "x".repeat(100))).collect();
    let file = std::env::temp_dir().join(format!("muxloop-chat-stdin-{}", std::process::id()));
    std::fs::write(&file, &lines).unwrap();
    for (how, stdin) in [("pipe", Stdio::piped()), ("file", Stdio::from(std::fs::File::open(&file).unwrap()))]
    {
        let member = TcpStream::connect(chat.addr).unwrap();
        member.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        thread::sleep(Duration::from_millis(100));
        let mut client = Command::new(common::example_binary("chat_client"))
            .arg(chat.addr.to_string())
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if let Some(mut pipe) = client.stdin.take() {
            pipe.write_all(lines.as_bytes()).unwrap();
            drop(pipe); // EOF
        }
        let mut got = String::new();
        let mut reader = BufReader::new(member);
        while got.len() < lines.len() {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            got.push_str(&line);
        }
        assert_eq!(got.len(), lines.len(), "{how}: every line arrived");
        assert!(got == lines, "{how}: in order");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = client.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = client.kill();
                panic!("{how}: chat_client still running 10 s after its stdin ended");
            }
            thread::sleep(Duration::from_millis(10));
        };
        assert!(status.success(), "{how}: chat_client exits 0 after its stdin ends ({status})");
    }
    let _ = std::fs::remove_file(&file);
}
