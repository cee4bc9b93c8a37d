//! Chat client: lines typed on stdin go to the chat server; lines from the
//! other clients are printed as they arrive.
//!
//! ```text
//! cargo run --example chat_client -- [ADDR] [--dispatcher NAME]     # default 127.0.0.1:9002
//! printf 'hello\nbye\n' | cargo run --example chat_client               # stdin from a pipe
//! ```
//! One event loop waits on stdin and the socket together, as the course's
//! client does with `poll`: no reader thread. Stdin is a
//! [`PipeReader`](muxloop::PipeReader) whose bytes are sent as they come;
//! while the connection's output is full, stdin is paused (backpressure
//! from the server reaches the keyboard, or the pipe's writer). End of stdin
//! half-closes the connection; the program ends when the server closes it.
//! A regular file as stdin (`< file`) is sent whole: epoll refuses files.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::rc::Rc;

use clap::Parser;
use muxloop::{AnyDispatcher, Buffer, Client, ConnectOptions, Connection, EventLoop, Handler, PipeReader};

/// Chat client: stdin lines go to the server, other clients' lines are printed.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Server address: HOST:PORT, :PORT or PORT
    #[arg(value_name = "ADDR", default_value = "127.0.0.1:9002", value_parser = parse_addr)]
    addr: SocketAddr,
    /// The I/O multiplexer
    #[arg(long, value_name = "NAME", default_value = muxloop::default_dispatcher_name(),
          value_parser = clap::builder::PossibleValuesParser::new(AnyDispatcher::names()), ignore_case = true)]
    dispatcher: String,
}

/// `HOST:PORT`, `:PORT` or `PORT` (host 127.0.0.1).
fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.strip_prefix(':').unwrap_or(s).parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let mut addrs = s.to_socket_addrs().map_err(|e| format!("expected HOST:PORT, :PORT or PORT ({e})"))?;
    addrs.next().ok_or_else(|| format!("{s} resolves to no address"))
}

/// The connection's side of the client: print what arrives, feed stdin in.
struct Chat {
    stdin: Option<PipeReader<AnyDispatcher>>,
    /// How the client ended, for `main`.
    outcome: Rc<RefCell<Option<Result<(), String>>>>,
}

impl Handler<AnyDispatcher> for Chat {
    fn on_connect(&mut self, ev: &mut EventLoop<AnyDispatcher>, conn: &Connection<AnyDispatcher>) {
        eprintln!(
            "*** connected to {} ({}); type lines, Ctrl-D to leave",
            conn.peer_addr(),
            ev.dispatcher_name()
        );
        let (to_server, at_end) = (conn.clone(), conn.clone());
        let reader = PipeReader::stdin(
            ev,
            move |ev, reader, bytes| {
                let _ = to_server.send(ev, bytes);
                if to_server.is_output_full()
                    && let Err(e) = reader.pause(ev)
                {
                    log::warn!("cannot pause stdin: {e}");
                }
            },
            move |ev, _, result| {
                if let Err(e) = result {
                    log::warn!("stdin: {e}");
                }
                at_end.shutdown(ev); // our half-close; the server closes its side
            },
        );
        match reader {
            Ok(reader) => self.stdin = Some(reader),
            Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
                // A regular file: epoll refuses it, and it cannot block anyway.
                let mut all = Vec::new();
                if let Err(e) = std::io::stdin().read_to_end(&mut all) {
                    *self.outcome.borrow_mut() = Some(Err(format!("stdin: {e}")));
                }
                let _ = conn.send_owned(ev, all);
                conn.shutdown(ev);
            }
            Err(e) => {
                *self.outcome.borrow_mut() = Some(Err(format!("stdin: {e}")));
                conn.force_close(ev);
            }
        }
    }

    fn on_message(
        &mut self,
        _: &mut EventLoop<AnyDispatcher>,
        _: &Connection<AnyDispatcher>,
        input: &mut Buffer,
    ) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(input.peek());
        let _ = out.flush();
        input.consume_all();
    }

    fn on_write_complete(&mut self, ev: &mut EventLoop<AnyDispatcher>, _: &Connection<AnyDispatcher>) {
        if let Some(stdin) = &self.stdin
            && let Err(e) = stdin.resume(ev)
        {
            log::warn!("cannot resume stdin: {e}");
        }
    }

    fn on_close(&mut self, ev: &mut EventLoop<AnyDispatcher>, conn: &Connection<AnyDispatcher>) {
        eprintln!("*** disconnected from {}", conn.peer_addr());
        if let Some(stdin) = self.stdin.take() {
            stdin.close(ev);
        }
        self.outcome.borrow_mut().get_or_insert(Ok(()));
        ev.quit();
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let mut ev = EventLoop::<AnyDispatcher>::with_backend(&cli.dispatcher).map_err(|e| e.to_string())?;
    let outcome: Rc<RefCell<Option<Result<(), String>>>> = Rc::default();
    let (for_client, for_error, addr) = (Rc::clone(&outcome), Rc::clone(&outcome), cli.addr);
    let factory = move |_: &Connection<AnyDispatcher>| Chat { stdin: None, outcome: Rc::clone(&for_client) };
    Client::new(addr, factory)
        .options(ConnectOptions { retries: 3, ..ConnectOptions::default() })
        .on_connect_error(move |ev, e| {
            *for_error.borrow_mut() = Some(Err(format!("cannot connect to {addr}: {e}")));
            ev.quit();
        })
        .connect(&mut ev);
    ev.run().map_err(|e| e.to_string())?;
    let result = outcome.borrow_mut().take();
    result.unwrap_or(Ok(()))
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
