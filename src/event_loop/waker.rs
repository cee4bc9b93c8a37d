//! The waker: an fd another thread can make readable to interrupt a loop
//! that is asleep in `select`/`poll`/`epoll_wait`.
//!
//! With the `muxloop_linux` cfg it is an `eventfd` (one fd, an 8-byte
//! counter); elsewhere (and with `--cfg muxloop_portable`) the classic
//! self-pipe. The loop registers the read side like any other fd.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use crate::sys;

#[derive(Debug)]
pub(crate) struct Waker {
    read: OwnedFd,
    /// The self-pipe's write end; `None` for an eventfd, which is both ends.
    write: Option<OwnedFd>,
}

impl Waker {
    #[cfg(muxloop_linux)]
    pub(crate) fn new() -> io::Result<Waker> {
        Ok(Waker { read: sys::eventfd()?, write: None })
    }

    #[cfg(not(muxloop_linux))]
    pub(crate) fn new() -> io::Result<Waker> {
        let (read, write) = sys::pipe()?;
        Ok(Waker { read, write: Some(write) })
    }

    /// The fd the loop registers for reading.
    pub(crate) fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Makes the fd readable. A full counter or pipe already is, so
    /// `WouldBlock` counts as success.
    pub(crate) fn wake(&self) -> io::Result<()> {
        let fd = self.write.as_ref().unwrap_or(&self.read).as_fd();
        // An eventfd needs exactly 8 bytes; a pipe takes them as well.
        match sys::write(fd, &1u64.to_ne_bytes()) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Empties it so level-triggered backends stop reporting it: one read
    /// resets an eventfd's counter; a pipe is read until it is empty.
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 64];
        while let Ok(n) = sys::read(self.read.as_fd(), &mut buf) {
            if n == 0 || self.write.is_none() {
                break;
            }
        }
    }
}
