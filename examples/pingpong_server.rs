//! The server half of muduo's pingpong throughput test: echo everything, as
//! fast as possible.
//!
//! ```text
//! cargo run --release --example pingpong_server -- [ADDR | --unix PATH] [--threads N] [--processes N] [--dispatcher NAME] [--reuse-port]   # default 127.0.0.1:9003
//! cargo run --release --example pingpong_client -- 127.0.0.1:9003 --sessions 100 --block 16384 --seconds 10
//! ```
//! `--unix PATH` listens on a Unix domain socket instead of ADDR (`@name`:
//! a Linux abstract name; the socket file is removed on exit).
//! `--processes N` (N > 1) binds once and forks N workers sharing the
//! listener ([`muxloop::process`]); SIGTERM or Ctrl-C to the master stops
//! them all gracefully.
//! Unlike `echo` there is no output limit: pingpong clients keep exactly one
//! block in flight, so output can never pile up.

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
use muxloop::{Callbacks, EventLoop, Listener, Server};

/// How long open connections get to finish once asked to stop.
const GRACE: Duration = Duration::from_secs(5);

/// The server half of muduo's pingpong throughput test: echoes everything.
#[derive(Parser)]
#[command(version, mut_arg("addr", |a| a.default_value("127.0.0.1:9003")))]
struct Cli {
    // [ADDR | --unix PATH] [--threads N] [--processes N] [--dispatcher NAME] [--reuse-port]
    #[command(flatten)]
    server: ServerArgs,
}

/// Serves `listener` until `wait` returns, then stops gracefully: run as is,
/// or by each `--processes` worker.
fn serve(
    cli: &Cli,
    listener: Listener,
    wait: impl FnOnce(&mut EventLoop) -> io::Result<()>,
) -> io::Result<()> {
    let mut ev = EventLoop::with_backend(&cli.server.dispatcher)?;
    let callbacks = Callbacks::new().on_message(|ev, conn, input| {
        let _ = conn.send(ev, input.peek());
        input.consume_all();
    });
    let server = Server::builder(listener.local_addr().clone(), callbacks)
        .listener(listener)
        .output_limit(None)
        .threads(cli.server.threads)
        .reuse_port(cli.server.reuse_port)
        .name("pingpong")
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
