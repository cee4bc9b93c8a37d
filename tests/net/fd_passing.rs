//! Passing fds over Unix stream connections (`SCM_RIGHTS`), on every
//! dispatcher: a passed fd works in the receiver, fds nobody takes are
//! closed, queued fds travel with their own byte, and the errors are clear.
//! Both ends are `Connection`s of one loop, adopted from a socketpair.

use crate::common;

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;

use common::*;
use muxloop::{
    Buffer, Callbacks, Connection, ConnectionOptions, Dispatcher, EventLoop, Handler, PollDispatcher, Server,
    sys,
};

/// What the receiving end saw.
#[derive(Default)]
struct Seen {
    /// Bytes delivered so far.
    bytes: usize,
    /// For each `on_fds`: the bytes delivered before it, the bytes
    /// delivered by the `on_message` right after it, and the fds.
    fds: Vec<(usize, usize, Vec<OwnedFd>)>,
    /// Keep the fds (else they are dropped, i.e. closed, at once).
    keep: bool,
}

struct Receiver(Rc<RefCell<Seen>>);

impl<D: Dispatcher + 'static> Handler<D> for Receiver {
    fn on_message(&mut self, _: &mut EventLoop<D>, _: &Connection<D>, input: &mut Buffer) {
        let mut seen = self.0.borrow_mut();
        seen.bytes += input.len();
        let bytes = seen.bytes;
        if let Some(last) = seen.fds.last_mut().filter(|last| last.1 == 0) {
            last.1 = bytes;
        }
        input.consume_all();
    }

    fn on_fds(&mut self, _: &mut EventLoop<D>, _: &Connection<D>, fds: Vec<OwnedFd>) {
        let mut seen = self.0.borrow_mut();
        let before = seen.bytes;
        let kept = if seen.keep { fds } else { Vec::new() }; // dropping closes them
        seen.fds.push((before, 0, kept));
    }
}

/// A sender and a receiving connection on `ev`, over a socketpair.
fn pair<D: Dispatcher + 'static>(
    ev: &mut EventLoop<D>,
    keep: bool,
) -> (Connection<D>, Connection<D>, Rc<RefCell<Seen>>) {
    let (a, b) = UnixStream::pair().unwrap();
    let sender = Connection::from_std(ev, a, Callbacks::<D>::new(), ConnectionOptions::default()).unwrap();
    let seen = Rc::new(RefCell::new(Seen { keep, ..Seen::default() }));
    let receiver_seen = Rc::clone(&seen);
    let options = ConnectionOptions { output_limit: None, ..ConnectionOptions::default() };
    let receiver =
        Connection::from_std(ev, b, move |_: &Connection<D>| Receiver(Rc::clone(&receiver_seen)), options)
            .unwrap();
    (sender, receiver, seen)
}

fn pipe() -> (File, File) {
    let (r, w) = sys::pipe().unwrap();
    (File::from(r), File::from(w))
}

/// The write end of a pipe, passed over: what the receiver writes into it
/// comes out of our read end.
fn passed_fd_works<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (sender, _receiver, seen) = pair::<D>(&mut ev, true);
    let (mut read_end, write_end) = pipe();
    sender.send_fds(&mut ev, b"!", &[write_end.as_fd()]).unwrap();
    drop(write_end);
    assert!(run_until(&mut ev, || seen.borrow().bytes == 1));
    let mut passed = seen.borrow_mut().fds.pop().expect("on_fds ran").2;
    assert_eq!(passed.len(), 1);
    let mut theirs = File::from(passed.pop().unwrap());
    theirs.write_all(b"written through a passed fd").unwrap();
    drop(theirs);
    let mut got = String::new();
    read_end.read_to_string(&mut got).unwrap();
    assert_eq!(got, "written through a passed fd");
}

/// 50 pipes' write ends passed to a receiver that keeps none of them: once
/// ours are closed too, every read end sees EOF, so no copy leaked.
fn untaken_fds_are_closed<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (sender, _receiver, seen) = pair::<D>(&mut ev, false);
    let mut read_ends = Vec::new();
    for _ in 0..50 {
        let (r, w) = pipe();
        sender.send_fds(&mut ev, b"x", &[w.as_fd()]).unwrap();
        read_ends.push(r);
    }
    assert!(run_until(&mut ev, || seen.borrow().bytes == 50));
    assert_eq!(seen.borrow().fds.len(), 50, "one on_fds per byte that carried fds");
    for (i, mut r) in read_ends.into_iter().enumerate() {
        sys::set_nonblocking(std::os::fd::AsFd::as_fd(&r), true).unwrap();
        match r.read(&mut [0u8; 1]) {
            Ok(0) => {}
            other => panic!("pipe {i}: a copy of its write end is still open somewhere ({other:?})"),
        }
    }
}

/// Fds sent while 1 MiB is queued wait for their own byte: the receiver
/// gets them in the read that holds that byte (the kernel may glue bytes
/// sent before or after it into the same read), and they still work.
fn queued_fds_keep_their_place<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (sender, receiver, seen) = pair::<D>(&mut ev, true);
    receiver.stop_reading(&mut ev);
    const AHEAD: usize = 1 << 20;
    sender.send(&mut ev, &vec![b'a'; AHEAD]).unwrap();
    assert!(sender.queued_output() > 0, "the socket buffer cannot take 1 MiB at once");
    let (mut read_end, write_end) = pipe();
    sender.send_fds(&mut ev, b"b", &[write_end.as_fd(), write_end.as_fd()]).unwrap();
    drop(write_end);
    sender.send(&mut ev, &[b'c'; 1000]).unwrap();
    receiver.start_reading(&mut ev);
    assert!(run_until(&mut ev, || seen.borrow().bytes == AHEAD + 1 + 1000));
    let (before, through, fds) = seen.borrow_mut().fds.pop().expect("on_fds ran");
    assert!(
        before <= AHEAD && through > AHEAD,
        "the fds arrive with the byte they were sent with (offset {AHEAD}): delivered {before}..{through}"
    );
    assert_eq!(fds.len(), 2);
    for fd in fds {
        File::from(fd).write_all(b"ok;").unwrap();
    }
    let mut got = String::new();
    read_end.read_to_string(&mut got).unwrap();
    assert_eq!(got, "ok;ok;");
}

/// Clear errors: no fds over TCP, none without a byte, not 254 at once.
fn send_fds_errors<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (sender, _receiver, _) = pair::<D>(&mut ev, false);
    let (_r, w) = pipe();
    assert_eq!(sender.send_fds(&mut ev, b"", &[w.as_fd()]).unwrap_err().kind(), ErrorKind::InvalidInput);
    let many = vec![w.as_fd(); 254];
    assert_eq!(sender.send_fds(&mut ev, b"x", &many).unwrap_err().kind(), ErrorKind::InvalidInput);

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let tcp =
        Connection::from_std(&mut ev, stream, Callbacks::<D>::new(), ConnectionOptions::default()).unwrap();
    let err = tcp.send_fds(&mut ev, b"x", &[w.as_fd()]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
}

// ---------------------------------------------------------------------------
// Exact cases that pin what the cases above left loose (each killed a mutant
// that survived them; `docs/mutants.md` lists which)
// ---------------------------------------------------------------------------

/// One message carries at most 253 fds (the kernel's `SCM_MAX_FD`):
/// `send_fds` refuses 254 with `InvalidInput` and sends 253.
#[test]
fn fd_passing_takes_at_most_253_fds() {
    use std::os::fd::AsFd;
    use std::sync::{Arc, Mutex};
    type Outcome = Result<(), io::ErrorKind>;
    let path = std::env::temp_dir().join(format!("muxloop-net-mutants-fds-{}.sock", std::process::id()));
    let mut ev = EventLoop::<PollDispatcher>::new().unwrap();
    let seen: Arc<Mutex<Vec<(Outcome, Outcome)>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let callbacks = muxloop::Callbacks::new().on_connection(move |ev, conn| {
        if !conn.is_connected() {
            return;
        }
        let file = std::fs::File::open("/dev/null").unwrap();
        let fds = vec![file.as_fd(); 254];
        let too_many = conn.send_fds(ev, b"x", &fds).map_err(|e| e.kind());
        let most = conn.send_fds(ev, b"y", &fds[..253]).map_err(|e| e.kind());
        sink.lock().unwrap().push((too_many, most));
    });
    let server = Server::unix_builder(path.as_path(), callbacks).start(&mut ev).unwrap();
    let mut client = std::os::unix::net::UnixStream::connect(&path).unwrap();
    assert!(run_until(&mut ev, || !seen.lock().unwrap().is_empty()));
    assert_eq!(seen.lock().unwrap()[0], (Err(io::ErrorKind::InvalidInput), Ok(())));
    let mut byte = [0u8; 1];
    std::io::Read::read_exact(&mut client, &mut byte).unwrap();
    assert_eq!(&byte, b"y", "only the message with 253 fds went out");
    drop(server);
    let _ = std::fs::remove_file(&path);
}

/// Bytes sent with fds while other output is still queued wait their turn:
/// the peer reads them after everything sent before.
#[test]
fn passed_fds_wait_behind_queued_bytes() {
    use std::io::Read;
    use std::os::fd::AsFd;
    const BIG: usize = 4 << 20;
    let path = std::env::temp_dir().join(format!("muxloop-net-mutants-order-{}.sock", std::process::id()));
    let mut ev = EventLoop::<PollDispatcher>::new().unwrap();
    let server = Server::unix_builder(path.as_path(), muxloop::Callbacks::<PollDispatcher>::new())
        .start(&mut ev)
        .unwrap();
    let mut client = std::os::unix::net::UnixStream::connect(&path).unwrap();
    client.set_nonblocking(true).unwrap();
    assert!(run_until(&mut ev, || server.live_connections() == 1));
    server.for_each_connection(&mut ev, |ev, conn| {
        conn.send(ev, &vec![b'a'; BIG]).unwrap();
        assert!(conn.queued_output() > 0, "the kernel took all {BIG} bytes");
    });
    // The client reads some, so the kernel has room again while the rest is
    // still queued (the loop has not run to flush it).
    let mut got = Vec::with_capacity(BIG + 1);
    let mut buf = [0u8; 65536];
    while let Ok(n) = client.read(&mut buf) {
        got.extend_from_slice(&buf[..n]);
    }
    assert!(!got.is_empty());
    server.for_each_connection(&mut ev, |ev, conn| {
        let file = std::fs::File::open("/dev/null").unwrap();
        conn.send_fds(ev, b"Z", &[file.as_fd()]).unwrap();
    });
    assert!(
        run_until(&mut ev, || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = client.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
                if n == 0 {
                    break;
                }
            }
            got.len() == BIG + 1
        }),
        "{} of {} bytes",
        got.len(),
        BIG + 1
    );
    assert_eq!(got.iter().position(|&b| b == b'Z'), Some(BIG), "the fds' byte came last");
    drop(server);
    let _ = std::fs::remove_file(&path);
}

for_each_dispatcher!(passed_fd_works, untaken_fds_are_closed, queued_fds_keep_their_place, send_fds_errors);
