//! The four backends side by side on one workload: libevent's test/bench.c
//! ring (see `common/ring.rs`). Every dispatch has A fds ready out of N
//! registered, so the time per run shows what each system call costs per
//! registered-but-idle fd: select and poll grow with N, epoll and io_uring
//! stay flat. Where io_uring is refused (old kernel, sandbox) its column is
//! left out with a note.
//!
//! ```text
//! cargo run --release --example backends                       # N = 10,100,1000,5000
//! cargo run --release --example backends -- --sizes 100,9000 --runs 50 --active 1 --writes 100
//! cargo run --release --example backends -- --timers          # re-arm a timer on every read (libev's -t)
//! cargo run --release --example backends -- --csv --only epoll # machine-readable, for scripts/compare.sh
//! RUST_LOG=trace cargo run --example backends -- --sizes 10 --runs 1   # narrate every dispatch
//! ```

#[path = "common/cli.rs"]
mod cli;
#[path = "common/ring.rs"]
mod ring;

use std::process::ExitCode;
use std::time::Duration;

#[cfg(muxloop_has_epoll)]
use muxloop::EpollDispatcher;
#[cfg(muxloop_has_uring)]
use muxloop::UringDispatcher;
use muxloop::{AnyDispatcher, Dispatcher, PollDispatcher, SelectDispatcher};
use ring::Ring;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const BACKENDS: [&str; 4] = ["select", "poll", "epoll", "uring"];

struct Options {
    sizes: Vec<usize>,
    runs: usize,
    active: usize,
    writes: usize,
    timers: bool,
    csv: bool,
    only: Vec<String>,
}

fn parse_args() -> Result<Options> {
    let mut opts = Options {
        sizes: vec![10, 100, 1000, 5000],
        runs: 25,
        active: 1,
        writes: 100,
        timers: false,
        csv: false,
        only: BACKENDS.iter().map(|b| b.to_string()).collect(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--sizes" => {
                opts.sizes = value()?.split(',').map(str::parse).collect::<std::result::Result<_, _>>()?
            }
            "--runs" => opts.runs = value()?.parse()?,
            "--active" => opts.active = value()?.parse()?,
            "--writes" => opts.writes = value()?.parse()?,
            "--only" => opts.only = value()?.split(',').map(str::to_owned).collect(),
            "--timers" => opts.timers = true,
            "--csv" => opts.csv = true,
            "-h" | "--help" => {
                println!(
                    "usage: backends [--sizes N,N,...] [--runs R] [--active A] [--writes W] [--timers] [--csv] [--only select,poll,epoll,uring]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other} (try --help)").into()),
        }
    }
    if opts.sizes.is_empty() || opts.sizes.contains(&0) || opts.runs == 0 || opts.active == 0 {
        return Err("--sizes, --runs and --active must be positive".into());
    }
    if opts.sizes.iter().any(|&n| opts.active > n) {
        return Err("--active must not exceed the smallest size".into());
    }
    if let Some(bad) = opts.only.iter().find(|b| !BACKENDS.contains(&b.as_str())) {
        return Err(format!("unknown dispatcher {bad:?} (select, poll, epoll or uring)").into());
    }
    Ok(opts)
}

struct Measurement {
    median: Duration,
    scanned_per_dispatch: f64,
}

fn measure<D: Dispatcher + 'static>(n: usize, opts: &Options) -> Result<Measurement> {
    let mut ring = Ring::<D>::new(n, opts.timers)?;
    ring.run(opts.active, opts.writes)?; // warm-up
    let before = ring.stats();
    let mut times =
        (0..opts.runs).map(|_| ring.run(opts.active, opts.writes)).collect::<std::io::Result<Vec<_>>>()?;
    let after = ring.stats();
    times.sort();
    let dispatches = (after.dispatch_calls - before.dispatch_calls).max(1) as f64;
    Ok(Measurement {
        median: times[times.len() / 2],
        scanned_per_dispatch: (after.fds_scanned - before.fds_scanned) as f64 / dispatches,
    })
}

fn main() -> ExitCode {
    cli::main(run)
}

fn run() -> Result {
    let opts = parse_args()?;
    let mut backends: Vec<&str> = BACKENDS.into_iter().filter(|b| opts.only.iter().any(|o| o == b)).collect();
    // Not compiled here (not Linux, or --cfg muxloop_portable): left out.
    backends.retain(|b| AnyDispatcher::names().contains(b));
    #[cfg(muxloop_has_uring)]
    if backends.contains(&"uring")
        && let Err(e) = UringDispatcher::new()
    {
        eprintln!("skipped: io_uring unavailable ({e})");
        backends.retain(|&b| b != "uring");
    }
    if opts.csv {
        println!("backend,n,active,writes,timers,median_us,scanned_per_dispatch");
    } else {
        println!(
            "muxloop backends: libevent bench.c ring, {} token(s), {} writes per run{}, median of {} runs",
            opts.active,
            opts.writes,
            if opts.timers { ", a timer re-armed on every read" } else { "" },
            opts.runs
        );
        println!("compile-time default dispatcher: {}\n", muxloop::default_dispatcher_name());
        let names: String = backends.iter().map(|b| format!(" {b:>10}")).collect();
        let units: String = backends.iter().map(|_| format!(" {:>10}", "us/run")).collect();
        let scans: String = backends.iter().map(|b| format!(" {b:>7}")).collect();
        println!("{:>6} |{names} | fds scanned per dispatch", "N");
        println!("{:>6} |{units} |{scans}", "");
        println!("{}", "-".repeat(12 + 19 * backends.len()));
    }
    for &n in &opts.sizes {
        let mut results = Vec::new();
        for backend in &backends {
            // Each backend's own type, not `AnyDispatcher`: this compares the
            // system calls, without the enum's match in the way.
            let m = match *backend {
                "select" => measure::<SelectDispatcher>(n, &opts)?,
                "poll" => measure::<PollDispatcher>(n, &opts)?,
                #[cfg(muxloop_has_uring)]
                "uring" => measure::<UringDispatcher>(n, &opts)?,
                #[cfg(muxloop_has_epoll)]
                "epoll" => measure::<EpollDispatcher>(n, &opts)?,
                other => unreachable!("{other} is not compiled in, so it was left out above"),
            };
            results.push((backend, m));
        }
        if opts.csv {
            for (backend, m) in &results {
                let us = m.median.as_secs_f64() * 1e6;
                println!(
                    "{backend},{n},{},{},{},{us:.1},{:.1}",
                    opts.active, opts.writes, opts.timers, m.scanned_per_dispatch
                );
            }
        } else {
            let times: String =
                results.iter().map(|(_, m)| format!(" {:>10.1}", m.median.as_secs_f64() * 1e6)).collect();
            let scans: String =
                results.iter().map(|(_, m)| format!(" {:>7.1}", m.scanned_per_dispatch)).collect();
            println!("{n:>6} |{times} |{scans}");
        }
    }
    if !opts.csv {
        println!(
            "\nselect pays for the highest fd number, poll for every registered fd, epoll and uring only for ready ones."
        );
    }
    Ok(())
}
