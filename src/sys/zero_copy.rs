//! Zero-copy moves inside the kernel: `splice(2)` between a socket and a
//! pipe, `sendfile(2)` from the page cache to a socket, and [`send_file`],
//! which uses `sendfile` where it exists (`muxloop_linux`) and the POSIX
//! copy through user memory (`pread(2)` + `send(2)`) elsewhere: what the
//! kernel saves is the difference between the two.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::*;

/// Asks the kernel for a pipe buffer of `size` bytes (`F_SETPIPE_SZ`);
/// returns the size it granted (rounded up to pages). Unprivileged processes
/// are limited by `/proc/sys/fs/pipe-max-size` (1 MiB by default): `EPERM`.
#[cfg(muxloop_linux)]
pub fn set_pipe_size(fd: BorrowedFd<'_>, size: usize) -> io::Result<usize> {
    let size = size.min(i32::MAX as usize) as libc::c_int;
    // SAFETY: F_SETPIPE_SZ takes an integer.
    let granted = syscall!(fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, size))?;
    Ok(granted as usize)
}

/// `splice(2)` without offsets: moves up to `len` bytes between two fds one of
/// which is a pipe, inside the kernel (no copy through user memory), with
/// `SPLICE_F_MOVE | SPLICE_F_NONBLOCK`. `Ok(0)`: end of input.
/// `WouldBlock`: the input has nothing or the output (pipe or socket) is full.
#[cfg(muxloop_linux)]
pub fn splice(fd_in: BorrowedFd<'_>, fd_out: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    let null = std::ptr::null_mut();
    // SAFETY: null offsets mean "use and advance the fds' own positions"
    // (required for pipes and sockets); no user memory is touched.
    let n = syscall!(splice(fd_in.as_raw_fd(), null, fd_out.as_raw_fd(), null, len, flags))?;
    Ok(n as usize)
}

/// `sendfile(2)`: copies up to `count` bytes of the file `in_fd`, starting at
/// `*offset`, to `out_fd` (a socket or any fd) inside the kernel, and advances
/// `*offset` by what was sent. `in_fd`'s own file position is not used or
/// changed. On a non-blocking socket it may send less (`WouldBlock` if nothing
/// fits); `Ok(0)` means `*offset` is at or past the end of the file.
#[cfg(muxloop_linux)]
pub fn sendfile(
    out_fd: BorrowedFd<'_>,
    in_fd: BorrowedFd<'_>,
    offset: &mut u64,
    count: usize,
) -> io::Result<usize> {
    let mut off = libc::off_t::try_from(*offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "sendfile offset does not fit off_t"))?;
    // SAFETY: `off` is a valid, writable off_t the kernel reads and advances;
    // no user memory is read or written otherwise.
    let n = syscall!(sendfile(out_fd.as_raw_fd(), in_fd.as_raw_fd(), &mut off, count))?;
    *offset = off as u64;
    Ok(n as usize)
}

/// Sends up to `count` bytes of the file `file`, from `*offset`, on the
/// socket `out` (with `MSG_NOSIGNAL`), and advances `*offset` by what was
/// sent; `file`'s own position is not used. [`sendfile`] with
/// `muxloop_linux`; elsewhere a `pread(2)` of at most 64 KiB into a buffer
/// and a `send(2)` of it (bytes the socket did not take are read again next
/// time). `Ok(0)`: `*offset` is at or past the end of the file;
/// `WouldBlock`: the socket is full.
pub fn send_file(
    out: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    offset: &mut u64,
    count: usize,
) -> io::Result<usize> {
    simulated!(out, |_k, _id| Err(not_simulated("sending a file")));
    #[cfg(muxloop_linux)]
    {
        sendfile(out, file, offset, count)
    }
    #[cfg(not(muxloop_linux))]
    {
        const CHUNK: usize = 64 * 1024;
        let at = libc::off_t::try_from(*offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset does not fit off_t"))?;
        let mut buf = vec![0u8; count.min(CHUNK)];
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`;
        // `file` is borrowed, hence open.
        let got = syscall!(pread(file.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), at))? as usize;
        if got == 0 {
            return Ok(0);
        }
        let sent = send(out, &buf[..got])?;
        *offset += sent as u64;
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsFd;

    use super::*;

    type SendFile = fn(BorrowedFd<'_>, BorrowedFd<'_>, &mut u64, usize) -> io::Result<usize>;

    /// Moves 300,000 bytes of a file from offset 1,000 into a socket with
    /// `send`, draining the socket whenever it is full; returns the file and
    /// the socket pair for more checks.
    fn moves_a_file_into_a_socket(name: &str, send: SendFile) -> (std::fs::File, OwnedFd, OwnedFd, usize) {
        let path = std::env::temp_dir().join(format!("muxloop-{name}-{}", getpid()));
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::File::create(&path).unwrap().write_all(&data).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let (tx, rx) = socketpair().unwrap();
        let (mut offset, mut got) = (1000u64, Vec::new());
        let mut buf = vec![0u8; 64 * 1024];
        for _ in 0..10_000 {
            match send(tx.as_fd(), file.as_fd(), &mut offset, 1 << 20) {
                Ok(0) => break,
                Ok(_) => {}
                // The socket is full: drain it (the non-blocking partial-send case).
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
            }
            while let Ok(n) = read(rx.as_fd(), &mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
        }
        assert_eq!(offset, data.len() as u64, "the offset advanced to the end");
        assert!(got == data[1000..], "byte-exact from the starting offset");
        let mut past = data.len() as u64 + 10;
        assert_eq!(send(tx.as_fd(), file.as_fd(), &mut past, 10).unwrap(), 0, "past the end");
        (file, tx, rx, data.len())
    }

    #[test]
    fn send_file_moves_a_file_into_a_socket() {
        moves_a_file_into_a_socket("send-file", send_file);
    }

    #[cfg(muxloop_linux)]
    #[test]
    fn sendfile_moves_a_file_into_a_socket() {
        use std::io::Seek;
        let (mut file, tx, rx, _) = moves_a_file_into_a_socket("sendfile", sendfile);
        assert_eq!(file.stream_position().unwrap(), 0, "the file's own position is untouched");
        // A socket is not a file to read pages from (ESPIPE: it has no offsets).
        let err = sendfile(tx.as_fd(), rx.as_fd(), &mut 0, 10).unwrap_err();
        assert!(matches!(err.raw_os_error(), Some(libc::ESPIPE | libc::EINVAL)), "{err}");
        let mut huge = u64::MAX;
        let err = sendfile(tx.as_fd(), file.as_fd(), &mut huge, 10).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[cfg(muxloop_linux)]
    #[test]
    fn splice_moves_socket_to_pipe_to_socket() {
        let (a, b) = socketpair().unwrap();
        let (c, d) = socketpair().unwrap();
        let (pr, pw) = pipe().unwrap();
        assert!(set_pipe_size(pw.as_fd(), 1 << 20).unwrap() >= 1 << 20);
        write(a.as_fd(), b"through the kernel").unwrap();
        assert_eq!(splice(b.as_fd(), pw.as_fd(), 1 << 20).unwrap(), 18);
        let err = splice(b.as_fd(), pw.as_fd(), 1 << 20).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "nothing more to read");
        assert_eq!(splice(pr.as_fd(), c.as_fd(), 1 << 20).unwrap(), 18);
        let mut buf = [0u8; 32];
        let n = read(d.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"through the kernel");
        drop(a);
        assert_eq!(splice(b.as_fd(), pw.as_fd(), 1 << 20).unwrap(), 0, "EOF");
    }
}
