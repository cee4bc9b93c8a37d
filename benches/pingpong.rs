//! `cargo bench -- pingpong`: an echo server on its own loop thread and
//! pingpong clients on the bench thread, over loopback, both on the same
//! backend; 1 and 100 sessions keep one 16 KiB block each in flight.

#[cfg(muxloop_has_uring)]
#[path = "common/uring.rs"]
mod uring;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
#[cfg(muxloop_has_epoll)]
use muxloop::EpollDispatcher;
#[cfg(muxloop_has_uring)]
use muxloop::UringDispatcher;
use muxloop::{Callbacks, Client, Dispatcher, EventLoop, PollDispatcher, SelectDispatcher, Server};

const BLOCK: usize = 16 * 1024;

fn echo<D: Dispatcher + 'static>() -> Callbacks<D> {
    Callbacks::new().on_message(|ev, conn, input| {
        let _ = conn.send(ev, input.peek());
        input.consume_all();
    })
}

fn bench_backend<D: Dispatcher + 'static>(c: &mut Criterion) {
    let mut group = c.benchmark_group("pingpong");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for sessions in [1usize, 100] {
        let (tx, rx) = mpsc::channel();
        let server = thread::spawn(move || {
            let mut ev = EventLoop::<D>::new().unwrap();
            let server = Server::builder("127.0.0.1:0", echo::<D>()).start(&mut ev).unwrap();
            tx.send((server.local_addr().as_inet().unwrap(), ev.handle())).unwrap();
            ev.run().unwrap();
        });
        let (addr, server_loop) = rx.recv().unwrap();

        let received = Arc::new(AtomicU64::new(0));
        let connected = Arc::new(AtomicUsize::new(0));
        let (counted, up) = (Arc::clone(&received), Arc::clone(&connected));
        let block = vec![9u8; BLOCK];
        let client = echo::<D>()
            .on_connection(move |ev, conn| {
                if conn.is_connected() {
                    up.fetch_add(1, Ordering::Relaxed);
                    let _ = conn.send(ev, &block);
                }
            })
            .on_message(move |ev, conn, input| {
                counted.fetch_add(input.len() as u64, Ordering::Relaxed);
                let _ = conn.send(ev, input.peek());
                input.consume_all();
            });
        let mut ev = EventLoop::<D>::new().unwrap();
        for _ in 0..sessions {
            Client::new(addr, client.clone()).connect(&mut ev);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while connected.load(Ordering::Relaxed) < sessions && Instant::now() < deadline {
            ev.run_once(Some(Duration::from_millis(10))).unwrap();
        }
        assert_eq!(connected.load(Ordering::Relaxed), sessions, "all sessions connect");

        group.throughput(Throughput::Bytes((sessions * BLOCK) as u64));
        group.bench_function(BenchmarkId::new(D::NAME, sessions), |b| {
            b.iter_custom(|iters| {
                let target = received.load(Ordering::Relaxed) + iters * (sessions * BLOCK) as u64;
                let start = Instant::now();
                while received.load(Ordering::Relaxed) < target {
                    ev.run_once(Some(Duration::from_secs(1))).unwrap();
                }
                start.elapsed()
            })
        });
        drop(ev);
        server_loop.quit();
        server.join().unwrap();
    }
    group.finish();
}

fn pingpong(c: &mut Criterion) {
    bench_backend::<SelectDispatcher>(c);
    bench_backend::<PollDispatcher>(c);
    #[cfg(muxloop_has_epoll)]
    bench_backend::<EpollDispatcher>(c);
    #[cfg(muxloop_has_uring)]
    if uring::available() {
        bench_backend::<UringDispatcher>(c);
    }
}

criterion_group!(benches, pingpong);
criterion_main!(benches);
