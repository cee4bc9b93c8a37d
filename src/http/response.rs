//! Responses: a small builder and the serializer that always frames the body
//! with `Content-Length` and stamps a `Date`. A body is bytes, or a region
//! of an open file that the server sends with `sendfile(2)` (see [`files`](super::files)).

use std::borrow::Cow;
use std::cell::RefCell;
use std::fs::File;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// An HTTP response built by a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    body: Vec<u8>,
    file: Option<FileBody>,
}

/// A file body: `len` bytes of `file` from `offset`, never read into memory.
#[derive(Debug, Clone)]
pub(crate) struct FileBody {
    pub(crate) file: Arc<File>,
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

/// The same open file (not equal contents) and the same region.
impl PartialEq for FileBody {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.file, &other.file) && self.offset == other.offset && self.len == other.len
    }
}

impl Eq for FileBody {}

impl Response {
    /// A response with `status` and an empty body.
    pub fn new(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Vec::new(), file: None }
    }

    /// `status` with the first `len` bytes of `file` as the body, sent with
    /// `sendfile(2)` (the file is not read into memory; add a `Content-Type`).
    /// `len` must not exceed the file's size: if the file is shorter when its
    /// turn comes, the connection is closed mid-body.
    pub fn file(status: u16, file: impl Into<Arc<File>>, len: u64) -> Response {
        let mut response = Response::new(status);
        response.file = Some(FileBody { file: file.into(), offset: 0, len });
        response
    }

    /// `status` with a `text/plain; charset=utf-8` body.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::new(status)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(body.into().into_bytes())
    }

    /// `status` with a `text/html; charset=utf-8` body.
    pub fn html(status: u16, body: impl Into<String>) -> Response {
        Response::new(status)
            .header("Content-Type", "text/html; charset=utf-8")
            .body(body.into().into_bytes())
    }

    /// Adds a header (`&'static str` names and values are not copied).
    /// `Content-Length`, `Connection`, `Date` and `Transfer-Encoding` are set
    /// by the server and ignored here.
    pub fn header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Response {
        let name = name.into();
        let managed = ["content-length", "connection", "date", "transfer-encoding"];
        if managed.iter().any(|m| name.eq_ignore_ascii_case(m)) {
            log::debug!("response header {name} is managed by the server; ignored");
        } else {
            self.headers.push((name, value.into()));
        }
        self
    }

    /// Sets the body (replacing a file body).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self.file = None;
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body (empty for a file body).
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// The length of a file body ([`Response::file`]), if it has one.
    pub fn file_len(&self) -> Option<u64> {
        self.file.as_ref().map(|f| f.len)
    }

    /// Takes the file body out, leaving an empty body: the server sends the
    /// head with [`write_to`](Self::write_to) first, then the file.
    pub(crate) fn take_file(&mut self) -> Option<FileBody> {
        self.file.take()
    }

    /// Appends the response to `out`: status line, `Content-Length` (always),
    /// `Date`, `Connection` when it matters, the headers, then the body unless
    /// `head_only` (a HEAD request gets the length of the body it would get).
    /// A file body is not written here (its length is): the caller sends it.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>, head_only: bool, connection: Option<&str>) {
        out.extend_from_slice(b"HTTP/1.1 ");
        push_decimal(out, self.status.into());
        out.push(b' ');
        out.extend_from_slice(reason(self.status).as_bytes());
        out.extend_from_slice(b"\r\nContent-Length: ");
        push_decimal(out, self.file.as_ref().map_or(self.body.len() as u64, |f| f.len));
        out.extend_from_slice(b"\r\n");
        DATE.with(|date| out.extend_from_slice(date.borrow_mut().header()));
        if let Some(connection) = connection {
            push_header(out, "Connection", connection);
        }
        for (name, value) in &self.headers {
            push_header(out, name, value);
        }
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(&self.body);
        }
    }
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal (the response head is on the hot path; `write!`
/// would go through the formatting machinery for two numbers).
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// The reason phrase for common status codes.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// The `Date: ...\r\n` line, formatted at most once a second per thread.
struct DateCache {
    second: u64,
    line: Vec<u8>,
}

thread_local! {
    static DATE: RefCell<DateCache> = const { RefCell::new(DateCache { second: u64::MAX, line: Vec::new() }) };
}

impl DateCache {
    fn header(&mut self) -> &[u8] {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if now != self.second {
            self.second = now;
            self.line = format!("Date: {}\r\n", http_date(now)).into_bytes();
        }
        &self.line
    }
}

/// Seconds since the Unix epoch as an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(unix_seconds: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = unix_seconds / 86_400;
    let secs = unix_seconds % 86_400;
    // Civil date from a day count (Howard Hinnant's days_from_civil, inverted).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_phrases() {
        let phrases = [
            (100, "Continue"),
            (200, "OK"),
            (201, "Created"),
            (204, "No Content"),
            (301, "Moved Permanently"),
            (302, "Found"),
            (304, "Not Modified"),
            (400, "Bad Request"),
            (403, "Forbidden"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (408, "Request Timeout"),
            (411, "Length Required"),
            (413, "Content Too Large"),
            (414, "URI Too Long"),
            (417, "Expectation Failed"),
            (431, "Request Header Fields Too Large"),
            (500, "Internal Server Error"),
            (501, "Not Implemented"),
            (503, "Service Unavailable"),
            (505, "HTTP Version Not Supported"),
            (299, "Unknown"),
        ];
        for (status, phrase) in phrases {
            assert_eq!(reason(status), phrase, "{status}");
        }
    }

    #[test]
    fn accessors_report_what_was_built() {
        let text = Response::text(404, "gone\n");
        assert_eq!((text.status(), text.body_bytes(), text.file_len()), (404, b"gone\n".as_slice(), None));
        let file = Arc::new(File::open(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap());
        let served = Response::file(200, Arc::clone(&file), 10);
        assert_eq!(
            (served.status(), served.body_bytes(), served.file_len()),
            (200, b"".as_slice(), Some(10))
        );
    }

    /// File bodies are equal when they are the same open file and region.
    #[test]
    fn file_bodies_compare_by_file_and_region() {
        let open = || Arc::new(File::open(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap());
        let file = open();
        let body = |file: &Arc<File>, offset, len| FileBody { file: Arc::clone(file), offset, len };
        assert_eq!(body(&file, 0, 10), body(&file, 0, 10));
        assert_ne!(body(&file, 0, 10), body(&open(), 0, 10), "another open of the same path");
        assert_ne!(body(&file, 0, 10), body(&file, 1, 10));
        assert_ne!(body(&file, 0, 10), body(&file, 0, 11));
    }

    #[test]
    fn dates_in_imf_fixdate() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(1_795_000_000), "Wed, 18 Nov 2026 11:06:40 GMT");
        // Century years are not leap years unless divisible by 400.
        assert_eq!(http_date(4_107_456_000), "Sun, 28 Feb 2100 00:00:00 GMT");
        assert_eq!(http_date(4_107_542_400), "Mon, 01 Mar 2100 00:00:00 GMT");
        assert_eq!(http_date(13_574_563_200), "Tue, 29 Feb 2400 00:00:00 GMT");
    }

    #[test]
    fn serializes_with_length_and_without_managed_headers() {
        let resp = Response::text(200, "hello, world").header("Content-Length", "999").header("X-A", "b");
        let mut out = Vec::new();
        resp.write_to(&mut out, false, Some("close"));
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nDate: "), "{text}");
        assert!(text.contains("\r\nConnection: close\r\n"));
        assert!(text.contains("\r\nX-A: b\r\n"));
        assert!(!text.contains("999"));
        assert!(text.ends_with("\r\n\r\nhello, world"));
        let mut head = Vec::new();
        resp.write_to(&mut head, true, None);
        let head = String::from_utf8(head).unwrap();
        assert!(head.contains("Content-Length: 12\r\n") && head.ends_with("\r\n\r\n"));
    }
}
