//! Static files: mapping a URL path under a prefix to an open file below a
//! root directory, safely, and answering with a body the server sends by
//! `sendfile(2)`.
//!
//! It teaches two things:
//!
//! * **Zero-copy output.** A plain server reads a file into a buffer and
//!   writes the buffer to the socket: every byte crosses the user/kernel
//!   boundary twice and sits in user memory in between. `sendfile` names the
//!   file and the socket and lets the kernel move bytes from the page cache
//!   to the socket buffer itself, so a 100 MiB file costs no user memory and
//!   no copies through user space. The [`Response::file`] body is queued on
//!   the connection as a file region
//!   ([`Connection::send_file`](crate::net::Connection::send_file)): the
//!   response head goes out first, then the file, then the next pipelined
//!   response, and the file's bytes count toward the connection's output
//!   limit (a big file pauses request parsing until it has mostly gone out).
//! * **Path safety.** The URL path is percent-decoded once; a NUL byte or a
//!   bad `%` escape is 400; a `..` segment (also spelled `%2e%2e`) is 404
//!   without touching the file system; the file is then opened and its
//!   *opened* location (the fd's `/proc/self/fd` link, or the canonical path
//!   where `/proc` is missing) must lie inside the canonical root, so a
//!   symlink pointing out of the root is 404 too, even if it is swapped in
//!   between a check and the open. Directories, FIFOs and devices are 404
//!   (no listings; 404 rather than 403 so the tree's shape is not revealed).
//!   Files are opened with `O_CLOEXEC` (std always sets it) and `O_NONBLOCK`
//!   (so a FIFO in the tree cannot block the loop in `open`).
//!
//! Opening a file and the first `sendfile` of a cold file may wait for the
//! disk on the loop thread; for files in the page cache they do not.
//!
//! Answers carry validators and honour conditional and range requests
//! (304, 206, 412, 416): see [`conditional`](super::conditional).
//!
//! ```no_run
//! use muxloop::http::{FileService, HttpServer, Response};
//! use muxloop::EventLoop;
//!
//! let files = FileService::new("/files/", "/srv/www")?;
//! let mut ev: EventLoop = EventLoop::new()?;
//! let server = HttpServer::builder("127.0.0.1:8080", move |req| {
//!     files.respond(req).unwrap_or_else(|| Response::text(404, "not found\n"))
//! })
//! .start(&mut ev)?;
//! ev.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::ffi::OsStr;
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use log::debug;

use super::conditional::{Conditions, Plan, Validators, plan};
use super::syntax::percent_decode;
use super::{Request, Response};

/// Serves the files below a root directory under a URL prefix.
#[derive(Debug, Clone)]
pub struct FileService {
    prefix: String,
    root: PathBuf,
}

/// Why a path was not served: the status, and a reason for the body.
type Refusal = (u16, &'static str);

impl FileService {
    /// Serves the files below `root` at URLs starting with `prefix` (which
    /// must start and end with `/`, e.g. `"/files/"`). Fails if `root` is not
    /// an existing directory (`InvalidInput` for the prefix or a non-directory).
    pub fn new(prefix: impl Into<String>, root: impl AsRef<Path>) -> io::Result<FileService> {
        let prefix = prefix.into();
        if !prefix.starts_with('/') || !prefix.ends_with('/') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("file prefix {prefix:?} must start and end with '/'"),
            ));
        }
        let root = root.as_ref();
        let canonical = root
            .canonicalize()
            .map_err(|e| io::Error::new(e.kind(), format!("file root {}: {e}", root.display())))?;
        if !canonical.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("file root {} is not a directory", root.display()),
            ));
        }
        Ok(FileService { prefix, root: canonical })
    }

    /// The URL prefix, e.g. `"/files/"`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The response to `req` if its path is under the prefix (`None`
    /// otherwise, for the application's other routes): for GET and HEAD, 200
    /// with the file, 206 with a range of it, 304 when the client's copy is
    /// current, 412 or 416 (see [`conditional`](super::conditional));
    /// 405 for other methods; 400/404 for paths it refuses.
    pub fn respond(&self, req: &Request<'_>) -> Option<Response> {
        let rest = req.path().strip_prefix(&self.prefix)?;
        if !matches!(req.method(), "GET" | "HEAD") {
            return Some(Response::text(405, "only GET and HEAD\n").header("Allow", "GET, HEAD"));
        }
        let (file, meta, path) = match self.open(rest) {
            Ok(opened) => opened,
            Err((status, reason)) => {
                debug!("http files: {} {}: {status} ({reason})", req.method(), req.path());
                return Some(Response::text(status, format!("{reason}\n")));
            }
        };
        let now = SystemTime::now();
        let validators = Validators::of(&meta, now);
        let size = meta.len();
        let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let response = match plan(&Conditions::of(req), &validators, size, now_secs) {
            Plan::Whole => Response::file(200, file, size).header("Content-Type", content_type(&path)),
            Plan::Part { first, len } => Response::file_region(206, file, first, len)
                .header("Content-Type", content_type(&path))
                .header("Content-Range", format!("bytes {first}-{}/{size}", first + len - 1)),
            Plan::NotModified => Response::new(304),
            Plan::PreconditionFailed => return Some(Response::text(412, "precondition failed\n")),
            Plan::Unsatisfiable => {
                return Some(Response::new(416).header("Content-Range", format!("bytes */{size}")));
            }
        };
        Some(validators.stamp(response))
    }

    /// Opens the file for `rest`, the still percent-encoded URL path after
    /// the prefix: the file, its metadata and its path.
    fn open(&self, rest: &str) -> Result<(File, Metadata, PathBuf), Refusal> {
        let decoded = percent_decode(rest.as_bytes(), false).ok_or((400, "bad percent escape"))?;
        if decoded.contains(&0) {
            return Err((400, "NUL in path"));
        }
        let mut path = self.root.clone();
        let mut named = false;
        for segment in decoded.split(|&b| b == b'/') {
            match segment {
                b"" | b"." => {}
                b".." => return Err((404, "not found")),
                name => {
                    path.push(OsStr::from_bytes(name));
                    named = true;
                }
            }
        }
        if !named {
            return Err((404, "not found")); // the root itself: no listings
        }
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(&path)
            .map_err(|e| open_refusal(&e))?;
        let meta = file.metadata().map_err(|_| (404, "not found"))?;
        if !meta.is_file() {
            return Err((404, "not found"));
        }
        if !self.contains(&file, &path) {
            return Err((404, "not found"));
        }
        Ok((file, meta, path))
    }

    /// Whether the opened `file` lies inside the root: where the fd really
    /// points (race-free), else the canonical form of `path`.
    fn contains(&self, file: &File, path: &Path) -> bool {
        let fd_link = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        let location = std::fs::read_link(fd_link).or_else(|_| path.canonicalize());
        location.is_ok_and(|at| at.starts_with(&self.root))
    }
}

/// The status for a failed `open`: the server is short of resources (503,
/// worth a retry), or the path is not there for the client (404).
fn open_refusal(e: &io::Error) -> Refusal {
    match e.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM) => (503, "out of file descriptors"),
        _ => (404, "not found"),
    }
}

/// A `Content-Type` from the file name's extension.
pub fn content_type(path: &Path) -> &'static str {
    let ext = path.extension().and_then(OsStr::to_str).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "css" => "text/css",
        "js" => "text/javascript",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The URL path is percent-decoded exactly once, with `+` kept as `+`
    /// (a path is not a form); a bad escape is 400 and `%2e%2e` is `..`.
    #[test]
    fn paths_are_percent_decoded_once() {
        let dir = std::env::temp_dir().join(format!("muxloop-files-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["a b.txt", "a+b.txt", "%2e"] {
            std::fs::write(dir.join(name), name).unwrap();
        }
        let files = FileService::new("/f/", &dir).unwrap();
        let opened = |rest: &str| files.open(rest).map(|(_, _, path)| path.file_name().unwrap().to_owned());
        assert_eq!(opened("a%20b.txt").unwrap(), "a b.txt");
        assert_eq!(opened("a+b.txt").unwrap(), "a+b.txt");
        assert_eq!(opened("%252e").unwrap(), "%2e", "decoded once, not twice");
        assert_eq!(opened("%2e%2E/x").unwrap_err(), (404, "not found"));
        for bad in ["%", "%4", "%zz", "%+1", "a%g0"] {
            assert_eq!(opened(bad).unwrap_err().0, 400, "{bad:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn open_failures_are_404_unless_the_server_is_short() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOMEM] {
            assert_eq!(open_refusal(&io::Error::from_raw_os_error(errno)).0, 503, "errno {errno}");
        }
        for errno in [libc::ENOENT, libc::EACCES, libc::ENOTDIR, libc::ELOOP] {
            assert_eq!(open_refusal(&io::Error::from_raw_os_error(errno)).0, 404, "errno {errno}");
        }
    }

    #[test]
    fn content_types() {
        let cases = [
            ("a/index.HTML", "text/html; charset=utf-8"),
            ("b.htm", "text/html; charset=utf-8"),
            ("notes.txt", "text/plain; charset=utf-8"),
            ("s.css", "text/css"),
            ("app.js", "text/javascript"),
            ("d.json", "application/json"),
            ("x.png", "image/png"),
            ("p.JPG", "image/jpeg"),
            ("p.jpeg", "image/jpeg"),
            ("g.gif", "image/gif"),
            ("v.svg", "image/svg+xml"),
            ("doc.pdf", "application/pdf"),
            ("m.wasm", "application/wasm"),
            ("noext", "application/octet-stream"),
            ("archive.tar.gz", "application/octet-stream"),
        ];
        for (name, wanted) in cases {
            assert_eq!(content_type(Path::new(name)), wanted, "{name}");
        }
    }

    #[test]
    fn prefix_and_root_are_kept() {
        let files = FileService::new("/files/", concat!(env!("CARGO_MANIFEST_DIR"), "/src/../src")).unwrap();
        assert_eq!(files.prefix(), "/files/");
        assert_eq!(files.root(), Path::new(env!("CARGO_MANIFEST_DIR")).canonicalize().unwrap().join("src"));
    }

    #[test]
    fn prefix_must_be_slashed() {
        assert_eq!(FileService::new("files", "/").unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            FileService::new("/files/", concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
                .unwrap_err()
                .kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
