//! The ladder, measured: the same echo workload against rungs 01-09.
//!
//! ```text
//! cargo run --release --example ladder -- [--rungs 1,4,7] [--clients 10,100,1000,5000] [--seconds S] [--rounds K]
//! cargo run --release --example ladder -- --csv            # the table as CSV, for a spreadsheet or a script
//! cargo run --release --example ladder -- --svg ladder.svg # and the figure: rt/s, threads, RSS against clients
//! ```
//! (The rungs take no `--unix`/`--processes`: each is one course step over
//! raw TCP sockets, kept to the one idea it adds; rung 03 is the process model.)
//!
//! For each rung and each client count C it starts the rung's server in a
//! child process (on a free loopback port), opens C connections, and has
//! every client do K round trips of a 64-byte message; a client keeps its
//! connection open until the cell ends, as a real client of a long-lived
//! service would. A cell ends when every client is done or after `--seconds`
//! (default 5); clients not done by then count as failed. Then it prints:
//! completed and failed clients, round trips per second, the server's
//! threads and processes, its resident memory and the CPU time it used
//! (utime + stime from `/proc`, its children included for the fork rung).
//!
//! It is the C10K story on your machine: the blocking rung serves one
//! client and starves the rest (it is not run past its first failing C);
//! threads and processes work but cost a thread or a process each; select
//! and poll pay per registered fd on every call; epoll stays flat.
//!
//! The client side is one thread on epoll (not C threads), starting at most
//! 256 connects at a time. It closes with `SO_LINGER` 0 (a reset), so tens of
//! thousands of connections do not leave as many sockets in `TIME_WAIT`.
//! The runner first builds the rungs with the same cargo and profile
//! (`--no-build`: it runs the binaries beside its own as they are).
//! `--csv` prints the table as CSV (one row per cell that ran), `--svg FILE`
//! draws it (`scripts/tour_figures.sh` makes the tour's figure with it).

// Without epoll (not Linux, or `--cfg muxloop_portable`) only a stub `run`
// that says so is compiled.
#![cfg_attr(not(muxloop_has_epoll), allow(dead_code, unused_imports))]
use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;

#[cfg(muxloop_has_epoll)]
use muxloop::EpollDispatcher;
use muxloop::{Dispatcher, Events, Interest, Mode, sys};

#[path = "../common/cli.rs"]
mod cli;
#[path = "../common/svg.rs"]
mod svg;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const RUNGS: [&str; 9] = [
    "ladder_01_blocking",
    "ladder_02_threads",
    "ladder_03_fork",
    "ladder_04_select",
    "ladder_05_poll_epoll",
    "ladder_06_edge",
    "ladder_07_event_loop",
    "ladder_08_tcp_server",
    "ladder_09_multi_reactor",
];
const MESSAGE: [u8; 64] = *b"the quick brown fox jumps over the lazy dog, 0123456789 abcdefgh";
/// Connects in flight at once (a burst of 5000 SYNs would overflow any backlog).
const CONNECTING_MAX: usize = 256;
/// Clock ticks per second in /proc/PID/stat (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

/// The ladder runner's command line.
#[derive(Parser)]
#[command(
    name = "ladder",
    about = "Runs an echo workload against each rung (in a child process) and prints a table",
    after_help = "The smallest run: --rungs 4 --clients 1 --rounds 1 --seconds 2"
)]
struct Opts {
    /// Which rungs (1-9)
    #[arg(long, value_name = "1,2,...", value_delimiter = ',', default_value = "1,2,3,4,5,6,7,8,9",
          value_parser = clap::value_parser!(u8).range(1..=9))]
    rungs: Vec<u8>,
    /// Concurrent clients per cell
    #[arg(long, value_name = "C,C,...", value_delimiter = ',', default_value = "10,100,1000,5000",
          value_parser = clap::value_parser!(u64).range(1..))]
    clients: Vec<u64>,
    /// Time limit per cell, in seconds
    #[arg(long, value_name = "S", default_value_t = 5.0, value_parser = positive, allow_hyphen_values = true)]
    seconds: f64,
    /// Round trips per client
    #[arg(long, value_name = "K", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Print the table as CSV (a header, then one row per rung and client count that ran)
    #[arg(long)]
    csv: bool,
    /// Also write the figures to FILE as SVG: round trips/s, threads and RSS against clients, a line per rung
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Run the rung binaries beside this one as they are, without building them first
    #[arg(long)]
    no_build: bool,
}

fn positive(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("expected a positive number of seconds, got {s:?}")),
    }
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    cli::main(|| run(opts))
}

/// One measured cell: a rung, a client count and what it gave.
struct Row {
    rung: &'static str,
    clients: usize,
    cell: Cell,
}

impl Row {
    fn rate(&self) -> f64 {
        self.cell.round_trips as f64 / self.cell.elapsed.as_secs_f64().max(1e-6)
    }
}

const CSV_HEADER: &str = "rung,clients,done,failed,round_trips_per_s,threads,processes,rss_mib,cpu_s,time_s";

fn print_row(row: &Row, csv: bool) {
    let (name, clients, cell) = (row.rung, row.clients, &row.cell);
    let fields = (
        cell.done,
        clients - cell.done,
        row.rate(),
        cell.peak.threads,
        cell.peak.processes,
        cell.peak.rss_kib as f64 / 1024.0,
        cell.cpu_ticks as f64 / TICKS,
        cell.elapsed.as_secs_f64(),
    );
    if csv {
        println!(
            "{name},{clients},{},{},{:.0},{},{},{:.1},{:.2},{:.2}",
            fields.0, fields.1, fields.2, fields.3, fields.4, fields.5, fields.6, fields.7
        );
    } else {
        println!(
            "{name:<24} {clients:>5} {:>6} {:>6} {:>10.0} {:>7} {:>6} {:>9.1} {:>7.2} {:>6.2}",
            fields.0, fields.1, fields.2, fields.3, fields.4, fields.5, fields.6, fields.7
        );
    }
}

/// The figure: one panel per measure against the client count, a line per rung.
fn figure(rows: &[Row], opts: &Opts) -> String {
    let panel = |title: &str, y_label: &str, log_y: bool, value: &dyn Fn(&Row) -> f64| {
        let mut series: Vec<svg::Series> = Vec::new();
        for row in rows {
            if series.last().is_none_or(|s| s.name != row.rung) {
                series.push(svg::Series { name: row.rung.to_string(), points: Vec::new() });
            }
            if let Some(s) = series.last_mut() {
                s.points.push((row.clients as f64, value(row)));
            }
        }
        svg::Panel {
            title: title.into(),
            x_label: "concurrent clients".into(),
            y_label: y_label.into(),
            log_x: true,
            log_y,
            series,
        }
    };
    let panels = [
        panel("round trips per second", "round trips/s", false, &|r| r.rate()),
        panel("server threads", "threads (all processes)", true, &|r| r.cell.peak.threads as f64),
        panel("server memory", "RSS MiB (all processes)", true, &|r| r.cell.peak.rss_kib as f64 / 1024.0),
    ];
    let note = format!(
        "echo, {} round trips of {} bytes per client, {} s per cell, {} CPUs (cargo run --release --example ladder)",
        opts.rounds,
        MESSAGE.len(),
        opts.seconds,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    svg::render("The ladder: one echo workload, rung by rung", &note, &panels)
}

#[cfg(not(muxloop_has_epoll))]
fn run(_: Opts) -> Result {
    Err("the ladder runner drives its clients with epoll: Linux, built without --cfg muxloop_portable".into())
}

#[cfg(muxloop_has_epoll)]
fn run(opts: Opts) -> Result {
    let (_, hard) = sys::nofile_limit()?;
    let limit = sys::set_nofile_limit(hard)?;
    let most = opts.clients.iter().max().copied().unwrap_or(0);
    if limit < most + 64 {
        eprintln!("warning: fd limit {limit} is below {most} clients; expect failures");
    }
    let dir = if opts.no_build {
        let exe = std::env::current_exe()?;
        exe.parent().ok_or("no directory for the runner")?.to_path_buf()
    } else {
        build(&opts)?
    };
    let heading = format!(
        "\necho, {} round trips of {} bytes per client, {} s per cell, {} CPUs (figures are noisy on a busy machine)\n",
        opts.rounds,
        MESSAGE.len(),
        opts.seconds,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if opts.csv {
        eprintln!("{heading}");
        println!("{CSV_HEADER}");
    } else {
        println!("{heading}");
        println!(
            "{:<24} {:>5} {:>6} {:>6} {:>10} {:>7} {:>6} {:>9} {:>7} {:>6}",
            "rung", "C", "done", "failed", "rt/s", "threads", "procs", "RSS MiB", "CPU s", "time s"
        );
    }
    let mut rows = Vec::new();
    for &rung in &opts.rungs {
        let name = RUNGS[usize::from(rung) - 1];
        let mut stopped = false;
        for &clients in &opts.clients {
            let clients = clients as usize;
            if stopped {
                // Not a row of the CSV: it has no figures.
                let line = format!(
                    "{name:<24} {clients:>5}  (not run: this rung already failed with fewer clients)"
                );
                if opts.csv {
                    eprintln!("{line}")
                } else {
                    println!("{line}")
                }
                continue;
            }
            let cell = run_cell(&dir.join(name), clients, &opts)?;
            stopped = cell.done < clients;
            let row = Row { rung: name, clients, cell };
            print_row(&row, opts.csv);
            rows.push(row);
        }
    }
    if let Some(path) = &opts.svg {
        std::fs::write(path, figure(&rows, &opts)).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Builds the rungs with the cargo and profile that built us; returns
/// the directory that holds them (ours).
fn build(opts: &Opts) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or("no directory for the runner")?.to_path_buf();
    let release = dir.parent().and_then(Path::file_name).is_some_and(|p| p == "release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args(["build", "--quiet"]);
    if release {
        cmd.arg("--release");
    } else {
        eprintln!("note: a debug build; `cargo run --release --example ladder` gives meaningful figures");
    }
    for &rung in &opts.rungs {
        cmd.args(["--example", RUNGS[usize::from(rung) - 1]]);
    }
    eprintln!("building the rungs ...");
    if !cmd.status()?.success() {
        return Err("building the rungs failed".into());
    }
    Ok(dir)
}

#[derive(Default, Clone, Copy)]
struct Sample {
    threads: u64,
    processes: u64,
    rss_kib: u64,
}

struct Cell {
    done: usize,
    round_trips: u64,
    elapsed: Duration,
    peak: Sample,
    cpu_ticks: u64,
}

/// One server process, killed (with its whole process group) on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        // The fork rung's children are in the same group: kill them all.
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.0.id())]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(bin: &Path) -> Result<(Server, SocketAddr)> {
    let mut child = Command::new(bin)
        .arg("127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let server = Server(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            let addr = line.strip_prefix("listening on ").and_then(|r| r.split(' ').next()?.parse().ok());
            if let Some(addr) = addr {
                let _ = tx.send(addr);
            }
        }
    });
    let addr =
        rx.recv_timeout(Duration::from_secs(10)).map_err(|_| format!("{} did not start", bin.display()))?;
    Ok((server, addr))
}

#[derive(PartialEq)]
enum Phase {
    Connecting,
    Writing(usize),
    Reading(usize),
    Done,
    Failed,
}

struct Client {
    socket: OwnedFd,
    phase: Phase,
    rounds_left: u32,
}

#[cfg(muxloop_has_epoll)]
fn run_cell(bin: &Path, clients: usize, opts: &Opts) -> Result<Cell> {
    let (server, addr) = start_server(bin)?;
    let pid = server.0.id();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(opts.seconds);
    let mut epoll = EpollDispatcher::new()?;
    let mut events = Events::with_capacity(1024);
    let mut table: HashMap<RawFd, Client> = HashMap::new();
    let (mut started, mut connecting, mut done, mut failed, mut round_trips) = (0, 0, 0, 0, 0u64);
    let mut peak = Sample::default();
    let mut next_sample = start;
    let mut finished = start;
    while done + failed < clients && Instant::now() < deadline {
        // Start connects, a bounded number at a time.
        while started < clients && connecting < CONNECTING_MAX {
            started += 1;
            match connect(&mut epoll, &addr) {
                Ok(client) => {
                    connecting += 1;
                    table.insert(client.socket.as_raw_fd(), client);
                }
                Err(_) => failed += 1,
            }
        }
        if Instant::now() >= next_sample {
            peak = peak.max(sample(pid));
            next_sample = Instant::now() + Duration::from_millis(200);
        }
        let wait = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(100));
        epoll.dispatch(&mut events, Some(wait))?;
        for event in &events {
            let Some(client) = table.get_mut(&event.fd()) else { continue };
            let was_connecting = client.phase == Phase::Connecting;
            step(client, opts.rounds, &mut round_trips);
            if was_connecting && client.phase != Phase::Connecting {
                connecting -= 1;
            }
            let fd = event.fd();
            match client.phase {
                Phase::Done | Phase::Failed => {
                    if client.phase == Phase::Done {
                        done += 1
                    } else {
                        failed += 1
                    }
                    finished = Instant::now();
                    // Out of the dispatcher, but the connection stays open.
                    let _ = epoll.deregister(fd);
                }
                Phase::Reading(_) => epoll.modify(fd, Interest::READABLE, Mode::Level)?,
                _ => epoll.modify(fd, Interest::WRITABLE, Mode::Level)?,
            }
        }
    }
    let elapsed = if done + failed == clients { finished - start } else { Instant::now() - start };
    peak = peak.max(sample(pid));
    let cpu_ticks = cpu_ticks(pid);
    // Reset every connection (no TIME_WAIT), then stop the server.
    for client in table.values() {
        let _ = sys::set_linger(client.socket.as_fd(), Some(Duration::ZERO));
    }
    drop(table);
    drop(server);
    Ok(Cell { done, round_trips, elapsed, peak, cpu_ticks })
}

#[cfg(muxloop_has_epoll)]
fn connect(epoll: &mut EpollDispatcher, addr: &SocketAddr) -> std::io::Result<Client> {
    let addr = sys::RawAddr::from_inet(addr);
    let socket = sys::stream_socket(&addr)?;
    let fd = socket.as_raw_fd();
    sys::set_nodelay(socket.as_fd(), true)?;
    sys::start_connect(socket.as_fd(), &addr)?;
    // Connected at once or not, "writable" is the next thing to wait for.
    epoll.register(fd, Interest::WRITABLE, Mode::Level)?;
    Ok(Client { socket, phase: Phase::Connecting, rounds_left: 0 })
}

/// Advances one client as far as it goes without blocking.
fn step(client: &mut Client, rounds: u32, round_trips: &mut u64) {
    let fd = client.socket.as_fd();
    loop {
        client.phase = match client.phase {
            Phase::Connecting => match sys::take_socket_error(fd) {
                Ok(None) => {
                    client.rounds_left = rounds;
                    Phase::Writing(0)
                }
                _ => Phase::Failed,
            },
            Phase::Writing(sent) => match sys::send(fd, &MESSAGE[sent..]) {
                Ok(n) if sent + n == MESSAGE.len() => Phase::Reading(0),
                Ok(n) => Phase::Writing(sent + n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => Phase::Failed,
            },
            Phase::Reading(got) => {
                let mut buf = [0u8; 64];
                match sys::recv(fd, &mut buf[..MESSAGE.len() - got]) {
                    Ok(0) => Phase::Failed, // the server closed on us
                    Ok(n) if buf[..n] != MESSAGE[got..got + n] => Phase::Failed,
                    Ok(n) if got + n < MESSAGE.len() => Phase::Reading(got + n),
                    Ok(_) => {
                        *round_trips += 1;
                        client.rounds_left -= 1;
                        if client.rounds_left == 0 { Phase::Done } else { Phase::Writing(0) }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                    Err(_) => Phase::Failed,
                }
            }
            Phase::Done | Phase::Failed => return,
        };
    }
}

impl Sample {
    fn max(self, other: Sample) -> Sample {
        Sample {
            threads: self.threads.max(other.threads),
            processes: self.processes.max(other.processes),
            rss_kib: self.rss_kib.max(other.rss_kib),
        }
    }
}

/// The fields of /proc/PID/stat after the command name (field 3 is index 0).
fn stat(pid: u32) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = text.rsplit_once(')')?.1;
    Some(rest.split_whitespace().skip(1).map(|f| f.parse().unwrap_or(0)).collect())
}

/// A value in kB (or a count) from /proc/PID/status.
fn status(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines().find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok()).unwrap_or(0)
}

/// Live children of `pid` (the fork rung's), found by their parent pid.
fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| stat(p).is_some_and(|s| s.first() == Some(&(pid as u64))))
        .collect()
}

fn sample(pid: u32) -> Sample {
    let kids = children(pid);
    Sample {
        threads: status(pid, "Threads:") + kids.iter().map(|&k| status(k, "Threads:")).sum::<u64>(),
        processes: 1 + kids.len() as u64,
        rss_kib: status(pid, "VmRSS:") + kids.iter().map(|&k| status(k, "VmRSS:")).sum::<u64>(),
    }
}

/// utime + stime of the server, of its reaped children and of live ones.
fn cpu_ticks(pid: u32) -> u64 {
    let own = stat(pid).map_or(0, |s| s[10..14].iter().sum());
    let kids: u64 = children(pid).iter().filter_map(|&k| stat(k)).map(|s| s[10] + s[11]).sum();
    own + kids
}
