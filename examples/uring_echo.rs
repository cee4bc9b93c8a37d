//! An echo server in completion style (the proactor), for contrast with the
//! reactor's `echo` example: no readiness step, the kernel receives into
//! buffers it takes from our ring and tells us when it is done; we hand it
//! owned buffers to send. See `muxloop::dispatcher::proactor` for the model.
//!
//! ```text
//! cargo run --release --example uring_echo -- [ADDR] [--max-output BYTES]
//! ```
//! (No `--unix`/`--processes`, unlike the other servers: a proactor demo on
//! its own io_uring sockets, not a `Server`, kept to the one contrast it shows.)
//!
//! Each connection's queued output is bounded (`--max-output`, default
//! 1 MiB): past it, its multishot receive is cancelled, and armed again once
//! half of the output has gone out. A client that never reads therefore
//! costs at most that much memory, and the TCP window pushes back on it.

#[path = "common/cli.rs"]
mod cli;

#[cfg(muxloop_has_uring)]
use std::io::Write;
use std::net::SocketAddr;
#[cfg(muxloop_has_uring)]
use std::process::ExitCode;

use clap::Parser;

/// Echo server in completion style (io_uring proactor).
#[derive(Parser, Debug)]
#[command(name = "uring_echo")]
struct Cli {
    /// Address to listen on: HOST:PORT, :PORT or PORT.
    #[arg(default_value = "127.0.0.1:9877", value_parser = cli::parse_addr)]
    addr: SocketAddr,
    /// Queued output per connection above which its receive is cancelled.
    #[arg(long, default_value_t = 1 << 20)]
    max_output: usize,
}

#[cfg(muxloop_has_uring)]
fn run(cli: Cli) -> std::io::Result<()> {
    let listener = std::net::TcpListener::bind(cli.addr)?;
    println!("listening on {} (dispatcher: uring proactor)", listener.local_addr()?);
    std::io::stdout().flush()?;
    proactor_echo::serve(listener, cli.max_output)
}

#[cfg(muxloop_has_uring)]
fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::main(|| run(cli))
}

#[cfg(not(muxloop_has_uring))]
fn main() {
    eprintln!("uring_echo needs io_uring: Linux, built without --cfg muxloop_portable");
    std::process::exit(2);
}

#[cfg(muxloop_has_uring)]
mod proactor_echo {
    use std::collections::{HashMap, VecDeque};
    use std::io;
    use std::net::TcpListener;
    use std::os::fd::{AsRawFd, OwnedFd, RawFd};

    use log::{debug, info, warn};
    use muxloop::dispatcher::proactor::{Completion, Proactor};

    /// One connection: what is queued to go back, and which requests are in flight.
    struct Conn {
        fd: OwnedFd,
        out: VecDeque<Vec<u8>>,
        queued: usize,
        /// A send of `out.front()` is in flight (one at a time keeps the order).
        sending: bool,
        receiving: bool,
        /// Receiving paused because `queued` passed the limit.
        paused: bool,
        /// The peer finished sending (or an error ended the connection).
        done: bool,
        closing: bool,
    }

    pub fn serve(listener: TcpListener, max_output: usize) -> io::Result<()> {
        let mut ring = Proactor::new(256, 256, 16 * 1024)?;
        let lfd = listener.as_raw_fd();
        ring.accept_multishot(lfd)?;
        let mut conns: HashMap<RawFd, Conn> = HashMap::new();
        loop {
            for completion in ring.wait(None)? {
                match completion {
                    Completion::Accepted { result, more, .. } => {
                        match result {
                            Ok(fd) => {
                                let raw = fd.as_raw_fd();
                                ring.recv_multishot(raw)?;
                                debug!("connection on fd {raw}");
                                conns.insert(raw, Conn::new(fd));
                            }
                            Err(e) => warn!("accept: {e}"),
                        }
                        if !more {
                            ring.accept_multishot(lfd)?;
                        }
                    }
                    Completion::Received { fd, result, more } => {
                        let Some(conn) = conns.get_mut(&fd) else { continue };
                        if !more {
                            conn.receiving = false;
                        }
                        match result {
                            Ok(data) if data.is_empty() => conn.done = true,
                            Ok(data) => {
                                conn.queued += data.len();
                                conn.out.push_back(data);
                                if conn.queued > max_output && conn.receiving && !conn.paused {
                                    debug!(
                                        "fd {fd}: {} bytes of output queued, receiving paused",
                                        conn.queued
                                    );
                                    conn.paused = true;
                                    ring.cancel_recv(fd)?;
                                }
                            }
                            // The ring ran dry (ENOBUFS) or we cancelled: armed again below.
                            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::ECANCELED)) => {}
                            Err(e) => {
                                info!("fd {fd}: receive failed: {e}");
                                conn.done = true;
                            }
                        }
                        conn.step(&mut ring)?;
                    }
                    Completion::Sent { fd, result, buf, offset } => {
                        let Some(conn) = conns.get_mut(&fd) else { continue };
                        conn.sending = false;
                        match result {
                            Ok(n) => {
                                conn.queued -= n;
                                if offset + n < buf.len() {
                                    debug!("fd {fd}: partial send, {n} of {} bytes", buf.len() - offset);
                                    conn.out.push_front_rest(buf, offset + n);
                                }
                            }
                            Err(e) => {
                                info!("fd {fd}: send failed: {e}");
                                conn.done = true;
                                conn.out.clear();
                                conn.queued = 0;
                            }
                        }
                        if conn.paused && conn.queued <= max_output / 2 {
                            debug!("fd {fd}: output down to {} bytes, receiving resumed", conn.queued);
                            conn.paused = false;
                        }
                        conn.step(&mut ring)?;
                    }
                }
            }
            // Closes (drops) the fds no request refers to any more.
            conns.retain(|_, conn| !conn.finished());
        }
    }

    trait PushRest {
        fn push_front_rest(&mut self, buf: Vec<u8>, from: usize);
    }

    impl PushRest for VecDeque<Vec<u8>> {
        /// A partly sent buffer goes back to the front; the next send starts at `from`.
        fn push_front_rest(&mut self, mut buf: Vec<u8>, from: usize) {
            buf.drain(..from);
            self.push_front(buf);
        }
    }

    impl Conn {
        fn new(fd: OwnedFd) -> Conn {
            Conn {
                fd,
                out: VecDeque::new(),
                queued: 0,
                sending: false,
                receiving: true,
                paused: false,
                done: false,
                closing: false,
            }
        }

        /// Starts what should be in flight now: the next send, the receive
        /// again, or the end of the connection.
        fn step(&mut self, ring: &mut Proactor) -> io::Result<()> {
            let fd = self.fd.as_raw_fd();
            if !self.sending
                && let Some(next) = self.out.pop_front()
            {
                // Accounted while in flight; `queued` drops when it completes.
                self.sending = true;
                ring.send(fd, next, 0)?;
            }
            if !self.receiving && !self.paused && !self.done {
                self.receiving = true;
                ring.recv_multishot(fd)?;
            }
            if self.done && !self.sending && self.out.is_empty() && !self.closing {
                // Nothing more to send: cancel the receive (if any); the fd
                // closes once no request refers to it (`finished`).
                self.closing = true;
                if self.receiving {
                    ring.cancel(fd)?;
                }
            }
            Ok(())
        }

        fn finished(&self) -> bool {
            self.closing && !self.sending && !self.receiving
        }
    }
}
