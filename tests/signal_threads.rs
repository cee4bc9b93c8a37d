//! Graceful stop in a program that started threads before the loop.
//!
//! The trap: with signalfd a process-directed SIGTERM goes to any thread that
//! does not block it, and a thread spawned before the loop blocked it (here,
//! one the program spawns, and libtest's own main thread) takes the default
//! action: the process dies with status 143 instead of stopping. Each test
//! runs a child copy of this binary that spawns a thread, then waits in
//! `run_until_signal`, sends it SIGTERM and expects a clean exit with the
//! signal reported by the loop.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use muxloop::event_loop::SignalSource;
use muxloop::signal::SIGTERM;
use muxloop::{EventLoop, sys};

mod common;

const CHILD_ENV: &str = "MUXLOOP_SIGNAL_CHILD";

/// The child's part: `BACKEND,SOURCE` in the environment.
#[test]
#[ignore = "run by the tests below in a child process"]
fn child_waits_for_sigterm_after_spawning_a_thread() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let (backend, source) = spec.split_once(',').expect("BACKEND,SOURCE");
    // A thread that never blocks SIGTERM, started before the loop exists.
    thread::spawn(|| thread::sleep(Duration::from_secs(60)));
    let mut ev = EventLoop::with_backend(backend).unwrap();
    ev.set_signal_source(if source == "signalfd" { SignalSource::Signalfd } else { SignalSource::SelfPipe })
        .unwrap();
    // The sender's pid survives the forwarding (None from the self-pipe).
    ev.on_signal(SIGTERM, |_, info| println!("from {:?}", info.pid)).unwrap();
    ev.run_after(Duration::ZERO, |_| println!("ready"));
    let got = ev.run_until_signal(&[SIGTERM]).unwrap();
    println!("stopped by {got:?}");
}

fn sigterm_stops_cleanly(backend: &str, source: &str) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_waits_for_sigterm_after_spawning_a_thread", "--ignored", "--nocapture"])
        .env(CHILD_ENV, format!("{backend},{source}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.by_ref().map_while(Result::ok).any(|line| line == "ready");
    assert!(ready, "{backend}/{source}: the child never said ready");
    sys::kill(child.id() as i32, SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{backend}/{source}: the child did not stop within 10 s of SIGTERM");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let said: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(status.success(), "{backend}/{source}: exit {status} (143 = killed by SIGTERM), said {said:?}");
    let sender = if source == "signalfd" { format!("Some({})", std::process::id()) } else { "None".into() };
    for expected in [format!("from {sender}"), format!("stopped by Some({SIGTERM})")] {
        assert!(said.contains(&expected), "{backend}/{source}: expected {expected:?}, said {said:?}");
    }
}

fn on_each_source(backend: &str) {
    sigterm_stops_cleanly(backend, "self-pipe");
    if cfg!(muxloop_linux) {
        sigterm_stops_cleanly(backend, "signalfd");
    }
}

#[test]
fn select() {
    on_each_source("select");
}

#[test]
fn poll() {
    on_each_source("poll");
}

#[cfg(muxloop_has_epoll)]
#[test]
fn epoll() {
    on_each_source("epoll");
}

#[cfg(muxloop_has_uring)]
#[test]
fn uring() {
    if !common::uring_unavailable() {
        on_each_source("uring");
    }
}
