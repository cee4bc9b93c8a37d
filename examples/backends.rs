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
//! cargo run --release --example backends -- --csv --only epoll # machine-readable, for scripts/compare.py
//! cargo run --release --example backends -- --svg backends.svg # and the figure: time per run, fds scanned against N
//! RUST_LOG=trace cargo run --example backends -- --sizes 10 --runs 1   # narrate every dispatch
//! ```

#[path = "common/cli.rs"]
mod cli;
#[path = "common/ring.rs"]
mod ring;
#[path = "common/svg.rs"]
mod svg;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::PossibleValuesParser;
use clap::{CommandFactory, Parser};
#[cfg(muxloop_has_epoll)]
use muxloop::EpollDispatcher;
#[cfg(muxloop_has_uring)]
use muxloop::UringDispatcher;
use muxloop::{AnyDispatcher, Dispatcher, PollDispatcher, SelectDispatcher};
use ring::Ring;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const BACKENDS: [&str; 4] = ["select", "poll", "epoll", "uring"];

/// The backends benchmark's command line.
#[derive(Parser)]
#[command(
    name = "backends",
    about = "The four backends side by side on libevent's bench.c ring: time per run and fds scanned against N",
    after_help = "The smallest run: --sizes 10 --runs 1 --writes 10"
)]
struct Options {
    /// Socket pairs registered (N), one figure row each
    #[arg(long, value_name = "N,N,...", value_delimiter = ',', default_value = "10,100,1000,5000",
          value_parser = clap::value_parser!(u64).range(1..))]
    sizes: Vec<u64>,
    /// Timed runs per figure (the median is reported)
    #[arg(long, value_name = "R", default_value_t = 25, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// Tokens passed round the ring at once (A, at most the smallest N)
    #[arg(long, value_name = "A", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    active: u64,
    /// Writes per run (W)
    #[arg(long, value_name = "W", default_value_t = 100)]
    writes: u64,
    /// Re-arm a timer on every read (libev's -t)
    #[arg(long)]
    timers: bool,
    /// Machine-readable output (scripts/compare.py reads columns 1 and 6)
    #[arg(long)]
    csv: bool,
    /// Also write the figures to FILE as SVG: time per run and fds scanned against N, a line per backend
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Only these backends
    #[arg(long, value_name = "NAME,...", value_delimiter = ',', default_value = "select,poll,epoll,uring",
          value_parser = PossibleValuesParser::new(BACKENDS))]
    only: Vec<String>,
}

fn parse_args() -> Result<Options> {
    let opts = Options::parse();
    if opts.sizes.iter().any(|&n| opts.active > n) {
        Options::command()
            .error(clap::error::ErrorKind::ValueValidation, "--active must not exceed the smallest size")
            .exit();
    }
    Ok(opts)
}

struct Measurement {
    median: Duration,
    scanned_per_dispatch: f64,
}

fn measure<D: Dispatcher + 'static>(n: u64, opts: &Options) -> Result<Measurement> {
    let (active, writes) = (opts.active as usize, opts.writes as usize);
    let mut ring = Ring::<D>::new(n as usize, opts.timers)?;
    ring.run(active, writes)?; // warm-up
    let before = ring.stats();
    let mut times = (0..opts.runs).map(|_| ring.run(active, writes)).collect::<std::io::Result<Vec<_>>>()?;
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
    let mut all = Vec::new();
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
        all.extend(results.into_iter().map(|(backend, m)| (*backend, n, m)));
    }
    if let Some(path) = &opts.svg {
        std::fs::write(path, figure(&all, &opts)).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if !opts.csv {
        println!(
            "\nselect pays for the highest fd number, poll for every registered fd, epoll and uring only for ready ones."
        );
    }
    Ok(())
}

/// The figure: time per run and fds scanned per dispatch against N, a line
/// per backend, both axes logarithmic.
fn figure(results: &[(&str, u64, Measurement)], opts: &Options) -> String {
    let panel = |title: &str, y_label: &str, value: &dyn Fn(&Measurement) -> f64| {
        let mut series: Vec<svg::Series> = Vec::new();
        for (backend, n, m) in results {
            let point = (*n as f64, value(m));
            match series.iter_mut().find(|s| s.name == *backend) {
                Some(s) => s.points.push(point),
                None => series.push(svg::Series { name: backend.to_string(), points: vec![point] }),
            }
        }
        svg::Panel {
            title: title.into(),
            x_label: "N (socket pairs registered)".into(),
            y_label: y_label.into(),
            log_x: true,
            log_y: true,
            series,
        }
    };
    let panels = [
        panel("time per run", "µs per run (median)", &|m| m.median.as_secs_f64() * 1e6),
        panel("fds scanned per dispatch", "fds scanned", &|m| m.scanned_per_dispatch),
    ];
    let note = format!(
        "bench.c ring, {} token(s), {} writes per run{}, median of {} runs (cargo run --release --example backends)",
        opts.active,
        opts.writes,
        if opts.timers { ", timers" } else { "" },
        opts.runs
    );
    svg::render("The backends: what a dispatch costs per registered fd", &note, &panels)
}
