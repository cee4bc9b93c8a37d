//! Passing file descriptors over a Unix socket (`SCM_RIGHTS`): the fds
//! travel as ancillary data with the first byte of a message.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::*;

/// The most fds one message carries (Linux's `SCM_MAX_FD`).
pub const MAX_FDS_PER_MESSAGE: usize = 253;

/// `sendmsg(2)` of `bufs` with `fds` attached (`SCM_RIGHTS`) and
/// `MSG_NOSIGNAL`. The fds travel with the first byte sent, so `bufs` must
/// not be empty; the receiver gets duplicates, ours stay open.
pub fn send_with_fds(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
    if fds.is_empty() {
        return send_vectored(fd, bufs);
    }
    simulated!(fd, |_k, _id| Err(not_simulated("passing fds")));
    if fds.len() > MAX_FDS_PER_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} fds in one message; the kernel takes at most {MAX_FDS_PER_MESSAGE}", fds.len()),
        ));
    }
    if bufs.iter().all(|b| b.is_empty()) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "fds must travel with at least one byte"));
    }
    let payload = mem::size_of::<RawFd>() * fds.len();
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(payload as u32) } as usize;
    // u64 words keep the control buffer aligned for cmsghdr.
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: all-zero bytes are a valid msghdr.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len() as _;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer has room for one header and `payload` bytes
    // (CMSG_SPACE), so CMSG_FIRSTHDR is non-null and CMSG_DATA points inside
    // it, with room for `fds.len()` fd numbers (written unaligned).
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&msg);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(payload as u32) as _;
        let data = libc::CMSG_DATA(header).cast::<RawFd>();
        for (i, passed) in fds.iter().enumerate() {
            data.add(i).write_unaligned(passed.as_raw_fd());
        }
    }
    // SAFETY: `msg` points to `bufs` (ABI-compatible with iovec, read only)
    // and to the control buffer filled above.
    // Every passed fd is borrowed, hence open until the call returns.
    let n = syscall!(sendmsg(fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL))?;
    Ok(n as usize)
}

/// `recvmsg(2)` into `bufs`, taking the fds that came with the data
/// (`SCM_RIGHTS`, received close-on-exec: atomically with `MSG_CMSG_CLOEXEC`
/// under `muxloop_linux`, by `fcntl` right after otherwise) into `fds`. Fds beyond what the
/// control buffer holds are closed by the kernel; that is reported as
/// `truncated` (the data itself is complete).
pub fn recv_with_fds(
    fd: BorrowedFd<'_>,
    bufs: &mut [IoSliceMut<'_>],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<RecvWithFds> {
    simulated!(fd, |k, id| k.read(id, bufs, true).map(|bytes| RecvWithFds { bytes, truncated: false }));
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE((MAX_FDS_PER_MESSAGE * mem::size_of::<RawFd>()) as u32) } as usize;
    let mut control = [0u64; 160];
    debug_assert!(space <= mem::size_of_val(&control));
    // SAFETY: all-zero bytes are a valid msghdr.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = bufs.as_mut_ptr().cast();
    msg.msg_iovlen = bufs.len() as _;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `msg` points to writable buffers of their stated lengths and
    // to a control buffer of `space` bytes.
    #[cfg(muxloop_linux)]
    let flags = libc::MSG_CMSG_CLOEXEC;
    #[cfg(not(muxloop_linux))]
    let flags = 0;
    #[cfg(not(muxloop_linux))]
    let first_new = fds.len();
    let n = syscall!(recvmsg(fd.as_raw_fd(), &mut msg, flags))? as usize;
    // SAFETY: the kernel filled `msg_controllen` bytes of well-formed
    // headers; CMSG_FIRSTHDR/CMSG_NXTHDR walk only within them, and each
    // SCM_RIGHTS payload is an array of fds the kernel just installed for us.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(&msg);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET && (*header).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(header);
                let bytes = (*header).cmsg_len as usize - (data as usize - header as usize);
                for i in 0..bytes / mem::size_of::<RawFd>() {
                    let raw = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    fds.push(OwnedFd::from_raw_fd(raw));
                }
            }
            header = libc::CMSG_NXTHDR(&msg, header);
        }
    }
    #[cfg(not(muxloop_linux))]
    for received in &fds[first_new..] {
        use std::os::fd::AsFd;
        set_cloexec(received.as_fd())?;
    }
    Ok(RecvWithFds { bytes: n, truncated: msg.msg_flags & libc::MSG_CTRUNC != 0 })
}

/// What [`recv_with_fds`] got.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RecvWithFds {
    /// Bytes read (0: end of stream).
    pub bytes: usize,
    /// Some fds did not fit and were closed by the kernel.
    pub truncated: bool,
}
