//! Listener hand-off: an echo server that a newer copy of itself replaces
//! without refusing a single connection (nginx's binary upgrade, done with
//! fd passing).
//!
//! ```text
//! cargo run --example handoff -- [ADDR] --control PATH [--dispatcher NAME] [--grace SECS]
//! ```
//! The first instance binds ADDR (default 127.0.0.1:9006) and listens for a
//! successor on the Unix socket PATH. Start a second instance with the same
//! `--control`: it connects there and asks (`TAKE`); the first sends its
//! listening socket over with `SCM_RIGHTS` ([`Connection::send_fds`]) and
//! then stops gracefully: it accepts nothing more, finishes the connections
//! it has, and exits 0. The second serves on the very same socket, so
//! connections waiting in its backlog are accepted by the new process:
//! clients never see a refusal. It then takes over the control path for the
//! next upgrade. With no live instance on PATH, it binds ADDR itself.

#[path = "common/cli.rs"]
mod cli;

use std::cell::RefCell;
use std::error::Error;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Parser;
use log::{info, warn};
use muxloop::{
    AnyDispatcher, Buffer, Client, ConnectOptions, Connection, EventLoop, Handler, Listener, Server, UnixAddr,
};

/// Echo server that hands its listening socket to a successor.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on when there is no instance to take over from
    #[arg(value_name = "ADDR", default_value = "127.0.0.1:9006", value_parser = cli::parse_addr)]
    addr: SocketAddr,
    /// Unix socket where a running instance waits for its successor
    #[arg(long, value_name = "PATH")]
    control: PathBuf,
    /// The I/O multiplexer
    #[arg(long, value_name = "NAME", default_value = muxloop::default_dispatcher_name(),
          value_parser = clap::builder::PossibleValuesParser::new(AnyDispatcher::names()), ignore_case = true)]
    dispatcher: String,
    /// Seconds the old instance gives its connections to finish
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    grace: u64,
}

/// Echo, and at a stop, let each client finish (within `--grace`): a
/// request already on its way to the old instance still gets its answer.
struct Echo;

impl Handler for Echo {
    fn on_message(&mut self, ev: &mut EventLoop, conn: &Connection, input: &mut Buffer) {
        let _ = conn.send(ev, input.peek());
        input.consume_all();
    }

    fn wants_write_complete(&self) -> bool {
        false
    }

    fn on_server_stop(&mut self, _: &mut EventLoop, _: &Connection) {}
}

/// The predecessor's answer: the listener, passed as an fd.
#[derive(Default)]
struct Taken {
    fds: Vec<OwnedFd>,
    /// `Some` once the exchange is over: the listener, or `None` if there was
    /// nobody to take over from.
    outcome: Option<Option<OwnedFd>>,
}

/// Our side of the control exchange, as the successor.
struct Successor(Rc<RefCell<Taken>>);

impl Handler for Successor {
    fn on_connect(&mut self, ev: &mut EventLoop, conn: &Connection) {
        let _ = conn.send(ev, b"TAKE\n");
    }

    fn on_fds(&mut self, _: &mut EventLoop, _: &Connection, fds: Vec<OwnedFd>) {
        self.0.borrow_mut().fds.extend(fds);
    }

    fn on_message(&mut self, ev: &mut EventLoop, conn: &Connection, input: &mut Buffer) {
        if input.find_byte(b'\n').is_none() {
            return;
        }
        let mut taken = self.0.borrow_mut();
        let listener = taken.fds.pop();
        if input.peek() != b"LISTENER\n" || listener.is_none() {
            warn!("unexpected answer on the control socket: {:?}", String::from_utf8_lossy(input.peek()));
        }
        input.consume_all();
        taken.outcome = Some(listener);
        conn.force_close(ev);
    }

    fn on_close(&mut self, _: &mut EventLoop, _: &Connection) {
        self.0.borrow_mut().outcome.get_or_insert(None);
    }
}

/// Our side of the control exchange, as the running instance: hand the
/// listener to whoever asks, then leave.
struct Predecessor {
    listener: Rc<Listener>,
    handed_over: Rc<RefCell<bool>>,
}

impl Handler for Predecessor {
    fn on_message(&mut self, ev: &mut EventLoop, conn: &Connection, input: &mut Buffer) {
        if input.peek() != b"TAKE\n" {
            if input.len() >= 5 || input.find_byte(b'\n').is_some() {
                warn!("control: unexpected {:?}; closing", String::from_utf8_lossy(input.peek()));
                conn.force_close(ev);
            }
            return;
        }
        input.consume_all();
        match conn.send_fds(ev, b"LISTENER\n", &[self.listener.as_fd()]) {
            Ok(()) => {
                info!("handing the listener on {} to a successor", self.listener.local_addr());
                *self.handed_over.borrow_mut() = true;
                conn.close_after_flush(ev);
            }
            Err(e) => warn!("control: cannot pass the listener: {e}"),
        }
    }

    fn on_close(&mut self, ev: &mut EventLoop, _: &Connection) {
        if *self.handed_over.borrow() {
            ev.quit(); // the successor has the listener: stop
        }
    }
}

/// Asks a running instance for its listener; `None` if nobody answers.
fn take_over(ev: &mut EventLoop, control: &std::path::Path) -> Result<Option<TcpListener>, Box<dyn Error>> {
    let taken = Rc::new(RefCell::new(Taken::default()));
    let state = Rc::clone(&taken);
    let on_error = Rc::clone(&taken);
    Client::new(UnixAddr::from(control), move |_: &Connection| Successor(Rc::clone(&state)))
        .options(ConnectOptions { timeout: Duration::from_secs(2), ..ConnectOptions::default() })
        .on_connect_error(move |_, e| {
            info!("no instance to take over from ({e})");
            on_error.borrow_mut().outcome = Some(None);
        })
        .connect(ev);
    let deadline = Instant::now() + Duration::from_secs(10);
    while taken.borrow().outcome.is_none() {
        if Instant::now() > deadline {
            return Err("the running instance did not answer within 10 s".into());
        }
        ev.run_once(Some(Duration::from_millis(50)))?;
    }
    Ok(taken.borrow_mut().outcome.take().flatten().map(TcpListener::from))
}

/// Binds the control path, waiting for a predecessor to let go of it.
fn bind_control(ev: &mut EventLoop, cli: &Cli, listener: Listener) -> Result<Server, Box<dyn Error>> {
    let listener = Rc::new(listener);
    let handed_over = Rc::new(RefCell::new(false));
    let deadline = Instant::now() + Duration::from_secs(cli.grace + 5);
    loop {
        let (listener, handed_over) = (Rc::clone(&listener), Rc::clone(&handed_over));
        let factory = move |_: &Connection| Predecessor {
            listener: Rc::clone(&listener),
            handed_over: Rc::clone(&handed_over),
        };
        match Server::local_unix_builder(&cli.control, factory).name("control").start(ev) {
            Ok(server) => return Ok(server),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                ev.run_once(Some(Duration::from_millis(50)))?; // the predecessor is still leaving
            }
            Err(e) => return Err(format!("--control {}: {e}", cli.control.display()).into()),
        }
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn Error>> {
    let mut ev = EventLoop::with_backend(&cli.dispatcher)?;
    let (listener, origin) = match take_over(&mut ev, &cli.control)? {
        Some(inherited) => (Listener::from(inherited), "taken over"),
        None => (Listener::bind_tcp(&[cli.addr], false, 1024)?, "fresh"),
    };
    let addr = listener.local_addr().clone();
    let to_hand_over = listener.try_clone()?;
    // Serve first: connections queue in the backlog meanwhile, none is refused.
    let server = Server::builder(addr.clone(), |_: &Connection| Echo)
        .listener(listener)
        .name("echo")
        .start(&mut ev)?;
    let control = bind_control(&mut ev, &cli, to_hand_over)?;
    println!("listening on {addr} (dispatcher: {}, {origin})", ev.dispatcher_name());
    std::io::stdout().flush()?;
    // A successor taking over, or Ctrl-C/SIGTERM, ends the loop.
    ev.run_until_signal(&[muxloop::signal::SIGINT, muxloop::signal::SIGTERM])?;
    control.stop(&mut ev, Duration::from_secs(1))?;
    let summary = server.stop(&mut ev, Duration::from_secs(cli.grace))?;
    println!("stopped: {summary}");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::main(|| run(cli))
}
