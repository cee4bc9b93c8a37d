//! [`PipeReader`]: any readable non-socket fd (stdin, a pipe, a FIFO, a
//! terminal) on the event loop, with a callback for bytes and one for the end.
//!
//! It teaches that the Reactor is not about sockets: `select`, `poll` and
//! `epoll` watch any fd that has a notion of readiness, so a program can wait
//! on its stdin and its network sockets in one loop (the course's chat client
//! does this with `poll`), with no reader thread. Two details matter:
//!
//! * The fd is made non-blocking so a read never stalls the loop. For stdin
//!   that flag lives on the open file description shared with the parent shell
//!   and other processes, so it is restored when the reader closes.
//! * A regular file is always "ready": `select`/`poll` report it at once and
//!   `epoll` refuses it (`EPERM`), which [`PipeReader::new`] turns into a clear error.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::rc::{Rc, Weak};

use log::{debug, trace};

use crate::dispatcher::{AnyDispatcher, Dispatcher, Event, Interest, Mode};
use crate::event_loop::{EventLoop, LoopHandle};
use crate::sys;

/// Bytes read per `read` call.
const CHUNK: usize = 64 * 1024;
/// Reads per wake-up: a fast writer cannot hold the loop for longer.
const READS_PER_WAKEUP: usize = 4;

type DataCallback<D> = Box<dyn FnMut(&mut EventLoop<D>, &PipeReader<D>, &[u8])>;
type EndCallback<D> = Box<dyn FnOnce(&mut EventLoop<D>, &PipeReader<D>, io::Result<()>)>;

/// The fd: owned (closed at the end) or borrowed stdin (flags restored).
enum Source {
    Owned(OwnedFd),
    Stdin { was_nonblocking: bool },
}

impl Source {
    /// Runs `f` with the fd borrowed.
    fn with_fd<T>(&self, f: impl FnOnce(BorrowedFd<'_>) -> T) -> T {
        match self {
            Source::Owned(fd) => f(fd.as_fd()),
            Source::Stdin { .. } => f(io::stdin().as_fd()),
        }
    }

    fn release(self) {
        match self {
            Source::Owned(fd) => drop(fd),
            Source::Stdin { was_nonblocking } => {
                if let Err(e) = sys::set_nonblocking(io::stdin().as_fd(), was_nonblocking) {
                    debug!("stdin: could not restore O_NONBLOCK: {e}");
                }
            }
        }
    }
}

struct Inner<D: Dispatcher + 'static> {
    fd: RawFd,
    /// `None` once closed.
    source: RefCell<Option<Source>>,
    buf: RefCell<Vec<u8>>,
    bytes_read: Cell<u64>,
    on_data: RefCell<Option<DataCallback<D>>>,
    on_end: RefCell<Option<EndCallback<D>>>,
    loop_handle: LoopHandle<D>,
}

/// Reads a pipe, FIFO, terminal or stdin on an event loop. Cheap to clone
/// (`Rc`), not `Send`. Closes at end of file, on a read error, on
/// [`close`](Self::close), or when the last clone is dropped.
///
/// ```
/// use muxloop::{EventLoop, PipeReader};
/// let mut ev: EventLoop = EventLoop::new()?;
/// let (r, w) = muxloop::sys::pipe()?;
/// muxloop::sys::write(std::os::fd::AsFd::as_fd(&w), b"hello")?;
/// drop(w);
/// let _reader = PipeReader::new(
///     &mut ev,
///     r,
///     |_, _, bytes| assert_eq!(bytes, b"hello"),
///     |ev, _, end| { end.unwrap(); ev.quit() },
/// )?;
/// ev.run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "the reader closes when the last handle is dropped"]
pub struct PipeReader<D: Dispatcher + 'static = AnyDispatcher> {
    inner: Rc<Inner<D>>,
}

impl<D: Dispatcher + 'static> Clone for PipeReader<D> {
    fn clone(&self) -> Self {
        PipeReader { inner: Rc::clone(&self.inner) }
    }
}

impl<D: Dispatcher + 'static> fmt::Debug for PipeReader<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeReader")
            .field("fd", &self.inner.fd)
            .field("bytes_read", &self.inner.bytes_read.get())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<D: Dispatcher + 'static> PipeReader<D> {
    /// Watches `fd` (a pipe's read end, a FIFO, a terminal...): `on_data` gets
    /// each chunk read, `on_end` runs once with `Ok(())` at end of file or the
    /// read error, after the reader has closed the fd.
    pub fn new<F, G>(ev: &mut EventLoop<D>, fd: OwnedFd, on_data: F, on_end: G) -> io::Result<Self>
    where
        F: FnMut(&mut EventLoop<D>, &PipeReader<D>, &[u8]) + 'static,
        G: FnOnce(&mut EventLoop<D>, &PipeReader<D>, io::Result<()>) + 'static,
    {
        let raw = fd.as_raw_fd();
        sys::set_nonblocking(fd.as_fd(), true)?;
        Self::start(ev, raw, Source::Owned(fd), Box::new(on_data), Box::new(on_end))
    }

    /// Watches this process's stdin (fd 0) without taking it: it is made
    /// non-blocking while watched and its flag is restored at close.
    pub fn stdin<F, G>(ev: &mut EventLoop<D>, on_data: F, on_end: G) -> io::Result<Self>
    where
        F: FnMut(&mut EventLoop<D>, &PipeReader<D>, &[u8]) + 'static,
        G: FnOnce(&mut EventLoop<D>, &PipeReader<D>, io::Result<()>) + 'static,
    {
        let fd = libc::STDIN_FILENO;
        let was_nonblocking = sys::is_nonblocking(io::stdin().as_fd())?;
        sys::set_nonblocking(io::stdin().as_fd(), true)?;
        let source = Source::Stdin { was_nonblocking };
        Self::start(ev, fd, source, Box::new(on_data), Box::new(on_end))
    }

    fn start(
        ev: &mut EventLoop<D>,
        fd: RawFd,
        source: Source,
        on_data: DataCallback<D>,
        on_end: EndCallback<D>,
    ) -> io::Result<Self> {
        let reader = PipeReader {
            inner: Rc::new(Inner {
                fd,
                source: RefCell::new(None),
                buf: RefCell::new(Vec::new()),
                bytes_read: Cell::new(0),
                on_data: RefCell::new(Some(on_data)),
                on_end: RefCell::new(Some(on_end)),
                loop_handle: ev.handle(),
            }),
        };
        let weak: Weak<Inner<D>> = Rc::downgrade(&reader.inner);
        let registered = ev.register(fd, Interest::READABLE, Mode::Level, move |ev, event| {
            if let Some(inner) = weak.upgrade() {
                PipeReader { inner }.handle_event(ev, event);
            }
        });
        if let Err(e) = registered {
            source.release();
            return Err(match e.raw_os_error() {
                Some(libc::EPERM) => io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("fd {fd} cannot be watched by {} (a regular file?): {e}", D::NAME),
                ),
                _ => e,
            });
        }
        *reader.inner.source.borrow_mut() = Some(source);
        debug!("pipe reader on fd {fd} ({})", D::NAME);
        Ok(reader)
    }

    /// The fd being read (valid until closed).
    pub fn fd(&self) -> RawFd {
        self.inner.fd
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.inner.bytes_read.get()
    }

    /// Whether the reader has closed.
    pub fn is_closed(&self) -> bool {
        self.inner.source.borrow().is_none()
    }

    /// Stops reading until [`resume`](Self::resume) (the writer then blocks
    /// once the pipe buffer is full: backpressure).
    pub fn pause(&self, ev: &mut EventLoop<D>) -> io::Result<()> {
        if self.is_closed() {
            return Ok(());
        }
        ev.set_interest(self.inner.fd, Interest::NONE)
    }

    /// Resumes reading after [`pause`](Self::pause).
    pub fn resume(&self, ev: &mut EventLoop<D>) -> io::Result<()> {
        if self.is_closed() {
            return Ok(());
        }
        ev.set_interest(self.inner.fd, Interest::READABLE)
    }

    /// Stops watching and closes the fd (restores stdin's flag) without
    /// calling the end callback. Idempotent.
    pub fn close(&self, ev: &mut EventLoop<D>) {
        let Some(source) = self.inner.source.borrow_mut().take() else { return };
        if let Err(e) = ev.deregister(self.inner.fd) {
            debug!("pipe reader fd {}: deregister: {e}", self.inner.fd);
        }
        source.release();
        debug!("pipe reader fd {} closed after {} bytes", self.inner.fd, self.bytes_read());
    }

    fn handle_event(&self, ev: &mut EventLoop<D>, event: Event) {
        trace!("pipe reader fd {}: {:?}", self.inner.fd, event.ready());
        let Some(mut on_data) = self.inner.on_data.borrow_mut().take() else { return };
        let mut end = None;
        {
            let mut buf = self.inner.buf.borrow_mut();
            if buf.is_empty() {
                buf.resize(CHUNK, 0);
            }
            for _ in 0..READS_PER_WAKEUP {
                if self.is_closed() {
                    break;
                }
                let result = match self.inner.source.borrow().as_ref() {
                    Some(source) => source.with_fd(|fd| sys::read(fd, &mut buf)),
                    None => break,
                };
                match result {
                    Ok(0) => {
                        end = Some(Ok(()));
                        break;
                    }
                    Ok(n) => {
                        self.inner.bytes_read.set(self.bytes_read() + n as u64);
                        on_data(ev, self, &buf[..n]);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        end = Some(Err(e));
                        break;
                    }
                }
            }
        }
        {
            let mut slot = self.inner.on_data.borrow_mut();
            if slot.is_none() {
                *slot = Some(on_data);
            }
        }
        if let Some(result) = end {
            debug!("pipe reader fd {}: end ({result:?})", self.inner.fd);
            self.close(ev);
            self.inner.buf.borrow_mut().clear();
            self.inner.buf.borrow_mut().shrink_to_fit();
            if let Some(on_end) = self.inner.on_end.borrow_mut().take() {
                on_end(ev, self, result);
            }
        }
    }
}

impl<D: Dispatcher + 'static> Drop for Inner<D> {
    fn drop(&mut self) {
        let Some(source) = self.source.get_mut().take() else { return };
        // Dropped while open: deregister on the loop before releasing the fd.
        let fd = self.fd;
        if !self.loop_handle.is_alive() {
            source.release(); // the loop, and its registration, are gone
            return;
        }
        let _ = self.loop_handle.run_in_loop(move |ev| {
            let _ = ev.deregister(fd);
            source.release();
        });
    }
}
