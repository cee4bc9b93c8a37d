//! The three backends side by side on one workload: libevent's test/bench.c
//! ring. N socket pairs are registered for reading; one byte (a token) is
//! written into one pair, and each read passes it on to the next pair until
//! W writes have happened. Only the passing is timed; registration is not.
//!
//! Every dispatch has exactly A fds ready out of N registered, so the time per
//! run shows what each system call costs per registered-but-idle fd: select and
//! poll grow with N, epoll stays flat.
//!
//! ```text
//! cargo run --release --example backends                       # N = 10,100,1000,5000
//! cargo run --release --example backends -- --sizes 100,9000 --runs 50 --active 1 --writes 100
//! RUST_LOG=trace cargo run --example backends -- --sizes 10 --runs 1   # narrate every dispatch
//! ```

use std::cell::Cell;
use std::error::Error;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use muxloop::{
    Dispatcher, EpollDispatcher, EventLoop, Interest, Mode, PollDispatcher, SelectDispatcher, sys,
};

struct Options {
    sizes: Vec<usize>,
    runs: usize,
    active: usize,
    writes: usize,
}

fn parse_args() -> Result<Options, Box<dyn Error>> {
    let mut opts = Options { sizes: vec![10, 100, 1000, 5000], runs: 25, active: 1, writes: 100 };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--sizes" => opts.sizes = value()?.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--runs" => opts.runs = value()?.parse()?,
            "--active" => opts.active = value()?.parse()?,
            "--writes" => opts.writes = value()?.parse()?,
            "-h" | "--help" => {
                println!("usage: backends [--sizes N,N,...] [--runs R] [--active A] [--writes W]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other} (try --help)").into()),
        }
    }
    if opts.sizes.contains(&0) || opts.runs == 0 || opts.active == 0 {
        return Err("--sizes, --runs and --active must be positive".into());
    }
    if opts.sizes.iter().any(|&n| opts.active > n) {
        return Err("--active must not exceed the smallest size".into());
    }
    Ok(opts)
}

/// The N socket pairs, shared by all backends.
struct Ring {
    readers: Vec<OwnedFd>,
    writers: Vec<OwnedFd>,
}

impl Ring {
    fn new(n: usize) -> std::io::Result<Ring> {
        let (readers, writers) =
            (0..n).map(|_| sys::socketpair()).collect::<Result<Vec<_>, _>>()?.into_iter().unzip();
        Ok(Ring { readers, writers })
    }
}

/// Per-run counters shared by all handlers (one thread, so `Cell` is enough).
#[derive(Default)]
struct Counters {
    reads: Cell<usize>,
    fired: Cell<usize>,
    writes_left: Cell<usize>,
}

struct Measurement {
    median_run: Duration,
    dispatches_per_run: f64,
    scanned_per_dispatch: f64,
}

fn send_token(fd: RawFd) -> bool {
    sys::write(fd, b"e").map(|n| n == 1).unwrap_or(false)
}

fn measure<D: Dispatcher>(ring: &Ring, opts: &Options) -> Result<Measurement, Box<dyn Error>> {
    let n = ring.readers.len();
    let mut ev: EventLoop<D> = EventLoop::new()?;
    let counters = Rc::new(Counters::default());
    let writers: Rc<Vec<RawFd>> = Rc::new(ring.writers.iter().map(AsRawFd::as_raw_fd).collect());
    for (i, reader) in ring.readers.iter().enumerate() {
        let (counters, writers) = (Rc::clone(&counters), Rc::clone(&writers));
        ev.register(reader.as_raw_fd(), Interest::READABLE, Mode::Level, move |_, event| {
            let mut byte = [0u8; 1];
            if let Ok(1) = sys::read(event.fd(), &mut byte) {
                counters.reads.set(counters.reads.get() + 1);
            }
            if counters.writes_left.get() > 0 && send_token(writers[(i + 1) % n]) {
                counters.writes_left.set(counters.writes_left.get() - 1);
                counters.fired.set(counters.fired.get() + 1);
            }
        })?;
    }

    let spacing = n / opts.active;
    let mut times = Vec::with_capacity(opts.runs);
    let before = ev.stats();
    for _ in 0..opts.runs {
        counters.reads.set(0);
        counters.fired.set(0);
        counters.writes_left.set(opts.writes);
        for a in 0..opts.active {
            if send_token(writers[a * spacing]) {
                counters.fired.set(counters.fired.get() + 1);
            }
        }
        let start = Instant::now();
        while counters.reads.get() != counters.fired.get() {
            if ev.run_once(Some(Duration::from_secs(5)))? == 0 {
                return Err(format!("{}: a token got lost (n={n})", D::NAME).into());
            }
        }
        times.push(start.elapsed());
    }
    let after = ev.stats();
    for reader in &ring.readers {
        ev.deregister(reader.as_raw_fd())?;
    }

    times.sort();
    let dispatches = (after.dispatch_calls - before.dispatch_calls) as f64;
    Ok(Measurement {
        median_run: times[times.len() / 2],
        dispatches_per_run: dispatches / opts.runs as f64,
        scanned_per_dispatch: (after.fds_scanned - before.fds_scanned) as f64 / dispatches,
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::init();
    let opts = parse_args()?;
    let largest = *opts.sizes.iter().max().expect("at least one size");
    let wanted = (2 * largest + 64) as u64;
    let limit = sys::set_nofile_limit(wanted.max(sys::nofile_limit()?.0))?;
    if limit < wanted {
        return Err(format!("N={largest} needs {wanted} fds but the hard limit is {limit}").into());
    }

    println!(
        "muxloop backends: libevent bench.c ring, {} token(s), {} writes per run, median of {} runs",
        opts.active, opts.writes, opts.runs
    );
    println!("compile-time default dispatcher: {}\n", muxloop::default_dispatcher_name());
    println!("{:>6} | {:>10} {:>10} {:>10} | fds scanned per dispatch", "N", "select", "poll", "epoll");
    println!(
        "{:>6} | {:>10} {:>10} {:>10} | {:>7} {:>7} {:>7}",
        "", "us/run", "us/run", "us/run", "select", "poll", "epoll"
    );
    println!("{}", "-".repeat(70));
    for &n in &opts.sizes {
        let ring = Ring::new(n)?;
        let results = [
            measure::<SelectDispatcher>(&ring, &opts)?,
            measure::<PollDispatcher>(&ring, &opts)?,
            measure::<EpollDispatcher>(&ring, &opts)?,
        ];
        let us = |m: &Measurement| m.median_run.as_secs_f64() * 1e6;
        println!(
            "{n:>6} | {:>10.1} {:>10.1} {:>10.1} | {:>7.0} {:>7.0} {:>7.1}",
            us(&results[0]),
            us(&results[1]),
            us(&results[2]),
            results[0].scanned_per_dispatch,
            results[1].scanned_per_dispatch,
            results[2].scanned_per_dispatch,
        );
        log::debug!("n={n}: {:.1} dispatches per run", results[2].dispatches_per_run);
    }
    println!(
        "\nselect pays for the highest fd number, poll for every registered fd, epoll only for ready ones."
    );
    Ok(())
}
