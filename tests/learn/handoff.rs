//! Listener hand-off between two processes (`examples/handoff`): while
//! clients connect continuously, a second instance takes the first one's
//! listening socket over a Unix socket; the first exits 0, the second goes
//! on serving, and not one connection is refused or lost. On each backend.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// Connects, echoes 8 bytes and closes, over and over until `stop`; counts
/// the round trips that worked and keeps the errors of those that did not.
fn hammer(addr: SocketAddr, stop: Arc<AtomicBool>, ok: Arc<AtomicUsize>) -> thread::JoinHandle<Vec<String>> {
    thread::spawn(move || {
        let mut errors = Vec::new();
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let round = || -> std::io::Result<()> {
                let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                s.write_all(&i.to_le_bytes())?;
                let mut back = [0u8; 8];
                s.read_exact(&mut back)?;
                assert_eq!(back, i.to_le_bytes());
                Ok(())
            };
            match round() {
                Ok(()) => {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => errors.push(format!("round {i}: {e}")),
            }
        }
        errors
    })
}

fn handoff_under_load(dispatcher: &str) {
    let control =
        std::env::temp_dir().join(format!("muxloop-handoff-{}-{dispatcher}.sock", std::process::id()));
    let _ = std::fs::remove_file(&control);
    let control_arg = control.to_str().unwrap();
    let args = ["127.0.0.1:0", "--control", control_arg, "--dispatcher", dispatcher, "--grace", "3"];
    let mut old = ExampleProcess::start("handoff", &args);
    let addr = old.addr;
    let (stop, ok) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..4).map(|_| hammer(addr, Arc::clone(&stop), Arc::clone(&ok))).collect();
    assert!(wait_until(IO_TIMEOUT, || ok.load(Ordering::Relaxed) >= 200), "the first instance serves");

    let new_args = ["127.0.0.1:1", "--control", control_arg, "--dispatcher", dispatcher];
    let mut new = ExampleProcess::start("handoff", &new_args);
    assert_eq!(new.addr, addr, "the successor serves the predecessor's socket, not its own address");
    let deadline = Instant::now() + IO_TIMEOUT;
    let status = loop {
        if let Some(status) = old.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the old instance did not exit after the hand-off");
        thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "old instance: {status}");
    let after_handoff = ok.load(Ordering::Relaxed);
    assert!(
        wait_until(IO_TIMEOUT, || ok.load(Ordering::Relaxed) >= after_handoff + 200),
        "the new instance serves"
    );
    stop.store(true, Ordering::Relaxed);
    let errors: Vec<String> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    assert!(
        errors.is_empty(),
        "{dispatcher}: {} failed round trips, e.g. {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert!(new.logged("control: listening on", IO_TIMEOUT), "the successor takes the control path over");

    sys_kill(new.child.id(), libc::SIGTERM);
    let status = new.child.wait().unwrap();
    assert!(status.success(), "new instance: {status}");
    assert!(!control.exists(), "the control socket file is removed at exit");
}

fn sys_kill(pid: u32, signal: i32) {
    muxloop::sys::kill(pid as i32, signal).unwrap();
}

#[test]
fn handoff_epoll() {
    handoff_under_load("epoll");
}

#[test]
fn handoff_poll() {
    handoff_under_load("poll");
}

#[test]
fn handoff_select() {
    handoff_under_load("select");
}
