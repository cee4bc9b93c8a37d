//! Multi-process mode (`muxloop::process::Master`).
//!
//! A harness-less test (`harness = false`): a master may fork only while its
//! process has one thread, and libtest runs tests on threads. So `main` first
//! runs the in-process checks (give up after K quick deaths, refuse with
//! threads), then drives `examples/prefork` as a separate process: `kill -9`
//! of a worker -> a new one appears and clients keep being served; SIGTERM to
//! the master -> it exits 0 within the grace period and no worker remains.
//!
//! `cargo test` builds the example first; `cargo test --test processes` alone
//! does not, so run `cargo build --example prefork` before it, or it drives a
//! stale binary. `-- WORD` runs only the checks whose name contains WORD.

mod common;

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{ExampleProcess, alive, echo_round_trip, live_children, wait_until};
use muxloop::process::Master;
use muxloop::sys;

/// Seconds the example's workers get after SIGTERM (its `--grace`).
const GRACE_SECS: u64 = 3;

/// Kills this test process if it hangs (a master that never gives up).
/// A child started with `Command` (no thread in this process): it also proves
/// the master reaps only its own workers, as it must still be running after.
struct Watchdog(std::process::Child);

impl Watchdog {
    fn arm(seconds: u64) -> Watchdog {
        let script =
            format!("sleep {seconds}; echo 'watchdog: test hung, killing it' >&2; kill -9 {}", sys::getpid());
        Watchdog(Command::new("sh").args(["-c", &script]).stdin(Stdio::null()).spawn().expect("watchdog"))
    }

    fn disarm(mut self) {
        assert!(self.0.try_wait().unwrap().is_none(), "the master reaped a child that was not its worker");
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Workers that exit at once: the master restarts them with back-off, then
/// gives up with an error, having forked a bounded number of times.
fn gives_up_after_quick_deaths() {
    let watchdog = Watchdog::arm(20);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // Each child writes one byte: the parent counts the forks.
    let (forks_read, forks_write) = sys::pipe().unwrap();
    use std::os::fd::AsFd;
    let write_fd = forks_write.as_fd();
    let started = Instant::now();
    let err = Master::new(listener, 2)
        .max_quick_deaths(3)
        .quick_death(Duration::from_secs(2))
        .backoff(Duration::from_millis(10), Duration::from_millis(40))
        .grace(Duration::from_secs(2))
        .run(move |_ctx| {
            sys::write(write_fd, b"x")?;
            Ok(())
        })
        .expect_err("workers that die at once make the master give up");
    let elapsed = started.elapsed();
    watchdog.disarm();
    assert_eq!(err.kind(), std::io::ErrorKind::Other, "{err}");
    let message = err.to_string();
    assert!(message.contains("giving up") && message.contains("3 times"), "{message}");
    let mut buf = [0u8; 64];
    let forks = sys::read(forks_read.as_fd(), &mut buf).unwrap_or(0);
    // 2 slots; one reaches 3 quick deaths while the other has at most 3.
    assert!((3..=6).contains(&forks), "{forks} forks");
    assert!(elapsed < Duration::from_secs(5), "gave up after {elapsed:?}");
    // Every worker was reaped: no zombie is left behind.
    let left = sys::teaching::waitpid_nohang().unwrap_err();
    assert_eq!(left.raw_os_error(), Some(libc::ECHILD), "{left}");
    println!("ok: gave up after {forks} forks in {elapsed:?}: {message}");
}

/// A panicking worker exits 101 (its unwinding never reaches the master's
/// code in the child) and counts as a quick death like any other.
fn panicking_worker_is_a_quick_death() {
    /// Dropped in a child only if the worker's panic unwound out of `run`.
    struct Sentinel<'a>(i32, std::os::fd::BorrowedFd<'a>);
    impl Drop for Sentinel<'_> {
        fn drop(&mut self) {
            if sys::getpid() != self.0 {
                let _ = sys::write(self.1, b"!");
            }
        }
    }
    use std::os::fd::AsFd;
    let (escaped_read, escaped_write) = sys::pipe().unwrap();
    let _sentinel = Sentinel(sys::getpid(), escaped_write.as_fd());
    let watchdog = Watchdog::arm(20);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = Master::new(listener, 1)
        .max_quick_deaths(2)
        .backoff(Duration::from_millis(10), Duration::from_millis(10))
        .run(|ctx| panic!("worker {} fails on purpose", ctx.index()))
        .expect_err("a worker that always panics makes the master give up");
    watchdog.disarm();
    assert!(err.to_string().contains("exit status: 101"), "{err}");
    let escaped = sys::read(escaped_read.as_fd(), &mut [0u8; 8]).unwrap_or(0);
    assert_eq!(escaped, 0, "a worker's panic unwound into the caller of Master::run");
    println!("ok: panicking worker: {err}");
}

/// Workers that ignore SIGTERM: the master sends SIGKILL when the grace
/// period ends, reaps them and returns `Ok`: shutdown is bounded.
fn kills_after_grace() {
    let watchdog = Watchdog::arm(20);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let grace = Duration::from_millis(500);
    let started = Instant::now();
    Master::new(listener, 2)
        .grace(grace)
        .run(|ctx| {
            sys::block_signals(&[libc::SIGTERM])?;
            if ctx.index() == 0 {
                // The master already watches SIGTERM: it forked us after that.
                sys::kill(ctx.master_pid(), libc::SIGTERM)?;
            }
            thread::sleep(Duration::from_secs(30));
            Ok(())
        })
        .expect("a stop by SIGTERM is a clean return, even when workers had to be killed");
    let elapsed = started.elapsed();
    watchdog.disarm();
    assert!(elapsed >= grace && elapsed < Duration::from_secs(5), "stopped after {elapsed:?}");
    let left = sys::teaching::waitpid_nohang().unwrap_err();
    assert_eq!(left.raw_os_error(), Some(libc::ECHILD), "{left}");
    println!("ok: workers deaf to SIGTERM were killed after the grace period ({elapsed:?})");
}

/// Zero workers is `InvalidInput`; a second thread is `Unsupported`, before any fork.
fn refuses_bad_setups() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = Master::new(listener.try_clone().unwrap(), 0).run(|_| Ok(())).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");

    let (release, wait) = mpsc::channel::<()>();
    let other = thread::spawn(move || wait.recv().ok());
    let err = Master::new(listener, 2).run(|_| Ok(())).unwrap_err();
    release.send(()).unwrap();
    other.join().unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported, "{err}");
    assert!(err.to_string().contains("before any thread exists"), "{err}");
    let none = sys::teaching::waitpid_nohang().unwrap_err();
    assert_eq!(none.raw_os_error(), Some(libc::ECHILD), "no worker was forked");
    println!("ok: refused: {err}");
}

fn serve_clients(example: &ExampleProcess, count: usize, tag: &str) {
    for i in 0..count {
        let payload = format!("{tag} client {i}");
        assert!(echo_round_trip(example.addr, payload.as_bytes()), "{tag}: client {i} was not served");
    }
}

/// kill -9 of a worker -> a replacement; SIGTERM to the master -> all gone, exit 0.
fn kill_worker_then_stop(dispatcher: &str) {
    let grace = GRACE_SECS.to_string();
    let mut example = ExampleProcess::start(
        "prefork",
        &["127.0.0.1:0", "--processes", "3", "--dispatcher", dispatcher, "--grace", &grace],
    );
    let master = example.child.id();
    assert!(wait_until(Duration::from_secs(10), || live_children(master).len() == 3), "3 workers start");
    let first = live_children(master);
    serve_clients(&example, 20, "before");

    let victim = *first.iter().next().unwrap();
    sys::kill(victim as i32, libc::SIGKILL).unwrap();
    let replaced = wait_until(Duration::from_secs(5), || {
        let now = live_children(master);
        now.len() == 3 && !now.contains(&victim)
    });
    assert!(
        replaced,
        "{dispatcher}: no new worker within 5 s of kill -9 (children: {:?})",
        live_children(master)
    );
    let second = live_children(master);
    let new: Vec<u32> = second.difference(&first).copied().collect();
    assert_eq!(new.len(), 1, "exactly one new worker: {first:?} -> {second:?}");
    let death = format!("(pid {victim}) died");
    assert!(example.logged(&death, Duration::from_secs(2)), "the master logs the death");
    serve_clients(&example, 50, "after");

    sys::kill(master as i32, libc::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(GRACE_SECS + 2);
    let status = loop {
        if let Some(status) = example.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "{dispatcher}: master still running after the grace period");
        thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0), "{dispatcher}: master exit: {status}");
    let orphans: Vec<u32> = first.union(&second).copied().filter(|&pid| alive(pid)).collect();
    assert!(orphans.is_empty(), "{dispatcher}: workers outlived the master: {orphans:?}");
    let clean = example.log.lock().unwrap().iter().filter(|l| l.contains("stopped: exit status: 0")).count();
    assert_eq!(clean, 3, "{dispatcher}: every worker stops cleanly on SIGTERM");
    println!("ok: {dispatcher}: worker {victim} killed, {new:?} replaced it; SIGTERM stopped all, no orphan");
}

fn main() {
    // `cargo test --test processes -- WORD` runs only the checks whose name contains WORD.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-')).unwrap_or_default();
    let wanted = |name: &str| name.contains(filter.as_str());
    // In-process checks first, while this process still has one thread.
    if wanted("gives_up_after_quick_deaths") {
        gives_up_after_quick_deaths();
    }
    if wanted("panicking_worker_is_a_quick_death") {
        panicking_worker_is_a_quick_death();
    }
    if wanted("kills_after_grace") {
        kills_after_grace();
    }
    if wanted("refuses_bad_setups") {
        refuses_bad_setups();
    }
    for dispatcher in ["select", "poll", "epoll"] {
        if wanted(&format!("kill_worker_then_stop_{dispatcher}")) {
            kill_worker_then_stop(dispatcher);
        }
    }
}
