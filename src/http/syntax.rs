//! The character classes of HTTP's grammar (RFC 9110 §5.6, RFC 3986 §2),
//! shared by the request parser, the response writer and the file server.
//!
//! A server and the proxies in front of it must agree on where a field or a
//! message ends; every byte a lenient parser lets through that a strict one
//! would not (a CR inside a value, a space in a name) is where header
//! injection and request smuggling begin. So these checks are exact, and
//! both directions use them: what we accept and what we write.

/// A byte table built at compile time: `true` for the bytes in `extra` and
/// the ASCII letters and digits.
const fn alphanumeric_and(extra: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
}

/// tchar (RFC 9110 §5.6.2); a table, since every header name of every
/// response is checked against it.
static TCHAR: [bool; 256] = alphanumeric_and(b"!#$%&'*+-.^_`|~");

/// reg-name characters of a host (RFC 3986 §3.2.2: unreserved,
/// pct-encoded, sub-delims), without the comma.
static REG_NAME: [bool; 256] = alphanumeric_and(b"-._~%!$&'()*+;=");

/// Whether `b` may appear in a token (a method, a field name, a coding).
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// Whether `s` is a token: one or more tchars.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Whether `s` may be sent as a field value: visible characters, spaces,
/// tabs and non-ASCII (obs-text), but no control byte (CR, LF and NUL above
/// all: a CR LF would end the field and start another one).
pub(crate) fn is_field_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// `bytes` without leading and trailing spaces and tabs (OWS, RFC 9110 §5.6.3).
pub(crate) fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !is_ows(b)).map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// The value of one hex digit.
pub(crate) fn hex_value(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|v| v as u8)
}

/// Decodes `%XX` escapes; `None` for a `%` not followed by two hex digits.
/// With `plus_is_space` (form-encoded query strings), `+` decodes to a space.
pub(crate) fn percent_decode(raw: &[u8], plus_is_space: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'%' => {
                let (hi, lo) = (hex_value(*raw.get(i + 1)?)?, hex_value(*raw.get(i + 2)?)?);
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Whether every `%` in `path` starts a valid escape and none encodes NUL:
/// a path that decodes to a NUL byte would be cut short by any C API it
/// reaches (a file name, a log line), so it is refused at the door.
pub(crate) fn is_clean_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            match (
                bytes.get(i + 1).copied().and_then(hex_value),
                bytes.get(i + 2).copied().and_then(hex_value),
            ) {
                (Some(0), Some(0)) | (None, _) | (_, None) => return false,
                _ => i += 3,
            }
        } else {
            i += 1;
        }
    }
    true
}

/// Whether `value` is a valid `Host` (RFC 9112 §3.2: `uri-host [":" port]`,
/// RFC 3986 §3.2.2): a registered name or IPv4 address of unreserved,
/// percent-encoded and sub-delimiter characters, or an IP literal in
/// brackets, then an optional port of digits. Refused on top of the grammar:
/// an empty value and a comma (which a proxy could read as a list of two
/// hosts). A `/`, `@` (userinfo), space or anything else is not in the grammar.
pub(crate) fn is_valid_host(value: &[u8]) -> bool {
    let port_ok = |port: &[u8]| port.iter().all(u8::is_ascii_digit);
    if let Some(literal) = value.strip_prefix(b"[") {
        let Some(close) = literal.iter().position(|&b| b == b']') else { return false };
        let ip_chars = |b: &u8| b.is_ascii_hexdigit() || matches!(b, b':' | b'.');
        return close > 0
            && literal[..close].iter().all(ip_chars)
            && match &literal[close + 1..] {
                [] => true,
                [b':', port @ ..] => port_ok(port),
                _ => false,
            };
    }
    // One pass (this runs on every request): reg-name characters up to an
    // optional ':' (not one of them), then digits.
    for (i, &b) in value.iter().enumerate() {
        if !REG_NAME[usize::from(b)] {
            return b == b':' && i > 0 && port_ok(&value[i + 1..]);
        }
    }
    !value.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert!(is_token("Content-Type") && is_token("X-a_b.c~1") && is_token("!#$%&'*+-.^_`|~"));
        for bad in ["", "Bad Name", "a:b", "a\r\nb", "é", "a(b)", "a\"b", "a/b", "a\0"] {
            assert!(!is_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn field_values() {
        assert!(
            is_field_value("text/plain; charset=utf-8") && is_field_value("a\tb") && is_field_value("ünï")
        );
        assert!(is_field_value(""));
        for bad in ["a\r\nSet-Cookie: x=1", "a\nb", "a\rb", "a\0b", "a\x01b", "a\x7fb"] {
            assert!(!is_field_value(bad), "{bad:?}");
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode(b"a%20b%2Fc", false).unwrap(), b"a b/c");
        assert_eq!(percent_decode(b"%2e%2E", false).unwrap(), b"..");
        assert_eq!(percent_decode(b"a+b", false).unwrap(), b"a+b");
        assert_eq!(percent_decode(b"a+b%2B", true).unwrap(), b"a b+");
        for bad in [&b"%"[..], b"%4", b"%zz", b"%+1", b"a%g0"] {
            assert!(percent_decode(bad, false).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn clean_paths() {
        assert!(is_clean_path("/a/b%20c") && is_clean_path("/") && is_clean_path("/%2e%2E/%01"));
        for bad in ["/a%00b", "/%00", "/a%zzb", "/a%", "/a%4", "/%0"] {
            assert!(!is_clean_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn hosts() {
        for good in [
            "example.com",
            "example.com:8080",
            "127.0.0.1",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8080",
            "a-b_c~d",
            "localhost:",
        ] {
            assert!(is_valid_host(good.as_bytes()), "{good:?}");
        }
        for bad in [
            "", "a, b", "a,b", "a/b", "user@a", "a b", "[::1", "[]", "[::1]x", "a:80x", ":80", "a\tb",
            "[x::1]",
        ] {
            assert!(!is_valid_host(bad.as_bytes()), "{bad:?}");
        }
    }
}
