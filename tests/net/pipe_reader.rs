//! `PipeReader` on every dispatcher: data integrity and EOF through a real
//! pipe, the per-wake-up read bound, regular files, drop, and stdin's flag
//! restored at the end.

use crate::common;

use std::cell::{Cell, RefCell};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::Mutex;
use std::time::Duration;
use std::{io, thread};

use common::{IO_TIMEOUT, Rng, fnv1a, run_until};
use muxloop::{Dispatcher, EventLoop, PipeReader, PollDispatcher, sys};

/// Writes `data` in random chunks with blocking writes, then closes.
fn blocking_writer(w: OwnedFd, data: Vec<u8>) -> thread::JoinHandle<()> {
    sys::set_nonblocking(w.as_fd(), false).unwrap();
    thread::spawn(move || {
        let mut rng = Rng::new(7);
        let mut off = 0;
        while off < data.len() {
            let end = (off + rng.range(1, 100_000)).min(data.len());
            off += sys::write(w.as_fd(), &data[off..end]).unwrap();
        }
    })
}

#[derive(Default)]
struct Seen {
    bytes: RefCell<Vec<u8>>,
    ends: Cell<usize>,
    result: RefCell<Option<io::Result<()>>>,
}

fn reader<D: Dispatcher + 'static>(ev: &mut EventLoop<D>, fd: OwnedFd, seen: &Rc<Seen>) -> PipeReader<D> {
    let (a, b) = (Rc::clone(seen), Rc::clone(seen));
    PipeReader::new(
        ev,
        fd,
        move |_, _, bytes| a.bytes.borrow_mut().extend_from_slice(bytes),
        move |_, r, res| {
            assert!(r.is_closed(), "closed before the end callback");
            b.ends.set(b.ends.get() + 1);
            *b.result.borrow_mut() = Some(res);
        },
    )
    .unwrap()
}

/// 1 MiB through a pipe arrives byte for byte; EOF is reported once, after
/// which the reader has deregistered and closed the fd.
fn one_mib_through_a_pipe<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (r, w) = sys::pipe().unwrap();
    let data = Rng::new(1).bytes(1 << 20);
    let writer = blocking_writer(w, data.clone());
    let seen = Rc::new(Seen::default());
    let reader = reader(&mut ev, r, &seen);
    assert!(run_until(&mut ev, || seen.ends.get() > 0));
    writer.join().unwrap();
    assert_eq!(seen.bytes.borrow().len(), data.len());
    assert_eq!(fnv1a(&seen.bytes.borrow()), fnv1a(&data));
    assert!(matches!(*seen.result.borrow(), Some(Ok(()))));
    assert_eq!(reader.bytes_read(), data.len() as u64);
    for _ in 0..3 {
        ev.run_once(Some(Duration::from_millis(5))).unwrap();
    }
    assert_eq!(seen.ends.get(), 1, "EOF reported exactly once");
    assert_eq!(ev.registered_fds(), 0);
}

/// One wake-up reads at most 4 x 64 KiB, however much is waiting.
fn reads_are_bounded_per_wakeup<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (r, w) = sys::socketpair().unwrap();
    sys::set_buffer_sizes(w.as_fd(), Some(2 << 20), None).unwrap();
    sys::set_buffer_sizes(r.as_fd(), None, Some(2 << 20)).unwrap();
    let data = vec![7u8; 600_000];
    let mut off = 0;
    while off < data.len() {
        match sys::write(w.as_fd(), &data[off..]) {
            Ok(n) => off += n,
            Err(e) => panic!("socket buffer too small for the test: {e} after {off}"),
        }
    }
    let seen = Rc::new(Seen::default());
    let reader = reader(&mut ev, r, &seen);
    ev.run_once(Some(IO_TIMEOUT)).unwrap();
    assert_eq!(reader.bytes_read(), 4 * 65_536, "one wake-up reads at most the budget");
    drop(w);
    assert!(run_until(&mut ev, || seen.ends.get() == 1));
    assert_eq!(reader.bytes_read(), 600_000);
}

/// A regular file: epoll refuses it with a clear `Unsupported`; select and
/// poll report it always ready and it is read to its end.
fn regular_file<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let path = std::env::temp_dir().join(format!("muxloop-pipe-{}-{}", std::process::id(), D::NAME));
    std::fs::write(&path, b"file contents").unwrap();
    let file = OwnedFd::from(std::fs::File::open(&path).unwrap());
    std::fs::remove_file(&path).unwrap();
    let seen = Rc::new(Seen::default());
    let (a, b) = (Rc::clone(&seen), Rc::clone(&seen));
    let result = PipeReader::new(
        &mut ev,
        file,
        move |_, _, bytes| a.bytes.borrow_mut().extend_from_slice(bytes),
        move |_, _, _| b.ends.set(1),
    );
    // epoll refuses regular files (EPERM); the others report them ready.
    if ev.dispatcher_name() == "epoll" {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported, "{err}");
        assert_eq!(ev.registered_fds(), 0);
    } else {
        let _reader = result.unwrap();
        assert!(run_until(&mut ev, || seen.ends.get() == 1));
        assert_eq!(&*seen.bytes.borrow(), b"file contents");
    }
}

/// Dropping the reader deregisters and closes the read end: the writer then
/// gets `EPIPE` (muxloop never leaves an fd open behind a dropped handle).
fn drop_closes_the_fd<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (r, w) = sys::pipe().unwrap();
    let seen = Rc::new(Seen::default());
    let reader = reader(&mut ev, r, &seen);
    sys::write(w.as_fd(), b"x").unwrap();
    drop(reader);
    ev.run_once(Some(Duration::from_millis(10))).unwrap();
    assert_eq!(ev.registered_fds(), 0);
    // The write end is non-blocking; with no reader it fails with EPIPE
    // (SIGPIPE is ignored by the Rust runtime).
    let err = sys::write(w.as_fd(), b"y").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    assert_eq!(seen.ends.get(), 0, "close/drop does not call the end callback");
}

/// stdin: read through the loop, and its O_NONBLOCK flag (shared with other
/// processes) is put back as it was when the reader ends.
fn stdin_flag_restored<D: Dispatcher + 'static>() {
    static STDIN: Mutex<()> = Mutex::new(());
    let _only_me = STDIN.lock().unwrap_or_else(|e| e.into_inner());
    let saved = sys::dup_at_least(io::stdin().as_fd(), 10).unwrap();
    let (r, w) = sys::pipe().unwrap();
    sys::set_nonblocking(r.as_fd(), false).unwrap();
    // SAFETY: stdin (0) is owned by no `OwnedFd` here, and the `STDIN` lock
    // keeps every other test off it; the original is saved and put back.
    unsafe { sys::dup_onto(r.as_fd(), 0) }.unwrap();
    drop(r);
    assert!(!sys::is_nonblocking(io::stdin().as_fd()).unwrap());
    let mut ev = EventLoop::<D>::new().unwrap();
    let seen = Rc::new(Seen::default());
    let (a, b) = (Rc::clone(&seen), Rc::clone(&seen));
    let reader = PipeReader::stdin(
        &mut ev,
        move |_, _, bytes| a.bytes.borrow_mut().extend_from_slice(bytes),
        move |_, _, _| b.ends.set(1),
    )
    .unwrap();
    assert!(sys::is_nonblocking(io::stdin().as_fd()).unwrap(), "non-blocking while watched");
    sys::write(w.as_fd(), b"typed line\n").unwrap();
    drop(w);
    let done = run_until(&mut ev, || seen.ends.get() == 1);
    let restored = !sys::is_nonblocking(io::stdin().as_fd()).unwrap();
    let open = sys::is_open(0);
    // SAFETY: as above: stdin goes back to what it was.
    unsafe { sys::dup_onto(saved.as_fd(), 0) }.unwrap();
    assert!(done);
    assert!(reader.is_closed());
    assert_eq!(&*seen.bytes.borrow(), b"typed line\n");
    assert!(restored, "O_NONBLOCK restored on stdin");
    assert!(open, "stdin is borrowed, never closed");
}

// ---------------------------------------------------------------------------
// Exact cases that pin what the cases above left loose (each killed a mutant
// that survived them; `docs/mutants.md` lists which)
// ---------------------------------------------------------------------------

type Collected = Rc<RefCell<Vec<u8>>>;
type Ending = Rc<RefCell<Option<io::Result<()>>>>;

/// A `PipeReader` that collects what it reads and how it ended.
fn collecting_reader(
    ev: &mut EventLoop<PollDispatcher>,
    fd: OwnedFd,
) -> (PipeReader<PollDispatcher>, Collected, Ending) {
    let (bytes, end) = (Collected::default(), Ending::default());
    let (sink, result) = (Rc::clone(&bytes), Rc::clone(&end));
    let reader = PipeReader::new(
        ev,
        fd,
        move |_, _, data| sink.borrow_mut().extend_from_slice(data),
        move |_, _, r| *result.borrow_mut() = Some(r),
    )
    .unwrap();
    (reader, bytes, end)
}

/// `pause` stops reading (the data waits in the pipe), `resume` goes on;
/// `fd()` and `Debug` name the pipe.
#[test]
fn pipe_reader_pauses_and_resumes() {
    let mut ev = EventLoop::<PollDispatcher>::new().unwrap();
    let (r, w) = sys::pipe().unwrap();
    let raw = r.as_raw_fd();
    let (reader, bytes, _) = collecting_reader(&mut ev, r);
    assert_eq!(reader.fd(), raw);
    reader.pause(&mut ev).unwrap();
    sys::write(w.as_fd(), b"held").unwrap();
    for _ in 0..5 {
        ev.run_once(Some(Duration::from_millis(10))).unwrap();
    }
    assert!(bytes.borrow().is_empty(), "read while paused");
    reader.resume(&mut ev).unwrap();
    assert!(run_until(&mut ev, || bytes.borrow().len() == 4));
    let text = format!("{reader:?}");
    assert!(
        text.starts_with("PipeReader")
            && text.contains(&format!("fd: {raw}"))
            && text.contains("bytes_read: 4"),
        "{text}"
    );
}

/// A read error ends the reader with that error (here `EISDIR`: a directory
/// is always "readable" to poll, and reading it fails), instead of being
/// retried or taken for "nothing yet".
#[test]
fn pipe_reader_ends_with_a_read_error() {
    let mut ev = EventLoop::<PollDispatcher>::new().unwrap();
    let dir: OwnedFd = std::fs::File::open(env!("CARGO_MANIFEST_DIR")).unwrap().into();
    let (reader, _, end) = collecting_reader(&mut ev, dir);
    assert!(run_until(&mut ev, || end.borrow().is_some()), "the error never ended the reader");
    let err = end.borrow_mut().take().unwrap().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EISDIR), "{err}");
    assert!(reader.is_closed());
}

for_each_dispatcher!(
    one_mib_through_a_pipe,
    reads_are_bounded_per_wakeup,
    regular_file,
    drop_closes_the_fd,
    stdin_flag_restored
);
