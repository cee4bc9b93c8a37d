//! The server half of muduo's pingpong throughput test: echo everything, as
//! fast as possible.
//!
//! ```text
//! cargo run --release --example pingpong_server -- [ADDR] [--threads N] [--dispatcher NAME] [--reuse-port]   # default 127.0.0.1:9003
//! cargo run --release --example pingpong_client -- 127.0.0.1:9003 --sessions 100 --block 16384 --seconds 10
//! ```
//! Unlike `echo` there is no output limit: pingpong clients keep exactly one
//! block in flight, so output can never pile up.

use std::error::Error;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use clap::Parser;
use muxloop::{AnyDispatcher, Callbacks, EventLoop, Server};

/// The server half of muduo's pingpong throughput test: echoes everything.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on: HOST:PORT, :PORT or PORT
    #[arg(value_name = "ADDR", default_value = "127.0.0.1:9003", value_parser = parse_addr)]
    addr: SocketAddr,
    /// Sub-loop threads (0: everything on one loop)
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
    /// The I/O multiplexer
    #[arg(long, value_name = "NAME", default_value = muxloop::default_dispatcher_name(),
          value_parser = clap::builder::PossibleValuesParser::new(AnyDispatcher::names()), ignore_case = true)]
    dispatcher: String,
    /// Set SO_REUSEPORT, so several servers can share the port
    #[arg(long)]
    reuse_port: bool,
}

/// `HOST:PORT`, `:PORT` or `PORT` (host 127.0.0.1).
fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.strip_prefix(':').unwrap_or(s).parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let mut addrs = s.to_socket_addrs().map_err(|e| format!("expected HOST:PORT, :PORT or PORT ({e})"))?;
    addrs.next().ok_or_else(|| format!("{s} resolves to no address"))
}

fn run(cli: Cli) -> Result<(), Box<dyn Error>> {
    let mut ev = EventLoop::<AnyDispatcher>::with_backend(&cli.dispatcher)?;
    let callbacks = Callbacks::new().on_message(|ev, conn, input| {
        let _ = conn.send(ev, input.peek());
        input.consume_all();
    });
    let server = Server::builder(cli.addr, callbacks)
        .output_limit(None)
        .threads(cli.threads)
        .reuse_port(cli.reuse_port)
        .name("pingpong")
        .start(&mut ev)?;
    println!("listening on {} (dispatcher: {})", server.local_addr(), ev.dispatcher_name());
    std::io::stdout().flush()?;
    // Ctrl-C or SIGTERM: stop gracefully (a second one exits at once).
    ev.run_until_signal(&[libc::SIGINT, libc::SIGTERM])?;
    let summary = server.stop(&mut ev, std::time::Duration::from_secs(5))?;
    println!("stopped: {summary}");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
