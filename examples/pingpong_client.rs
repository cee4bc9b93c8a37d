//! The client half of muduo's pingpong throughput test: S sessions over T
//! loop threads; each sends one B-byte block and sends back whatever the
//! server echoes, so B bytes per session stay in flight. After D seconds it
//! prints MiB/s and messages/s (a message is one read callback).
//!
//! ```text
//! cargo run --release --example pingpong_client -- [ADDR] [--threads T] [--sessions S] [--block B] [--seconds D] [--dispatcher NAME]
//! ```
//! Defaults: 127.0.0.1:9003, 1 thread, 1 session, 16384-byte blocks, 10 s.
//! Timing starts once every session is connected.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Args, Result};
use muxloop::{Callbacks, Dispatcher, EventLoopThreadPool, TcpClient};

#[derive(Default)]
struct Counters {
    connected: AtomicUsize,
    failed: AtomicUsize,
    bytes: AtomicU64,
    messages: AtomicU64,
}

fn run<D: Dispatcher + 'static>(args: Args) -> Result {
    let threads = args.threads.max(1);
    let sessions: usize = args.flag_or("--sessions", 1)?;
    let block: usize = args.flag_or("--block", 16384)?;
    let seconds: f64 = args.flag_or("--seconds", 10.0)?;
    if sessions == 0 || block == 0 || !seconds.is_finite() || seconds <= 0.0 {
        return Err("--sessions, --block and --seconds must be positive".into());
    }
    muxloop::sys::set_nofile_limit(sessions as u64 + 64)?;

    let counters = Arc::new(Counters::default());
    let (on_up, on_msg) = (Arc::clone(&counters), Arc::clone(&counters));
    let payload: Arc<[u8]> = (0..block).map(|i| (i % 251) as u8).collect();
    let callbacks = Callbacks::<D>::new()
        .on_connection(move |ev, conn| {
            if conn.is_connected() {
                on_up.connected.fetch_add(1, Ordering::Relaxed);
                let _ = conn.send(ev, &payload);
            }
        })
        .on_message(move |ev, conn, input| {
            on_msg.bytes.fetch_add(input.len() as u64, Ordering::Relaxed);
            on_msg.messages.fetch_add(1, Ordering::Relaxed);
            let _ = conn.send(ev, input.peek());
            input.consume_all();
        });

    let mut pool = EventLoopThreadPool::<D>::new("pingpong-client", threads)?;
    for _ in 0..sessions {
        let (callbacks, failures) = (callbacks.clone(), Arc::clone(&counters));
        let addr = args.addr;
        pool.next_loop().expect("at least one thread").run_in_loop(move |ev| {
            TcpClient::new(addr, callbacks)
                .on_connect_error(move |_, e| {
                    log::warn!("session failed to connect: {e}");
                    failures.failed.fetch_add(1, Ordering::Relaxed);
                })
                .connect(ev);
        })?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while counters.connected.load(Ordering::Relaxed) + counters.failed.load(Ordering::Relaxed) < sessions
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    let connected = counters.connected.load(Ordering::Relaxed);
    let (bytes0, messages0, start) =
        (counters.bytes.load(Ordering::Relaxed), counters.messages.load(Ordering::Relaxed), Instant::now());
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let elapsed = start.elapsed().as_secs_f64();
    let bytes = counters.bytes.load(Ordering::Relaxed) - bytes0;
    let messages = counters.messages.load(Ordering::Relaxed) - messages0;
    pool.stop();
    println!(
        "dispatcher={} threads={threads} sessions={sessions} connected={connected} failed={} block={block} secs={elapsed:.2} MiB/s={:.1} msgs/s={:.0}",
        D::NAME,
        sessions - connected,
        bytes as f64 / elapsed / (1024.0 * 1024.0),
        messages as f64 / elapsed,
    );
    Ok(())
}

example_main!(9003, run);
