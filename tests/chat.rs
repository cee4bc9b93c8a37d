//! `examples/chat` as a black box: lines reach the other members, and a
//! member that never reads is dropped from the room once 1 MiB of lines wait
//! for it, instead of the server buffering the conversation (issue: one
//! silent member took the server to 380 MB in 3 s).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
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
        muxloop::sys::set_buffer_sizes(silent.as_raw_fd(), None, Some(16 * 1024)).unwrap();
        let listener = TcpStream::connect(chat.addr).unwrap();
        listener.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut talker = TcpStream::connect(chat.addr).unwrap();
        thread::sleep(Duration::from_millis(200)); // all three have joined
        let reading = thread::spawn(move || {
            let mut lines = BufReader::new(listener).lines();
            (0..LINES)
                .take_while(|_| lines.next().is_some_and(|l| l.is_ok_and(|l| l.len() == LINE - 1)))
                .count()
        });
        let line = [vec![b'm'; LINE - 1], vec![b'\n']].concat();
        for _ in 0..LINES {
            talker.write_all(&line).unwrap();
        }
        assert_eq!(reading.join().unwrap(), LINES, "threads={threads}: the reading member got every line");
        let peak = chat.peak_rss();
        assert!(peak < 32 << 20, "threads={threads}: peak RSS {} MB with a silent member", peak >> 20);
        // The silent member was dropped (its socket then drains what the
        // kernel still holds, at whatever pace its tiny window allows).
        let dropped = format!("{}: 1048576 bytes undelivered, dropping it", silent.local_addr().unwrap());
        assert!(
            chat.logged(&dropped, Duration::from_secs(5)),
            "threads={threads}: the silent member was not dropped"
        );
    }
}
