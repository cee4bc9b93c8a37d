//! What every rung shares: the command line, logging, the fd limit and the
//! "listening on" line the ladder runner waits for. Nothing about I/O lives
//! here: each rung shows its own.
#![allow(dead_code)] // each rung uses a different part

use std::io::Write;
use std::net::SocketAddr;

/// The rungs' `main` result.
pub type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Most bytes a connection may have queued for output; past it the rung
/// stops reading from that client until the queue drains (bounded memory).
pub const MAX_QUEUED: usize = 256 * 1024;

/// `[ADDR] [flags]`, parsed by [`main`].
pub struct Args {
    pub addr: SocketAddr,
    flags: Vec<String>,
}

impl Args {
    /// Whether the boolean `--flag` was given.
    pub fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
    /// The value after `--flag`, parsed, or `default`.
    pub fn value<T: std::str::FromStr>(&self, flag: &str, default: T) -> Result<T> {
        match self.flags.iter().position(|f| f == flag) {
            None => Ok(default),
            Some(i) => {
                let v = self.flags.get(i + 1).ok_or_else(|| format!("{flag} needs a value"))?;
                v.parse().map_err(|_| format!("{flag} {v}: not a valid value").into())
            }
        }
    }
}

/// Runs a rung: `--help` prints `usage`; a bad address or an unknown flag is
/// a clear error (exit 2); then logging (RUST_LOG, default info), the fd limit
/// raised to the hard limit, and `run`. `flags` lists the accepted flags; a
/// trailing `=` marks one that takes a value (`"--threads="`).
pub fn main(rung: u16, usage: &str, flags: &[&str], run: fn(Args) -> Result) {
    let mut args = Args { addr: SocketAddr::from(([127, 0, 0, 1], 9100 + rung * 10)), flags: Vec::new() };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        if arg == "--help" || arg == "-h" {
            println!("{usage}");
            return;
        }
        if let Some(&spec) = flags.iter().find(|f| f.trim_end_matches('=') == arg) {
            args.flags.push(arg);
            if spec.ends_with('=') {
                args.flags.extend(argv.next());
            }
        } else if arg.starts_with('-') {
            fail(&format!("unknown flag {arg:?}\n\n{usage}"));
        } else {
            args.addr = arg.parse().unwrap_or_else(|_| {
                fail(&format!("bad address {arg:?} (want e.g. 127.0.0.1:{})", 9100 + rung * 10))
            });
        }
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    // Many clients need many fds: take all the kernel allows (the hard limit).
    if let Ok((_, hard)) = muxloop::sys::nofile_limit() {
        let _ = muxloop::sys::set_nofile_limit(hard);
    }
    if let Err(e) = run(args) {
        fail(&e.to_string());
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2);
}

/// Prints the line the ladder runner (and you) wait for.
pub fn announce(addr: impl std::fmt::Display, what: &str) {
    println!("listening on {addr} ({what})");
    let _ = std::io::stdout().flush();
}

/// Accepts one connection from a non-blocking listener, surviving `EMFILE`
/// with the spare-fd trick: at the fd limit the pending connection cannot be
/// accepted, so a level-triggered listener stays readable and the loop would
/// spin. Giving back the spare fd frees one slot: accept the client, close it
/// (it sees a clean close instead of hanging) and take the spare fd again.
/// `Ok(None)`: nothing (more) to accept.
pub fn accept(
    listener: std::os::fd::BorrowedFd<'_>,
    spare: &mut Option<std::os::fd::OwnedFd>,
) -> std::io::Result<Option<(std::os::fd::OwnedFd, SocketAddr)>> {
    use std::io::ErrorKind;
    match muxloop::sys::accept(listener) {
        Ok((socket, peer)) => Ok(Some((socket, peer.to_inet()?))),
        Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
        // The client gave up before we accepted it (RST before accept): next.
        Err(e) if e.kind() == ErrorKind::ConnectionAborted => accept(listener, spare),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
            log::warn!("accept: {e}; shedding one client with the spare fd");
            spare.take();
            drop(muxloop::sys::accept(listener));
            *spare = muxloop::sys::open_dev_null().ok();
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
