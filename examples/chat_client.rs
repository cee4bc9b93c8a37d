//! Chat client: lines typed on stdin go to the chat server; lines from the
//! other clients are printed as they arrive.
//!
//! ```text
//! cargo run --example chat_client -- [ADDR | --unix PATH] [--copy] [--dispatcher NAME]   # default 127.0.0.1:9002
//! printf 'hello\nbye\n' | cargo run --example chat_client                                 # stdin from a pipe: splice
//! ```
//! One event loop waits on stdin and the socket together, as the course's
//! client does with `poll`: no reader thread. End of stdin half-closes the
//! connection; the program then prints what still arrives until the server
//! closes, or at most 10 s.
//!
//! How stdin's bytes reach the socket depends on what stdin is:
//! * **A pipe** (`producer | chat_client`): `splice(2)` moves them from the
//!   pipe to the socket inside the kernel; they never enter this process.
//!   splice only works when one side is a pipe, because a pipe *is* the
//!   kernel's page queue that splice moves pages in and out of (two sockets,
//!   or a terminal and a socket, have no such queue between them). stdin is
//!   watched for readable; when a splice moves nothing although stdin was
//!   readable, the socket is full: stdin is paused and a second fd for the
//!   socket ([`sys::dup`]) is watched for writable until there is room again.
//! * **A terminal, or `--copy`**: a [`PipeReader`] reads stdin into a buffer
//!   and each chunk is sent; while the connection's output is full stdin is
//!   paused (backpressure from the server reaches the keyboard or the pipe's
//!   writer). `--copy` forces this path with a pipe too, for comparison.
//! * **A regular file** (`< file`): read whole and sent (epoll refuses files).

#[path = "common/cli.rs"]
mod cli;

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use clap::Parser;
use muxloop::{
    AnyDispatcher, Buffer, Client, ConnectOptions, Connection, EventLoop, Handler, Interest, Mode,
    PipeReader, StreamAddr, sys,
};

#[cfg(muxloop_linux)]
use muxloop::sys::splice;

/// Without `muxloop_linux` (not Linux, or `--cfg muxloop_portable`) there is
/// no `splice(2)`: the copy path is used instead.
#[cfg(not(muxloop_linux))]
fn splice(_: std::os::fd::BorrowedFd<'_>, _: std::os::fd::BorrowedFd<'_>, _: usize) -> io::Result<usize> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "splice(2) is Linux-only"))
}

/// After our half-close, how long to keep printing before giving up on the server.
const LINGER: Duration = Duration::from_secs(10);
/// Bytes one splice may move.
const SPLICE_CHUNK: usize = 64 * 1024;
/// Splices per stdin wake-up, so a fast producer cannot starve the socket's reads.
const SPLICES_PER_WAKEUP: usize = 16;
const STDIN: i32 = libc::STDIN_FILENO;

/// Chat client: stdin lines go to the server, other clients' lines are printed.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Server address: HOST:PORT, :PORT or PORT
    #[arg(value_name = "ADDR", default_value = "127.0.0.1:9002", value_parser = cli::parse_addr)]
    addr: SocketAddr,
    /// Connect to this Unix domain socket instead (`@name`: an abstract name)
    #[arg(long, value_name = "PATH", conflicts_with = "addr")]
    unix: Option<String>,
    /// Read stdin into a buffer and send it, even when it is a pipe (no splice)
    #[arg(long)]
    copy: bool,
    /// The I/O multiplexer
    #[arg(long, value_name = "NAME", default_value = muxloop::default_dispatcher_name(),
          value_parser = clap::builder::PossibleValuesParser::new(AnyDispatcher::names()), ignore_case = true)]
    dispatcher: String,
}

/// How stdin reaches the socket.
enum Stdin {
    Reader(PipeReader),
    Splice(Rc<RefCell<Splice>>),
}

/// The connection's side of the client: print what arrives, feed stdin in.
struct Chat {
    copy: bool,
    stdin: Option<Stdin>,
    /// How the client ended, for `main`.
    outcome: Rc<RefCell<Option<Result<(), String>>>>,
}

impl Chat {
    fn fail(&self, ev: &mut EventLoop, conn: &Connection, why: String) {
        *self.outcome.borrow_mut() = Some(Err(why));
        conn.force_close(ev);
    }
}

/// End of stdin: half-close (the server sees EOF after our last byte), then
/// keep printing until the server closes, within [`LINGER`].
fn half_close(ev: &mut EventLoop, conn: &Connection) {
    conn.shutdown(ev);
    let conn = conn.clone();
    ev.run_after(LINGER, move |ev| {
        if conn.state() != muxloop::net::State::Disconnected {
            log::warn!("the server did not close within {LINGER:?} of our half-close; closing");
            conn.force_close(ev);
        }
    });
}

impl Handler for Chat {
    fn on_connect(&mut self, ev: &mut EventLoop, conn: &Connection) {
        eprintln!(
            "*** connected to {} ({}); type lines, Ctrl-D to leave",
            conn.peer_addr(),
            ev.dispatcher_name()
        );
        match sys::is_fifo(io::stdin().as_fd()) {
            Ok(true) if !self.copy && cfg!(muxloop_linux) => match Splice::start(ev, conn) {
                Ok(splice) => self.stdin = Some(Stdin::Splice(splice)),
                Err(e) => self.fail(ev, conn, format!("stdin: cannot splice: {e}")),
            },
            Ok(_) => self.start_reader(ev, conn),
            Err(e) => self.fail(ev, conn, format!("stdin: {e}")),
        }
    }

    fn on_message(&mut self, _: &mut EventLoop, _: &Connection, input: &mut Buffer) {
        let mut out = io::stdout().lock();
        let _ = out.write_all(input.peek());
        let _ = out.flush();
        input.consume_all();
    }

    fn on_write_complete(&mut self, ev: &mut EventLoop, _: &Connection) {
        if let Some(Stdin::Reader(stdin)) = &self.stdin
            && let Err(e) = stdin.resume(ev)
        {
            log::warn!("cannot resume stdin: {e}");
        }
    }

    fn on_close(&mut self, ev: &mut EventLoop, conn: &Connection) {
        eprintln!("*** disconnected from {}", conn.peer_addr());
        match self.stdin.take() {
            Some(Stdin::Reader(stdin)) => stdin.close(ev),
            // Already borrowed: we are inside its own `end`, which stops it.
            Some(Stdin::Splice(splice)) => {
                if let Ok(mut splice) = splice.try_borrow_mut() {
                    splice.stop(ev);
                }
            }
            None => {}
        }
        self.outcome.borrow_mut().get_or_insert(Ok(()));
        ev.quit();
    }
}

impl Chat {
    /// The read + send path: a terminal, `--copy`, or a regular file.
    fn start_reader(&mut self, ev: &mut EventLoop, conn: &Connection) {
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
                half_close(ev, &at_end);
            },
        );
        match reader {
            Ok(reader) => self.stdin = Some(Stdin::Reader(reader)),
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                // A regular file: epoll refuses it, and it cannot block anyway.
                let mut all = Vec::new();
                if let Err(e) = io::stdin().read_to_end(&mut all) {
                    return self.fail(ev, conn, format!("stdin: {e}"));
                }
                let _ = conn.send_owned(ev, all);
                half_close(ev, conn);
            }
            Err(e) => self.fail(ev, conn, format!("stdin: {e}")),
        }
    }
}

/// stdin (a pipe) spliced into the connection's socket.
struct Splice {
    conn: Connection,
    /// A second fd for the socket, watched for writable while the socket is
    /// full (the connection's own registration is the connection's). `None`
    /// once stdin has ended: it must not keep the socket open.
    socket: Option<OwnedFd>,
    waiting_for_room: bool,
    stdin_watched: bool,
    moved: u64,
}

impl Splice {
    fn start(ev: &mut EventLoop, conn: &Connection) -> io::Result<Rc<RefCell<Splice>>> {
        let socket = conn.with_fd(sys::dup)?;
        let splice = Rc::new(RefCell::new(Splice {
            conn: conn.clone(),
            socket: Some(socket),
            waiting_for_room: false,
            stdin_watched: true,
            moved: 0,
        }));
        let me = Rc::clone(&splice);
        ev.register(STDIN, Interest::READABLE, Mode::Level, move |ev, _| Splice::on_stdin(ev, &me))?;
        log::debug!("splicing stdin (a pipe) into the socket");
        Ok(splice)
    }

    fn on_stdin(ev: &mut EventLoop, me: &Rc<RefCell<Splice>>) {
        let mut this = me.borrow_mut();
        let Some(socket) = this.socket.as_ref().map(|s| s.as_raw_fd()) else { return };
        for i in 0..SPLICES_PER_WAKEUP {
            let moved = match &this.socket {
                Some(s) => splice(io::stdin().as_fd(), s.as_fd(), SPLICE_CHUNK),
                None => return,
            };
            match moved {
                Ok(0) => return this.end(ev, Ok(())),
                Ok(n) => this.moved += n as u64,
                // stdin was readable, yet nothing moved: the socket is full.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && i == 0 => {
                    return this.wait_for_room(ev, socket, me);
                }
                // Moved some, then stdin ran dry: wait for it to be readable again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return this.end(ev, Err(e)),
            }
        }
    }

    /// Pauses stdin and watches the socket's second fd for room.
    fn wait_for_room(&mut self, ev: &mut EventLoop, socket: i32, me: &Rc<RefCell<Splice>>) {
        if let Err(e) = ev.modify(STDIN, Interest::NONE, Mode::Level) {
            return self.end(ev, Err(e));
        }
        let me = Rc::clone(me);
        let registered = ev.register(socket, Interest::WRITABLE, Mode::Level, move |ev, _| {
            let mut this = me.borrow_mut();
            // Room (or an error, which the next splice reports): back to stdin.
            this.unwatch_socket(ev);
            if let Err(e) = ev.modify(STDIN, Interest::READABLE, Mode::Level) {
                this.end(ev, Err(e));
            }
        });
        match registered {
            Ok(()) => {
                log::debug!("socket full after {} bytes spliced; waiting for room", self.moved);
                self.waiting_for_room = true;
            }
            Err(e) => self.end(ev, Err(e)),
        }
    }

    fn unwatch_socket(&mut self, ev: &mut EventLoop) {
        if std::mem::take(&mut self.waiting_for_room)
            && let Some(socket) = &self.socket
        {
            let _ = ev.deregister(socket.as_raw_fd());
        }
    }

    /// Stops watching stdin and the socket and lets go of the second fd.
    fn stop(&mut self, ev: &mut EventLoop) {
        self.unwatch_socket(ev);
        if std::mem::take(&mut self.stdin_watched) {
            let _ = ev.deregister(STDIN);
        }
        self.socket = None;
    }

    /// stdin ended (or failed): every byte is in the socket, so half-close now.
    fn end(&mut self, ev: &mut EventLoop, result: io::Result<()>) {
        match result {
            Ok(()) => log::debug!("stdin ended; {} bytes spliced", self.moved),
            Err(e) => log::warn!("stdin: splice failed after {} bytes: {e}", self.moved),
        }
        self.stop(ev);
        half_close(ev, &self.conn.clone());
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let mut ev = EventLoop::with_backend(&cli.dispatcher).map_err(|e| e.to_string())?;
    let outcome: Rc<RefCell<Option<Result<(), String>>>> = Rc::default();
    let (for_client, for_error, copy) = (Rc::clone(&outcome), Rc::clone(&outcome), cli.copy);
    let addr = match &cli.unix {
        Some(path) => StreamAddr::Unix(path.as_str().into()),
        None => StreamAddr::Inet(cli.addr),
    };
    let factory = move |_: &Connection| Chat { copy, stdin: None, outcome: Rc::clone(&for_client) };
    let shown = addr.clone();
    Client::new(addr, factory)
        .options(ConnectOptions { retries: 3, ..ConnectOptions::default() })
        .on_connect_error(move |ev, e| {
            *for_error.borrow_mut() = Some(Err(format!("cannot connect to {shown}: {e}")));
            ev.quit();
        })
        .connect(&mut ev);
    ev.run().map_err(|e| e.to_string())?;
    let result = outcome.borrow_mut().take();
    result.unwrap_or(Ok(()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::main(|| run(cli))
}
