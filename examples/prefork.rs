//! Echo server in multi-process mode: a master and N forked workers sharing
//! one listener (nginx's layout, see `muxloop::process`).
//!
//! ```text
//! cargo run --example prefork -- [ADDR | --unix PATH] --processes N [--dispatcher NAME] [--threads N] [--grace SECS]
//! ```
//! The master binds, prints `listening on ADDR (dispatcher: NAME)`, forks the
//! workers and supervises them: `kill -9` a worker and a new one takes its
//! place; SIGTERM or Ctrl-C to the master stops every worker (gracefully,
//! then SIGKILL after the grace period) and the master exits 0. With
//! `--unix PATH` (`@name`: an abstract name) the master binds a Unix domain
//! socket instead; the workers' copies never remove its file, the master
//! removes it when it exits.

#[path = "common/cli.rs"]
mod cli;

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use muxloop::net::listener::DEFAULT_BACKLOG;
use muxloop::process::Master;
use muxloop::{AnyDispatcher, Callbacks, EventLoop, Listener, Server};

#[derive(Parser, Debug)]
#[command(about = "Echo server: a master process and N worker processes")]
struct Cli {
    /// Address to listen on: HOST:PORT, :PORT or PORT.
    #[arg(default_value = "127.0.0.1:9000", value_parser = cli::parse_addr)]
    addr: SocketAddr,
    /// Listen on this Unix domain socket instead (`@name`: an abstract name).
    #[arg(long, value_name = "PATH", conflicts_with = "addr")]
    unix: Option<String>,
    /// Worker processes.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    processes: u16,
    /// I/O multiplexer of each worker's loops (select, poll, epoll, uring).
    #[arg(long, default_value_t = muxloop::default_dispatcher_name().to_owned())]
    dispatcher: String,
    /// Sub-loop threads per worker (0: the worker's main loop serves).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Seconds workers get to finish after SIGTERM before SIGKILL.
    #[arg(long, default_value_t = 5)]
    grace: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Refuse a bad backend name here, once, not in every worker.
    if let Err(e) = AnyDispatcher::by_name(&cli.dispatcher) {
        eprintln!("error: --dispatcher: {e}");
        return ExitCode::from(2);
    }
    cli::main(|| run(cli))
}

fn run(cli: Cli) -> std::io::Result<()> {
    let listener = match &cli.unix {
        Some(path) => Listener::bind_unix(path, DEFAULT_BACKLOG)?,
        None => Listener::bind_tcp(&[cli.addr], false, DEFAULT_BACKLOG)?,
    };
    let addr = listener.local_addr().clone();
    println!("listening on {addr} (dispatcher: {})", cli.dispatcher);
    std::io::stdout().flush()?;
    let grace = Duration::from_secs(cli.grace);
    Master::new(listener, cli.processes.into()).grace(grace).run(|ctx| {
        let mut ev = EventLoop::with_backend(&cli.dispatcher)?;
        ctx.stop_on_sigterm(&mut ev)?;
        let echo = Callbacks::new().on_message(|ev, conn, input| {
            let _ = conn.send(ev, input.peek());
            input.consume_all();
        });
        let index = ctx.index();
        let server = Server::builder(addr.clone(), echo)
            .listener(ctx.into_listener())
            .threads(cli.threads)
            .name(format!("prefork-{index}"))
            .start(&mut ev)?;
        log::info!("worker {index} (pid {}) serving {addr}", muxloop::sys::getpid());
        ev.run()?;
        // Leave the master time to see a clean exit before its own deadline.
        let summary = server.stop(&mut ev, grace / 2)?;
        log::info!("worker {index}: stopped ({summary})");
        Ok(())
    })?;
    log::info!("master: bye");
    Ok(())
}
