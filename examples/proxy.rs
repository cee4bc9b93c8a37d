//! A TCP relay built directly on `EventLoop` + `muxloop::sys`: the zero-copy
//! example.
//!
//! ```text
//! cargo run --release --example proxy -- LISTEN UPSTREAM [--copy|--splice] [--processes N] [--dispatcher NAME]
//! cargo run --release --example proxy -- 127.0.0.1:9100 127.0.0.1:9000 --splice
//! ```
//!
//! Every accepted client gets a non-blocking connect to UPSTREAM; bytes then
//! flow both ways until both directions have ended.
//!
//! * `--copy` (default) moves bytes through a [`Buffer`]: `recv` copies them
//!   from the kernel into user memory, `send` copies them back.
//! * `--splice` never lets them leave the kernel: `splice(2)` moves socket ->
//!   pipe -> socket (a pipe is the kernel's in-memory page queue, and splice
//!   can only move pages into or out of a pipe), non-blocking, with
//!   `SPLICE_F_MOVE`, pipes grown to 1 MiB with `F_SETPIPE_SZ`.
//!
//! **Backpressure, both ways**: a direction stops reading its source while
//! more than a bound is queued for its destination (the buffer's length, or
//! the pipe's contents), so a slow reader on one side slows the writer on the
//! other instead of growing memory. **Half-close**: EOF from one side becomes
//! `shutdown(Write)` on the other once what was queued has been written; the
//! other direction keeps flowing (a client may send a request, shut down its
//! write side, and still read the whole answer).
//!
//! SIGINT/SIGTERM stop the relay through [`EventLoop::on_signal`] and print
//! the byte counts. `--processes N` (N > 1) binds once and forks N workers
//! that relay from the shared listener ([`muxloop::process`]), each printing
//! its own counts when the master stops them. There is no `--unix`: LISTEN
//! and UPSTREAM are both positional, and an optional first positional
//! before a required one cannot be parsed unambiguously.

#[path = "common/cli.rs"]
mod cli;

use std::cell::RefCell;
use std::io;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use clap::Parser;
use log::{debug, info, warn};
use muxloop::buffer::Buffer;
use muxloop::process::Master;
use muxloop::{AnyDispatcher, Dispatcher, Event, EventLoop, Interest, Listener, Mode, sys};

#[cfg(muxloop_linux)]
use muxloop::sys::splice;

/// Without `muxloop_linux` (not Linux, or `--cfg muxloop_portable`) there is
/// no `splice(2)`: the copy path is used instead.
#[cfg(not(muxloop_linux))]
fn splice(_: std::os::fd::BorrowedFd<'_>, _: std::os::fd::BorrowedFd<'_>, _: usize) -> io::Result<usize> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "splice(2) is Linux-only"))
}

/// How bytes get from one socket to the other.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Relay {
    /// Through a user-space `Buffer` (`recv` + `send`).
    Copy,
    /// Through a kernel pipe (`splice` in, `splice` out).
    Splice,
}

/// What [`start`] needs.
#[derive(Copy, Clone, Debug)]
pub struct Config {
    /// Where clients connect.
    pub listen: SocketAddr,
    /// Where each client's bytes go.
    pub upstream: SocketAddr,
    /// Copy or splice.
    pub relay: Relay,
    /// Bytes queued towards one side above which the other side is not read
    /// (copy mode; splice mode uses the pipe's size).
    pub high_water: usize,
    /// Pipe size asked for in splice mode.
    pub pipe_size: usize,
}

impl Config {
    /// The defaults: 256 KiB high-water mark, 1 MiB pipes.
    pub fn new(listen: SocketAddr, upstream: SocketAddr, relay: Relay) -> Config {
        Config { listen, upstream, relay, high_water: 256 * 1024, pipe_size: 1024 * 1024 }
    }
}

/// Counters for the summary line.
#[derive(Copy, Clone, Debug, Default)]
pub struct Totals {
    /// Clients accepted.
    pub accepted: u64,
    /// Sessions that ended (either way).
    pub closed: u64,
    /// Sessions that ended with an error (reset, refused upstream...).
    pub failed: u64,
    /// Bytes client -> upstream.
    pub upstream_bytes: u64,
    /// Bytes upstream -> client.
    pub client_bytes: u64,
}

/// One direction's queue: a buffer, or a pipe and how much it holds.
#[cfg_attr(not(muxloop_linux), allow(dead_code))] // no splice there
enum Queue {
    Copy(Buffer),
    Splice { read: OwnedFd, write: OwnedFd, held: usize, capacity: usize, maybe_full: bool },
}

/// Bytes flowing from `src` to `dst` (indexes into `Session::fds`).
struct Direction {
    src: usize,
    dst: usize,
    queue: Queue,
    high_water: usize,
    /// The source said EOF.
    eof: bool,
    /// We sent FIN to the destination.
    shut: bool,
    moved: u64,
}

impl Direction {
    fn queued(&self) -> usize {
        match &self.queue {
            Queue::Copy(buffer) => buffer.len(),
            Queue::Splice { held, .. } => *held,
        }
    }

    /// Whether the source should be read now (the backpressure rule).
    fn wants_read(&self) -> bool {
        match &self.queue {
            Queue::Copy(buffer) => !self.eof && buffer.len() < self.high_water,
            // `maybe_full`: a pipe can fill up before `capacity` bytes (it
            // holds page fragments), and splice then says EAGAIN like an empty
            // socket would; wait until some of it has been written out.
            Queue::Splice { held, capacity, maybe_full, .. } => !self.eof && !maybe_full && held < capacity,
        }
    }

    fn done(&self) -> bool {
        self.shut
    }

    /// One step of the relay for what the event reported: write what is
    /// queued if `dst` has room, read once if `src` has data, and write
    /// what was just read at once. One system call per report and side:
    /// level-triggered, the backend reports again while data or room is
    /// left, so looping until `EAGAIN` would only add a failing call.
    fn pump(&mut self, fds: &[OwnedFd; 2], src_ready: bool, dst_ready: bool) -> io::Result<()> {
        let (src, dst) = (fds[self.src].as_fd(), fds[self.dst].as_fd());
        if dst_ready {
            self.flush(dst)?;
        }
        if src_ready && self.wants_read() && self.fill(src)? > 0 {
            self.flush(dst)?;
        }
        if self.eof && self.queued() == 0 && !self.shut {
            // Everything the source sent has been written: pass its EOF on.
            self.shut = true;
            match sys::shutdown(dst, Shutdown::Write) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// One write of what is queued; `WouldBlock` and `EINTR` leave it for
    /// the next report.
    fn flush(&mut self, dst: BorrowedFd<'_>) -> io::Result<()> {
        let result = match &mut self.queue {
            Queue::Copy(buffer) if !buffer.is_empty() => buffer.send_fd(dst),
            Queue::Splice { read, held, .. } if *held > 0 => splice(read.as_fd(), dst, *held),
            _ => return Ok(()),
        };
        match result {
            Ok(n) => {
                self.moved += n as u64;
                if let Queue::Splice { held, maybe_full, .. } = &mut self.queue {
                    *held -= n;
                    *maybe_full = false;
                }
                Ok(())
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One read from the source; returns how many bytes it queued (0 at
    /// EOF, which it records, and when the source has nothing now).
    fn fill(&mut self, src: BorrowedFd<'_>) -> io::Result<usize> {
        let result = match &mut self.queue {
            Queue::Copy(buffer) => buffer.recv_fd(src),
            Queue::Splice { write, held, capacity, .. } => splice(src, write.as_fd(), *capacity - *held),
        };
        match result {
            Ok(0) => {
                self.eof = true;
                Ok(0)
            }
            Ok(n) => {
                if let Queue::Splice { held, .. } = &mut self.queue {
                    *held += n;
                }
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Queue::Splice { held, maybe_full, .. } = &mut self.queue {
                    *maybe_full = *held > 0;
                }
                Ok(0)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }
}

/// A client and its upstream connection.
struct Session {
    /// `[client, upstream]`.
    fds: [OwnedFd; 2],
    /// `[client -> upstream, upstream -> client]`.
    dirs: [Direction; 2],
    connecting: bool,
    closed: bool,
}

const CLIENT: usize = 0;
const UPSTREAM: usize = 1;

impl Session {
    /// The interest each socket needs now.
    fn interest(&self, side: usize) -> Interest {
        if self.connecting {
            return if side == UPSTREAM { Interest::WRITABLE } else { Interest::NONE };
        }
        let (out, inc) = (&self.dirs[side], &self.dirs[1 - side]); // out: side is the source
        let mut interest = Interest::NONE;
        if out.wants_read() {
            interest = interest.add(Interest::READABLE);
        }
        if inc.queued() > 0 {
            interest = interest.add(Interest::WRITABLE);
        }
        interest
    }
}

fn new_queue(relay: Relay, config: &Config) -> io::Result<Queue> {
    Ok(match relay {
        Relay::Copy => Queue::Copy(Buffer::new()),
        #[cfg(not(muxloop_linux))]
        Relay::Splice => {
            let _ = config;
            return Err(io::Error::new(io::ErrorKind::Unsupported, "--splice needs splice(2): Linux only"));
        }
        #[cfg(muxloop_linux)]
        Relay::Splice => {
            let (read, write) = sys::pipe()?;
            let capacity = match sys::set_pipe_size(write.as_fd(), config.pipe_size) {
                Ok(granted) => granted,
                Err(e) => {
                    // Over /proc/sys/fs/pipe-max-size or the per-user pipe budget: keep the default.
                    debug!("F_SETPIPE_SZ {}: {e}; keeping 64 KiB", config.pipe_size);
                    64 * 1024
                }
            };
            Queue::Splice { read, write, held: 0, capacity, maybe_full: false }
        }
    })
}

/// Binds `config.listen` on `ev` and relays every client; returns the bound
/// address and the shared counters.
pub fn start<D: Dispatcher + 'static>(
    ev: &mut EventLoop<D>,
    config: Config,
) -> io::Result<(SocketAddr, Rc<RefCell<Totals>>)> {
    let listener = sys::tcp_listener(&config.listen, false, 1024)?;
    start_on(ev, listener, config)
}

/// [`start`] on a TCP listener bound elsewhere (by a `--processes` master);
/// `config.listen` is not used.
pub fn start_on<D: Dispatcher + 'static>(
    ev: &mut EventLoop<D>,
    listener: OwnedFd,
    config: Config,
) -> io::Result<(SocketAddr, Rc<RefCell<Totals>>)> {
    sys::set_nonblocking(listener.as_fd(), true)?;
    let addr = sys::local_addr(listener.as_fd())?.to_inet()?;
    let totals = Rc::new(RefCell::new(Totals::default()));
    let lfd = listener.as_raw_fd();
    let counters = Rc::clone(&totals);
    ev.register(lfd, Interest::READABLE, Mode::Level, move |ev, _| {
        // Bounded per wake-up so one busy listener cannot starve the sessions.
        for _ in 0..64 {
            match sys::accept(listener.as_fd()) {
                Ok((client, peer)) => {
                    counters.borrow_mut().accepted += 1;
                    if let Err(e) = open_session(ev, client, &config, &counters) {
                        warn!("{peer}: cannot reach upstream {}: {e}", config.upstream);
                        let mut t = counters.borrow_mut();
                        t.closed += 1;
                        t.failed += 1;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {}
                Err(e) => {
                    // EMFILE and friends: the backlog stays readable, so pause
                    // the listener instead of spinning on it.
                    warn!("accept: {e}; pausing the listener for 100 ms");
                    let fd = listener.as_raw_fd();
                    let _ = ev.set_interest(fd, Interest::NONE);
                    ev.run_after(Duration::from_millis(100), move |ev| {
                        let _ = ev.set_interest(fd, Interest::READABLE);
                    });
                    break;
                }
            }
        }
    })?;
    info!("proxy {addr} -> {} ({:?}, {})", config.upstream, config.relay, ev.dispatcher_name());
    Ok((addr, totals))
}

fn open_session<D: Dispatcher + 'static>(
    ev: &mut EventLoop<D>,
    client: OwnedFd,
    config: &Config,
    totals: &Rc<RefCell<Totals>>,
) -> io::Result<()> {
    let upstream_addr = sys::RawAddr::from_inet(&config.upstream);
    let upstream = sys::stream_socket(&upstream_addr)?;
    let connected = sys::start_connect(upstream.as_fd(), &upstream_addr)?;
    let direction = |src, dst| -> io::Result<Direction> {
        Ok(Direction {
            src,
            dst,
            queue: new_queue(config.relay, config)?,
            high_water: config.high_water,
            eof: false,
            shut: false,
            moved: 0,
        })
    };
    let session = Session {
        dirs: [direction(CLIENT, UPSTREAM)?, direction(UPSTREAM, CLIENT)?],
        fds: [client, upstream],
        connecting: !connected,
        closed: false,
    };
    let fds = [session.fds[CLIENT].as_raw_fd(), session.fds[UPSTREAM].as_raw_fd()];
    let interests = [session.interest(CLIENT), session.interest(UPSTREAM)];
    let session = Rc::new(RefCell::new(session));
    for side in [CLIENT, UPSTREAM] {
        let (session, totals) = (Rc::clone(&session), Rc::clone(totals));
        let registered = ev.register(fds[side], interests[side], Mode::Level, move |ev, event| {
            on_event(ev, &session, &totals, side, event);
        });
        if let Err(e) = registered {
            if side == UPSTREAM {
                let _ = ev.deregister(fds[CLIENT]);
            }
            return Err(e);
        }
    }
    Ok(())
}

/// An event on one socket (`side`): finish connecting, pump the
/// directions it concerns, set both interests, close when both directions
/// are over.
fn on_event<D: Dispatcher>(
    ev: &mut EventLoop<D>,
    session: &Rc<RefCell<Session>>,
    totals: &Rc<RefCell<Totals>>,
    side: usize,
    event: Event,
) {
    let mut s = session.borrow_mut();
    if s.closed {
        return;
    }
    let result = (|| -> io::Result<()> {
        // Hang-up or error: try both ways, the call that fails says why.
        let broken = event.is_hangup() || event.is_error();
        let (mut readable, mut writable) = (event.is_readable() || broken, event.is_writable() || broken);
        if s.connecting {
            if let Some(e) = sys::take_socket_error(s.fds[UPSTREAM].as_fd())? {
                return Err(e);
            }
            s.connecting = false;
            (readable, writable) = (true, true);
        }
        let Session { fds, dirs, .. } = &mut *s;
        for dir in dirs.iter_mut() {
            let src_ready = dir.src == side && readable;
            let dst_ready = dir.dst == side && writable;
            dir.pump(fds, src_ready, dst_ready)?;
        }
        Ok(())
    })();
    let finished = result.is_err() || s.dirs.iter().all(Direction::done);
    if let Err(e) = &result {
        debug!("session ends with an error: {e}");
    }
    if finished {
        s.closed = true;
        let mut t = totals.borrow_mut();
        t.closed += 1;
        t.failed += result.is_err() as u64;
        t.upstream_bytes += s.dirs[0].moved;
        t.client_bytes += s.dirs[1].moved;
        for fd in &s.fds {
            // Deregistered before the fds close (when the last handler drops).
            let _ = ev.deregister(fd.as_raw_fd());
        }
        return;
    }
    for side in [CLIENT, UPSTREAM] {
        let fd = s.fds[side].as_raw_fd();
        if ev.interest(fd) != Some(s.interest(side))
            && let Err(e) = ev.set_interest(fd, s.interest(side))
        {
            warn!("set_interest({fd}): {e}");
        }
    }
}

/// A TCP relay: every client gets its own connection to UPSTREAM.
#[derive(Parser, Debug)]
#[command(name = "proxy", version)]
pub struct Cli {
    /// Address to listen on: HOST:PORT, :PORT or PORT
    #[arg(value_name = "LISTEN", value_parser = cli::parse_addr)]
    listen: SocketAddr,
    /// Where each client's bytes go: HOST:PORT, :PORT or PORT
    #[arg(value_name = "UPSTREAM", value_parser = cli::parse_addr)]
    upstream: SocketAddr,
    /// Move bytes through a user-space buffer (recv + send; the default)
    #[arg(long, overrides_with = "splice")]
    copy: bool,
    /// Keep bytes in the kernel: splice(2) socket -> pipe -> socket
    #[arg(long, overrides_with = "copy")]
    splice: bool,
    /// Worker processes sharing the listener (0 or 1: relay in this process)
    #[arg(long, value_name = "N", default_value_t = 0)]
    processes: usize,
    /// The I/O multiplexer
    #[arg(long, value_name = "NAME", default_value = muxloop::default_dispatcher_name(),
          value_parser = clap::builder::PossibleValuesParser::new(AnyDispatcher::names()), ignore_case = true)]
    dispatcher: String,
}

impl Cli {
    /// The relay's configuration and the backend's name.
    pub fn config(&self) -> (Config, String) {
        let relay = if self.splice { Relay::Splice } else { Relay::Copy };
        (Config::new(self.listen, self.upstream, relay), self.dispatcher.clone())
    }
}

/// `proxy LISTEN UPSTREAM [--copy|--splice] [--dispatcher NAME]` without
/// the program name, as [`Cli`] parses it; the error is clap's message.
pub fn parse_args(args: &[String]) -> Result<(Config, String), String> {
    let cli = Cli::try_parse_from(std::iter::once("proxy").chain(args.iter().map(String::as_str)))
        .map_err(|e| e.to_string())?;
    Ok(cli.config())
}

fn run(config: Config, dispatcher: &str, processes: usize) -> io::Result<()> {
    let listener = sys::tcp_listener(&config.listen, false, 1024)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.listen)))?;
    // Checked once, before any fork; the loop is dropped at once.
    let name = EventLoop::with_backend(dispatcher)?.dispatcher_name().to_owned();
    println!("listening on {} (dispatcher: {name})", sys::local_addr(listener.as_fd())?.to_inet()?);
    std::io::stdout().flush()?;
    if processes > 1 {
        // Fork N workers on the one listener; SIGTERM/SIGINT to the master stops them all.
        let listener = Listener::from(TcpListener::from(listener));
        return Master::new(listener, processes)
            .run(|ctx| relay(config, dispatcher, ctx.listener().as_fd().try_clone_to_owned()?));
    }
    relay(config, dispatcher, listener)
}

/// Relays what `listener` accepts until SIGINT/SIGTERM, then prints the counts.
fn relay(config: Config, dispatcher: &str, listener: OwnedFd) -> io::Result<()> {
    let mut ev = EventLoop::with_backend(dispatcher)?;
    let (_, totals) = start_on(&mut ev, listener, config)?;
    for signal in [muxloop::signal::SIGINT, muxloop::signal::SIGTERM] {
        ev.on_signal(signal, |ev, info| {
            info!("signal {} received, stopping", info.signal);
            ev.quit();
        })?;
    }
    let started = std::time::Instant::now();
    ev.run()?;
    let t = *totals.borrow();
    let secs = started.elapsed().as_secs_f64();
    let mib = (t.upstream_bytes + t.client_bytes) as f64 / (1024.0 * 1024.0);
    println!(
        "proxy: {} accepted, {} closed ({} failed), {} B up, {} B down, {mib:.1} MiB in {secs:.1} s",
        t.accepted, t.closed, t.failed, t.upstream_bytes, t.client_bytes
    );
    Ok(())
}

#[allow(dead_code)] // the proxy test includes this file for `start` alone
fn main() -> ExitCode {
    let cli = Cli::parse();
    let (config, dispatcher) = cli.config();
    cli::main(|| {
        // Blocked before any other thread exists, so signalfd receives them.
        if let Err(e) = sys::block_signals(&[muxloop::signal::SIGINT, muxloop::signal::SIGTERM]) {
            warn!("cannot block SIGINT/SIGTERM ({e}): they may end the relay without its summary");
        }
        run(config, &dispatcher, cli.processes)
    })
}
