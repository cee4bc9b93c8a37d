//! Validators, conditional requests and ranges for
//! [`FileService`](super::FileService).
//!
//! A file served once is often asked for again: by a cache holding a copy
//! that may be stale, by a download that broke off halfway, by a video
//! player seeking to minute 40. Sending the whole file each time wastes the
//! network; HTTP lets the client say what it already has and the server
//! send only what is missing (RFC 9110 §8.8, §13, §14).
//!
//! **Validators** (§8.8) name one version of the file. Every 200, 206 and
//! 304 answer carries:
//!
//! * `Last-Modified`: the file's mtime in whole seconds, as an IMF-fixdate,
//!   never later than the present (§8.8.2.1: a future mtime is sent as now);
//!   left out for an mtime before 1970.
//! * `ETag`: a *strong* entity tag `"<size>-<mtime seconds>-<mtime
//!   nanoseconds>"` (in hex). Strong means equal tags promise equal bytes
//!   (§8.8.3), so a client may stitch ranges of two answers together. Every
//!   write sets the mtime to the kernel's clock, with nanosecond fields on
//!   ext4, XFS, Btrfs and tmpfs: a new version gets a new tag unless it has
//!   the same size *and* was written within the same timestamp tick as the
//!   old one (the kernel stamps with a coarse clock: a few milliseconds), or
//!   its mtime was set back by hand (`touch -d`, `cp -p`, `rsync -t`, `tar
//!   x`). On file systems with coarse timestamps (FAT: 2 s, ext3: 1 s) the
//!   window is that wide. The inode is deliberately left out, so the same
//!   files on two servers (or restored with their times) have the same tags.
//! * `Accept-Ranges: bytes` (§14.3): ranges are welcome.
//!
//! **Conditional requests** (§13) let a cache revalidate cheaply: it sends
//! its copy's validators back and gets `304 Not Modified` (a head, no body:
//! the copy is still good) or the new file. Evaluated in the order of
//! §13.2.2, after the file is found (a missing file is 404 whatever the
//! conditions):
//!
//! 1. `If-Match` (§13.1.1; a list of tags or `*`, strong comparison) that
//!    matches nothing is `412 Precondition Failed`; without it,
//!    `If-Unmodified-Since` (§13.1.4) earlier than `Last-Modified` is 412.
//! 2. `If-None-Match` (§13.1.2; a list of tags or `*`, weak comparison:
//!    `W/"x"` matches `"x"`) that matches is 304. When it is present,
//!    `If-Modified-Since` is not looked at, whatever it says.
//! 3. Otherwise `If-Modified-Since` (§13.1.3) not earlier than
//!    `Last-Modified` is 304.
//!
//! Dates are accepted in all three forms a recipient must accept (§5.6.7):
//! IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 form
//! (`Sunday, 06-Nov-94 08:49:37 GMT`; a two-digit year more than 50 years
//! ahead is taken from the past century) and asctime (`Sun Nov  6 08:49:37
//! 1994`). The weekday must be a weekday's name but is not checked against
//! the date. A date that does not parse, or a date field sent twice, is
//! ignored (never an error). A malformed `If-None-Match` matches nothing (so
//! 200); a malformed `If-Match` matches nothing (so 412).
//!
//! **Ranges** (§14) let a client fetch part of the file: resume a download,
//! seek in a video, read the index at the end of a zip. For GET only: §14.2
//! says a server MUST ignore `Range` on a method for which range handling is
//! not defined, and it is defined for GET alone, so a HEAD with a `Range`
//! gets the head of the 200.
//!
//! * One range, `bytes=a-b`, `bytes=a-` or the suffix `bytes=-n` (the last
//!   n bytes), is `206 Partial Content` with `Content-Range: bytes
//!   a-b/size`, the region sent by `sendfile` from offset a. A `b` past the
//!   end is taken as the last byte; an `n` longer than the file means the
//!   whole file. Numbers too large for 64 bits do not overflow (§14.1.1):
//!   they are simply past the end.
//! * A range that cannot be satisfied (`a` at or past the end, or `-0`) is
//!   `416 Range Not Satisfiable` with `Content-Range: bytes */size` and an
//!   empty body (§14.1.1, §15.5.17).
//! * Several ranges (`bytes=0-1,5-6`) get the whole file with 200: a server
//!   MAY ignore `Range` (§14.2), and `multipart/byteranges` is not
//!   implemented (many small or overlapping ranges are also a known way to
//!   make a server do much work for little asking).
//! * A unit other than `bytes` is ignored (§14.2: MUST ignore); so is an
//!   invalid specifier (junk, `a > b`, no range at all, `Range` sent twice):
//!   §14.2 allows ignoring or rejecting it, and ignoring still gets the
//!   client its file.
//! * An empty file: `bytes=0-` is 416 with `bytes */0`; `bytes=-n` is
//!   satisfiable by §14.1.1 but no 206 can describe zero bytes, so it gets
//!   the 200 with the empty body.
//! * `If-Range` (§13.1.5) makes the range conditional: the client resumes
//!   only if its partial copy is still current. An entity tag must strongly
//!   match the `ETag` (a weak tag never does); a date must equal
//!   `Last-Modified` exactly, and the file must be more than a second old
//!   (§8.8.2.2: a date is a strong validator only if the file cannot have
//!   changed twice within that second; the server trusts the client to
//!   have followed the same rule for its copy). Otherwise the `Range` is
//!   ignored and the whole file comes with 200.
//!

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::time::{SystemTime, UNIX_EPOCH};

use super::Request;
use super::Response;
use super::date::{http_date, parse_http_date};
use super::syntax::trim_ows;

/// The validators of one version of a file (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Validators {
    /// The strong entity tag, quotes included: `"<size>-<secs>-<nanos>"` in hex.
    etag: String,
    /// The mtime in whole seconds since the epoch, at most now; `None` before 1970.
    last_modified: Option<u64>,
    /// Whether `Last-Modified` is a strong validator (§8.8.2.2): the file was
    /// last written more than a second ago, so it cannot change again within
    /// the second its date names without the date changing.
    date_is_strong: bool,
}

impl Validators {
    pub(crate) fn of(meta: &Metadata, now: SystemTime) -> Validators {
        let (secs, nanos) = (meta.mtime(), meta.mtime_nsec());
        Validators::from_parts(meta.len(), secs, nanos, now)
    }

    fn from_parts(size: u64, secs: i64, nanos: i64, now: SystemTime) -> Validators {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let modified_ns = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        let now_ns = now.as_nanos() as i128;
        Validators {
            etag: format!("\"{size:x}-{:x}-{:x}\"", secs as u64, nanos as u64),
            last_modified: u64::try_from(secs).ok().map(|secs| secs.min(now.as_secs())),
            date_is_strong: now_ns - modified_ns > 1_000_000_000,
        }
    }

    /// `response` with `ETag`, `Last-Modified` and `Accept-Ranges`.
    pub(crate) fn stamp(&self, response: Response) -> Response {
        let response = response.header("ETag", self.etag.clone());
        let response = match self.last_modified {
            Some(secs) => response.header("Last-Modified", http_date(secs)),
            None => response,
        };
        response.header("Accept-Ranges", "bytes")
    }
}

/// The request fields that make an answer conditional or partial, each as
/// the lines it was sent on (a list field may come on several lines).
#[derive(Debug, Default, Clone)]
pub(crate) struct Conditions<'a> {
    /// Whether the method is GET (the only one ranges apply to, §14.2).
    get: bool,
    if_match: Vec<&'a [u8]>,
    if_unmodified_since: Vec<&'a [u8]>,
    if_none_match: Vec<&'a [u8]>,
    if_modified_since: Vec<&'a [u8]>,
    range: Vec<&'a [u8]>,
    if_range: Vec<&'a [u8]>,
}

impl<'a> Conditions<'a> {
    pub(crate) fn of(req: &Request<'a>) -> Conditions<'a> {
        let lines = |name| req.header_values_bytes(name).collect::<Vec<_>>();
        Conditions {
            get: req.method() == "GET",
            if_match: lines("If-Match"),
            if_unmodified_since: lines("If-Unmodified-Since"),
            if_none_match: lines("If-None-Match"),
            if_modified_since: lines("If-Modified-Since"),
            range: lines("Range"),
            if_range: lines("If-Range"),
        }
    }
}

/// What to answer a GET or HEAD for an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// 200 with the whole file.
    Whole,
    /// 206 with `len` (at least 1) bytes from `first`.
    Part { first: u64, len: u64 },
    /// 304: the client's copy is current.
    NotModified,
    /// 412: `If-Match` or `If-Unmodified-Since` is false.
    PreconditionFailed,
    /// 416: no byte of the file is in the range.
    Unsatisfiable,
}

/// The answer for a file of `size` bytes with validators `v`, in the order
/// of RFC 9110 §13.2.2; `now` in seconds since the epoch.
pub(crate) fn plan(c: &Conditions<'_>, v: &Validators, size: u64, now: i64) -> Plan {
    let modified = v.last_modified.map(|secs| secs as i64);
    // 1. If-Match, or else If-Unmodified-Since: 412 when false.
    if !c.if_match.is_empty() {
        let holds = match entity_tags(&c.if_match) {
            Some(Tags::Any) => true,
            Some(Tags::List(tags)) => tags.iter().any(|tag| tag.strongly_matches(&v.etag)),
            None => false,
        };
        if !holds {
            return Plan::PreconditionFailed;
        }
    } else if let (Some(date), Some(modified)) = (single_date(&c.if_unmodified_since, now), modified)
        && modified > date
    {
        return Plan::PreconditionFailed;
    }
    // 2. If-None-Match, or else If-Modified-Since: 304 when false.
    if !c.if_none_match.is_empty() {
        let matches = match entity_tags(&c.if_none_match) {
            Some(Tags::Any) => true,
            Some(Tags::List(tags)) => tags.iter().any(|tag| tag.weakly_matches(&v.etag)),
            None => false,
        };
        if matches {
            return Plan::NotModified;
        }
    } else if let (Some(date), Some(modified)) = (single_date(&c.if_modified_since, now), modified)
        && modified <= date
    {
        return Plan::NotModified;
    }
    // 3. Range, for GET only, if If-Range (when sent) holds.
    if !c.get || c.range.is_empty() {
        return Plan::Whole;
    }
    if !c.if_range.is_empty() && !if_range_holds(&c.if_range, v, now) {
        return Plan::Whole;
    }
    match c.range.as_slice() {
        [range] => byte_range(range, size),
        _ => Plan::Whole, // sent twice: not one valid ranges-specifier
    }
}

/// Whether `If-Range` holds (§13.1.5): an entity tag that strongly matches,
/// or a date equal to a strong `Last-Modified`.
fn if_range_holds(lines: &[&[u8]], v: &Validators, now: i64) -> bool {
    let [line] = lines else { return false };
    let value = trim_ows(line);
    if value.starts_with(b"\"") || value.starts_with(b"W/") {
        return matches!(entity_tags(lines), Some(Tags::List(tags))
            if tags.len() == 1 && tags[0].strongly_matches(&v.etag));
    }
    let date = parse_http_date(value, now);
    v.date_is_strong && date.is_some() && date == v.last_modified.map(|secs| secs as i64)
}

/// A `Range` value applied to a file of `size` bytes (§14.1.1, §14.1.2,
/// §14.2): one satisfiable range is a part; one unsatisfiable range is 416;
/// anything else (another unit, several ranges, an invalid specifier) is
/// ignored: the whole file.
fn byte_range(value: &[u8], size: u64) -> Plan {
    let Some(eq) = value.iter().position(|&b| b == b'=') else { return Plan::Whole };
    let (unit, set) = (&value[..eq], &value[eq + 1..]);
    if !unit.eq_ignore_ascii_case(b"bytes") {
        return Plan::Whole;
    }
    // range-set = 1#range-spec: empty list elements are allowed (§5.6.1).
    let mut specs = set.split(|&b| b == b',').map(trim_ows).filter(|spec| !spec.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else { return Plan::Whole };
    let Some(dash) = spec.iter().position(|&b| b == b'-') else { return Plan::Whole };
    let (first, last) = (&spec[..dash], &spec[dash + 1..]);
    if first.is_empty() {
        // suffix-range: the last n bytes.
        let Some(n) = decimal(last) else { return Plan::Whole };
        return match (n, size) {
            (0, _) => Plan::Unsatisfiable,
            (_, 0) => Plan::Whole, // satisfiable, but a 206 cannot say "no bytes"
            (n, size) => Plan::Part { first: size - n.min(size), len: n.min(size) },
        };
    }
    let Some(first) = decimal(first) else { return Plan::Whole };
    let last = match last {
        b"" => u64::MAX,
        digits => match decimal(digits) {
            Some(last) if last >= first => last,
            _ => return Plan::Whole, // junk, or last < first: invalid
        },
    };
    if first >= size {
        return Plan::Unsatisfiable;
    }
    Plan::Part { first, len: last.min(size - 1) - first + 1 }
}

/// `1*DIGIT` as a number, saturating: a number too large for 64 bits is
/// past the end of any file (§14.1.1: "prevent ... integer conversion
/// overflows").
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0u64, |n, &d| n.saturating_mul(10).saturating_add(u64::from(d - b'0'))))
}

/// An entity tag (§8.8.3): `"opaque"` or `W/"opaque"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EntityTag<'a> {
    weak: bool,
    /// The opaque tag with its quotes.
    opaque: &'a [u8],
}

impl EntityTag<'_> {
    /// Strong comparison (§8.8.3.2): neither weak, same opaque tag. Ours is strong.
    fn strongly_matches(&self, ours: &str) -> bool {
        !self.weak && self.opaque == ours.as_bytes()
    }

    /// Weak comparison: the same opaque tag, weak or not.
    fn weakly_matches(&self, ours: &str) -> bool {
        self.opaque == ours.as_bytes()
    }
}

/// The value of `If-Match` / `If-None-Match`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tags<'a> {
    /// `*`: any current representation.
    Any,
    List(Vec<EntityTag<'a>>),
}

/// Parses `"*" / #entity-tag` from the field's lines (one list across
/// lines); `None` if malformed. Tags may hold commas, so this is a scanner,
/// not a split.
fn entity_tags<'a>(lines: &[&'a [u8]]) -> Option<Tags<'a>> {
    let mut tags = Vec::new();
    let mut star = false;
    for line in lines {
        let mut rest = *line;
        loop {
            rest = &rest[rest.iter().position(|b| !b" \t,".contains(b)).unwrap_or(rest.len())..];
            if rest.is_empty() {
                break;
            }
            if rest[0] == b'*' {
                star = true;
                rest = &rest[1..];
            } else {
                let weak = rest.starts_with(b"W/");
                let quoted = if weak { &rest[2..] } else { rest };
                if quoted.first() != Some(&b'"') {
                    return None;
                }
                let close = 1 + quoted[1..].iter().position(|&b| b == b'"')?;
                let opaque = &quoted[..=close];
                // etagc = %x21 / %x23-7E / obs-text
                if !opaque[1..close].iter().all(|&b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80) {
                    return None;
                }
                tags.push(EntityTag { weak, opaque });
                rest = &quoted[close + 1..];
            }
            // Each element ends at a comma (after optional whitespace) or the end.
            let after = trim_ows(rest);
            if !after.is_empty() && after[0] != b',' {
                return None;
            }
        }
    }
    match (star, tags.is_empty()) {
        (true, true) => Some(Tags::Any),
        (false, false) => Some(Tags::List(tags)),
        _ => None, // `*` with tags, or nothing at all
    }
}

/// The date of a field that holds one HTTP-date; `None` if it is absent,
/// sent on several lines, or not a valid date (§13.1.3, §13.1.4: ignored).
fn single_date(lines: &[&[u8]], now: i64) -> Option<i64> {
    match lines {
        [line] => parse_http_date(line, now),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(weak: bool, opaque: &str) -> EntityTag<'_> {
        EntityTag { weak, opaque: opaque.as_bytes() }
    }

    /// RFC 9110 §8.8.3, §13.1.1, §13.1.2: `*` or a list of tags, which may hold commas.
    #[test]
    fn entity_tag_lists() {
        assert_eq!(entity_tags(&[b"*"]), Some(Tags::Any));
        assert_eq!(entity_tags(&[b" * "]), Some(Tags::Any));
        assert_eq!(
            entity_tags(&[br#""a", W/"b,c" ,, "" "#, br#"W/"d""#]),
            Some(Tags::List(vec![
                tag(false, r#""a""#),
                tag(true, r#""b,c""#),
                tag(false, r#""""#),
                tag(true, r#""d""#)
            ]))
        );
        for bad in [
            &br#"a"#[..],
            br#""a"#,
            br#""a" "b""#,
            br#"w/"a""#,
            br#"*, "a""#,
            b"",
            b" , ",
            br#""a b""#,
            b"W/ \"a\"",
        ] {
            assert_eq!(entity_tags(&[bad]), None, "{:?}", String::from_utf8_lossy(bad));
        }
        let ours = r#""a-b-c""#;
        assert!(tag(false, ours).strongly_matches(ours) && tag(false, ours).weakly_matches(ours));
        assert!(!tag(true, ours).strongly_matches(ours) && tag(true, ours).weakly_matches(ours));
        assert!(!tag(false, r#""a-b""#).weakly_matches(ours));
    }

    /// RFC 9110 §14.1.1, §14.1.2, §14.2: single ranges, clipping, suffixes,
    /// unsatisfiable ranges, and what is ignored.
    #[test]
    fn byte_ranges() {
        let part = |first, len| Plan::Part { first, len };
        let cases: &[(&str, u64, Plan)] = &[
            ("bytes=0-9", 100, part(0, 10)),
            ("bytes=10-", 100, part(10, 90)),
            ("bytes=-5", 100, part(95, 5)),
            ("bytes=-100", 100, part(0, 100)),
            ("bytes=-1000", 100, part(0, 100)),
            ("bytes=90-1000", 100, part(90, 10)),
            ("bytes=99-99", 100, part(99, 1)),
            ("bytes=5-5", 100, part(5, 1)),
            ("Bytes=0-0", 100, part(0, 1)),
            ("bytes= 0-9 ", 100, part(0, 10)),
            ("bytes=0-9,", 100, part(0, 10)),
            ("bytes=0-99999999999999999999999", 100, part(0, 100)),
            ("bytes=-99999999999999999999999", 100, part(0, 100)),
            ("bytes=100-", 100, Plan::Unsatisfiable),
            ("bytes=1000-2000", 100, Plan::Unsatisfiable),
            ("bytes=99999999999999999999999-", 100, Plan::Unsatisfiable),
            ("bytes=-0", 100, Plan::Unsatisfiable),
            ("bytes=0-", 0, Plan::Unsatisfiable),
            ("bytes=0-0", 0, Plan::Unsatisfiable),
            ("bytes=-0", 0, Plan::Unsatisfiable),
            ("bytes=-5", 0, Plan::Whole),
            ("bytes=0-1,5-6", 100, Plan::Whole),
            ("bytes=0-1, -1", 100, Plan::Whole),
            ("bytes=9-5", 100, Plan::Whole),
            ("bytes=a-b", 100, Plan::Whole),
            ("bytes=-", 100, Plan::Whole),
            ("bytes=", 100, Plan::Whole),
            ("bytes=5", 100, Plan::Whole),
            ("bytes=1-2-3", 100, Plan::Whole),
            ("bytes=+1-2", 100, Plan::Whole),
            ("bytes=--5", 100, Plan::Whole),
            ("bytes 0-9", 100, Plan::Whole),
            ("items=0-9", 100, Plan::Whole),
            ("0-9", 100, Plan::Whole),
        ];
        for &(value, size, want) in cases {
            assert_eq!(byte_range(value.as_bytes(), size), want, "{value:?} of {size}");
        }
    }

    /// The ETag is made of size and mtime down to the nanosecond; Last-Modified
    /// is never in the future (RFC 9110 §8.8.2.1); a date is strong only for
    /// a file more than a second old (§8.8.2.2).
    #[test]
    fn validators_from_size_and_mtime() {
        let at = |secs, nanos| UNIX_EPOCH + std::time::Duration::new(secs, nanos);
        let v = Validators::from_parts(100, 784_111_777, 5, at(784_111_779, 0));
        assert_eq!(v.etag, r#""64-2ebc98a1-5""#);
        assert_eq!((v.last_modified, v.date_is_strong), (Some(784_111_777), true));
        // One nanosecond or one byte apart: another tag.
        assert_ne!(Validators::from_parts(100, 784_111_777, 6, at(784_111_779, 0)).etag, v.etag);
        assert_ne!(Validators::from_parts(101, 784_111_777, 5, at(784_111_779, 0)).etag, v.etag);
        // Written within the last second: the date is weak.
        assert!(!Validators::from_parts(100, 784_111_777, 5, at(784_111_778, 5)).date_is_strong);
        assert!(Validators::from_parts(100, 784_111_777, 5, at(784_111_778, 6)).date_is_strong);
        // An mtime in the future is sent as now; one before 1970 not at all.
        let future = Validators::from_parts(1, 2_000_000_000, 0, at(1_000_000_000, 0));
        assert_eq!((future.last_modified, future.date_is_strong), (Some(1_000_000_000), false));
        assert_eq!(Validators::from_parts(1, -5, 0, at(1_000_000_000, 0)).last_modified, None);
        let stamped = v.stamp(Response::new(200));
        assert_eq!(stamped.header_value("etag"), Some(r#""64-2ebc98a1-5""#));
        assert_eq!(stamped.header_value("last-modified"), Some("Sun, 06 Nov 1994 08:49:37 GMT"));
        assert_eq!(stamped.header_value("accept-ranges"), Some("bytes"));
    }

    /// RFC 9110 §13.2.2: the order the preconditions are evaluated in, and
    /// what each outcome is.
    #[test]
    fn preconditions_in_order() {
        const MODIFIED: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
        const EARLIER: &str = "Sun, 06 Nov 1994 08:49:36 GMT";
        const LATER: &str = "Sun Nov  6 08:49:38 1994";
        let now = 1_000_000_000;
        let v = Validators::from_parts(100, 784_111_777, 5, UNIX_EPOCH + std::time::Duration::from_secs(now));
        let ours = v.etag.clone();
        let weak_ours = format!("W/{ours}");
        let get = |fields: &[(&str, &str)]| {
            let mut c = Conditions { get: true, ..Conditions::default() };
            for &(name, value) in fields {
                let slot = match name {
                    "If-Match" => &mut c.if_match,
                    "If-Unmodified-Since" => &mut c.if_unmodified_since,
                    "If-None-Match" => &mut c.if_none_match,
                    "If-Modified-Since" => &mut c.if_modified_since,
                    "Range" => &mut c.range,
                    "If-Range" => &mut c.if_range,
                    _ => unreachable!(),
                };
                slot.push(value.as_bytes());
            }
            plan(&c, &v, 100, now as i64)
        };
        let part = Plan::Part { first: 0, len: 10 };
        let cases: &[(&[(&str, &str)], Plan)] = &[
            (&[], Plan::Whole),
            // If-None-Match: weak comparison, lists, `*`.
            (&[("If-None-Match", &ours)], Plan::NotModified),
            (&[("If-None-Match", &weak_ours)], Plan::NotModified),
            (&[("If-None-Match", "*")], Plan::NotModified),
            (&[("If-None-Match", r#""x", "y""#), ("If-None-Match", &ours)], Plan::NotModified),
            (&[("If-None-Match", r#""x""#)], Plan::Whole),
            (&[("If-None-Match", "not a tag")], Plan::Whole),
            // If-Modified-Since: not earlier than Last-Modified is 304.
            (&[("If-Modified-Since", MODIFIED)], Plan::NotModified),
            (&[("If-Modified-Since", LATER)], Plan::NotModified),
            (&[("If-Modified-Since", EARLIER)], Plan::Whole),
            (&[("If-Modified-Since", "yesterday")], Plan::Whole),
            (&[("If-Modified-Since", MODIFIED), ("If-Modified-Since", MODIFIED)], Plan::Whole),
            // If-None-Match present: If-Modified-Since is not evaluated.
            (&[("If-None-Match", r#""x""#), ("If-Modified-Since", LATER)], Plan::Whole),
            (&[("If-None-Match", "junk"), ("If-Modified-Since", LATER)], Plan::Whole),
            (&[("If-None-Match", &ours), ("If-Modified-Since", EARLIER)], Plan::NotModified),
            // If-Match: strong comparison; false is 412, before anything else.
            (&[("If-Match", &ours)], Plan::Whole),
            (&[("If-Match", "*")], Plan::Whole),
            (&[("If-Match", r#""x", "#), ("If-Match", &ours)], Plan::Whole),
            (&[("If-Match", &weak_ours)], Plan::PreconditionFailed),
            (&[("If-Match", r#""x""#)], Plan::PreconditionFailed),
            (&[("If-Match", r#""x""#), ("If-None-Match", &ours)], Plan::PreconditionFailed),
            (&[("If-Match", &ours), ("If-None-Match", &ours)], Plan::NotModified),
            // If-Unmodified-Since: only without If-Match.
            (&[("If-Unmodified-Since", MODIFIED)], Plan::Whole),
            (&[("If-Unmodified-Since", EARLIER)], Plan::PreconditionFailed),
            (&[("If-Unmodified-Since", "junk")], Plan::Whole),
            (&[("If-Unmodified-Since", EARLIER), ("If-Match", &ours)], Plan::Whole),
            // Range, and If-Range.
            (&[("Range", "bytes=0-9")], part),
            (&[("Range", "bytes=0-9"), ("Range", "bytes=0-9")], Plan::Whole),
            (&[("Range", "bytes=0-9"), ("If-Range", &ours)], part),
            (&[("Range", "bytes=0-9"), ("If-Range", &weak_ours)], Plan::Whole),
            (&[("Range", "bytes=0-9"), ("If-Range", r#""stale""#)], Plan::Whole),
            (&[("Range", "bytes=0-9"), ("If-Range", MODIFIED)], part),
            (&[("Range", "bytes=0-9"), ("If-Range", LATER)], Plan::Whole),
            (&[("Range", "bytes=0-9"), ("If-Range", "junk")], Plan::Whole),
            (&[("Range", "bytes=0-9"), ("If-Range", &ours), ("If-Range", &ours)], Plan::Whole),
            (&[("If-Range", r#""stale""#)], Plan::Whole),
            (&[("Range", "bytes=500-"), ("If-Range", &ours)], Plan::Unsatisfiable),
            (&[("Range", "bytes=500-"), ("If-Range", r#""stale""#)], Plan::Whole),
            // Preconditions come before the range.
            (&[("Range", "bytes=0-9"), ("If-None-Match", &ours)], Plan::NotModified),
            (&[("Range", "bytes=500-"), ("If-Modified-Since", MODIFIED)], Plan::NotModified),
        ];
        for (fields, want) in cases {
            assert_eq!(get(fields), *want, "{fields:?}");
        }
        // Ranges are for GET only (§14.2); the preconditions apply to HEAD too.
        let head = |c: Conditions<'_>| plan(&c, &v, 100, now as i64);
        let range = Conditions { range: vec![b"bytes=0-9"], ..Conditions::default() };
        assert_eq!(head(range), Plan::Whole);
        let none_match = Conditions { if_none_match: vec![ours.as_bytes()], ..Conditions::default() };
        assert_eq!(head(none_match), Plan::NotModified);
        // A date in If-Range names a file written less than a second ago: weak, so ignored.
        let fresh = Validators::from_parts(
            100,
            784_111_777,
            5,
            UNIX_EPOCH + std::time::Duration::new(784_111_777, 9),
        );
        let c = Conditions {
            get: true,
            range: vec![b"bytes=0-9"],
            if_range: vec![MODIFIED.as_bytes()],
            ..Conditions::default()
        };
        assert_eq!(plan(&c, &fresh, 100, 784_111_777), Plan::Whole);
    }
}
