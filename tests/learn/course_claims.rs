//! The course's claims that were wrong or misleading, each pinned by a test
//! that fails if the corrected sentence were false. One module per
//! claim; its doc comment names the sentence it pins. Loopback only, every
//! wait bounded; the checks that need a process of their own (a signal's
//! default action, a thread count) re-run this binary as a child with one
//! `#[ignore]`d test selected, and the checks of a rung's log run the rung.
//! The claims are about Linux (epoll, io_uring, `/proc/net/tcp`, glibc's
//! aio, the epoll-only rungs): not compiled under `--cfg muxloop_portable`.
#![cfg(muxloop_linux)]

use crate::common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::process::{Child, Command, ExitStatus, Stdio};
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
fn fill_send_buffer(fd: BorrowedFd<'_>) {
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

/// Runs this test binary again with only `test` (an `#[ignore]`d one) and
/// `env=value` set; its exit status and output, within 20 s.
fn run_child(test: &str, env: &str, value: &str) -> (ExitStatus, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--ignored", "--nocapture", "--test-threads=1"])
        .env(env, value)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = common::exit_within(&mut child, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{test} ({value}) did not finish within 20 s"));
    let mut output = String::new();
    child.stdout.take().unwrap().read_to_string(&mut output).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut output).unwrap();
    assert!(output.contains("running 1 test"), "{test}: the child did not run exactly that test: {output}");
    (status, output)
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
        let fd = server.as_fd();
        sys::set_buffer_sizes(client.as_fd(), None, Some(4096)).unwrap();
        sys::set_nonblocking(fd, true).unwrap();
        sys::set_buffer_sizes(fd, Some(4096), None).unwrap();
        fill_send_buffer(fd); // not writable: only a half-close could wake us
        client.shutdown(Shutdown::Write).unwrap();
        let revents = poll_fd(fd.as_raw_fd(), libc::POLLRDHUP, Duration::from_secs(10));
        assert!(revents & libc::POLLRDHUP != 0, "the FIN arrived (revents {revents:#x})");

        let mut epoll = EpollDispatcher::new().unwrap();
        epoll.register(fd.as_raw_fd(), Interest::WRITABLE, Mode::Level).unwrap();
        let heard = wait_for(&mut epoll, fd.as_raw_fd(), Duration::from_millis(300));
        assert_eq!(heard, None, "write-only interest heard of the peer's half-close");

        epoll.modify(fd.as_raw_fd(), Interest::READABLE, Mode::Level).unwrap();
        let ready = wait_for(&mut epoll, fd.as_raw_fd(), Duration::from_secs(10))
            .expect("readable interest hears the FIN");
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
        let fd = server.as_fd();
        sys::set_nonblocking(fd, true).unwrap();
        let mut dispatcher = D::new().unwrap();
        dispatcher.register(fd.as_raw_fd(), Interest::BOTH, Mode::Edge).unwrap();
        let first = wait_for(&mut dispatcher, fd.as_raw_fd(), Duration::from_secs(10))
            .expect("the registration's edge");
        assert_eq!(first, Ready::WRITABLE, "room to write, nothing to read");
        assert_eq!(
            wait_for(&mut dispatcher, fd.as_raw_fd(), Duration::from_millis(200)),
            None,
            "no change, no edge"
        );
        for round in 0..3 {
            client.write_all(b"ping").unwrap();
            let ready =
                wait_for(&mut dispatcher, fd.as_raw_fd(), Duration::from_secs(10)).expect("a read edge");
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
        let fd = server.as_fd();
        sys::set_nonblocking(fd, true).unwrap();
        let mut dispatcher = D::new().unwrap();
        assert!(dispatcher.supports(mode), "{} supports {mode:?}", D::NAME);
        dispatcher.register(fd.as_raw_fd(), Interest::READABLE, mode).unwrap();
        client.write_all(b"abc").unwrap();
        let mut seen = vec![wait_for(&mut dispatcher, fd.as_raw_fd(), Duration::from_secs(10))];
        // Nothing read: level reports it again, edge does not.
        seen.push(wait_for(&mut dispatcher, fd.as_raw_fd(), Duration::from_millis(300)));
        client.write_all(b"def").unwrap();
        seen.push(wait_for(&mut dispatcher, fd.as_raw_fd(), Duration::from_secs(10)));
        let mut buf = [0u8; 16];
        let mut got = 0;
        while got < 6 {
            got += sys::recv(fd, &mut buf[got..]).unwrap();
        }
        assert_eq!(&buf[..6], b"abcdef");
        dispatcher.deregister(fd.as_raw_fd()).unwrap();
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

/// Claim 4 (`docs/tour/10-tcp-lifecycle.md`, "SIGPIPE", and `sys::send`'s
/// docs): the two steps. After the peer's RST the first write fails with
/// `ECONNRESET` (the pending error) and only the next one raises `SIGPIPE`
/// (and fails with `EPIPE`); after a plain FIN the first write succeeds
/// (and draws the RST), the next one raises `SIGPIPE`. With `MSG_NOSIGNAL`
/// (`sys::send`) the process survives with `EPIPE`. The writes happen in a
/// child process whose `SIGPIPE` is back to the default action (Rust's
/// runtime ignores it, which is why no test in-process can see it).
mod sigpipe_two_steps {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    const CHILD_ENV: &str = "MUXLOOP_COURSE_SIGPIPE";

    fn describe(result: std::io::Result<usize>) -> String {
        match result {
            Ok(n) => format!("ok {n}"),
            Err(e) => match e.raw_os_error() {
                Some(libc::ECONNRESET) => "ECONNRESET".into(),
                Some(libc::EPIPE) => "EPIPE".into(),
                _ => format!("{e}"),
            },
        }
    }

    /// The child: `CLOSE,CALL` in the environment (`rst` or `fin`; `write`
    /// for plain `write(2)`, `send` for `sys::send`).
    #[test]
    #[ignore = "run by the tests below in a child process"]
    fn child_writes_twice() {
        let Ok(spec) = std::env::var(CHILD_ENV) else { return };
        let (close, call) = spec.split_once(',').expect("CLOSE,CALL");
        sys::set_signal_disposition(libc::SIGPIPE, sys::Disposition::Default).unwrap();
        let (client, server) = tcp_pair();
        if close == "rst" {
            sys::set_linger(server.as_fd(), Some(Duration::ZERO)).unwrap();
        }
        drop(server);
        let fd = client.as_fd();
        // RST: wait for it (POLLHUP); FIN: wait for the EOF it brings.
        let want = if close == "rst" { libc::POLLHUP } else { libc::POLLRDHUP };
        assert!(
            poll_fd(fd.as_raw_fd(), want, Duration::from_secs(10)) & want != 0,
            "the peer's {close} arrived"
        );
        for attempt in 1..=2 {
            let result = if call == "write" { sys::write(fd, b"x") } else { sys::send(fd, b"x") };
            println!("said: {attempt}: {}", describe(result));
            if attempt == 1 && close == "fin" {
                // The write went out to a closed socket, which answers with RST.
                assert!(
                    poll_fd(fd.as_raw_fd(), libc::POLLHUP, Duration::from_secs(10)) & libc::POLLHUP != 0,
                    "RST came"
                );
            }
        }
        println!("said: survived");
    }

    fn run(spec: &str) -> (ExitStatus, Vec<String>) {
        let (status, output) =
            run_child(&common::test_name(module_path!(), "child_writes_twice"), CHILD_ENV, spec);
        // libtest prints "test NAME ... " before the child's first line.
        let said = output.lines().filter_map(|l| l.split_once("said: ").map(|(_, said)| said.to_owned()));
        (status, said.collect())
    }

    #[test]
    fn after_rst_the_first_write_gets_econnreset_and_the_second_dies_of_sigpipe() {
        let (status, said) = run("rst,write");
        assert_eq!(said, ["1: ECONNRESET"], "{status}");
        assert_eq!(status.signal(), Some(libc::SIGPIPE), "killed by SIGPIPE on the second write: {status}");
    }

    #[test]
    fn after_fin_the_first_write_succeeds_and_the_second_dies_of_sigpipe() {
        let (status, said) = run("fin,write");
        assert_eq!(said, ["1: ok 1"], "{status}");
        assert_eq!(status.signal(), Some(libc::SIGPIPE), "killed by SIGPIPE on the second write: {status}");
    }

    #[test]
    fn msg_nosignal_survives_with_epipe() {
        let (status, said) = run("rst,send");
        assert_eq!(said, ["1: ECONNRESET", "2: EPIPE", "survived"], "{status}");
        assert!(status.success(), "{status}");
    }
}

/// Claim 5 (`docs/tour/02-io-models.md`, the models table): glibc's POSIX
/// aio (`aio.h`) does not hand the I/O to the kernel; it runs blocking calls
/// on threads of its own. An `aio_read` on an empty pipe adds a thread to
/// the process (counted in `/proc/self/task`, in a child process so no other
/// test's threads blur the count).
mod posix_aio_runs_on_threads {
    use super::*;

    const CHILD_ENV: &str = "MUXLOOP_COURSE_AIO";

    fn threads() -> usize {
        std::fs::read_dir("/proc/self/task").unwrap().count()
    }

    #[test]
    #[ignore = "run by the test below in a child process"]
    fn child_counts_threads_around_aio_read() {
        if std::env::var(CHILD_ENV).is_err() {
            return;
        }
        let (read_end, write_end) = sys::pipe().unwrap();
        sys::set_nonblocking(read_end.as_fd(), false).unwrap(); // the read blocks
        let before = threads();
        let mut buf = [0u8; 16];
        // SAFETY: all-zero is a valid aiocb; `buf` outlives the request (we
        // wait for it below).
        let mut cb: libc::aiocb = unsafe { std::mem::zeroed() };
        cb.aio_fildes = read_end.as_raw_fd();
        cb.aio_buf = buf.as_mut_ptr().cast();
        cb.aio_nbytes = buf.len();
        // SAFETY: `cb` is a valid request and stays put until it completes.
        assert_eq!(unsafe { libc::aio_read(&mut cb) }, 0, "aio_read: {}", std::io::Error::last_os_error());
        common::wait_until(Duration::from_secs(5), || threads() > before);
        println!("said: threads: {before} -> {}", threads());
        // Clean up: give the blocked read its byte, then collect the result.
        sys::write(write_end.as_fd(), b"x").unwrap();
        // SAFETY: `cb` is the request submitted above.
        let done = common::wait_until(
            Duration::from_secs(10),
            || unsafe { libc::aio_error(&cb) } != libc::EINPROGRESS,
        );
        assert!(done, "the aio read completed");
        // SAFETY: the request has completed; aio_return reaps it once.
        assert_eq!(unsafe { libc::aio_return(&mut cb) }, 1);
        println!("read {:?}", &buf[..1]);
    }

    #[test]
    fn aio_read_on_an_empty_pipe_adds_a_thread() {
        let (status, output) = run_child(
            &common::test_name(module_path!(), "child_counts_threads_around_aio_read"),
            CHILD_ENV,
            "1",
        );
        let line = output.lines().find_map(|l| l.split_once("said: threads: ")).map(|(_, counts)| counts);
        let line = line.unwrap_or_else(|| panic!("{status}: {output}"));
        let (before, after) = line.split_once(" -> ").unwrap();
        let (before, after): (usize, usize) = (before.parse().unwrap(), after.parse().unwrap());
        assert!(after > before, "no thread appeared for the aio read: {line}");
        assert!(status.success(), "{status}: {output}");
        assert!(output.contains("read [120]"), "the read completed with the byte: {output}");
    }
}

/// Claim 6 (`docs/tour/02-io-models.md`, spurious wake-ups): a
/// level-triggered handler does not have to read until `WouldBlock`; it has
/// to tolerate `WouldBlock`. Here two fds of one socket (a `dup`) are
/// registered level-triggered; each handler reads at most 4 bytes per event,
/// so one handler's read consumes what the other was woken for and the
/// other gets `WouldBlock`: it returns, the loop carries on, and every byte,
/// the ones sent later too, is delivered.
mod level_handlers_tolerate_wouldblock {
    use super::*;
    use muxloop::EventLoop;
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;

    fn read_once_per_event<D: Dispatcher + 'static>() {
        let (mut client, server) = tcp_pair();
        let fd = server.as_fd();
        sys::set_nonblocking(fd, true).unwrap();
        let twin = sys::dup(fd).unwrap();
        let got = Rc::new(RefCell::new(Vec::new()));
        let spurious = Rc::new(Cell::new(0));
        let mut ev = EventLoop::<D>::new().unwrap();
        for f in [fd.as_raw_fd(), twin.as_raw_fd()] {
            let (got, spurious) = (Rc::clone(&got), Rc::clone(&spurious));
            ev.register(f, Interest::READABLE, Mode::Level, move |_, _| {
                let mut buf = [0u8; 4];
                // SAFETY: `server` and `twin` stay open until both fds are deregistered.
                let socket = unsafe { BorrowedFd::borrow_raw(f) };
                match sys::recv(socket, &mut buf) {
                    Ok(n) => got.borrow_mut().extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => spurious.set(spurious.get() + 1),
                    Err(e) => panic!("recv: {e}"),
                }
            })
            .unwrap();
        }
        client.write_all(b"0123456789").unwrap();
        assert!(common::run_until(&mut ev, || got.borrow().len() == 10), "got {:?}", got.borrow());
        client.write_all(b"abcdefghij").unwrap();
        assert!(common::run_until(&mut ev, || got.borrow().len() == 20), "got {:?}", got.borrow());
        assert_eq!(&got.borrow()[..], b"0123456789abcdefghij");
        assert!(spurious.get() > 0, "{}: no handler was woken for bytes the other had read", D::NAME);
        ev.deregister(fd.as_raw_fd()).unwrap();
        ev.deregister(twin.as_raw_fd()).unwrap();
    }

    for_each_dispatcher!(read_once_per_event);
}

/// Claim 7 (`examples/ladder/05_poll_epoll.rs`, **Try**/**Watch**): the
/// documented client (8 MiB, never reading, its receive buffer fixed at
/// 64 KiB asked so the run does not depend on the machine's defaults: the
/// echo cannot all fit in the buffers) makes the rung queue
/// output and switch writable interest on (`READABLE -> READABLE | WRITABLE
/// (N bytes queued)`, or straight to `WRITABLE` past 256 KiB queued).
mod rung_05_partial_write {
    use super::*;
    use std::os::fd::OwnedFd;

    /// What the rung's python one-liner does: a 64 KiB `SO_RCVBUF` before
    /// connecting (a fixed size: autotuning is off for it), then 8 MiB.
    fn documented_client(addr: SocketAddr) -> TcpStream {
        let socket: OwnedFd = sys::stream_socket(&sys::RawAddr::from_inet(&addr)).unwrap();
        let fd = socket.as_fd();
        sys::set_buffer_sizes(fd, None, Some(1 << 16)).unwrap();
        if !sys::start_connect(fd, &sys::RawAddr::from_inet(&addr)).unwrap() {
            assert!(
                poll_fd(fd.as_raw_fd(), libc::POLLOUT, common::IO_TIMEOUT) & libc::POLLOUT != 0,
                "connected"
            );
        }
        assert!(sys::take_socket_error(fd).unwrap().is_none());
        sys::set_nonblocking(fd, false).unwrap();
        let stream = TcpStream::from(socket);
        stream.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        stream
    }

    #[test]
    fn the_documented_client_makes_a_partial_write() {
        let doc = rung_source("05_poll_epoll.rs");
        assert!(
            doc.contains("SO_RCVBUF, 1 << 16") && doc.contains("(8 << 20)"),
            "the rung documents this client"
        );
        let rung = Rung::start("ladder_05_poll_epoll", "trace", &[]);
        let mut client = documented_client(rung.addr);
        let writer = thread::spawn(move || {
            let data = vec![b'x'; 8 << 20];
            let mut sent = 0;
            while sent < data.len() {
                match client.write(&data[sent..]) {
                    Ok(n) => sent += n,
                    Err(_) => break, // the rung stopped reading (or was killed)
                }
            }
            (client, sent)
        });
        // Writable interest goes on with output queued: alone or, if more
        // than 256 KiB is queued already, with reading stopped in one step.
        let on = ["fd 6 READABLE -> ", "WRITABLE (", "bytes queued)"];
        let switched = rung.line_with(&on, common::IO_TIMEOUT);
        let stopped = rung.line_with(&["fd 6 ", " -> WRITABLE (", "bytes queued)"], common::IO_TIMEOUT);
        let log = rung.dump();
        drop(rung);
        let (_, sent) = writer.join().unwrap();
        let log: String = log.lines().filter(|l| !l.contains("epoll: fd")).collect::<Vec<_>>().join("\n");
        assert!(
            switched.is_some(),
            "no partial write with the documented client ({sent} bytes sent):\n{log}"
        );
        assert!(stopped.is_some(), "past 256 KiB queued the rung stops reading:\n{log}");
    }
}

/// Claim 8 (`examples/ladder/09_multi_reactor.rs`, **Watch**): the hand-off
/// shows at `RUST_LOG=debug` as `... up on ladder-09-0`, then `ladder-09-1`;
/// the main loop's `accepted ... as fd 11` is a `trace` line.
mod rung_09_log_levels {
    use super::*;

    fn connect_twice(rung: &Rung) {
        for _ in 0..2 {
            let mut client = common::connect(rung.addr);
            client.write_all(b"hi\n").unwrap();
            assert_eq!(common::read_up_to(&mut client, 3), b"hi\n");
        }
    }

    #[test]
    fn debug_shows_the_hand_off_and_trace_the_accept() {
        let doc = rung_source("09_multi_reactor.rs");
        assert!(doc.contains("`RUST_LOG=trace` adds `[main] accepted 127.0.0.1:PORT as fd 11`"));
        let rung = Rung::start("ladder_09_multi_reactor", "debug", &[]);
        connect_twice(&rung);
        for loop_name in ["up on ladder-09-0", "up on ladder-09-1"] {
            assert!(
                rung.line_with(&[loop_name], common::IO_TIMEOUT).is_some(),
                "{loop_name}:\n{}",
                rung.dump()
            );
        }
        assert!(rung.line_with(&["accepted"], Duration::ZERO).is_none(), "not at debug:\n{}", rung.dump());
        drop(rung);

        let rung = Rung::start("ladder_09_multi_reactor", "trace", &[]);
        connect_twice(&rung);
        let accepted = rung.line_with(&["[main] accepted 127.0.0.1:", " as fd 11"], common::IO_TIMEOUT);
        assert!(accepted.is_some(), "{}", rung.dump());
    }
}

/// Claim 9 (`docs/tour/concepts.md`, TIME_WAIT; `10-tcp-lifecycle.md`): the
/// side that closes first gracefully (FIN, not RST) leaves its end in
/// `TIME_WAIT`, which `/proc/net/tcp` (and `ss -tan state time-wait`) shows;
/// while it exists a `bind` to that port without `SO_REUSEADDR` fails with
/// `EADDRINUSE`, and one with `SO_REUSEADDR` succeeds.
mod time_wait_blocks_a_plain_bind {
    use super::*;
    use std::os::fd::{FromRawFd, OwnedFd};

    /// Local port `port` has a connection in TIME_WAIT (state 06).
    fn in_time_wait(port: u16) -> bool {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        table.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3 && fields[1].ends_with(&format!(":{port:04X}")) && fields[3] == "06"
        })
    }

    /// `socket` + (maybe `SO_REUSEADDR`) + `bind(addr)`, nothing else (std's
    /// `TcpListener::bind` always sets `SO_REUSEADDR` on Unix).
    fn bind(addr: SocketAddr, reuse: bool) -> std::io::Result<OwnedFd> {
        let SocketAddr::V4(v4) = addr else { unreachable!() };
        // SAFETY: plain integer arguments; the fd is owned at once.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0);
        // SAFETY: `fd` is a new socket nobody else owns.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        let one: libc::c_int = 1;
        if reuse {
            // SAFETY: `one` lives across the call; the length is its size.
            let rc = unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_REUSEADDR,
                    (&one as *const libc::c_int).cast(),
                    4,
                )
            };
            assert_eq!(rc, 0);
        }
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: `sin` is a valid sockaddr_in of `len` bytes.
        if unsafe { libc::bind(fd, (&sin as *const libc::sockaddr_in).cast(), len) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(socket)
    }

    #[test]
    fn graceful_close_leaves_time_wait_that_only_reuseaddr_binds_over() {
        let listener = sys::tcp_listener(&"127.0.0.1:0".parse().unwrap(), false, 16).unwrap();
        let addr = sys::local_addr(listener.as_fd()).unwrap().to_inet().unwrap();
        let mut client = common::connect(addr);
        assert!(poll_fd(listener.as_raw_fd(), libc::POLLIN, common::IO_TIMEOUT) & libc::POLLIN != 0);
        let (server, _) = sys::accept(listener.as_fd()).unwrap();
        drop(server); // we close first, with a FIN (no SO_LINGER 0: that would be an RST) ...
        assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0, "the client reads EOF");
        drop(client); // ... the client's FIN completes the close: our end waits in TIME_WAIT
        drop(listener); // so only the TIME_WAIT entry holds the port
        let seen = common::wait_until(Duration::from_secs(10), || in_time_wait(addr.port()));
        assert!(seen, "no TIME_WAIT entry for port {} in /proc/net/tcp", addr.port());

        let plain = bind(addr, false);
        assert_eq!(
            plain.as_ref().err().and_then(|e| e.raw_os_error()),
            Some(libc::EADDRINUSE),
            "bind without SO_REUSEADDR during TIME_WAIT: {plain:?}"
        );
        assert!(in_time_wait(addr.port()), "still in TIME_WAIT");
        let reuse = bind(addr, true);
        assert!(reuse.is_ok(), "bind with SO_REUSEADDR during TIME_WAIT: {reuse:?}");
    }
}

/// Claim 10 (`examples/ladder/04_select.rs` and `07_event_loop.rs`,
/// **Watch**): the fd numbers and counts the rungs' docs quote are the ones
/// a run from a shell prints: rung 04's first client is fd 5 (0-2 are stdio,
/// 3 the listener, 4 the spare fd kept for `EMFILE`); rung 07's dispatch line
/// counts the fds in the backend, the loop's waker included, and the stats
/// line the fds with handlers, and each says so.
mod rung_fd_numbers {
    use super::*;

    #[test]
    fn rung_04_logs_what_its_docs_quote() {
        let doc = rung_source("04_select.rs");
        let quoted = [
            "select: 1 ready of 2 registered, scanned 6 fd slots",
            "fd 5 READABLE",
            "fd 5: read 6",
            "fd 5: sent 6/6",
        ];
        for q in quoted {
            assert!(doc.contains(&format!("`{q}`")), "the rung's docs quote {q:?}");
        }
        let rung = Rung::start("ladder_04_select", "trace", &[]);
        let mut client = common::connect(rung.addr);
        client.write_all(b"hello\n").unwrap();
        assert_eq!(common::read_up_to(&mut client, 6), b"hello\n");
        assert!(rung.line_with(&["connected as fd 5"], common::IO_TIMEOUT).is_some(), "{}", rung.dump());
        for q in quoted {
            assert!(rung.line_with(&[q], common::IO_TIMEOUT).is_some(), "{q:?} in\n{}", rung.dump());
        }
    }

    #[test]
    fn rung_07_dispatch_and_stats_lines_count_the_same_fds() {
        let doc = rung_source("07_event_loop.rs");
        assert!(
            doc.contains("3 fds in the backend, waker included"),
            "the rung's docs quote the dispatch line"
        );
        let rung = Rung::start("ladder_07_event_loop", "trace", &[]);
        let _client = common::connect(rung.addr);
        assert!(rung.line_with(&["registered fd 7 for READABLE (Level)"], common::IO_TIMEOUT).is_some());
        let dispatch = rung.line_with(&[", 3 fds in the backend, waker included)"], common::IO_TIMEOUT);
        assert!(dispatch.is_some(), "{}", rung.dump());
        // The once-a-second summary, after the client registered.
        let summary = rung.line_with(&["fds scanned", "2 fds registered"], Duration::from_secs(10));
        assert!(summary.is_some(), "{}", rung.dump());
    }
}
