//! Length-prefixed messages: `| length u32 BE | type u32 BE | body |`, with
//! the library's [`muxloop::framing`] codec.
//!
//! ```text
//! cargo run --example framed -- [ADDR | --unix PATH] [--threads N] [--processes N] [--dispatcher NAME] [--reuse-port] [--max-body BYTES]   # default 127.0.0.1:9004
//! ```
//! `--unix PATH` listens on a Unix domain socket instead of ADDR (`@name`:
//! a Linux abstract name; the socket file is removed on exit).
//! `--processes N` (N > 1) binds once and forks N workers sharing the
//! listener ([`muxloop::process`]); SIGTERM or Ctrl-C to the master stops
//! them all gracefully.
//! The server answers each message as it completes: TYPE1 (11) with
//! "Hi, " + body, TYPE2 (21) with "Hello, " + body, PING (1) with PONG (2).
//! A frame that declares a body over `--max-body` (default 64 KiB), or an
//! unknown type, gets an ERROR (99) frame saying why, and the connection is
//! half-closed after it is sent; nothing of the oversized body is buffered.

#[path = "common/cli.rs"]
mod cli;
#[path = "common/launch.rs"]
mod launch;

use std::error::Error;
use std::io;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use cli::ServerArgs;
use log::warn;
use muxloop::framing::{self, Decoded, MSG_ERROR, MSG_PING, MSG_PONG, MSG_TYPE1, MSG_TYPE2};
use muxloop::{Callbacks, Connection, EventLoop, Listener, Server};

/// How long open connections get to finish once asked to stop.
const GRACE: Duration = Duration::from_secs(5);

/// Length-prefixed message server: `| length u32 BE | type u32 BE | body |`.
#[derive(Parser)]
#[command(version, mut_arg("addr", |a| a.default_value("127.0.0.1:9004")))]
struct Cli {
    // [ADDR | --unix PATH] [--threads N] [--processes N] [--dispatcher NAME] [--reuse-port]
    #[command(flatten)]
    server: ServerArgs,
    /// Largest frame body accepted; a longer one gets an ERROR frame and a close
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    max_body: usize,
}

fn reject(ev: &mut EventLoop, conn: &Connection, why: String) {
    warn!("{}: {why}; closing", conn.peer_addr());
    let _ = conn.send_owned(ev, framing::encode(MSG_ERROR, why.as_bytes()));
    // Half-close rather than close: closing with unread input would send RST
    // and could destroy the error frame in flight.
    conn.shutdown(ev);
}

/// Serves `listener` until `wait` returns, then stops gracefully: run as is,
/// or by each `--processes` worker.
fn serve(
    cli: &Cli,
    listener: Listener,
    wait: impl FnOnce(&mut EventLoop) -> io::Result<()>,
) -> io::Result<()> {
    let max_body = cli.max_body;
    let mut ev = EventLoop::with_backend(&cli.server.dispatcher)?;
    let callbacks = Callbacks::new()
        .on_connection(|_, conn| {
            let state = if conn.is_connected() { "up" } else { "down" };
            log::info!("{} {state} (connection {})", conn.peer_addr(), conn.id());
        })
        .on_message(move |ev, conn, input| {
            if !conn.is_connected() {
                // Rejected: discard whatever else arrives until the peer closes.
                return input.consume_all();
            }
            while conn.is_connected() {
                let (kind, body) = match framing::decode(input, max_body) {
                    Decoded::Frame { kind, body } => (kind, body),
                    Decoded::Incomplete => return,
                    Decoded::TooLong(len) => {
                        input.consume_all();
                        return reject(
                            ev,
                            conn,
                            format!("frame body of {len} bytes exceeds the {max_body}-byte limit"),
                        );
                    }
                };
                let reply = match kind {
                    MSG_PING => framing::encode(MSG_PONG, &[]),
                    MSG_TYPE1 => framing::encode(MSG_TYPE1, &[b"Hi, ".as_slice(), &body].concat()),
                    MSG_TYPE2 => framing::encode(MSG_TYPE2, &[b"Hello, ".as_slice(), &body].concat()),
                    other => {
                        input.consume_all();
                        return reject(ev, conn, format!("unknown message type {other}"));
                    }
                };
                let _ = conn.send_owned(ev, reply);
            }
        });
    let server = Server::builder(listener.local_addr().clone(), callbacks)
        .listener(listener)
        .threads(cli.server.threads)
        .reuse_port(cli.server.reuse_port)
        .name("framed")
        .start(&mut ev)?;
    wait(&mut ev)?;
    let summary = server.stop(&mut ev, GRACE)?;
    println!("stopped: {summary}");
    Ok(())
}

fn run(cli: Cli) -> Result<(), Box<dyn Error>> {
    launch::announce_and_serve(&cli.server, 2 * GRACE, |listener, wait| serve(&cli, listener, wait))?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::main(|| run(cli))
}
