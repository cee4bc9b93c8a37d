//! `cargo bench -- dispatch`: libevent's test/bench.c method on each backend
//! (N socket pairs, A active tokens, W writes per run; registration is not
//! timed), plus libev's `-t` variant that re-arms a timer on every read.
//! `any-epoll` is epoll behind the run-time choice (`AnyDispatcher`): its
//! distance from `epoll` is what choosing the backend at run time costs.

#[allow(dead_code)] // the bench uses part of it
#[path = "../examples/common/ring.rs"]
mod ring;
#[cfg(muxloop_has_uring)]
#[path = "common/uring.rs"]
mod uring;

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
#[cfg(muxloop_has_epoll)]
use muxloop::EpollDispatcher;
#[cfg(muxloop_has_uring)]
use muxloop::UringDispatcher;
use muxloop::{Dispatcher, EventLoop, PollDispatcher, SelectDispatcher};
use ring::Ring;

const SIZES: [usize; 4] = [100, 1000, 5000, 9000];

fn bench_backend<D: Dispatcher + 'static>(c: &mut Criterion) {
    bench_loop(c, D::NAME, EventLoop::<D>::new);
}

/// The ring on loops made by `make_loop`, reported as `label/...`.
fn bench_loop<D: Dispatcher + 'static>(
    c: &mut Criterion,
    label: &str,
    make_loop: impl Fn() -> std::io::Result<EventLoop<D>>,
) {
    let mut group = c.benchmark_group("dispatch");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for n in SIZES {
        for (active, writes, timers) in [(1, 100, false), (100, 1000, false), (1, 100, true)] {
            let ev = make_loop().expect("event loop");
            let mut ring = Ring::on(ev, n, timers).expect("socket pairs (raise ulimit -n?)");
            let variant = format!("{label}/a{active}_w{writes}{}", if timers { "_timers" } else { "" });
            group.bench_function(BenchmarkId::new(variant, n), |b| {
                b.iter_custom(|runs| (0..runs).map(|_| ring.run(active, writes).expect("ring run")).sum())
            });
        }
    }
    group.finish();
}

fn dispatch(c: &mut Criterion) {
    bench_backend::<SelectDispatcher>(c);
    bench_backend::<PollDispatcher>(c);
    #[cfg(muxloop_has_epoll)]
    bench_backend::<EpollDispatcher>(c);
    #[cfg(muxloop_has_uring)]
    if uring::available() {
        bench_backend::<UringDispatcher>(c);
    }
    #[cfg(muxloop_has_epoll)]
    bench_loop(c, "any-epoll", || EventLoop::<muxloop::AnyDispatcher>::with_backend("epoll"));
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
