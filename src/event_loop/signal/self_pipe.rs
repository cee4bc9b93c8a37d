//! The self-pipe mechanism (every Unix): a `sigaction` handler counts the
//! signal in a process-wide atomic and writes one byte to the watching
//! loop's pipe; the loop drains the pipe and reads the counts. A signal has
//! at most one self-pipe loop in a process.
//!
//! The process-wide half (the handler and what it touches) lives in
//! `sys::signal` as `SelfPipeWriter`: installing a handler is `unsafe`
//! (it must be async-signal-safe), and the handler writes to a raw fd
//! number, which only stays sound because the writer frees its slots before
//! the pipe closes. This file is the loop's half: the read end and the
//! order in which signals are reported.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use super::{Mechanism, SignalInfo};
use crate::sys;

/// A pipe: its read end, and its write end with the signals it watches.
pub(super) struct SelfPipe {
    read: OwnedFd,
    writer: sys::SelfPipeWriter,
}

impl SelfPipe {
    pub(super) fn new() -> io::Result<SelfPipe> {
        let (read, write) = sys::pipe()?;
        Ok(SelfPipe { read, writer: sys::SelfPipeWriter::new(write) })
    }
}

impl Mechanism for SelfPipe {
    fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    fn watch(&mut self, signal: i32) -> io::Result<()> {
        self.writer.watch(signal)
    }

    fn unwatch(&mut self, signal: i32) -> io::Result<()> {
        self.writer.unwatch(signal)
    }

    fn watched(&self) -> Vec<i32> {
        self.writer.watched()
    }

    fn collect(&mut self, arrived: &mut Vec<SignalInfo>) -> io::Result<()> {
        // Drain first, then read the counters (the handler counts first, then writes).
        let mut order = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            match sys::read(self.read.as_fd(), &mut buf) {
                Ok(0) => break,
                Ok(n) => buf[..n].iter().for_each(|&b| {
                    if !order.contains(&b) {
                        order.push(b)
                    }
                }),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // Bytes give the order; every watched counter is checked (a byte may
        // have been drained by an earlier wake-up whose count we now see).
        let watched = self.watched();
        let mut signals: Vec<i32> = order.iter().map(|&b| b as i32).collect();
        signals.extend(watched.iter().copied().filter(|s| !order.contains(&(*s as u8))));
        for signal in signals {
            if !watched.contains(&signal) {
                continue;
            }
            let count = self.writer.take_count(signal);
            if count > 0 {
                arrived.push(SignalInfo { signal, count, pid: None });
            }
        }
        Ok(())
    }
}
