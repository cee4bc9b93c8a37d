//! The course's claims that were wrong or misleading (issue 22), each pinned
//! by a test that fails if the corrected sentence were false. One module per
//! claim; its doc comment names the sentence it pins. Loopback only, every
//! wait bounded; the checks that need a process of their own (a signal's
//! default action, a thread count) re-run this binary as a child with one
//! `#[ignore]`d test selected, and the checks of a rung's log run the rung.

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use muxloop::{Dispatcher, Events, Interest, Mode, Ready, sys};

/// A connected loopback pair `(client, server)`: blocking std streams with timeouts.
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    for stream in [&client, &server] {
        stream.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(common::IO_TIMEOUT)).unwrap();
    }
    (client, server)
}

/// Dispatches until an event for `fd` comes or `timeout` passes; its readiness.
fn wait_for<D: Dispatcher>(dispatcher: &mut D, fd: RawFd, timeout: Duration) -> Option<Ready> {
    let deadline = Instant::now() + timeout;
    let mut events = Events::with_capacity(16);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        dispatcher.dispatch(&mut events, Some(left)).unwrap();
        if let Some(event) = events.iter().find(|e| e.fd() == fd) {
            return Some(event.ready());
        }
        if left.is_zero() {
            return None;
        }
    }
}

/// `poll(2)` on `fd` for `events` until one of them (or `POLLERR`/`POLLHUP`)
/// is reported or `timeout` passes; the `revents`.
fn poll_fd(fd: RawFd, events: libc::c_short, timeout: Duration) -> libc::c_short {
    let deadline = Instant::now() + timeout;
    loop {
        let mut pfd = libc::pollfd { fd, events, revents: 0 };
        let left = deadline.saturating_duration_since(Instant::now()).as_millis() as libc::c_int;
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, left) };
        if n > 0 || left == 0 {
            return pfd.revents;
        }
    }
}

/// Fills `fd`'s send buffer (the peer does not read): sends until a send
/// after a pause still says `WouldBlock`, so loopback has moved everything it
/// will move and no room appears later.
fn fill_send_buffer(fd: RawFd) {
    let chunk = vec![7u8; 64 << 10];
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut quiet_rounds = 0;
    while quiet_rounds < 2 {
        assert!(Instant::now() < deadline, "the send buffer never filled");
        let mut sent = 0;
        loop {
            match sys::send(fd, &chunk) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        quiet_rounds = if sent == 0 { quiet_rounds + 1 } else { 0 };
        thread::sleep(Duration::from_millis(50));
    }
}

/// A ladder rung run the way its docs say (`RUST_LOG=...`, default address
/// replaced by port 0), from a clean fd table like a shell's: only 0, 1 and 2
/// are open when it starts, so the fd numbers it logs are the ones a reader
/// sees. Killed on drop.
struct Rung {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Rung {
    fn start(name: &str, rust_log: &str, args: &[&str]) -> Rung {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(common::example_binary(name));
        command.arg("127.0.0.1:0").args(args).env("RUST_LOG", rust_log);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        // SAFETY: close_range is async-signal-safe; nothing else runs here.
        unsafe {
            command.pre_exec(|| {
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                Ok(())
            });
        }
        let mut child = command.spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
        let log = Arc::<Mutex<Vec<String>>>::default();
        let (stderr, to) = (child.stderr.take().unwrap(), Arc::clone(&log));
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                to.lock().unwrap().push(line);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        thread::spawn(move || for _ in stdout.lines().map_while(Result::ok) {});
        let addr = line
            .split_whitespace()
            .nth(2)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{name} did not announce its address: {line:?}"));
        Rung { child, addr, log }
    }

    /// The first log line containing every one of `parts`, within `timeout`.
    fn line_with(&self, parts: &[&str], timeout: Duration) -> Option<String> {
        let mut found = None;
        common::wait_until(timeout, || {
            found = self.log.lock().unwrap().iter().find(|l| parts.iter().all(|p| l.contains(p))).cloned();
            found.is_some()
        });
        found
    }

    fn dump(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Rung {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The source of a ladder rung (its doc comment is what the reader follows).
fn rung_source(file: &str) -> String {
    std::fs::read_to_string(format!("{}/examples/ladder/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Claim 1 (`docs/tour/06-trigger-modes.md`, "Hang-ups and errors"): only
/// `EPOLLERR` and `EPOLLHUP` are reported whatever the interest; muxloop asks
/// for `EPOLLRDHUP` (a peer's half-close, `Ready::READ_CLOSED`) only with
/// readable interest, so a write-only registration does not hear of it.
mod rdhup_needs_readable_interest {
    use super::*;
    use muxloop::EpollDispatcher;

    #[test]
    fn half_close_is_not_reported_to_write_only_interest() {
        let (client, server) = tcp_pair();
        let fd = server.as_raw_fd();
        sys::set_buffer_sizes(client.as_raw_fd(), None, Some(4096)).unwrap();
        sys::set_nonblocking(fd, true).unwrap();
        sys::set_buffer_sizes(fd, Some(4096), None).unwrap();
        fill_send_buffer(fd); // not writable: only a half-close could wake us
        client.shutdown(Shutdown::Write).unwrap();
        let revents = poll_fd(fd, libc::POLLRDHUP, Duration::from_secs(10));
        assert!(revents & libc::POLLRDHUP != 0, "the FIN arrived (revents {revents:#x})");

        let mut epoll = EpollDispatcher::new().unwrap();
        epoll.register(fd, Interest::WRITABLE, Mode::Level).unwrap();
        let heard = wait_for(&mut epoll, fd, Duration::from_millis(300));
        assert_eq!(heard, None, "write-only interest heard of the peer's half-close");

        epoll.modify(fd, Interest::READABLE, Mode::Level).unwrap();
        let ready =
            wait_for(&mut epoll, fd, Duration::from_secs(10)).expect("readable interest hears the FIN");
        assert!(ready.contains(Ready::READ_CLOSED), "{ready:?}");
        assert!(!ready.contains(Ready::HANGUP), "a half-close is not a hang-up: {ready:?}");
    }
}

/// Claim 2 (`examples/ladder/06_edge.rs`, **Teaches**): edge-triggered epoll
/// does not report "writable" only when a full send buffer gets room; any
/// wake-up reports the whole current mask, so the registration itself and
/// every later read edge come with `WRITABLE` while there is room. (Not
/// pinned for io_uring: its multishot poll reports what woke it, a read
/// edge comes as `READABLE` alone.)
mod edge_reports_the_whole_mask {
    use super::*;

    fn writable_comes_with_every_edge<D: Dispatcher>() {
        let (mut client, server) = tcp_pair();
        let fd = server.as_raw_fd();
        sys::set_nonblocking(fd, true).unwrap();
        let mut dispatcher = D::new().unwrap();
        dispatcher.register(fd, Interest::BOTH, Mode::Edge).unwrap();
        let first = wait_for(&mut dispatcher, fd, Duration::from_secs(10)).expect("the registration's edge");
        assert_eq!(first, Ready::WRITABLE, "room to write, nothing to read");
        assert_eq!(wait_for(&mut dispatcher, fd, Duration::from_millis(200)), None, "no change, no edge");
        for round in 0..3 {
            client.write_all(b"ping").unwrap();
            let ready = wait_for(&mut dispatcher, fd, Duration::from_secs(10)).expect("a read edge");
            assert_eq!(
                ready,
                Ready::READABLE | Ready::WRITABLE,
                "round {round}: the send buffer never filled"
            );
            assert_eq!(sys::recv(fd, &mut [0u8; 16]).unwrap(), 4);
        }
    }

    #[test]
    fn epoll_reports_writable_with_every_read_edge() {
        writable_comes_with_every_edge::<muxloop::EpollDispatcher>();
    }

    /// The rung's **Watch** text is what a run prints.
    #[test]
    fn rung_06_prints_what_its_watch_text_says() {
        let doc = rung_source("06_edge.rs");
        for quoted in ["fd 6 WRITABLE (edge)", "fd 6 READABLE | WRITABLE (edge)", "fd 6: read 29"] {
            assert!(doc.contains(&format!("`{quoted}`")), "the rung's docs quote {quoted:?}");
        }
        let rung = Rung::start("ladder_06_edge", "trace", &[]);
        let mut client = common::connect(rung.addr);
        assert!(rung.line_with(&["fd 6 WRITABLE (edge)"], common::IO_TIMEOUT).is_some(), "{}", rung.dump());
        client.write_all(b"hello, a line longer than 16\n").unwrap(); // 29 bytes
        let echoed = common::read_up_to(&mut client, 29);
        assert_eq!(echoed.len(), 29);
        for quoted in ["fd 6 READABLE | WRITABLE (edge)", "fd 6: read 29", "fd 6: sent 29, 0 queued"] {
            assert!(
                rung.line_with(&[quoted], common::IO_TIMEOUT).is_some(),
                "{quoted:?} in\n{}",
                rung.dump()
            );
        }
    }
}

/// Claim 3 (`docs/tour/06-trigger-modes.md`, "Edge-triggered", and the
/// `epoll.rs` module docs): edge-triggered delivery is not epoll's alone;
/// `UringDispatcher` supports `Mode::Edge` (multishot polls) with the same
/// semantics: reported once per change, not again for what is still unread.
mod uring_does_edge_too {
    use super::*;

    fn once_per_change<D: Dispatcher>(mode: Mode) -> Vec<Option<Ready>> {
        let (mut client, server) = tcp_pair();
        let fd = server.as_raw_fd();
        sys::set_nonblocking(fd, true).unwrap();
        let mut dispatcher = D::new().unwrap();
        assert!(dispatcher.supports(mode), "{} supports {mode:?}", D::NAME);
        dispatcher.register(fd, Interest::READABLE, mode).unwrap();
        client.write_all(b"abc").unwrap();
        let mut seen = vec![wait_for(&mut dispatcher, fd, Duration::from_secs(10))];
        // Nothing read: level reports it again, edge does not.
        seen.push(wait_for(&mut dispatcher, fd, Duration::from_millis(300)));
        client.write_all(b"def").unwrap();
        seen.push(wait_for(&mut dispatcher, fd, Duration::from_secs(10)));
        let mut buf = [0u8; 16];
        let mut got = 0;
        while got < 6 {
            got += sys::recv(fd, &mut buf[got..]).unwrap();
        }
        assert_eq!(&buf[..6], b"abcdef");
        dispatcher.deregister(fd).unwrap();
        seen
    }

    fn edge_semantics<D: Dispatcher>() {
        let readable = Some(Ready::READABLE);
        assert_eq!(once_per_change::<D>(Mode::Edge), [readable, None, readable], "{} edge", D::NAME);
        assert_eq!(once_per_change::<D>(Mode::Level), [readable; 3], "{} level", D::NAME);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn uring_supports_edge_and_reports_once_per_change() {
        if !common::uring_unavailable() {
            edge_semantics::<muxloop::UringDispatcher>();
        }
    }

    #[test]
    fn epoll_reports_once_per_change() {
        edge_semantics::<muxloop::EpollDispatcher>();
    }
}
