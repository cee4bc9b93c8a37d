//! At the fd limit (EMFILE) the server sheds new clients instead of spinning,
//! keeps serving the ones it has, and serves new ones once fds free up.
//!
//! The server runs in a child process (this test binary, re-executed) whose
//! RLIMIT_NOFILE is lowered, so the limit does not affect other tests. It
//! stays a test crate of its own: the parent counts the child's warnings and
//! fds, and re-executes this binary, which is small and runs nothing else.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
#[cfg(muxloop_has_epoll)]
use muxloop::EpollDispatcher;
use muxloop::{Dispatcher, EventLoop, PollDispatcher, SelectDispatcher, Server, sys};

const CHILD_ENV: &str = "MUXLOOP_EMFILE_CHILD";
/// Fds the child may open beyond what it has once the server is up.
const HEADROOM: u64 = 12;

fn child_server<D: Dispatcher + 'static>() {
    // Warnings go to stderr, where the parent counts them.
    let _ = env_logger::Builder::new().filter_level(log::LevelFilter::Warn).try_init();
    let mut ev = EventLoop::<D>::new().unwrap();
    let server = Server::builder("127.0.0.1:0", echo_callbacks::<D>()).start(&mut ev).unwrap();
    sys::set_nofile_limit(sys::open_fd_count().unwrap() as u64 + HEADROOM).unwrap();
    println!("listening on {}", server.local_addr());
    // Stop when the parent goes away (our stdin closes).
    let handle = ev.handle();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        handle.quit();
    });
    ev.run().unwrap();
}

/// Not a test: the entry point of the child process.
#[test]
#[ignore = "entry point of the EMFILE test's child process"]
fn emfile_child_entry() {
    match std::env::var(CHILD_ENV).as_deref() {
        Ok("select") => child_server::<SelectDispatcher>(),
        Ok("poll") => child_server::<PollDispatcher>(),
        #[cfg(muxloop_has_epoll)]
        Ok("epoll") => child_server::<EpollDispatcher>(),
        other => panic!("run by the emfile test only (got {other:?})"),
    }
}

struct ChildServer {
    child: Child,
    addr: SocketAddr,
    /// The child's stderr lines, collected by a thread.
    log: Arc<Mutex<Vec<String>>>,
}

impl ChildServer {
    fn start(dispatcher: &str) -> ChildServer {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "emfile_child_entry", "--ignored", "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, dispatcher)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("re-executing the test binary");
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let (stderr, lines_to) = (child.stderr.take().unwrap(), Arc::clone(&log));
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines_to.lock().unwrap().push(line);
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = lines
            .find_map(|line| line.ok()?.split_once("listening on ")?.1.trim().parse().ok())
            .expect("the child reports its address");
        ChildServer { child, addr, log }
    }

    /// User + system CPU time of the child, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap() // utime, stime
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects and checks one echo; `None` if the server closed or reset it.
fn try_client(addr: SocketAddr, tag: u8) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    stream.write_all(&[tag; 8]).ok()?;
    (read_up_to(&mut stream, 8) == [tag; 8]).then_some(stream)
}

fn survives_emfile(dispatcher: &str) {
    let server = ChildServer::start(dispatcher);
    let attempts: Vec<Option<TcpStream>> = (0..40u8).map(|i| try_client(server.addr, i)).collect();
    let served = attempts.iter().filter(|c| c.is_some()).count();
    // The limit caps fd *numbers*, and some low numbers are free: a few more than HEADROOM fit.
    assert!(
        (5..=HEADROOM as usize + 4).contains(&served),
        "{dispatcher}: {served} of 40 clients served at the limit"
    );
    assert!(
        attempts[0].is_some() && attempts[39].is_none(),
        "{dispatcher}: the first are served, the last shed"
    );

    // At the limit with clients waiting: the server must sleep, not spin.
    let before = server.cpu_ticks();
    std::thread::sleep(Duration::from_secs(1));
    let used = server.cpu_ticks() - before;
    assert!(used <= 30, "{dispatcher}: {used} ticks of CPU in 1 s at the fd limit (a busy loop?)");

    // ~30 clients were shed one at a time within about a second: the
    // warning is rate-limited to one line per second, with a count.
    let warnings =
        server.log.lock().unwrap().iter().filter(|l| l.contains("new connection(s) at once")).count();
    assert!(
        (1..=3).contains(&warnings),
        "{dispatcher}: {warnings} shed warnings (rate limit: one per second)"
    );

    // Existing clients keep working.
    let mut alive: Vec<TcpStream> = attempts.into_iter().flatten().collect();
    for (i, stream) in alive.iter_mut().enumerate() {
        stream.write_all(b"again").unwrap();
        assert_eq!(read_up_to(stream, 5), b"again", "{dispatcher}: client {i} still served");
    }
    // Free fds; new clients are served again.
    drop(alive);
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..5u8 {
        assert!(
            try_client(server.addr, 100 + i).is_some(),
            "{dispatcher}: new client {i} served after fds freed"
        );
    }
}

#[test]
fn emfile_sheds_without_spinning_and_recovers() {
    for dispatcher in ["select", "poll", "epoll"] {
        survives_emfile(dispatcher);
    }
}
