//! The simulator held to the real kernel: the same scripts of system calls
//! run over loopback TCP with epoll and over the simulated kernel with
//! `SimDispatcher`, and must print the same transcript, step for step:
//! every call's result (byte count or error) and the readiness each fd
//! reports after it.
//!
//! The code is the same for both runs: the `sys` wrappers reach the real
//! kernel, or the simulated one once a `Sim` is started on the thread.

use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use muxloop::sim::{Sim, SimConfig};
use muxloop::sys::{self, RawAddr};
use muxloop::{Dispatcher, EpollDispatcher, Events, Interest, Mode, SimDispatcher};

/// Two connected TCP sockets of the program, `a` (the client) and `b`.
struct Pair<D> {
    a: Option<OwnedFd>,
    b: Option<OwnedFd>,
    dispatcher: D,
    log: Vec<String>,
}

fn result(r: std::io::Result<usize>) -> String {
    match r {
        Ok(n) => format!("Ok({n})"),
        Err(e) => format!("Err({:?})", e.kind()),
    }
}

/// Polls `done` for up to a second (the real kernel may need a moment).
fn settle(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

fn connect_pair<D: Dispatcher>() -> Pair<D> {
    let listener = sys::tcp_listener(&"127.0.0.1:0".parse().unwrap(), false, 16).unwrap();
    let addr = sys::local_addr(listener.as_fd()).unwrap();
    let a = sys::stream_socket(&addr).unwrap();
    sys::start_connect(a.as_fd(), &addr).unwrap();
    let mut b = None;
    assert!(settle(|| {
        b = sys::accept(listener.as_fd()).ok().map(|(fd, _)| fd);
        b.is_some()
    }));
    let mut pair = Pair { a: Some(a), b, dispatcher: D::new().unwrap(), log: Vec::new() };
    for fd in [pair.fd('a'), pair.fd('b')] {
        pair.dispatcher.register(fd, Interest::BOTH, Mode::Level).unwrap();
    }
    pair
}

impl<D: Dispatcher> Pair<D> {
    fn fd(&self, side: char) -> i32 {
        self.socket(side).as_raw_fd()
    }

    fn socket(&self, side: char) -> &OwnedFd {
        if side == 'a' { self.a.as_ref() } else { self.b.as_ref() }.expect("an open side")
    }

    fn write(&mut self, side: char, data: &[u8]) {
        let r = sys::send(self.socket(side).as_fd(), data);
        self.log.push(format!("{side} write {}: {}", data.len(), result(r)));
    }

    fn read(&mut self, side: char) {
        let mut buf = [0u8; 64];
        let r = sys::recv(self.socket(side).as_fd(), &mut buf);
        let text = match &r {
            Ok(n) => format!(" {:?}", String::from_utf8_lossy(&buf[..*n])),
            Err(_) => String::new(),
        };
        self.log.push(format!("{side} read: {}{text}", result(r)));
    }

    fn shutdown(&mut self, side: char) {
        let r = sys::shutdown(self.socket(side).as_fd(), Shutdown::Write).map(|_| 0);
        self.log.push(format!("{side} shutdown(Write): {}", result(r)));
    }

    fn close(&mut self, side: char) {
        let fd = self.fd(side);
        self.dispatcher.deregister(fd).unwrap();
        if side == 'a' {
            self.a.take()
        } else {
            self.b.take()
        };
        self.log.push(format!("{side} closed"));
    }

    /// Writes until the socket refuses, and says so (the count differs:
    /// the buffers do).
    fn fill(&mut self, side: char) {
        let chunk = [b'x'; 16 << 10];
        let mut total = 0usize;
        let last = loop {
            match sys::send(self.socket(side).as_fd(), &chunk) {
                Ok(n) => total += n,
                Err(e) => break e.kind(),
            }
            assert!(total < 64 << 20, "{side} took 64 MiB without refusing");
        };
        self.log.push(format!("{side} filled: then Err({last:?})"));
    }

    /// Reads until `WouldBlock` or end of file, and says how it ended.
    fn drain(&mut self, side: char) {
        let mut buf = [0u8; 64 << 10];
        let end = loop {
            match sys::recv(self.socket(side).as_fd(), &mut buf) {
                Ok(0) => break "Ok(0)".to_owned(),
                Ok(_) => {}
                Err(e) => break format!("Err({:?})", e.kind()),
            }
        };
        self.log.push(format!("{side} drained: then {end}"));
    }

    /// The readiness each open side reports, once the real kernel has
    /// settled (loopback delivers within the call, but give it a moment).
    fn observe(&mut self) {
        std::thread::sleep(Duration::from_millis(5));
        let mut events = Events::with_capacity(4);
        self.dispatcher.dispatch(&mut events, Some(Duration::ZERO)).unwrap();
        for side in ['a', 'b'] {
            let open = if side == 'a' { &self.a } else { &self.b };
            let Some(socket) = open else { continue };
            let ready = events.iter().find(|e| e.fd() == socket.as_raw_fd()).map(|e| e.ready());
            self.log.push(format!("  {side} ready: {}", ready.map_or("-".to_owned(), |r| format!("{r:?}"))));
        }
    }
}

/// Runs `script` over the real kernel (epoll) and over the simulator.
fn both(
    script: fn(&mut Pair<EpollDispatcher>),
    sim_script: fn(&mut Pair<SimDispatcher>),
) -> (Vec<String>, Vec<String>) {
    let mut real = connect_pair::<EpollDispatcher>();
    real.observe();
    script(&mut real);
    let _sim = Sim::start(SimConfig::new(7).virtual_time(false)).unwrap();
    let mut sim = connect_pair::<SimDispatcher>();
    sim.observe();
    sim_script(&mut sim);
    (real.log, sim.log)
}

macro_rules! same_transcript {
    ($name:ident, |$p:ident| $body:block) => {
        #[test]
        fn $name() {
            fn script<D: Dispatcher>($p: &mut Pair<D>) $body
            let (real, sim) = both(script::<EpollDispatcher>, script::<SimDispatcher>);
            assert_eq!(sim, real, "the simulator (left) against Linux (right)");
        }
    };
}

same_transcript!(data_then_fin_then_the_other_way, |p| {
    p.write('a', b"hello");
    p.observe();
    p.read('b');
    p.shutdown('a');
    p.observe();
    p.read('b');
    p.read('b');
    p.write('b', b"still open");
    p.read('a');
    p.observe();
});

same_transcript!(close_with_unread_data_resets_the_peer, |p| {
    p.write('a', b"never read");
    p.observe();
    p.close('b');
    p.observe();
    p.read('a');
    p.read('a');
    p.write('a', b"x");
    p.write('a', b"y");
});

same_transcript!(writing_to_a_closed_peer_succeeds_once_then_epipe, |p| {
    p.close('b');
    p.observe();
    p.read('a');
    p.write('a', b"first");
    p.observe();
    p.write('a', b"second");
    p.write('a', b"third");
    p.read('a');
});

same_transcript!(both_halves_shut_is_a_hangup, |p| {
    p.shutdown('a');
    p.observe();
    p.shutdown('b');
    p.observe();
    p.read('a');
    p.read('b');
    p.write('a', b"late");
});

same_transcript!(data_and_fin_together, |p| {
    p.write('a', b"tail");
    p.shutdown('a');
    p.observe();
    p.read('b');
    p.read('b');
    p.observe();
});

same_transcript!(a_full_socket_is_not_writable_until_the_peer_reads, |p| {
    p.fill('a');
    p.observe();
    p.drain('b');
    p.drain('b');
    p.observe();
});

/// A connect to a port where nothing listens: the result of `connect`
/// and what readiness and `SO_ERROR` say after it.
#[test]
fn connect_refused() {
    fn script() -> Vec<String> {
        // Bind a listener to learn a free port, then close it.
        let listener = sys::tcp_listener(&"127.0.0.1:0".parse().unwrap(), false, 1).unwrap();
        let addr: SocketAddr = sys::local_addr(listener.as_fd()).unwrap().to_inet().unwrap();
        drop(listener);
        let raw = RawAddr::from_inet(&addr);
        let socket = sys::stream_socket(&raw).unwrap();
        let mut log =
            vec![format!("connect: {:?}", sys::start_connect(socket.as_fd(), &raw).map_err(|e| e.kind()))];
        std::thread::sleep(Duration::from_millis(5));
        let error = sys::take_socket_error(socket.as_fd()).unwrap().map(|e| e.kind());
        log.push(format!("SO_ERROR: {error:?}"));
        let mut buf = [0u8; 8];
        log.push(format!("read: {}", result(sys::recv(socket.as_fd(), &mut buf))));
        log
    }
    let real = script();
    let _sim = Sim::start(SimConfig::new(7).virtual_time(false)).unwrap();
    let sim = script();
    assert_eq!(sim, real, "the simulator (left) against Linux (right)");
    assert!(real.iter().any(|l| l.contains("ConnectionRefused")), "{real:?}");
}
