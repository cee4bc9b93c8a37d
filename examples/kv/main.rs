//! A Redis-compatible key-value server (a RESP2 subset) on one event loop,
//! the way Redis itself runs: `PING`, `ECHO`, `SET`, `GET`, `DEL`, `EXISTS`,
//! `INCR`, `DBSIZE`, `FLUSHALL`, `QUIT` (and empty answers to `COMMAND`/
//! `CONFIG`, which redis-cli and redis-benchmark ask at start).
//!
//! ```text
//! cargo run --release --example kv -- [ADDR | --unix PATH] [--dispatcher NAME] [--reuse-port]   # default 127.0.0.1:6380
//! redis-cli -s /tmp/muxloop-kv.sock ping                                               # after: kv -- --unix /tmp/muxloop-kv.sock
//! redis-cli -p 6380 set greeting hello && redis-cli -p 6380 get greeting
//! redis-benchmark -p 6380 -t set,get -n 100000 -P 16 -q
//! ```
//! `--unix PATH` listens on a Unix domain socket instead of ADDR (`@name`:
//! a Linux abstract name; the socket file is removed on exit). There is no
//! `--processes N` mode (N > 1 is refused, exit status 2): the store lives
//! in one process, and forked workers would each keep a store of their own
//! that the others never see.
//!
//! What it shows:
//! * **Typed per-connection state** without `Send`: each connection's
//!   [`Handler`] owns its reply batch; the store is an `Rc<RefCell<..>>`
//!   shared by the handlers of one loop ([`Server::local_builder`]).
//! * **Pipelining with bounded output**: every complete command in the input
//!   is answered, replies batched into one send; once the queued output is
//!   full ([`Connection::is_output_full`]), the handler stops and leaves
//!   the rest of the input where it is. The connection stops reading, and
//!   offers the leftover commands again once the replies have drained. 300
//!   pipelined `GET`s of a 1 MB value never hold more than ~2 MB of replies.
//! * **Close after flush**: `QUIT` answers `+OK`, then closes once it is sent.

#[path = "../common/cli.rs"]
mod cli;
mod resp;

use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error;
use std::io::{IoSlice, Write};
use std::ops::Range;
use std::process::ExitCode;
use std::rc::Rc;

use clap::{CommandFactory, Parser};
use cli::ServerArgs;
use muxloop::{Buffer, Connection, Dispatcher, EventLoop, Handler, Server};
use resp::Parsed;

type Store = Rc<RefCell<HashMap<Vec<u8>, Rc<[u8]>>>>;

/// Replies larger than this are sent from the stored value, not copied into the batch.
const BIG_VALUE: usize = 16 * 1024;
/// The reply batch is sent once it reaches this size.
const BATCH: usize = 64 * 1024;

/// One client connection.
struct Client {
    store: Store,
    /// Replies not sent yet (one send per batch of pipelined commands).
    batch: Vec<u8>,
}

impl Client {
    fn flush<D: Dispatcher + 'static>(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>) {
        if !self.batch.is_empty() {
            let _ = conn.send(ev, &self.batch);
            self.batch.clear();
        }
    }

    fn simple(&mut self, reply: &str) {
        self.batch.extend_from_slice(reply.as_bytes());
        self.batch.extend_from_slice(b"\r\n");
    }

    fn bulk_header(&mut self, len: usize) {
        self.batch.extend_from_slice(format!("${len}\r\n").as_bytes());
    }

    /// Runs one command; `Ok(false)` means close after the reply (QUIT).
    fn execute<D: Dispatcher + 'static>(
        &mut self,
        ev: &mut EventLoop<D>,
        conn: &Connection<D>,
        buf: &[u8],
        args: &[Range<usize>],
    ) -> bool {
        let Some(name) = args.first() else { return true };
        let arg = |i: usize| &buf[args[i].clone()];
        let command = String::from_utf8_lossy(&buf[name.clone()]).to_ascii_uppercase();
        let arity_ok = match command.as_str() {
            "PING" => args.len() <= 2,
            "ECHO" | "GET" | "INCR" => args.len() == 2,
            "SET" => args.len() == 3,
            "DEL" | "EXISTS" => args.len() >= 2,
            _ => true,
        };
        if !arity_ok {
            self.simple(&format!("-ERR wrong number of arguments for '{}' command", command.to_lowercase()));
            return true;
        }
        match command.as_str() {
            "PING" if args.len() == 2 => self.bulk(ev, conn, arg(1)),
            "PING" => self.simple("+PONG"),
            "ECHO" => self.bulk(ev, conn, arg(1)),
            "SET" => {
                self.store.borrow_mut().insert(arg(1).to_vec(), Rc::from(arg(2)));
                self.simple("+OK");
            }
            "GET" => {
                let value = self.store.borrow().get(arg(1)).cloned();
                match value {
                    Some(value) => self.bulk(ev, conn, &value),
                    None => self.simple("$-1"),
                }
            }
            "DEL" | "EXISTS" => {
                let mut store = self.store.borrow_mut();
                let keys = args[1..].iter().map(|r| &buf[r.clone()]);
                let n = if command == "DEL" {
                    keys.filter(|k| store.remove(*k).is_some()).count()
                } else {
                    keys.filter(|k| store.contains_key(*k)).count()
                };
                drop(store);
                self.simple(&format!(":{n}"));
            }
            "INCR" => {
                let mut store = self.store.borrow_mut();
                let current = store
                    .get(arg(1))
                    .map(|v| std::str::from_utf8(v).ok().and_then(|s| s.parse::<i64>().ok()));
                match current.unwrap_or(Some(0)).and_then(|n| n.checked_add(1)) {
                    Some(n) => {
                        store.insert(arg(1).to_vec(), Rc::from(n.to_string().as_bytes()));
                        drop(store);
                        self.simple(&format!(":{n}"));
                    }
                    None => {
                        drop(store);
                        self.simple("-ERR value is not an integer or out of range");
                    }
                }
            }
            "DBSIZE" => {
                let n = self.store.borrow().len();
                self.simple(&format!(":{n}"));
            }
            "FLUSHALL" | "FLUSHDB" => {
                self.store.borrow_mut().clear();
                self.simple("+OK");
            }
            "COMMAND" | "CONFIG" => self.simple("*0"),
            "QUIT" => {
                self.simple("+OK");
                return false;
            }
            _ => self.simple(&format!("-ERR unknown command '{}'", command.to_lowercase())),
        }
        true
    }

    /// A bulk string reply. A large value goes out with one vectored send
    /// (header, value, CRLF) instead of being copied into the batch.
    fn bulk<D: Dispatcher + 'static>(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>, value: &[u8]) {
        self.bulk_header(value.len());
        if value.len() < BIG_VALUE {
            self.batch.extend_from_slice(value);
            self.batch.extend_from_slice(b"\r\n");
            return;
        }
        let _ =
            conn.send_vectored(ev, &[IoSlice::new(&self.batch), IoSlice::new(value), IoSlice::new(b"\r\n")]);
        self.batch.clear();
    }
}

impl<D: Dispatcher + 'static> Handler<D> for Client {
    fn on_message(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>, input: &mut Buffer) {
        loop {
            if self.batch.len() >= BATCH {
                self.flush(ev, conn);
            }
            if conn.is_output_full() {
                break; // the rest is offered again once the replies drain
            }
            match resp::parse(input.peek()) {
                Parsed::Incomplete => break,
                Parsed::Error(message) => {
                    self.simple(&format!("-ERR {message}"));
                    self.flush(ev, conn);
                    input.consume_all();
                    conn.close_after_flush(ev);
                    return;
                }
                Parsed::Command { args, len } => {
                    let keep_open = self.execute(ev, conn, input.peek(), &args);
                    input.consume(len);
                    if !keep_open {
                        self.flush(ev, conn);
                        conn.close_after_flush(ev);
                        return;
                    }
                }
            }
        }
        self.flush(ev, conn);
    }

    fn wants_write_complete(&self) -> bool {
        false
    }
}

/// A Redis-compatible key-value server (RESP2 subset) on one event loop.
#[derive(Parser)]
#[command(
    name = "kv",
    version,
    mut_arg("addr", |a| a.default_value("127.0.0.1:6380")),
    mut_arg("threads", |a| a.help("Must be 0: the store lives on one loop, like Redis'")),
    mut_arg("processes", |a| a.help("Must be 0 or 1: the store lives in one process")),
)]
struct Cli {
    // [ADDR | --unix PATH] [--threads N] [--processes N] [--dispatcher NAME] [--reuse-port]
    #[command(flatten)]
    server: ServerArgs,
}

fn run(cli: Cli) -> Result<(), Box<dyn Error>> {
    let mut ev = EventLoop::with_backend(&cli.server.dispatcher)?;
    let store = Store::default();
    // Not `Send` (the store is an `Rc`): a local builder, all on this loop.
    let factory = move |_: &Connection| Client { store: Rc::clone(&store), batch: Vec::new() };
    let builder = match &cli.server.unix {
        Some(path) => Server::local_unix_builder(path, factory),
        None => Server::local_builder(cli.server.addr, factory),
    };
    let server = builder.reuse_port(cli.server.reuse_port).name("kv").start(&mut ev)?;
    println!("listening on {} (dispatcher: {})", server.local_addr(), ev.dispatcher_name());
    std::io::stdout().flush()?;
    // Ctrl-C or SIGTERM: stop gracefully (a second one exits at once).
    ev.run_until_signal(&[muxloop::signal::SIGINT, muxloop::signal::SIGTERM])?;
    let summary = server.stop(&mut ev, std::time::Duration::from_secs(5))?;
    println!("stopped: {summary}");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.server.threads > 0 {
        Cli::command()
            .error(
                clap::error::ErrorKind::ValueValidation,
                "--threads: kv keeps its store on one loop, like Redis (use --threads 0)",
            )
            .exit();
    }
    if cli.server.processes > 1 {
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--processes: kv keeps one store in one process; --processes would split it into stores \
                 that disagree: use --threads 0 (one loop, like Redis)",
            )
            .exit();
    }
    cli::main(|| run(cli))
}
