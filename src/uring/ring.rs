//! The ring both io_uring users share: setting it up with a clear error
//! where the kernel or a sandbox refuses it, one `io_uring_enter` that
//! submits and waits with a timeout, and a submission queue that is full.

use std::io;
use std::time::Duration;

use io_uring::{IoUring, cqueue, squeue, types};

use crate::dispatcher::timeout_ms;

/// A ring with `sq` submission and `cq` completion entries, or a clear error
/// saying why io_uring cannot be used here. Asks for cooperative task
/// running (5.19: completions are processed when we enter the kernel anyway,
/// instead of interrupting the thread; the taskrun flag says when some are
/// pending) and falls back without it on older kernels. Refuses a kernel
/// older than 5.13 (no `EXT_ARG`, `NODROP`, multishot polls).
pub(crate) fn setup(sq: u32, cq: u32) -> io::Result<IoUring> {
    let ring = IoUring::builder()
        .setup_cqsize(cq)
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .build(sq)
        .or_else(|_| IoUring::builder().setup_cqsize(cq).build(sq));
    let ring = ring.map_err(explain_setup_error)?;
    let params = ring.params();
    // Multishot polls and poll updates came in Linux 5.13, the same release
    // as resource tagging, which is the feature bit we can see.
    if !(params.is_feature_ext_arg() && params.is_feature_nodrop() && params.is_feature_resource_tagging()) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "cannot use io_uring: the kernel is older than 5.13 (needs EXT_ARG, NODROP, multishot poll)",
        ));
    }
    Ok(ring)
}

/// An `io_uring_setup(2)` failure, with the likely reason in its message.
pub(crate) fn explain_setup_error(e: io::Error) -> io::Error {
    let why = match e.raw_os_error() {
        Some(libc::ENOSYS) => "the kernel has no io_uring",
        Some(libc::EPERM) => "io_uring is disabled (kernel.io_uring_disabled) or refused by a sandbox",
        _ => "io_uring_setup failed",
    };
    io::Error::new(e.kind(), format!("cannot use io_uring: {why} ({e})"))
}

/// Enters the kernel once: submits what is queued and waits until a
/// completion is there or `timeout` (rounded up to whole ms) has passed.
/// With completions already waiting, or a zero timeout, it only submits,
/// and skips the system call when there is nothing to submit and no task
/// work or overflow pending (the completion queue is shared memory: looking
/// at it costs no call). A timeout and `EBUSY` (completions must be reaped
/// first) are not errors; `EINTR` is (`Interrupted`), so a caller can return
/// an empty batch as the dispatcher contract says.
pub(crate) fn enter(ring: &mut IoUring, timeout: Option<Duration>) -> io::Result<()> {
    let waiting = ring.completion().is_empty();
    let result = match timeout {
        Some(t) if t.is_zero() || !waiting => {
            let idle = {
                let sq = ring.submission();
                sq.is_empty() && !sq.cq_overflow() && !sq.taskrun()
            };
            if idle {
                return Ok(());
            }
            ring.submit()
        }
        None => ring.submit_and_wait(1),
        Some(t) => {
            let ms = timeout_ms(Some(t)) as u64;
            let ts = types::Timespec::new().sec(ms / 1000).nsec((ms % 1000) as u32 * 1_000_000);
            ring.submitter().submit_with_args(1, &types::SubmitArgs::new().timespec(&ts))
        }
    };
    match result {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EBUSY)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Submits what is queued without waiting (`EINTR`, `EBUSY` and `EAGAIN`
/// mean "later").
pub(crate) fn submit(ring: &mut IoUring) -> io::Result<()> {
    match ring.submit() {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Queues `entry`; when the submission queue is full, submits what is there
/// first (without waiting) and tries again. When the kernel refuses new
/// submissions because completions overflowed (`EBUSY`), the completions
/// waiting in the queue are moved to `spill` to make room; the caller
/// handles them as if it had harvested them.
///
/// # Safety
///
/// Whatever memory `entry` points at (a buffer to send from or receive
/// into) must stay valid and unmoved until its completion is harvested.
pub(crate) unsafe fn push(
    ring: &mut IoUring,
    entry: &squeue::Entry,
    spill: &mut Vec<cqueue::Entry>,
) -> io::Result<()> {
    for _ in 0..1000 {
        // SAFETY: the caller keeps the entry's memory alive until completion.
        if unsafe { ring.submission().push(entry) }.is_ok() {
            return Ok(());
        }
        match ring.submit() {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => spill.extend(ring.completion()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EAGAIN)) => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(io::ErrorKind::WouldBlock, "io_uring submission queue stays full"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_errors_say_why() {
        let cases = [
            (libc::ENOSYS, "the kernel has no io_uring"),
            (libc::EPERM, "io_uring is disabled"),
            (libc::ENOMEM, "io_uring_setup failed"),
        ];
        for (errno, why) in cases {
            let e = explain_setup_error(io::Error::from_raw_os_error(errno));
            let message = e.to_string();
            assert!(
                message.starts_with("cannot use io_uring: ") && message.contains(why),
                "{errno}: {message}"
            );
            assert_eq!(e.kind(), io::Error::from_raw_os_error(errno).kind());
        }
    }
}
