//! rot13 server (the lecture notes' first non-blocking server): every line a
//! client sends comes back rot13-encoded. Lines end with `\n`; a partial line
//! waits in the input buffer until the rest arrives.
//!
//! ```text
//! cargo run --example rot13 -- [ADDR | --unix PATH] [--threads N] [--processes N] [--dispatcher NAME] [--reuse-port]   # default 127.0.0.1:9001
//! printf 'Hello\n' | nc -q1 127.0.0.1 9001                                                # Uryyb
//! ```
//! `--unix PATH` listens on a Unix domain socket instead of ADDR (`@name`:
//! a Linux abstract name; the socket file is removed on exit).
//! `--processes N` (N > 1) binds once and forks N workers sharing the
//! listener ([`muxloop::process`]); SIGTERM or Ctrl-C to the master stops
//! them all gracefully.

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
use muxloop::{Callbacks, EventLoop, Listener, Server};

/// A client that sends more than this without a newline is disconnected.
const MAX_LINE: usize = 16 * 1024;

/// How long open connections get to finish once asked to stop.
const GRACE: Duration = Duration::from_secs(5);

/// rot13 server: every line a client sends comes back rot13-encoded.
#[derive(Parser)]
#[command(version, mut_arg("addr", |a| a.default_value("127.0.0.1:9001")))]
struct Cli {
    // [ADDR | --unix PATH] [--threads N] [--processes N] [--dispatcher NAME] [--reuse-port]
    #[command(flatten)]
    server: ServerArgs,
}

fn rot13(byte: u8) -> u8 {
    match byte {
        b'a'..=b'z' => (byte - b'a' + 13) % 26 + b'a',
        b'A'..=b'Z' => (byte - b'A' + 13) % 26 + b'A',
        other => other,
    }
}

/// Serves `listener` until `wait` returns, then stops gracefully: run as is,
/// or by each `--processes` worker.
fn serve(
    cli: &Cli,
    listener: Listener,
    wait: impl FnOnce(&mut EventLoop) -> io::Result<()>,
) -> io::Result<()> {
    let mut ev = EventLoop::with_backend(&cli.server.dispatcher)?;
    let callbacks = Callbacks::new()
        .on_connection(|_, conn| {
            let state = if conn.is_connected() { "up" } else { "down" };
            log::info!("{} {state} (connection {})", conn.peer_addr(), conn.id());
        })
        .on_message(|ev, conn, input| {
            while let Some(eol) = input.find_eol() {
                let line: Vec<u8> = input.peek()[..=eol].iter().copied().map(rot13).collect();
                input.consume(eol + 1);
                let _ = conn.send_owned(ev, line);
            }
            if input.len() > MAX_LINE {
                warn!("{}: line longer than {MAX_LINE} bytes, closing", conn.peer_addr());
                conn.force_close(ev);
            }
        });
    let server = Server::builder(listener.local_addr().clone(), callbacks)
        .listener(listener)
        .threads(cli.server.threads)
        .reuse_port(cli.server.reuse_port)
        .name("rot13")
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
