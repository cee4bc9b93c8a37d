//! Shared memory: one region mapped `MAP_SHARED`, which a process `fork`s
//! into its children *shared* (the same physical pages in every process),
//! not copied on write like the rest of its memory.
//!
//! [`SharedRegion`] owns the mapping (and, for [`SharedRegion::memfd`], the
//! memfd) and unmaps it on drop. Its contents are handed out only as
//! `&[AtomicU64]` ([`SharedRegion::words`]): other processes may write any
//! word at any moment, and a plain `&[u8]` over memory another process
//! writes concurrently would be a data race; atomic loads and stores of
//! lock-free 64-bit atomics are not, whichever process does them (the
//! atomic instructions work on the physical memory). The caller builds its
//! own protocol on the words (the `chat_processes` example: a seqlock per
//! line).

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

#[cfg(muxloop_linux)]
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::*;

/// A `MAP_SHARED` mapping, zero-filled at creation, seen as 64-bit words.
///
/// Forked children share it with the parent (the same physical pages, not
/// copies made on write); each process unmaps its own view when it drops
/// its `SharedRegion` (or exits), and the memory is freed when the last
/// view and the last fd are gone.
///
/// The contents are handed out only as `&[AtomicU64]` ([`words`](Self::words)):
/// another process may write any word at any moment, and a plain `&[u8]`
/// over such memory would be a data race, while loads and stores of
/// lock-free atomics are not, whichever processes make them. The caller
/// builds its protocol on the words (the `chat_processes` example: a
/// seqlock per line).
#[derive(Debug)]
pub struct SharedRegion {
    ptr: NonNull<AtomicU64>,
    /// In bytes, a multiple of 8.
    len: usize,
    #[cfg(muxloop_linux)]
    fd: Option<OwnedFd>,
}

// SAFETY: the region is only ever accessed through `&AtomicU64`, which is
// `Sync`; the pointer stays valid until `drop`, which needs `&mut self`.
unsafe impl Send for SharedRegion {}
// SAFETY: as above: shared access is atomic access.
unsafe impl Sync for SharedRegion {}

impl SharedRegion {
    /// An anonymous shared mapping (`mmap(MAP_SHARED | MAP_ANONYMOUS)`) of
    /// `len` bytes rounded up to a multiple of 8: no name and no fd, so
    /// nothing can leak once every process that mapped it has exited.
    pub fn anonymous(len: usize) -> io::Result<SharedRegion> {
        let len = checked_len(len)?;
        let ptr = map(len, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1)?;
        Ok(SharedRegion {
            ptr,
            len,
            #[cfg(muxloop_linux)]
            fd: None,
        })
    }

    /// A memfd (`memfd_create(name, MFD_CLOEXEC)`, `ftruncate`) mapped
    /// `MAP_SHARED`, `len` bytes rounded up to a multiple of 8 (Linux).
    /// The fd stays open with the region, so the memory is visible as
    /// `/proc/PID/fd/N -> /memfd:NAME (deleted)` and in `/proc/PID/maps`
    /// while any process holds it.
    #[cfg(muxloop_linux)]
    pub fn memfd(name: &str, len: usize) -> io::Result<SharedRegion> {
        let len = checked_len(len)?;
        let cname = std::ffi::CString::new(name)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a memfd name has no NUL byte"))?;
        // SAFETY: `cname` is a valid NUL-terminated string for the call.
        let fd = owned(syscall!(memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC))?);
        // SAFETY: `fd` is an open memfd; a new memfd is empty, ftruncate zero-fills it.
        syscall!(ftruncate(fd.as_raw_fd(), len as libc::off_t))?;
        let ptr = map(len, libc::MAP_SHARED, fd.as_raw_fd())?;
        Ok(SharedRegion { ptr, len, fd: Some(fd) })
    }

    /// The region's size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty (never: a region has at least 8 bytes).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The memfd behind the region, if it has one.
    #[cfg(muxloop_linux)]
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(|fd| fd.as_fd())
    }

    /// The region as `len / 8` atomic words (why atomic: see [`SharedRegion`]).
    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: `ptr` is the page-aligned start of a live mapping of `len`
        // bytes (until `drop`, which cannot run while this borrow lives), read
        // and write, zero-filled at creation; `AtomicU64` has the size and
        // alignment of `u64`, every bit pattern is valid, and every access
        // through the slice is atomic, so writes by other processes are not
        // data races.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len / 8) }
    }
}

impl Drop for SharedRegion {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are the mapping `map` returned, unmapped only
        // here; no borrow from `words` outlives `&mut self`.
        if let Err(e) = syscall!(munmap(self.ptr.as_ptr().cast(), self.len)) {
            log::warn!("munmap of a {}-byte shared region: {e}", self.len);
        }
    }
}

/// `len` rounded up to a multiple of 8; `InvalidInput` for 0 or an overflow.
fn checked_len(len: usize) -> io::Result<usize> {
    match len.checked_next_multiple_of(8) {
        Some(n) if n > 0 && n <= isize::MAX as usize => Ok(n),
        _ => Err(io::Error::new(io::ErrorKind::InvalidInput, format!("a shared region of {len} bytes"))),
    }
}

/// `mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd, 0)`.
fn map(len: usize, flags: libc::c_int, fd: libc::c_int) -> io::Result<NonNull<AtomicU64>> {
    // SAFETY: a new mapping at an address the kernel chooses: it overlaps
    // nothing this process uses; `fd` is -1 (anonymous) or an open memfd at
    // least `len` bytes long.
    let ptr =
        unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, fd, 0) };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned a null mapping"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn anonymous_region_is_zeroed_rounded_and_writable() {
        let region = SharedRegion::anonymous(20).unwrap();
        assert_eq!(region.len(), 24);
        let words = region.words();
        assert!(words.iter().all(|w| w.load(Ordering::Relaxed) == 0));
        words[2].store(7, Ordering::Relaxed);
        assert_eq!(region.words()[2].load(Ordering::Relaxed), 7);
        assert_eq!(SharedRegion::anonymous(0).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    #[cfg(muxloop_linux)]
    #[test]
    fn memfd_region_is_visible_in_proc_until_dropped() {
        let name = format!("muxloop-shm-test-{}", std::process::id());
        let region = SharedRegion::memfd(&name, 4096).unwrap();
        let fd = region.fd().unwrap().as_raw_fd();
        let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        assert_eq!(target.to_string_lossy(), format!("/memfd:{name} (deleted)"));
        let maps = || std::fs::read_to_string("/proc/self/maps").unwrap();
        assert!(maps().contains(&format!("/memfd:{name}")), "mapped");
        region.words()[511].store(u64::MAX, Ordering::Relaxed);
        drop(region);
        assert!(!maps().contains(&format!("/memfd:{name}")), "unmapped on drop");
        // Tests run in parallel threads: the number may already name another
        // thread's fd, or have been closed again before read_link looks.
        let now_names = std::fs::read_link(format!("/proc/self/fd/{fd}"));
        assert!(now_names.map_or(true, |t| !t.to_string_lossy().contains(&name)), "fd closed on drop");
    }
}
