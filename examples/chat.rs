//! Chat room: every line a client sends goes to every *other* client.
//!
//! ```text
//! cargo run --example chat -- [ADDR | --unix PATH] [--threads N] [--dispatcher NAME] [--reuse-port]   # default 127.0.0.1:9002
//! cargo run --example chat_client -- 127.0.0.1:9002                                     # in two terminals
//! ```
//! `--unix PATH` listens on a Unix domain socket instead of ADDR (`@name`:
//! a Linux abstract name; the socket file is removed on exit). There is no
//! `--processes N` mode: the room is one table in one process, and workers
//! forked on a shared listener would each hold a room of their own, so
//! members in different workers could not hear each other. `--processes N`
//! with N > 1 is refused (exit status 2); `--threads` spreads the members
//! over loops that share the one room.
//! With `--threads 4`, clients live on different sub-loops; the room holds a
//! `Send` [`ConnectionHandle`](muxloop::ConnectionHandle) per client, and a
//! broadcast queues each send to the receiving connection's own loop.
//!
//! Policy for slow members: the server's output limit is 1 MiB, and a
//! member whose undelivered lines reach it is dropped from the room (closed)
//! the moment `try_send` refuses a line, so a client that never reads cannot
//! make the server buffer the conversation without bound.

#[path = "common/cli.rs"]
mod cli;

use std::collections::HashMap;
use std::error::Error;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::{CommandFactory, Parser};
use cli::ServerArgs;
use log::{info, warn};
use muxloop::signal::{SIGINT, SIGTERM};
use muxloop::{Callbacks, ConnectionHandle, EventLoop, Server};

/// A client that sends more than this without a newline is disconnected.
const MAX_LINE: usize = 64 * 1024;
/// A member whose undelivered messages pass this is dropped from the room:
/// one silent member must not make the server buffer the whole conversation.
const MEMBER_QUEUE_LIMIT: usize = 1024 * 1024;

type Room = Arc<Mutex<HashMap<u64, ConnectionHandle>>>;

/// Chat room: every line a client sends goes to every other client.
#[derive(Parser)]
#[command(
    name = "chat",
    version,
    mut_arg("addr", |a| a.default_value("127.0.0.1:9002")),
    mut_arg("processes", |a| a.help("Must be 0 or 1: the room lives in one process")),
)]
struct Cli {
    // [ADDR | --unix PATH] [--threads N] [--processes N] [--dispatcher NAME] [--reuse-port]
    #[command(flatten)]
    server: ServerArgs,
}

/// Queues `line` for `member` (from any thread), or drops a member that has
/// stopped reading: `try_send` refuses once its queued output reaches the
/// server's output limit, and sends nothing.
fn deliver(member: &ConnectionHandle, line: &[u8]) {
    match member.try_send(line) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            let undelivered = member.queued_output();
            warn!("{}: dropping it from the room ({undelivered} bytes undelivered)", member.peer_addr());
            let _ = member.force_close();
        }
        _ => {}
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn Error>> {
    let mut ev = EventLoop::with_backend(&cli.server.dispatcher)?;
    let room = Room::default();
    let members = Arc::clone(&room);
    let callbacks = Callbacks::new()
        .on_connection(move |_, conn| {
            let mut members = members.lock().unwrap_or_else(|e| e.into_inner());
            if conn.is_connected() {
                members.insert(conn.id(), conn.handle());
            } else {
                members.remove(&conn.id());
            }
            info!(
                "{} {} ({} in the room)",
                conn.peer_addr(),
                if conn.is_connected() { "joined" } else { "left" },
                members.len()
            );
        })
        .on_message(move |ev, conn, input| {
            while let Some(eol) = input.find_eol() {
                let line = input.take(eol + 1);
                // Copy the recipients out so the lock is not held while sending.
                let others: Vec<_> = {
                    let members = room.lock().unwrap_or_else(|e| e.into_inner());
                    members.values().filter(|h| h.id() != conn.id()).cloned().collect()
                };
                for other in &others {
                    deliver(other, &line);
                }
            }
            if input.len() > MAX_LINE {
                warn!("{}: line longer than {MAX_LINE} bytes, closing", conn.peer_addr());
                conn.force_close(ev);
            }
        });
    let builder = match &cli.server.unix {
        Some(path) => Server::unix_builder(path, callbacks),
        None => Server::builder(cli.server.addr, callbacks),
    };
    let server = builder
        .threads(cli.server.threads)
        .reuse_port(cli.server.reuse_port)
        .output_limit(MEMBER_QUEUE_LIMIT)
        .name("chat")
        .start(&mut ev)?;
    println!("listening on {} (dispatcher: {})", server.local_addr(), ev.dispatcher_name());
    std::io::stdout().flush()?;
    // Ctrl-C or SIGTERM: stop gracefully (a second one exits at once).
    ev.run_until_signal(&[SIGINT, SIGTERM])?;
    let summary = server.stop(&mut ev, std::time::Duration::from_secs(5))?;
    println!("stopped: {summary}");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.server.processes > 1 {
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--processes: chat keeps one room in one process; --processes would split it into rooms \
                 that cannot hear each other: use --threads",
            )
            .exit();
    }
    cli::main(|| run(cli))
}
