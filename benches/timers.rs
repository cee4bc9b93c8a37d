//! `cargo bench -- timers`: arming and cancelling a timer with 0 and 100,000
//! others pending, and a due timer fired through one dispatch, per backend.

#[cfg(muxloop_has_uring)]
#[path = "common/uring.rs"]
mod uring;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
#[cfg(muxloop_has_epoll)]
use muxloop::EpollDispatcher;
#[cfg(muxloop_has_uring)]
use muxloop::UringDispatcher;
use muxloop::{Dispatcher, EventLoop, PollDispatcher, SelectDispatcher};

fn bench_backend<D: Dispatcher + 'static>(c: &mut Criterion) {
    let mut group = c.benchmark_group("timers");
    group.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    for pending in [0, 100_000] {
        let mut ev = EventLoop::<D>::new().unwrap();
        for i in 0..pending {
            ev.run_after(Duration::from_secs(3600 + i as u64 % 600), |_| {});
        }
        group.bench_function(BenchmarkId::new(format!("{}/arm_cancel", D::NAME), pending), |b| {
            b.iter(|| {
                let id = ev.run_after(Duration::from_secs(60), |_| {});
                black_box(ev.cancel(id))
            })
        });
    }
    let mut ev = EventLoop::<D>::new().unwrap();
    group.bench_function(BenchmarkId::new(format!("{}/fire_through_dispatch", D::NAME), 1), |b| {
        b.iter(|| {
            ev.run_after(Duration::ZERO, |_| {});
            ev.run_once(Some(Duration::ZERO)).unwrap()
        })
    });
    group.finish();
}

fn timers(c: &mut Criterion) {
    bench_backend::<SelectDispatcher>(c);
    bench_backend::<PollDispatcher>(c);
    #[cfg(muxloop_has_epoll)]
    bench_backend::<EpollDispatcher>(c);
    #[cfg(muxloop_has_uring)]
    if uring::available() {
        bench_backend::<UringDispatcher>(c);
    }
}

criterion_group!(benches, timers);
criterion_main!(benches);
