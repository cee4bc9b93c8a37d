//! `cargo bench -- buffer`: the Buffer operations on a connection's hot path
//! (no dispatcher involved).

use std::hint::black_box;
use std::os::fd::AsFd;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use muxloop::{Buffer, sys};

fn buffer(c: &mut Criterion) {
    let mut group = c.benchmark_group("buffer");
    group.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    for size in [64usize, 16 * 1024] {
        let data = vec![7u8; size];
        let mut buf = Buffer::new();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::new("append_consume", size), |b| {
            b.iter(|| {
                buf.append(black_box(&data));
                buf.consume(size);
            })
        });
    }

    let (reader, writer) = sys::socketpair().unwrap();
    let block = vec![1u8; 16 * 1024];
    let mut buf = Buffer::new();
    group.throughput(Throughput::Bytes(block.len() as u64));
    group.bench_function(BenchmarkId::new("write_then_read_fd", block.len()), |b| {
        b.iter(|| {
            sys::write(writer.as_fd(), &block).unwrap();
            let n = buf.read_fd(reader.as_fd()).unwrap();
            buf.consume(n);
        })
    });

    let mut header = Buffer::new();
    header.append(b"GET /some/path?query=string HTTP/1.1\r");
    for i in 0..40 {
        header.append(format!("X-Header-{i}: a value that is not short\r").as_bytes());
    }
    header.append(b"\r\n");
    group.throughput(Throughput::Bytes(header.len() as u64));
    group.bench_function(BenchmarkId::new("find_crlf", header.len()), |b| {
        b.iter(|| black_box(header.find_crlf()))
    });

    let body = vec![3u8; 100];
    let mut frame = Buffer::new();
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new("frame_encode_decode", body.len()), |b| {
        b.iter(|| {
            frame.append(&body);
            frame.prepend_u32(11);
            frame.prepend_u32(body.len() as u32);
            let len = frame.read_u32().unwrap() as usize;
            let kind = frame.read_u32().unwrap();
            black_box((kind, frame.take(len)))
        })
    });
    group.finish();
}

criterion_group!(benches, buffer);
criterion_main!(benches);
