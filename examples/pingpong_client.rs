//! The client half of muduo's pingpong throughput test: S sessions over T
//! loop threads; each sends one B-byte block and sends back whatever the
//! server echoes, so B bytes per session stay in flight. After D seconds it
//! prints MiB/s and messages/s (a message is one read callback).
//!
//! ```text
//! cargo run --release --example pingpong_client -- [ADDR | --unix PATH] [--threads T] [--sessions S] [--block B] [--seconds D] [--dispatcher NAME]
//! ```
//! Defaults: 127.0.0.1:9003, 1 thread, 1 session, 16384-byte blocks, 10 s.
//! Timing starts once every session is connected. `--unix PATH` connects to
//! a Unix domain socket instead (`@name` for an abstract name), to compare
//! the same server over both transports.

#[path = "common/cli.rs"]
mod cli;

use std::error::Error;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use clap::builder::RangedU64ValueParser;
use muxloop::{AnyDispatcher, Callbacks, Client, EventLoopThreadPool, StreamAddr, UnixAddr};

/// The client half of muduo's pingpong throughput test.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Server address: HOST:PORT, :PORT or PORT
    #[arg(value_name = "ADDR", default_value = "127.0.0.1:9003", value_parser = cli::parse_addr)]
    addr: SocketAddr,
    /// Connect to this Unix domain socket instead of ADDR (`@name`: abstract)
    #[arg(long, value_name = "PATH", conflicts_with = "addr")]
    unix: Option<String>,
    /// Loop threads the sessions are spread over (0 counts as 1)
    #[arg(long, value_name = "T", default_value_t = 1)]
    threads: usize,
    /// Concurrent sessions (connections)
    #[arg(long, value_name = "S", default_value_t = 1, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    sessions: usize,
    /// Bytes each session keeps in flight
    #[arg(long, value_name = "B", default_value_t = 16384, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    block: usize,
    /// How long to measure, in seconds (fractions allowed)
    #[arg(long, value_name = "D", default_value = "10", value_parser = parse_seconds)]
    seconds: Duration,
    /// The I/O multiplexer
    #[arg(long, value_name = "NAME", default_value = muxloop::default_dispatcher_name(),
          value_parser = clap::builder::PossibleValuesParser::new(AnyDispatcher::names()), ignore_case = true)]
    dispatcher: String,
}

/// A positive number of seconds.
fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 {
        return Err("expected a number of seconds above 0 and at most 86400".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[derive(Default)]
struct Counters {
    connected: AtomicUsize,
    failed: AtomicUsize,
    bytes: AtomicU64,
    messages: AtomicU64,
}

fn run(cli: Cli) -> Result<(), Box<dyn Error>> {
    let Cli { addr, unix, threads, sessions, block, seconds, dispatcher } = cli;
    let addr: StreamAddr = match &unix {
        Some(path) => UnixAddr::from(path.as_str()).into(),
        None => addr.into(),
    };
    let threads = threads.max(1);
    muxloop::sys::set_nofile_limit(sessions as u64 + 64)
        .map_err(|e| format!("cannot raise the open-file limit for {sessions} sessions: {e}"))?;

    let counters = Arc::new(Counters::default());
    let (on_up, on_msg) = (Arc::clone(&counters), Arc::clone(&counters));
    let payload: Arc<[u8]> = (0..block).map(|i| (i % 251) as u8).collect();
    let callbacks = Callbacks::new()
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

    // Every loop gets the backend named on the command line.
    let mut pool = EventLoopThreadPool::with_dispatchers("pingpong-client", threads, || {
        AnyDispatcher::by_name(&dispatcher)
    })?;
    for _ in 0..sessions {
        let (callbacks, failures, addr) = (callbacks.clone(), Arc::clone(&counters), addr.clone());
        let Some(next) = pool.next_loop() else { break };
        next.run_in_loop(move |ev| {
            Client::new(addr, callbacks)
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
    if connected == 0 {
        pool.stop();
        return Err(format!("no session could connect to {addr}").into());
    }
    let (bytes0, messages0, start) =
        (counters.bytes.load(Ordering::Relaxed), counters.messages.load(Ordering::Relaxed), Instant::now());
    std::thread::sleep(seconds);
    let elapsed = start.elapsed().as_secs_f64();
    let bytes = counters.bytes.load(Ordering::Relaxed) - bytes0;
    let messages = counters.messages.load(Ordering::Relaxed) - messages0;
    pool.stop();
    println!(
        "dispatcher={dispatcher} threads={threads} sessions={sessions} connected={connected} failed={} block={block} secs={elapsed:.2} MiB/s={:.1} msgs/s={:.0}",
        sessions - connected,
        bytes as f64 / elapsed / (1024.0 * 1024.0),
        messages as f64 / elapsed,
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::main(|| run(cli))
}
