//! Zero-copy moves inside the kernel: `splice(2)` between a socket and a
//! pipe, `sendfile(2)` from the page cache to a socket.

use std::io;
use std::os::fd::RawFd;

use super::*;

/// Asks the kernel for a pipe buffer of `size` bytes (`F_SETPIPE_SZ`);
/// returns the size it granted (rounded up to pages). Unprivileged processes
/// are limited by `/proc/sys/fs/pipe-max-size` (1 MiB by default): `EPERM`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn set_pipe_size(fd: RawFd, size: usize) -> io::Result<usize> {
    let size = size.min(i32::MAX as usize) as libc::c_int;
    // SAFETY: F_SETPIPE_SZ takes an integer.
    let granted = syscall!(fcntl(fd, libc::F_SETPIPE_SZ, size))?;
    Ok(granted as usize)
}

/// `splice(2)` without offsets: moves up to `len` bytes between two fds one of
/// which is a pipe, inside the kernel (no copy through user memory), with
/// `SPLICE_F_MOVE | SPLICE_F_NONBLOCK`. `Ok(0)`: end of input.
/// `WouldBlock`: the input has nothing or the output (pipe or socket) is full.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn splice(fd_in: RawFd, fd_out: RawFd, len: usize) -> io::Result<usize> {
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    let null = std::ptr::null_mut();
    // SAFETY: null offsets mean "use and advance the fds' own positions"
    // (required for pipes and sockets); no user memory is touched.
    let n = syscall!(splice(fd_in, null, fd_out, null, len, flags))?;
    Ok(n as usize)
}

/// `sendfile(2)`: copies up to `count` bytes of the file `in_fd`, starting at
/// `*offset`, to `out_fd` (a socket or any fd) inside the kernel, and advances
/// `*offset` by what was sent. `in_fd`'s own file position is not used or
/// changed. On a non-blocking socket it may send less (`WouldBlock` if nothing
/// fits); `Ok(0)` means `*offset` is at or past the end of the file.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn sendfile(out_fd: RawFd, in_fd: RawFd, offset: &mut u64, count: usize) -> io::Result<usize> {
    let mut off = libc::off_t::try_from(*offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "sendfile offset does not fit off_t"))?;
    // SAFETY: `off` is a valid, writable off_t the kernel reads and advances;
    // no user memory is read or written otherwise.
    let n = syscall!(sendfile(out_fd, in_fd, &mut off, count))?;
    *offset = off as u64;
    Ok(n as usize)
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use std::io::{Seek, SeekFrom, Write};
    use std::os::fd::AsRawFd;

    use super::*;

    #[test]
    fn sendfile_moves_a_file_into_a_socket() {
        let path = std::env::temp_dir().join(format!("muxloop-sendfile-{}", getpid()));
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::File::create(&path).unwrap().write_all(&data).unwrap();
        let mut file = std::fs::File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let (tx, rx) = socketpair().unwrap();
        let (mut offset, mut got) = (1000u64, Vec::new());
        let mut buf = vec![0u8; 64 * 1024];
        for _ in 0..10_000 {
            match sendfile(tx.as_raw_fd(), file.as_raw_fd(), &mut offset, 1 << 20) {
                Ok(0) => break,
                Ok(_) => {}
                // The socket is full: drain it (the non-blocking partial-send case).
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
            }
            while let Ok(n) = read(rx.as_raw_fd(), &mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
        }
        assert_eq!(offset, data.len() as u64, "the offset advanced to the end");
        assert!(got == data[1000..], "byte-exact from the starting offset");
        assert_eq!(file.stream_position().unwrap(), 0, "the file's own position is untouched");
        // Past the end: nothing to send.
        let mut past = data.len() as u64 + 10;
        assert_eq!(sendfile(tx.as_raw_fd(), file.as_raw_fd(), &mut past, 10).unwrap(), 0);
        file.seek(SeekFrom::Start(0)).unwrap();
        // A socket is not a file to read pages from (ESPIPE: it has no offsets).
        let err = sendfile(tx.as_raw_fd(), rx.as_raw_fd(), &mut 0, 10).unwrap_err();
        assert!(matches!(err.raw_os_error(), Some(libc::ESPIPE | libc::EINVAL)), "{err}");
        let mut huge = u64::MAX;
        let err = sendfile(tx.as_raw_fd(), file.as_raw_fd(), &mut huge, 10).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn splice_moves_socket_to_pipe_to_socket() {
        let (a, b) = socketpair().unwrap();
        let (c, d) = socketpair().unwrap();
        let (pr, pw) = pipe().unwrap();
        assert!(set_pipe_size(pw.as_raw_fd(), 1 << 20).unwrap() >= 1 << 20);
        write(a.as_raw_fd(), b"through the kernel").unwrap();
        assert_eq!(splice(b.as_raw_fd(), pw.as_raw_fd(), 1 << 20).unwrap(), 18);
        let err = splice(b.as_raw_fd(), pw.as_raw_fd(), 1 << 20).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "nothing more to read");
        assert_eq!(splice(pr.as_raw_fd(), c.as_raw_fd(), 1 << 20).unwrap(), 18);
        let mut buf = [0u8; 32];
        let n = read(d.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"through the kernel");
        drop(a);
        assert_eq!(splice(b.as_raw_fd(), pw.as_raw_fd(), 1 << 20).unwrap(), 0, "EOF");
    }
}
