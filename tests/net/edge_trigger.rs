//! Edge- and level-triggered connections over real loopback sockets, once per
//! dispatcher: `Trigger::Auto` is edge on epoll and io_uring and level on
//! select and poll, an explicit `Trigger::Edge` is refused where it cannot
//! work, and on every backend: echo integrity with slow readers, a flooding
//! peer does not starve another one (read side and write side), reading
//! paused and resumed delivers what arrived meanwhile, and backpressure loses
//! nothing. On the edge path each of these guards one obligation: drain
//! until `WouldBlock`, continue after the pass budget, read again on resume.

use crate::common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use muxloop::{Buffer, Connection, Dispatcher, EventLoop, Handler, Mode, Server, Trigger};

/// Every blocking client operation here gives up after this long: a lost
/// edge shows up as a timeout, not a hung test.
const STALL: Duration = Duration::from_secs(10);

fn edge_supported<D: Dispatcher>() -> bool {
    D::new().expect("dispatcher").supports(Mode::Edge)
}

fn client(addr: std::net::SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(STALL)).unwrap();
    stream.set_write_timeout(Some(STALL)).unwrap();
    stream
}

/// Reads exactly `n` bytes, failing the test on EOF or a stall.
fn read_exactly(stream: &mut TcpStream, n: usize, what: &str) -> Vec<u8> {
    let mut out = vec![0; n];
    let mut got = 0;
    while got < n {
        match stream.read(&mut out[got..]) {
            Ok(0) => panic!("{what}: EOF after {got} of {n} bytes"),
            Ok(k) => got += k,
            Err(e) => panic!("{what}: {e} after {got} of {n} bytes (a lost edge?)"),
        }
    }
    out
}

/// Echo that reports each connection's trigger mode.
struct Echo {
    modes: Option<mpsc::Sender<Mode>>,
}

impl<D: Dispatcher + 'static> Handler<D> for Echo {
    fn on_connect(&mut self, _: &mut EventLoop<D>, conn: &Connection<D>) {
        if let Some(tx) = self.modes.take() {
            let _ = tx.send(conn.trigger_mode());
        }
    }
    fn on_message(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>, input: &mut Buffer) {
        let _ = conn.send(ev, input.peek());
        input.consume_all();
    }
    fn wants_write_complete(&self) -> bool {
        false
    }
}

fn echo_factory<D: Dispatcher + 'static>() -> impl Fn(&Connection<D>) -> Echo + Send + Sync + 'static {
    |_: &Connection<D>| Echo { modes: None }
}

/// Auto resolves per backend; Level is level everywhere; Edge is edge where
/// supported and a clear `Unsupported` error at start elsewhere.
fn trigger_resolves_per_backend<D: Dispatcher + 'static>() {
    let edge = edge_supported::<D>();
    for (trigger, expected) in [
        (Trigger::Auto, if edge { Mode::Edge } else { Mode::Level }),
        (Trigger::Level, Mode::Level),
        (Trigger::Edge, Mode::Edge),
    ] {
        let mut ev = EventLoop::<D>::new().unwrap();
        let (tx, rx) = mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        let factory = move |_: &Connection<D>| Echo { modes: Some(tx.lock().unwrap().clone()) };
        let started = Server::builder("127.0.0.1:0", factory).trigger(trigger).start(&mut ev);
        if trigger == Trigger::Edge && !edge {
            let err = started.expect_err("Edge on a backend without it must fail at start");
            assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
            assert!(err.to_string().contains(ev.dispatcher_name()), "the message names the backend: {err}");
            continue;
        }
        let server = started.expect("server starts");
        let mut stream = client(server.local_addr().as_inet().unwrap());
        stream.write_all(b"ping").unwrap();
        assert!(run_until(&mut ev, || rx.try_recv().map(|m| assert_eq!(m, expected, "{trigger:?}")).is_ok()));
        let handle = thread::spawn(move || read_exactly(&mut stream, 4, "ping"));
        assert!(run_until(&mut ev, || handle.is_finished()));
        assert_eq!(handle.join().unwrap(), b"ping");
        server.stop(&mut ev, Duration::from_secs(1)).unwrap();
    }
}

/// 24 clients each send 0.5-2 MiB in random-size writes while reading
/// slowly; with a small output limit and pass budget, reads pause and resume
/// and the budget is hit all the time; every byte comes back in order.
fn echo_integrity_with_slow_readers<D: Dispatcher + 'static>() {
    let server = spawn_server_with::<D, _, _>(echo_factory::<D>(), |b| {
        b.threads(1).output_limit(Some(128 * 1024)).pass_budget(48 * 1024)
    });
    let clients: Vec<_> = (0..24u64)
        .map(|i| {
            let addr = server.addr;
            thread::spawn(move || {
                let mut rng = Rng::new(i + 7);
                let len = rng.range(512 << 10, 2 << 20);
                let data = rng.bytes(len);
                let stream = client(addr);
                let mut writer = stream.try_clone().unwrap();
                let sent = data.clone();
                let writing = thread::spawn(move || {
                    let mut rng = Rng::new(i + 500);
                    let mut off = 0;
                    while off < sent.len() {
                        let n = rng.range(1, 96 * 1024).min(sent.len() - off);
                        writer.write_all(&sent[off..off + n]).expect("client write");
                        off += n;
                    }
                });
                let mut reader = stream;
                let mut got = Vec::with_capacity(data.len());
                let mut chunk = vec![0; 8 * 1024];
                while got.len() < data.len() {
                    match reader.read(&mut chunk) {
                        Ok(0) => panic!("client {i}: EOF after {} of {} bytes", got.len(), data.len()),
                        Ok(n) => got.extend_from_slice(&chunk[..n]),
                        Err(e) => panic!("client {i}: {e} after {} of {} bytes", got.len(), data.len()),
                    }
                    if rng.range(0, 5) == 0 {
                        thread::sleep(Duration::from_millis(1)); // a slow reader
                    }
                }
                writing.join().unwrap();
                assert_eq!(fnv1a(&got), fnv1a(&data), "client {i}: bytes differ");
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client");
    }
}

/// The big sender: one client floods (writing and reading flat out, no
/// output limit, so only the pass budget bounds it) while a second client
/// does 40 small round trips; each must be answered within a generous bound,
/// and the flood then gets every byte back.
fn flood_does_not_starve_a_small_request<D: Dispatcher + 'static>() {
    const BLOCK: usize = 256 * 1024;
    let server = spawn_server_with::<D, _, _>(echo_factory::<D>(), |b| b.threads(0).output_limit(None));
    let flood = client(server.addr);
    let mut flood_writer = flood.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (blocks_tx, blocks_rx) = mpsc::channel();
    let writing = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let block = Rng::new(3).bytes(BLOCK);
            let mut sent = 0;
            loop {
                let last = stop.load(Ordering::Acquire);
                if last {
                    // The count goes out before the last block, so the
                    // reader knows when to stop without racing the data.
                    blocks_tx.send(sent + 1).unwrap();
                }
                flood_writer.write_all(&block).expect("flood write");
                sent += 1;
                if last {
                    return sent;
                }
            }
        })
    };
    let reading = thread::spawn(move || {
        let mut flood = flood;
        let expected = fnv1a(&Rng::new(3).bytes(BLOCK));
        let mut chunk = vec![0; BLOCK];
        let mut total = None;
        let mut k = 0;
        while total != Some(k) {
            let mut got = 0;
            while got < BLOCK {
                match flood.read(&mut chunk[got..]) {
                    Ok(0) => panic!("flood: EOF in block {k}"),
                    Ok(n) => got += n,
                    Err(e) => panic!("flood: {e} in block {k} (data stuck in the server?)"),
                }
            }
            assert_eq!(fnv1a(&chunk), expected, "flood block {k} differs");
            k += 1;
            if let Ok(n) = blocks_rx.try_recv() {
                total = Some(n);
            }
        }
        k
    });
    thread::sleep(Duration::from_millis(100)); // the flood is under way
    let mut small = client(server.addr);
    let mut worst = Duration::ZERO;
    for _ in 0..40 {
        let t = Instant::now();
        small.write_all(b"ping\n").unwrap();
        assert_eq!(read_exactly(&mut small, 5, "small request"), b"ping\n");
        worst = worst.max(t.elapsed());
        thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Release);
    let sent = writing.join().expect("flood writer");
    let echoed = reading.join().expect("flood reader");
    assert_eq!(echoed, sent, "flood blocks echoed");
    assert!(sent >= 4, "the flood hardly ran ({sent} blocks)");
    assert!(worst < Duration::from_millis(1500), "a small request waited {worst:?} behind the flood");
}

/// Write side of the fairness cap: one reply of 24 MiB (queued, written a
/// budget per pass) does not hold up another connection's round trips, and
/// arrives whole.
fn big_reply_does_not_starve_a_small_request<D: Dispatcher + 'static>() {
    const BIG: usize = 24 << 20;
    let reply: Arc<Vec<u8>> = Arc::new((0..BIG).map(|i| (i % 251) as u8).collect());
    struct Big(Arc<Vec<u8>>);
    impl<D: Dispatcher + 'static> Handler<D> for Big {
        fn on_message(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>, input: &mut Buffer) {
            if input.peek().starts_with(b"big") {
                let _ = conn.send(ev, &self.0);
            } else {
                let _ = conn.send(ev, input.peek());
            }
            input.consume_all();
        }
    }
    let server = spawn_server_with::<D, _, _>(
        move |_: &Connection<D>| Big(Arc::clone(&reply)),
        |b| b.threads(0).output_limit(None).pass_budget(16 * 1024),
    );
    let mut big = client(server.addr);
    big.write_all(b"big").unwrap();
    let progress = Arc::new(AtomicBool::new(false));
    let started = Arc::clone(&progress);
    let reading = thread::spawn(move || {
        let mut got = 0;
        let mut chunk = vec![0; 64 * 1024];
        while got < BIG {
            match big.read(&mut chunk) {
                Ok(0) => panic!("big: EOF after {got} of {BIG}"),
                Ok(n) => {
                    assert!(
                        chunk[..n].iter().enumerate().all(|(j, &b)| b == ((got + j) % 251) as u8),
                        "big reply corrupt"
                    );
                    got += n;
                    started.store(true, Ordering::Release);
                }
                Err(e) => panic!("big: {e} after {got} of {BIG} bytes (queued output stuck?)"),
            }
            thread::sleep(Duration::from_micros(200)); // a slowish reader: the queue lives a while
        }
    });
    assert!(wait_until(STALL, || progress.load(Ordering::Acquire)), "the big reply never started");
    let mut small = client(server.addr);
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let t = Instant::now();
        small.write_all(b"ping\n").unwrap();
        assert_eq!(read_exactly(&mut small, 5, "small request"), b"ping\n");
        worst = worst.max(t.elapsed());
        thread::sleep(Duration::from_millis(5));
    }
    reading.join().expect("big reader");
    assert!(worst < Duration::from_millis(1500), "a small request waited {worst:?} behind the big reply");
}

/// Pauses reading on the first message and resumes 300 ms later: what the
/// client sent meanwhile (and then nothing more: no new edge) is delivered.
fn paused_reading_resumes_with_what_arrived<D: Dispatcher + 'static>() {
    struct Pausing {
        paused: bool,
    }
    impl<D: Dispatcher + 'static> Handler<D> for Pausing {
        fn on_message(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>, input: &mut Buffer) {
            let _ = conn.send(ev, input.peek());
            input.consume_all();
            if !self.paused {
                self.paused = true;
                conn.stop_reading(ev);
                assert!(!conn.is_reading());
                let conn = conn.clone();
                ev.run_after(Duration::from_millis(300), move |ev| conn.start_reading(ev));
            }
        }
    }
    let server =
        spawn_server_with::<D, _, _>(|_: &Connection<D>| Pausing { paused: false }, |b| b.threads(1));
    let mut stream = client(server.addr);
    stream.write_all(b"first").unwrap();
    assert_eq!(read_exactly(&mut stream, 5, "first message"), b"first");
    // Sent while paused, all at once; nothing else follows.
    let rest = Rng::new(11).bytes(200 * 1024);
    stream.write_all(&rest).unwrap();
    let t = Instant::now();
    let got = read_exactly(&mut stream, rest.len(), "input sent while paused");
    assert_eq!(fnv1a(&got), fnv1a(&rest));
    assert!(t.elapsed() >= Duration::from_millis(200), "reading was not paused ({:?})", t.elapsed());
}

/// A client pipelines 24 MiB without reading, so the server's output queue
/// reaches its limit and it stops reading; then the client reads everything:
/// every byte arrives, in order (resuming must read what waited in the
/// socket: under edge no new edge announces it).
fn backpressure_then_read_everything<D: Dispatcher + 'static>() {
    const TOTAL: usize = 24 << 20;
    struct Throttled(Arc<AtomicBool>);
    impl<D: Dispatcher + 'static> Handler<D> for Throttled {
        fn on_message(&mut self, ev: &mut EventLoop<D>, conn: &Connection<D>, input: &mut Buffer) {
            let _ = conn.send(ev, input.peek());
            input.consume_all();
            if conn.is_output_full() {
                self.0.store(true, Ordering::Release);
            }
        }
    }
    let engaged = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&engaged);
    let server = spawn_server_with::<D, _, _>(
        move |_: &Connection<D>| Throttled(Arc::clone(&flag)),
        |b| b.threads(0).output_limit(Some(256 * 1024)).pass_budget(64 * 1024),
    );
    let stream = client(server.addr);
    let mut writer = stream.try_clone().unwrap();
    let data = Rng::new(5).bytes(TOTAL);
    let sent = data.clone();
    let writing = thread::spawn(move || writer.write_all(&sent).expect("pipelined writes"));
    assert!(wait_until(STALL, || engaged.load(Ordering::Acquire)), "the output limit never engaged");
    thread::sleep(Duration::from_millis(200)); // the server sits throttled a while
    let mut reader = stream;
    let got = read_exactly(&mut reader, TOTAL, "pipelined echo");
    writing.join().unwrap();
    assert_eq!(fnv1a(&got), fnv1a(&data), "bytes lost or reordered");
}

/// Clients send a request and half-close at once, so data and FIN often
/// arrive before the server looks: every one must get its echo and then EOF
/// (an edge reader that trusted the short read would stop just before the
/// FIN, which raises no further edge, and hang the client).
fn data_then_fin_at_once_reach_eof<D: Dispatcher + 'static>() {
    let server = spawn_server_with::<D, _, _>(echo_factory::<D>(), |b| b.threads(0));
    let clients: Vec<_> = (0..16u64)
        .map(|i| {
            let addr = server.addr;
            thread::spawn(move || {
                let mut rng = Rng::new(i + 99);
                for round in 0..25 {
                    let len = rng.range(1, 3000);
                    let data = rng.bytes(len);
                    let mut stream = client(addr);
                    stream.write_all(&data).unwrap();
                    stream.shutdown(std::net::Shutdown::Write).unwrap();
                    let mut got = Vec::new();
                    if let Err(e) = stream.read_to_end(&mut got) {
                        panic!(
                            "client {i} round {round}: {e} after {} of {len} bytes (EOF never seen?)",
                            got.len()
                        );
                    }
                    assert_eq!(got, data, "client {i} round {round}");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client");
    }
}

/// Edge-triggered, the interest is readable + writable from the start and
/// never changes (no `epoll_ctl` per write burst), yet an idle, drained
/// connection lets the loop sleep: "writable" was reported once, not forever.
fn edge_interest_is_fixed_and_idle_is_quiet<D: Dispatcher + 'static>() {
    use std::cell::RefCell;
    use std::rc::Rc;
    let mut ev = EventLoop::<D>::new().unwrap();
    let conns: Rc<RefCell<Vec<Connection<D>>>> = Rc::default();
    let kept = Rc::clone(&conns);
    let factory = move |conn: &Connection<D>| {
        kept.borrow_mut().push(conn.clone());
        muxloop::Callbacks::<D>::new()
    };
    let addr = Server::local_builder("127.0.0.1:0", factory)
        .output_limit(None)
        .start(&mut ev)
        .unwrap()
        .local_addr()
        .as_inet()
        .unwrap();
    let mut client = client(addr);
    assert!(run_until(&mut ev, || !conns.borrow().is_empty()));
    let conn = conns.borrow()[0].clone();
    let fixed = if edge_supported::<D>() { muxloop::Interest::BOTH } else { muxloop::Interest::READABLE };
    assert_eq!(ev.interest(conn.fd()), Some(fixed));
    conn.send(&mut ev, &vec![b'w'; 16 << 20]).unwrap();
    assert!(conn.queued_output() > 0, "16 MiB cannot all fit in the socket buffers");
    if edge_supported::<D>() {
        assert_eq!(ev.interest(conn.fd()), Some(fixed), "edge: the interest does not follow the queue");
    }
    let reader = thread::spawn(move || read_exactly(&mut client, 16 << 20, "queued output").len());
    assert!(run_until(&mut ev, || conn.queued_output() == 0), "queued output drained");
    assert_eq!(ev.interest(conn.fd()), Some(fixed));
    assert_eq!(reader.join().unwrap(), 16 << 20);
    ev.run_once(Some(Duration::ZERO)).unwrap();
    let before = ev.stats().dispatch_calls;
    let started = Instant::now();
    ev.run_once(Some(Duration::from_millis(200))).unwrap();
    assert_eq!(ev.stats().dispatch_calls - before, 1);
    assert!(started.elapsed() >= Duration::from_millis(150), "the dispatch spun instead of sleeping");
}

for_each_dispatcher!(
    edge_interest_is_fixed_and_idle_is_quiet,
    data_then_fin_at_once_reach_eof,
    trigger_resolves_per_backend,
    echo_integrity_with_slow_readers,
    flood_does_not_starve_a_small_request,
    big_reply_does_not_starve_a_small_request,
    paused_reading_resumes_with_what_arrived,
    backpressure_then_read_everything,
);
