//! A line-based publish/subscribe broker on several loops, with a bounded
//! broadcast: a subscriber that stops reading is dropped, not buffered.
//!
//! ```text
//! cargo run --example pubsub -- [ADDR | --unix PATH] [--threads N] [--dispatcher NAME] [--idle SECS]   # default 127.0.0.1:9003
//! nc 127.0.0.1 9003        # then type: SUB news
//! nc 127.0.0.1 9003        # then type: PUB news hello
//! ```
//!
//! Commands, one per line: `SUB topic`, `UNSUB topic`, `PUB topic text`.
//! Subscribers get `MSG topic text`; every command is answered `OK` (for
//! `PUB`: handed to every loop), a bad line `ERR ...`, and a `PUB` while
//! 4,096 publish tasks still wait for other loops `ERR busy ...` (the loops'
//! cross-thread task queues have no bound of their own).
//!
//! How it is built, and why:
//! - Each loop keeps the subscribers of the connections it runs, in its own
//!   table ([`EventLoop::context`]): no lock, and a `Connection` (not `Send`)
//!   never leaves its loop.
//! - `PUB` queues one task per loop ([`Server::loops`]: the sub-loops, or the
//!   main loop with `--threads 0`); each task sends to its loop's
//!   subscribers with [`Connection::try_send`], which refuses once a
//!   subscriber's queued output reaches the output limit (256 KiB here, with
//!   the kernel's send buffer set to 64 KiB so the queue grows soon). The
//!   refused subscriber is closed: one silent reader cannot make the broker
//!   buffer the whole feed. That is the slow-subscriber policy.
//! - A connection idle for `--idle` seconds (default 300) is closed; Ctrl-C
//!   or SIGTERM stops the broker gracefully.
//!
//! No backend type appears in the code: `Handler`, `Connection`,
//! `EventLoop`, `LoopHandle` default to the backend chosen by name.

#[path = "common/cli.rs"]
mod cli;

use std::collections::HashMap;
use std::error::Error;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use clap::{CommandFactory, Parser};
use cli::ServerArgs;
use log::{debug, warn};
use muxloop::signal::{SIGINT, SIGTERM};
use muxloop::{Buffer, Connection, EventLoop, Handler, LoopHandle, Server};

/// A line longer than this is refused and its sender closed.
const MAX_LINE: usize = 4096;
/// Publish tasks queued to other loops and not yet run, at most; past it a
/// `PUB` is answered `ERR busy`.
const MAX_PENDING_PUBLISHES: usize = 4096;
/// A subscriber whose undelivered messages reach this is dropped.
const SUBSCRIBER_LIMIT: usize = 256 * 1024;
/// The kernel's send buffer per connection (`SO_SNDBUF`): Linux would grow
/// it to megabytes, which a silent subscriber would fill before the broker
/// ever saw its queue grow.
const KERNEL_SEND_BUFFER: usize = 64 * 1024;

/// A line-based publish/subscribe broker.
#[derive(Parser)]
#[command(
    name = "pubsub",
    version,
    mut_arg("addr", |a| a.default_value("127.0.0.1:9003")),
    mut_arg("processes", |a| a.help("Must be 0 or 1: the topics live in one process")),
)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    /// Close a connection idle for this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    idle: u64,
}

/// One loop's subscribers, by topic.
#[derive(Default)]
struct Topics(HashMap<String, Vec<Connection>>);

/// How a publish reaches the other loops: their handles (known once the
/// server has started) and the publish tasks queued to them and not yet
/// run, which [`MAX_PENDING_PUBLISHES`] bounds.
#[derive(Default)]
struct Fanout {
    loops: OnceLock<Vec<LoopHandle>>,
    pending: AtomicUsize,
}

/// One publish task counted in [`Fanout::pending`] until it runs or is dropped.
struct PendingPublish(Arc<Fanout>);

impl PendingPublish {
    fn new(fanout: &Arc<Fanout>) -> PendingPublish {
        fanout.pending.fetch_add(1, Relaxed);
        PendingPublish(Arc::clone(fanout))
    }
}

impl Drop for PendingPublish {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Relaxed);
    }
}

/// One per connection.
struct Session {
    fanout: Arc<Fanout>,
    topics: Vec<String>,
}

impl Session {
    fn command(&mut self, ev: &mut EventLoop, conn: &Connection, line: &str) -> String {
        let mut words = line.splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("SUB"), Some(topic), None) if !topic.is_empty() => {
                if !self.topics.iter().any(|t| t == topic) {
                    self.topics.push(topic.to_owned());
                    ev.context::<Topics>().0.entry(topic.to_owned()).or_default().push(conn.clone());
                }
                "OK\n".into()
            }
            (Some("UNSUB"), Some(topic), None) => {
                self.topics.retain(|t| t != topic);
                unsubscribe(ev, conn, topic);
                "OK\n".into()
            }
            (Some("PUB"), Some(topic), Some(text)) if !topic.is_empty() => {
                // Other loops' task queues have no bound of their own: a
                // publisher faster than they run is told to wait.
                let pending = self.fanout.pending.load(Relaxed);
                if pending >= MAX_PENDING_PUBLISHES {
                    return format!("ERR busy: {pending} publishes waiting for other loops, try again\n");
                }
                let message = Arc::new(format!("MSG {topic} {text}\n").into_bytes());
                for target in self.fanout.loops.get().map_or(&[][..], Vec::as_slice) {
                    if target.is_current() {
                        publish_here(ev, topic, &message);
                        continue;
                    }
                    let (topic, message) = (topic.to_owned(), Arc::clone(&message));
                    let counted = PendingPublish::new(&self.fanout);
                    let task = move |ev: &mut EventLoop| {
                        drop(counted);
                        publish_here(ev, &topic, &message)
                    };
                    if let Err(e) = target.run_in_loop(task) {
                        debug!("loop {} is gone: {e}", target.id());
                    }
                }
                "OK\n".into()
            }
            _ => format!("ERR expected SUB topic, UNSUB topic or PUB topic text, got {line:?}\n"),
        }
    }
}

/// Sends `message` to this loop's subscribers of `topic`; drops the ones
/// whose output is full.
fn publish_here(ev: &mut EventLoop, topic: &str, message: &[u8]) {
    let subscribers = ev.context::<Topics>().0.get(topic).cloned().unwrap_or_default();
    for subscriber in subscribers.iter().filter(|s| s.is_connected()) {
        if let Err(e) = subscriber.try_send(ev, message) {
            warn!("{}: {e}; dropping the subscriber", subscriber.peer_addr());
            subscriber.force_close(ev);
        }
    }
}

fn unsubscribe(ev: &mut EventLoop, conn: &Connection, topic: &str) {
    let topics = &mut ev.context::<Topics>().0;
    if let Some(list) = topics.get_mut(topic) {
        list.retain(|c| c.id() != conn.id());
        if list.is_empty() {
            topics.remove(topic);
        }
    }
}

impl Handler for Session {
    fn on_message(&mut self, ev: &mut EventLoop, conn: &Connection, input: &mut Buffer) {
        while let Some(eol) = input.find_eol() {
            let line = input.take(eol + 1);
            let line = String::from_utf8_lossy(&line);
            let reply = self.command(ev, conn, line.trim_end_matches(['\r', '\n']));
            let _ = conn.send(ev, reply.as_bytes());
        }
        if input.len() > MAX_LINE {
            let _ = conn.send(ev, format!("ERR line longer than {MAX_LINE} bytes\n").as_bytes());
            conn.close_after_flush(ev);
        }
    }

    fn on_close(&mut self, ev: &mut EventLoop, conn: &Connection) {
        for topic in self.topics.drain(..) {
            unsubscribe(ev, conn, &topic);
        }
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn Error>> {
    let mut ev = EventLoop::with_backend(&cli.server.dispatcher)?;
    let fanout = Arc::new(Fanout::default());
    let for_sessions = Arc::clone(&fanout);
    let factory = move |_: &Connection| Session { fanout: Arc::clone(&for_sessions), topics: Vec::new() };
    let server = Server::builder(cli.server.addr, factory)
        .listener(cli.server.bind()?)
        .threads(cli.server.threads)
        .output_limit(SUBSCRIBER_LIMIT)
        .send_buffer(Some(KERNEL_SEND_BUFFER))
        .idle_timeout(Some(Duration::from_secs(cli.idle)))
        .name("pubsub")
        .start(&mut ev)?;
    let _ = fanout.loops.set(server.loops());
    println!("listening on {} (dispatcher: {})", server.local_addr(), ev.dispatcher_name());
    std::io::stdout().flush()?;
    ev.run_until_signal(&[SIGINT, SIGTERM])?;
    let summary = server.stop(&mut ev, Duration::from_secs(5))?;
    println!("stopped: {summary}");
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if cli.server.processes > 1 {
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--processes: pubsub keeps its topics in one process: use --threads",
            )
            .exit();
    }
    cli::main(|| run(cli))
}
