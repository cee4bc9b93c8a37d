//! RESP2 requests, incrementally: a command is an array of bulk strings
//! (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`, what redis-cli and redis-benchmark send)
//! or an inline line (`PING\r\n`, what a person types into telnet).
//!
//! [`parse`] looks at the buffered bytes without consuming them: it says how
//! long the first command is once all of it has arrived, so the caller
//! consumes exactly that (the parse-`peek()`-then-`consume` pattern).

use std::ops::Range;

/// Largest bulk string accepted (Redis' default is 512 MB).
pub const MAX_BULK: usize = 64 * 1024 * 1024;
/// Most arguments in one command.
pub const MAX_ARGS: usize = 1024 * 1024;
/// Longest inline command or `*`/`$` header line.
pub const MAX_LINE: usize = 64 * 1024;

/// The first command in a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not all of it has arrived yet.
    Incomplete,
    /// A command: its arguments as ranges of the buffer, and its total length.
    Command { args: Vec<Range<usize>>, len: usize },
    /// Malformed or over a limit: answer the error and close.
    Error(&'static str),
}

/// Offset of the `\r\n` ending the line that starts at `from`, if it has arrived.
fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?.windows(2).position(|w| w == b"\r\n").map(|i| from + i)
}

/// A decimal number in `buf[range]` (an optional `-`, then digits).
fn number(digits: &[u8]) -> Option<i64> {
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = digits.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
    Some(if negative { -value } else { value })
}

/// Parses the first command of `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    match buf.first() {
        None => Parsed::Incomplete,
        Some(b'*') => parse_array(buf),
        Some(_) => parse_inline(buf),
    }
}

fn parse_array(buf: &[u8]) -> Parsed {
    let Some(end) = line_end(buf, 1) else {
        return if buf.len() > MAX_LINE {
            Parsed::Error("Protocol error: too big mbulk count string")
        } else {
            Parsed::Incomplete
        };
    };
    let count = match number(&buf[1..end]) {
        Some(n) if n <= 0 => return Parsed::Command { args: Vec::new(), len: end + 2 },
        Some(n) if n as usize <= MAX_ARGS => n as usize,
        Some(_) => return Parsed::Error("Protocol error: invalid multibulk length"),
        None => return Parsed::Error("Protocol error: invalid multibulk length"),
    };
    let mut args = Vec::with_capacity(count.min(64));
    let mut at = end + 2;
    for _ in 0..count {
        match buf.get(at) {
            None => return Parsed::Incomplete,
            Some(b'$') => {}
            Some(_) => return Parsed::Error("Protocol error: expected '$'"),
        }
        let Some(end) = line_end(buf, at + 1) else {
            return if buf.len() - at > MAX_LINE {
                Parsed::Error("Protocol error: too big bulk count string")
            } else {
                Parsed::Incomplete
            };
        };
        let len = match number(&buf[at + 1..end]) {
            Some(n) if (0..=MAX_BULK as i64).contains(&n) => n as usize,
            _ => return Parsed::Error("Protocol error: invalid bulk length"),
        };
        let start = end + 2;
        let stop = start + len;
        if buf.len() < stop + 2 {
            return Parsed::Incomplete;
        }
        if &buf[stop..stop + 2] != b"\r\n" {
            return Parsed::Error("Protocol error: bulk string not followed by CRLF");
        }
        args.push(start..stop);
        at = stop + 2;
    }
    Parsed::Command { args, len: at }
}

/// `SET k v\r\n`: space-separated words (no quoting), `\n` or `\r\n`.
fn parse_inline(buf: &[u8]) -> Parsed {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > MAX_LINE {
            Parsed::Error("Protocol error: too big inline request")
        } else {
            Parsed::Incomplete
        };
    };
    let line_len = if nl > 0 && buf[nl - 1] == b'\r' { nl - 1 } else { nl };
    let mut args = Vec::new();
    let mut i = 0;
    while i < line_len {
        if buf[i] == b' ' || buf[i] == b'\t' {
            i += 1;
            continue;
        }
        let start = i;
        while i < line_len && buf[i] != b' ' && buf[i] != b'\t' {
            i += 1;
        }
        args.push(start..i);
    }
    Parsed::Command { args, len: nl + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(buf: &[u8]) -> Vec<&[u8]> {
        match parse(buf) {
            Parsed::Command { args, .. } => args.into_iter().map(|r| &buf[r]).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn arrays_inline_and_partial_input() {
        let set = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        assert_eq!(words(set), [&b"SET"[..], b"k", b"hello"]);
        for cut in 0..set.len() {
            assert_eq!(parse(&set[..cut]), Parsed::Incomplete, "cut at {cut}");
        }
        assert_eq!(words(b"PING\r\n"), [&b"PING"[..]]);
        assert_eq!(words(b"  get   key \n"), [&b"get"[..], b"key"]);
        assert!(matches!(parse(b"*1\r\n$-5\r\n"), Parsed::Error(_)));
        assert!(matches!(parse(b"*1\r\n:5\r\n"), Parsed::Error(_)));
        assert!(matches!(parse(b"*1\r\n$1\r\nab\r\n"), Parsed::Error(_)));
        assert!(matches!(parse(b"*99999999999\r\n"), Parsed::Error(_)));
    }
}
