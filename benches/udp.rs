//! `cargo bench --bench udp`: a UDP echo server on its own loop thread and a
//! muxloop client on the bench thread keeping 1 or 64 datagrams of 64 bytes
//! in flight, over loopback, both on the same backend. Measures datagrams
//! echoed per second (`Throughput::Elements`).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
#[cfg(muxloop_has_epoll)]
use muxloop::EpollDispatcher;
use muxloop::{DatagramOptions, Dispatcher, EventLoop, PollDispatcher, SelectDispatcher, UdpSocket};

const SIZE: usize = 64;
const BUFFERS: Option<usize> = Some(4 << 20);

fn bench_backend<D: Dispatcher + 'static>(c: &mut Criterion) {
    let mut group = c.benchmark_group("udp_echo");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    let (tx, rx) = mpsc::channel();
    let server = thread::spawn(move || {
        let mut ev = EventLoop::<D>::new().unwrap();
        let options = DatagramOptions::new().buffers(BUFFERS, BUFFERS);
        let sock = UdpSocket::bind_with(&mut ev, "127.0.0.1:0", options, |ev, sock, d| {
            let _ = sock.send_to(ev, d.data, &d.peer);
        })
        .unwrap();
        tx.send((sock.local_addr(), ev.handle())).unwrap();
        ev.run().unwrap();
    });
    let (addr, server_loop) = rx.recv().unwrap();

    let mut ev = EventLoop::<D>::new().unwrap();
    let answered = Rc::new(Cell::new(0u64));
    let counted = Rc::clone(&answered);
    let options = DatagramOptions::new().buffers(BUFFERS, BUFFERS);
    let client = UdpSocket::bind_with(&mut ev, "127.0.0.1:0", options, move |ev, sock, d| {
        counted.set(counted.get() + 1);
        let _ = sock.send(ev, d.data);
    })
    .unwrap();
    client.connect(&addr).unwrap();
    let payload = [7u8; SIZE];
    for inflight in [1u64, 64] {
        // Top the window up to `inflight` (earlier rounds may have lost some).
        for _ in 0..inflight {
            client.send(&mut ev, &payload).unwrap();
        }
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new(D::NAME, format!("{inflight}_in_flight")), |b| {
            b.iter_custom(|iters| {
                let target = answered.get() + iters;
                let start = Instant::now();
                while answered.get() < target {
                    // A datagram lost on loopback would shrink the window: refill it.
                    if ev.run_once(Some(Duration::from_millis(200))).unwrap() == 0 {
                        client.send(&mut ev, &payload).unwrap();
                    }
                }
                start.elapsed()
            })
        });
    }
    client.close(&mut ev);
    server_loop.quit();
    server.join().unwrap();
    group.finish();
}

fn udp(c: &mut Criterion) {
    bench_backend::<SelectDispatcher>(c);
    bench_backend::<PollDispatcher>(c);
    #[cfg(muxloop_has_epoll)]
    bench_backend::<EpollDispatcher>(c);
}

criterion_group!(benches, udp);
criterion_main!(benches);
