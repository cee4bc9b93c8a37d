//! Echo server: every byte comes back, in order.
//!
//! ```text
//! cargo run --release --example echo -- [ADDR | --unix PATH] [--threads N] [--processes N] [--dispatcher NAME] [--reuse-port] [--nofile N] [--trigger auto|level|edge]
//! cargo run --release --example echo -- --unix /tmp/muxloop-echo.sock      # or --unix @muxloop-echo (abstract)
//! ```
//! Default address 127.0.0.1:9000; `--unix PATH` listens on a Unix domain
//! socket instead (`@name`: a Linux abstract name), whose file is removed on
//! exit. `--processes N` (N > 1) binds once and forks N worker processes
//! that share the listener ([`muxloop::process`]), each serving it with its
//! own loop (and `--threads` sub-loops); SIGTERM or Ctrl-C to the master
//! stops them all gracefully.
//!
//! Backpressure: when a client sends faster than it reads, its queued output
//! crosses the output limit and the server stops reading from it until the
//! queue drains. `--nofile N` lowers the fd limit, to watch the acceptor
//! survive `EMFILE`.

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
use muxloop::{Callbacks, EventLoop, Listener, Server, Trigger};

/// Queued output per connection above which we stop reading from it.
const OUTPUT_LIMIT: usize = 4 * 1024 * 1024;
/// How long open connections get to finish once asked to stop.
const GRACE: Duration = Duration::from_secs(5);

/// Echo server: every byte a client sends comes back, in order.
#[derive(Parser)]
#[command(version, mut_arg("addr", |a| a.default_value("127.0.0.1:9000")))]
struct Cli {
    // [ADDR | --unix PATH] [--threads N] [--processes N] [--dispatcher NAME] [--reuse-port]
    #[command(flatten)]
    server: ServerArgs,
    /// Connections edge- or level-triggered: auto (edge on epoll and uring), level, edge
    #[arg(long, value_name = "MODE", default_value = "auto")]
    trigger: Trigger,
    /// Lower the open-file limit to N, to watch the acceptor survive EMFILE
    #[arg(long, value_name = "N")]
    nofile: Option<u64>,
}

/// Serves `listener` until `wait` returns, then stops gracefully: run as is,
/// or by each `--processes` worker.
fn serve(
    cli: &Cli,
    listener: Listener,
    wait: impl FnOnce(&mut EventLoop) -> io::Result<()>,
) -> io::Result<()> {
    let mut ev = EventLoop::with_backend(&cli.server.dispatcher)?;
    let echo = Callbacks::new()
        .on_connection(|_, conn| {
            let state = if conn.is_connected() { "up" } else { "down" };
            log::info!("{} {state} (connection {})", conn.peer_addr(), conn.id());
        })
        .on_message(|ev, conn, input| {
            let _ = conn.send(ev, input.peek());
            input.consume_all();
        });
    let server = Server::builder(listener.local_addr().clone(), echo)
        .listener(listener)
        .output_limit(OUTPUT_LIMIT)
        .threads(cli.server.threads)
        .reuse_port(cli.server.reuse_port)
        .trigger(cli.trigger)
        .name("echo")
        .start(&mut ev)?;
    wait(&mut ev)?;
    let summary = server.stop(&mut ev, GRACE)?;
    println!("stopped: {summary}");
    Ok(())
}

fn run(cli: Cli) -> Result<(), Box<dyn Error>> {
    if let Some(limit) = cli.nofile {
        muxloop::sys::set_nofile_limit(limit).map_err(|e| format!("--nofile {limit}: {e}"))?;
    }
    launch::announce_and_serve(&cli.server, 2 * GRACE, |listener, wait| serve(&cli, listener, wait))?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::main(|| run(cli))
}
