//! The chunked transfer coding (RFC 9112 §7.1): a body sent as a series of
//! chunks, each a hex size line and that many data bytes, ended by a chunk of
//! size zero, an optional trailer section and a blank line. The sender need
//! not know the length in advance; the receiver learns where the body ends
//! only by parsing all of it. A recipient MUST be able to parse it, so a
//! server that accepts request bodies must decode it.
//!
//! The decoder is strict on purpose. Request smuggling lives in the gap
//! between two parsers (a proxy and this server) that disagree on where a
//! body ends: one accepts a bare LF, a leading space, a `0x` prefix or a size
//! that overflows, the other reads the same bytes differently, and the rest
//! of the body becomes a second request. So everything outside the grammar is
//! refused with 400 rather than guessed at.
//!
//! It is a byte-level state machine: input may be split anywhere, nothing is
//! buffered or rescanned (a body fed one byte at a time costs O(n)), and chunk
//! data is copied in bulk. Memory and work are bounded by its limits:
//! the decoded size (413), the size line with its extensions (400) and the
//! trailer section (431).

/// Bounds on one chunked body.
#[derive(Copy, Clone, Debug)]
pub(crate) struct ChunkedLimits {
    /// Largest decoded body (sum of chunk sizes); more is 413.
    pub(crate) max_body: usize,
    /// Longest chunk-size line (size digits + extensions, without CRLF); longer is 400.
    pub(crate) max_line: usize,
    /// Most trailer bytes (all trailer field lines with their CRLFs, not the final CRLF); more is 431.
    pub(crate) max_trailer_bytes: usize,
    /// Most trailer field lines; more is 431.
    pub(crate) max_trailers: usize,
}

/// Why a chunked body is refused: the status to answer (400, 413 or 431) and a reason for humans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChunkError {
    /// 400 (malformed), 413 (body too large) or 431 (trailer section too large).
    pub(crate) status: u16,
    /// What was wrong, for the response body.
    pub(crate) reason: String,
}

/// What one call to `decode` did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// All of the input was consumed (it may end inside a line or a chunk); feed more.
    NeedMore,
    /// The body ended (last chunk, trailer section, final CRLF) after `consumed` bytes of this
    /// input; bytes after that belong to the next request and were not looked at.
    Done {
        /// Bytes of this input that belonged to the body, up to and including the final LF.
        consumed: usize,
    },
}

/// Where the decoder is in the grammar; the next byte is read in this state.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    /// Start of a chunk-size line: a hex digit must come.
    SizeStart,
    /// Inside the hex digits.
    SizeDigits,
    /// BWS after the digits: only more BWS or `;` may follow.
    SizeWs,
    /// After `;` (BWS allowed): an extension name must come.
    ExtPreName,
    /// Inside an extension name.
    ExtName,
    /// BWS after an extension name: `=` or `;` must follow.
    ExtPostName,
    /// After `=` (BWS allowed): a token or a quoted string must come.
    ExtPreValue,
    /// Inside a token extension value.
    ExtToken,
    /// Inside a quoted extension value.
    ExtQuoted,
    /// After a backslash inside a quoted value.
    ExtQuotedPair,
    /// Just after the closing quote of a quoted value.
    ExtQuoteEnd,
    /// BWS after an extension value: only more BWS or `;` may follow.
    ExtPostValue,
    /// After the CR that ends a size line.
    SizeLf,
    /// Inside chunk data, `remaining` bytes to go (never 0).
    Data { remaining: usize },
    /// Chunk data is complete: its CR must come.
    DataCr,
    /// After the CR following chunk data.
    DataLf,
    /// Start of a trailer line, or of the final CRLF.
    TrailerStart,
    /// Inside a trailer field name.
    TrailerName,
    /// After the `:` of a trailer field, up to its CR.
    TrailerValue,
    /// After the CR that ends a trailer field line.
    TrailerLf,
    /// After the CR of the final (empty) line.
    FinalLf,
    /// The body has ended.
    Done,
}

/// A chunked body decoder that can be fed the raw bytes in pieces split anywhere.
#[derive(Debug)]
pub(crate) struct ChunkedDecoder {
    limits: ChunkedLimits,
    state: State,
    /// The chunk size parsed so far on the current size line.
    size: u64,
    /// Bytes of the current size line so far (without CRLF).
    line_len: usize,
    /// Sum of the chunk sizes announced so far (all checked against `max_body`).
    total: usize,
    /// Trailer field lines seen so far.
    trailers: usize,
    /// Trailer bytes seen so far.
    trailer_bytes: usize,
    /// The refusal, repeated by later calls.
    failed: Option<ChunkError>,
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub(crate) fn new(limits: ChunkedLimits) -> Self {
        ChunkedDecoder {
            limits,
            state: State::SizeStart,
            size: 0,
            line_len: 0,
            total: 0,
            trailers: 0,
            trailer_bytes: 0,
            failed: None,
        }
    }

    /// Decodes the next raw bytes of the body, appending chunk data to `body`.
    ///
    /// Once it has returned `Done`, later calls return `Done { consumed: 0 }`
    /// (the body is over, nothing more is taken); once it has returned an
    /// error, later calls return the same error. Data appended before an
    /// error stays in `body`; the caller discards it with the request.
    pub(crate) fn decode(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<Decoded, ChunkError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if self.state == State::Done {
            return Ok(Decoded::Done { consumed: 0 });
        }
        let mut at = 0;
        while at < input.len() {
            if let State::Data { remaining } = self.state {
                // Bulk copy: as much of this chunk as the input holds.
                let take = remaining.min(input.len() - at);
                body.extend_from_slice(&input[at..at + take]);
                at += take;
                self.state = match remaining - take {
                    0 => State::DataCr,
                    remaining => State::Data { remaining },
                };
                continue;
            }
            let byte = input[at];
            at += 1;
            if let Err(error) = self.step(byte) {
                self.failed = Some(error.clone());
                return Err(error);
            }
            if self.state == State::Done {
                return Ok(Decoded::Done { consumed: at });
            }
        }
        Ok(Decoded::NeedMore)
    }

    /// Trailer field lines seen so far (the tests and the fuzz target
    /// compare it across splits; the server needs only the limit).
    #[allow(dead_code)]
    pub(crate) fn trailers(&self) -> usize {
        self.trailers
    }

    /// Reads one byte outside chunk data.
    fn step(&mut self, b: u8) -> Result<(), ChunkError> {
        use State::*;
        if self.in_size_line() {
            return self.size_line_byte(b);
        }
        self.state = match self.state {
            SizeLf => match b {
                b'\n' => self.end_size_line()?,
                _ => return Err(bad(format!("chunk size line: CR followed by {}", show(b)))),
            },
            DataCr => match b {
                b'\r' => DataLf,
                b'\n' => return Err(bad("bare LF after chunk data")),
                _ => return Err(bad("chunk data longer than its size")),
            },
            DataLf => match b {
                b'\n' => SizeStart,
                _ => return Err(bad(format!("after chunk data: CR followed by {}", show(b)))),
            },
            TrailerStart => match b {
                b'\r' => FinalLf,
                b'\n' => return Err(bad("bare LF in trailer section")),
                b' ' | b'\t' => return Err(bad("trailer: obs-fold (line starts with whitespace)")),
                _ => {
                    self.trailers = self.trailers.saturating_add(1);
                    if self.trailers > self.limits.max_trailers {
                        return Err(ChunkError {
                            status: 431,
                            reason: format!("more than {} trailer fields", self.limits.max_trailers),
                        });
                    }
                    self.trailer_byte()?;
                    match b {
                        _ if is_tchar(b) => TrailerName,
                        b':' => return Err(bad("trailer: empty field name")),
                        _ => return Err(bad(format!("trailer: bad field-name byte {}", show(b)))),
                    }
                }
            },
            TrailerName => {
                self.trailer_byte()?;
                match b {
                    _ if is_tchar(b) => TrailerName,
                    b':' => TrailerValue,
                    b'\r' | b'\n' => return Err(bad("trailer: line without ':'")),
                    b' ' | b'\t' => return Err(bad("trailer: whitespace before ':'")),
                    _ => return Err(bad(format!("trailer: bad field-name byte {}", show(b)))),
                }
            }
            TrailerValue => {
                self.trailer_byte()?;
                match b {
                    b'\r' => TrailerLf,
                    b'\n' => return Err(bad("bare LF in trailer section")),
                    b'\t' | b' '..=b'~' | 0x80..=0xff => TrailerValue,
                    _ => return Err(bad(format!("trailer: control byte {} in field value", show(b)))),
                }
            }
            TrailerLf => {
                self.trailer_byte()?;
                match b {
                    b'\n' => TrailerStart,
                    _ => return Err(bad(format!("trailer: CR followed by {}", show(b)))),
                }
            }
            FinalLf => match b {
                b'\n' => Done,
                _ => return Err(bad(format!("end of chunked body: CR followed by {}", show(b)))),
            },
            // `decode` handles these before calling `step`; the size-line states returned above.
            _ => return Err(bad("chunked decoder: internal state error")),
        };
        Ok(())
    }

    /// Whether the next byte belongs to a size line (digits + extensions, before the CR).
    fn in_size_line(&self) -> bool {
        use State::*;
        matches!(
            self.state,
            SizeStart
                | SizeDigits
                | SizeWs
                | ExtPreName
                | ExtName
                | ExtPostName
                | ExtPreValue
                | ExtToken
                | ExtQuoted
                | ExtQuotedPair
                | ExtQuoteEnd
                | ExtPostValue
        )
    }

    /// Reads one byte of a size line: `chunk-size [chunk-ext]`, up to its CR.
    fn size_line_byte(&mut self, b: u8) -> Result<(), ChunkError> {
        use State::*;
        if b == b'\n' {
            return Err(bad("bare LF in chunk size line"));
        }
        if b != b'\r' {
            self.line_len = self.line_len.saturating_add(1);
            if self.line_len > self.limits.max_line {
                return Err(bad(format!("chunk size line too long (over {} bytes)", self.limits.max_line)));
            }
            if b != b'\t' && (b < 0x20 || b == 0x7f) {
                return Err(bad(format!("chunk size line: control byte {}", show(b))));
            }
        }
        let bws = b == b' ' || b == b'\t';
        self.state = match self.state {
            SizeStart => match hex_value(b) {
                Some(digit) => {
                    self.size = u64::from(digit);
                    SizeDigits
                }
                None if b == b'\r' || b == b';' => return Err(bad("chunk size: missing")),
                None => return Err(bad(format!("chunk size: bad first byte {}", show(b)))),
            },
            SizeDigits => match hex_value(b) {
                Some(digit) => {
                    self.size = self
                        .size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(u64::from(digit)))
                        .ok_or_else(|| bad("chunk size overflows"))?;
                    SizeDigits
                }
                None if b == b'\r' => SizeLf,
                None if b == b';' => ExtPreName,
                None if bws => SizeWs,
                None => return Err(bad(format!("chunk size: bad digit {}", show(b)))),
            },
            SizeWs => match b {
                _ if bws => SizeWs,
                b';' => ExtPreName,
                b'\r' => return Err(bad("chunk size line: whitespace after the size without an extension")),
                _ => return Err(bad(format!("chunk size line: {} after whitespace", show(b)))),
            },
            ExtPreName => match b {
                _ if bws => ExtPreName,
                _ if is_tchar(b) => ExtName,
                _ => return Err(bad(format!("chunk extension: bad name byte {}", show(b)))),
            },
            ExtName => match b {
                _ if is_tchar(b) => ExtName,
                _ if bws => ExtPostName,
                b'=' => ExtPreValue,
                b';' => ExtPreName,
                b'\r' => SizeLf,
                _ => return Err(bad(format!("chunk extension: bad name byte {}", show(b)))),
            },
            ExtPostName => match b {
                _ if bws => ExtPostName,
                b'=' => ExtPreValue,
                b';' => ExtPreName,
                b'\r' => return Err(bad("chunk extension: trailing whitespace")),
                _ => return Err(bad(format!("chunk extension: {} after name", show(b)))),
            },
            ExtPreValue => match b {
                _ if bws => ExtPreValue,
                b'"' => ExtQuoted,
                _ if is_tchar(b) => ExtToken,
                _ => return Err(bad(format!("chunk extension: bad value byte {}", show(b)))),
            },
            ExtToken => match b {
                _ if is_tchar(b) => ExtToken,
                _ if bws => ExtPostValue,
                b';' => ExtPreName,
                b'\r' => SizeLf,
                _ => return Err(bad(format!("chunk extension: bad value byte {}", show(b)))),
            },
            ExtQuoted => match b {
                b'"' => ExtQuoteEnd,
                b'\\' => ExtQuotedPair,
                b'\t' | b' '..=b'~' | 0x80..=0xff => ExtQuoted,
                _ => return Err(bad(format!("chunk extension: {} in quoted string", show(b)))),
            },
            ExtQuotedPair => match b {
                b'\t' | b' '..=b'~' | 0x80..=0xff => ExtQuoted,
                _ => return Err(bad(format!("chunk extension: {} after backslash", show(b)))),
            },
            ExtQuoteEnd => match b {
                _ if bws => ExtPostValue,
                b';' => ExtPreName,
                b'\r' => SizeLf,
                _ => return Err(bad(format!("chunk extension: {} after quoted string", show(b)))),
            },
            ExtPostValue => match b {
                _ if bws => ExtPostValue,
                b';' => ExtPreName,
                b'\r' => return Err(bad("chunk extension: trailing whitespace")),
                _ => return Err(bad(format!("chunk extension: {} after value", show(b)))),
            },
            _ => return Err(bad("chunked decoder: internal state error")),
        };
        Ok(())
    }

    /// The LF of a size line: start the chunk's data, or the trailer section after the last chunk.
    fn end_size_line(&mut self) -> Result<State, ChunkError> {
        let size = std::mem::take(&mut self.size);
        self.line_len = 0;
        if size == 0 {
            return Ok(State::TrailerStart);
        }
        // Refuse before copying any of it.
        let size = usize::try_from(size).ok();
        match size.and_then(|s| Some((s, self.total.checked_add(s)?))) {
            Some((size, total)) if total <= self.limits.max_body => {
                self.total = total;
                Ok(State::Data { remaining: size })
            }
            _ => Err(ChunkError {
                status: 413,
                reason: format!("chunked request body exceeds {} bytes", self.limits.max_body),
            }),
        }
    }

    /// Counts one trailer byte against `max_trailer_bytes`.
    fn trailer_byte(&mut self) -> Result<(), ChunkError> {
        self.trailer_bytes = self.trailer_bytes.saturating_add(1);
        if self.trailer_bytes > self.limits.max_trailer_bytes {
            return Err(ChunkError {
                status: 431,
                reason: format!("trailer section exceeds {} bytes", self.limits.max_trailer_bytes),
            });
        }
        Ok(())
    }
}

/// A 400 with `reason`.
fn bad(reason: impl Into<String>) -> ChunkError {
    ChunkError { status: 400, reason: reason.into() }
}

/// A byte quoted for a reason: `'_'`, `'\r'`, `'\x00'`.
fn show(b: u8) -> String {
    format!("'{}'", b.escape_ascii())
}

/// The value of a hex digit (either case).
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether `b` may appear in a token (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Appends a chunk-size line for `len` data bytes: lower-case hex, CRLF. (`len` must be > 0: a
/// zero size is the last chunk.)
pub(crate) fn push_chunk_size(out: &mut Vec<u8>, len: usize) {
    debug_assert!(len > 0, "a chunk of size 0 is the last chunk; use push_last_chunk");
    let mut digits = [0u8; 2 * size_of::<usize>()];
    let mut start = digits.len();
    let mut rest = len;
    loop {
        start -= 1;
        digits[start] = b"0123456789abcdef"[rest % 16];
        rest /= 16;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
    out.extend_from_slice(b"\r\n");
}

/// Appends the last chunk, the given trailer fields (already validated by the caller) and the
/// final CRLF.
pub(crate) fn push_last_chunk<N: AsRef<str>, V: AsRef<str>>(out: &mut Vec<u8>, trailers: &[(N, V)]) {
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers {
        out.extend_from_slice(name.as_ref().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_ref().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small enough to reach every limit, large enough for the other tests.
    fn limits() -> ChunkedLimits {
        ChunkedLimits { max_body: 1024, max_line: 64, max_trailer_bytes: 256, max_trailers: 4 }
    }

    /// How feeding a whole input ended.
    #[derive(Debug, PartialEq, Eq)]
    enum Outcome {
        /// Still waiting after all of it.
        NeedMore,
        /// The body ended this many bytes into the whole input.
        Done(usize),
        /// Refused.
        Failed(ChunkError),
    }

    /// Feeds `pieces` one after another; the outcome, the body and the trailer count.
    fn feed<'a>(
        pieces: impl IntoIterator<Item = &'a [u8]>,
        limits: ChunkedLimits,
    ) -> (Outcome, Vec<u8>, usize) {
        let mut decoder = ChunkedDecoder::new(limits);
        let mut body = Vec::new();
        let mut offset = 0;
        for piece in pieces {
            match decoder.decode(piece, &mut body) {
                Ok(Decoded::NeedMore) => offset += piece.len(),
                Ok(Decoded::Done { consumed }) => {
                    assert!(consumed <= piece.len(), "consumed {consumed} of a {}-byte piece", piece.len());
                    return (Outcome::Done(offset + consumed), body, decoder.trailers());
                }
                Err(error) => return (Outcome::Failed(error), body, decoder.trailers()),
            }
        }
        (Outcome::NeedMore, body, decoder.trailers())
    }

    fn whole(input: &[u8]) -> (Outcome, Vec<u8>) {
        let (outcome, body, _) = feed([input], limits());
        (outcome, body)
    }

    /// Decodes a complete body; its data and where it ended.
    fn decoded(input: &[u8]) -> (Vec<u8>, usize) {
        match whole(input) {
            (Outcome::Done(end), body) => (body, end),
            other => panic!("{:?}: expected Done, got {other:?}", input.escape_ascii().to_string()),
        }
    }

    /// The status a malformed body is refused with.
    fn refused(input: &[u8], limits: ChunkedLimits) -> ChunkError {
        match feed([input], limits) {
            (Outcome::Failed(error), ..) => error,
            other => panic!("{:?}: expected an error, got {other:?}", input.escape_ascii().to_string()),
        }
    }

    fn status(input: &[u8]) -> u16 {
        refused(input, limits()).status
    }

    #[test]
    fn decodes_several_chunks() {
        let input = b"5\r\nhello\r\n6\r\n world\r\n1\r\n!\r\n0\r\n\r\n";
        assert_eq!(decoded(input), (b"hello world!".to_vec(), input.len()));
    }

    #[test]
    fn empty_body() {
        assert_eq!(decoded(b"0\r\n\r\n"), (Vec::new(), 5));
    }

    #[test]
    fn hex_sizes_either_case_with_leading_zeros() {
        let ten = "0123456789";
        let thirty_one = "x".repeat(31);
        for size in ["1F", "1f", "001F", "0000000000000000000000001f"] {
            let input = format!("A\r\n{ten}\r\n{size}\r\n{thirty_one}\r\n000\r\n\r\n");
            let (body, end) = decoded(input.as_bytes());
            assert_eq!(body, format!("{ten}{thirty_one}").as_bytes(), "size {size}");
            assert_eq!(end, input.len(), "size {size}");
        }
    }

    #[test]
    fn extensions_are_checked_and_ignored() {
        for line in [
            "5;a",
            "5;a=b",
            "5;a=b;c;d=e",
            "5 ;a",
            "5\t; a = b ;\tc",
            "5;name=\"quoted value\"",
            "5;q=\"with \\\" escaped quote and \\\\ backslash\"",
            "5;q=\"\" ; r=\"x\"",
            "5;q=\"tab\there\"",
            "5;!#$%&'*+-.^_`|~09AZaz=!#$%&'*+-.^_`|~",
        ] {
            let input = format!("{line}\r\nhello\r\n0;last=\"yes\"\r\n\r\n");
            assert_eq!(decoded(input.as_bytes()), (b"hello".to_vec(), input.len()), "extension {line:?}");
        }
        let obs_text = b"5;q=\"\x80\xff\"\r\nhello\r\n0\r\n\r\n";
        assert_eq!(decoded(obs_text).0, b"hello", "obs-text in a quoted value");
    }

    #[test]
    fn trailers_are_validated_counted_and_discarded() {
        let one = b"3\r\nabc\r\n0\r\nExpires: never\r\n\r\n";
        assert_eq!(feed([one.as_slice()], limits()), (Outcome::Done(one.len()), b"abc".to_vec(), 1));
        let several = b"0\r\nA: 1\r\nb-c:\r\nD:\t spaced value \t\r\nE: obs \x80\xff text, \"q\"\r\n\r\n";
        assert_eq!(feed([several.as_slice()], limits()), (Outcome::Done(several.len()), Vec::new(), 4));
    }

    #[test]
    fn stops_at_the_end_of_the_body() {
        let body = b"4\r\nwiki\r\n0\r\nT: v\r\n\r\n";
        let next = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let input = [body.as_slice(), next].concat();
        let mut decoder = ChunkedDecoder::new(limits());
        let mut out = b"kept".to_vec();
        assert_eq!(decoder.decode(&input, &mut out), Ok(Decoded::Done { consumed: body.len() }));
        assert_eq!(out, b"keptwiki", "data is appended");
        assert_eq!(
            decoder.decode(b"more", &mut out),
            Ok(Decoded::Done { consumed: 0 }),
            "after Done nothing more is taken"
        );
        assert_eq!(out, b"keptwiki");
    }

    #[test]
    fn incomplete_bodies_wait() {
        for input in [
            "",
            "5",
            "5;a=\"x",
            "5\r",
            "5\r\nhel",
            "5\r\nhello",
            "5\r\nhello\r",
            "0\r\n",
            "0\r\nA: b",
            "0\r\nA: b\r\n",
            "0\r\n\r",
        ] {
            assert_eq!(whole(input.as_bytes()).0, Outcome::NeedMore, "{input:?}");
        }
    }

    #[test]
    fn errors_repeat() {
        let mut decoder = ChunkedDecoder::new(limits());
        let mut body = Vec::new();
        let first = decoder.decode(b"5\r\nhelloX", &mut body);
        assert_eq!(first.as_ref().map_err(|e| e.status), Err(400));
        assert_eq!(decoder.decode(b"\r\n0\r\n\r\n", &mut body), first, "the same error again");
    }

    #[test]
    fn malformed_size_lines() {
        let cases: &[(&str, &[u8])] = &[
            ("leading space", b" 5\r\nhello\r\n0\r\n\r\n"),
            ("leading tab", b"\t5\r\nhello\r\n0\r\n\r\n"),
            ("plus sign", b"+5\r\nhello\r\n0\r\n\r\n"),
            ("minus sign", b"-5\r\nhello\r\n0\r\n\r\n"),
            ("leading underscore", b"_5\r\nhello\r\n0\r\n\r\n"),
            ("empty size", b"\r\nhello\r\n0\r\n\r\n"),
            ("empty size before an extension", b";a\r\nhello\r\n0\r\n\r\n"),
            ("0x prefix", b"0x5\r\nhello\r\n0\r\n\r\n"),
            ("underscore inside the digits", b"1_0\r\n0123456789abcdef\r\n0\r\n\r\n"),
            ("non-hex digit", b"5g\r\nhello\r\n0\r\n\r\n"),
            ("size overflows u64", b"FFFFFFFFFFFFFFFF0\r\nx\r\n0\r\n\r\n"),
            ("size overflows u64 by a lot", b"100000000000000000000\r\n"),
            ("space after the size, no extension", b"5 \r\nhello\r\n0\r\n\r\n"),
            ("tab after the size, no extension", b"5\t\r\nhello\r\n0\r\n\r\n"),
            ("space inside the digits", b"1 0\r\n0123456789abcdef\r\n0\r\n\r\n"),
            ("space after the last chunk's size", b"0 \r\n\r\n"),
            ("extension without a name", b"5;\r\nhello\r\n0\r\n\r\n"),
            ("extension value without a name", b"5;=b\r\nhello\r\n0\r\n\r\n"),
            ("extension with an empty value", b"5;a=\r\nhello\r\n0\r\n\r\n"),
            ("whitespace after an extension name", b"5;a \r\nhello\r\n0\r\n\r\n"),
            ("whitespace after an extension value", b"5;a=b \r\nhello\r\n0\r\n\r\n"),
            ("whitespace after a quoted value", b"5;a=\"b\" \r\nhello\r\n0\r\n\r\n"),
            ("two extension values", b"5;a=b c\r\nhello\r\n0\r\n\r\n"),
            ("two extension names", b"5;a b\r\nhello\r\n0\r\n\r\n"),
            ("quote in a name", b"5;a\"b\"\r\nhello\r\n0\r\n\r\n"),
            ("separator in a token value", b"5;a=b/c\r\nhello\r\n0\r\n\r\n"),
            ("text after a quoted value", b"5;a=\"b\"c\r\nhello\r\n0\r\n\r\n"),
            ("unterminated quoted value", b"5;a=\"b\r\nhello\r\n0\r\n\r\n"),
            ("control byte in a quoted value", b"5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n"),
            ("DEL in a quoted value", b"5;a=\"\x7f\"\r\nhello\r\n0\r\n\r\n"),
            ("control byte after a backslash", b"5;a=\"\\\x00\"\r\nhello\r\n0\r\n\r\n"),
            ("NUL after the size", b"5\x00\r\nhello\r\n0\r\n\r\n"),
            ("DEL in an extension name", b"5;a\x7f\r\nhello\r\n0\r\n\r\n"),
            ("vertical tab as whitespace", b"5\x0b;a\r\nhello\r\n0\r\n\r\n"),
            ("bare LF after the size", b"5\nhello\r\n0\r\n\r\n"),
            ("bare LF after an extension", b"5;a=b\nhello\r\n0\r\n\r\n"),
            ("bare LF after the last chunk", b"0\n\r\n"),
            ("CR without LF after the size", b"5\rhello\r\n0\r\n\r\n"),
            ("CR CR LF after the size", b"5\r\r\nhello\r\n0\r\n\r\n"),
        ];
        for (name, input) in cases {
            assert_eq!(status(input), 400, "{name}");
        }
        assert_eq!(refused(b"5_\r\n", limits()).reason, "chunk size: bad digit '_'");
        assert_eq!(refused(b"FFFFFFFFFFFFFFFF0\r\n", limits()).reason, "chunk size overflows");
        let huge = ChunkedLimits { max_body: usize::MAX, ..limits() };
        assert_eq!(
            refused(b"FFFFFFFFFFFFFFFF0\r\n", huge).status,
            400,
            "overflow is 400 whatever the body limit"
        );
    }

    #[test]
    fn malformed_data_and_line_ends() {
        let cases: &[(&str, &[u8])] = &[
            ("data longer than its size", b"5\r\nhello!\r\n0\r\n\r\n"),
            ("data longer than its size, zero-size line", b"3\r\nabc0\r\n\r\n"),
            ("bare LF after data", b"5\r\nhello\n0\r\n\r\n"),
            ("CR without LF after data", b"5\r\nhello\r0\r\n\r\n"),
            ("bare LF as the final line", b"0\r\n\n"),
            ("CR without LF as the final line", b"0\r\n\rX"),
            ("LF CR as the final line", b"0\r\n\n\r"),
        ];
        for (name, input) in cases {
            assert_eq!(status(input), 400, "{name}");
        }
    }

    #[test]
    fn malformed_trailers() {
        let cases: &[(&str, &[u8])] = &[
            ("obs-fold", b"0\r\nA: b\r\n c\r\n\r\n"),
            ("obs-fold with a tab", b"0\r\nA: b\r\n\tc\r\n\r\n"),
            ("first trailer starts with whitespace", b"0\r\n A: b\r\n\r\n"),
            ("no colon", b"0\r\nAb\r\n\r\n"),
            ("whitespace before the colon", b"0\r\nA : b\r\n\r\n"),
            ("empty field name", b"0\r\n: b\r\n\r\n"),
            ("bad field-name byte", b"0\r\nA(b: c\r\n\r\n"),
            ("NUL in a field value", b"0\r\nA: b\x00c\r\n\r\n"),
            ("DEL in a field value", b"0\r\nA: b\x7fc\r\n\r\n"),
            ("control byte in a field value", b"0\r\nA: \x1b[0m\r\n\r\n"),
            ("bare LF after a field line", b"0\r\nA: b\n\r\n"),
            ("bare LF in a field name", b"0\r\nA\n\r\n"),
            ("CR without LF after a field line", b"0\r\nA: b\rc\r\n\r\n"),
        ];
        for (name, input) in cases {
            assert_eq!(status(input), 400, "{name}");
        }
    }

    /// Splitting the input anywhere (in two, or into single bytes) changes nothing.
    #[test]
    fn any_split_gives_the_same_result() {
        let inputs: &[&[u8]] = &[
            b"5\r\nhello\r\n6;a=\"b\\\"c\" ; d\r\n world\r\n0\r\nT: v\r\nU:\r\n\r\nGET / HTTP/1.1\r\n",
            b"A\r\n0123456789\r\n1F\r\n0123456789abcdef0123456789abcde\r\n000\r\n\r\n",
            b"0\r\n\r\n0\r\n\r\n",
            b"5\r\nhello\r\n",
            b"5\r\nhello!\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"0x5\r\nhello\r\n",
            b"FFFFFFFFFFFFFFFF0\r\n",
            b"FFFFFFFF\r\n",
            b"200\r\n",
            b"0\r\nA: b\r\n c\r\n\r\n",
            b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n",
            b"5;a=\"unterminated\r\nhello\r\n",
            b"1\r\nx\r\n1\r\ny\r\n0\r\n\r",
        ];
        for input in inputs {
            let expected = feed([*input], limits());
            let name = input.escape_ascii().to_string();
            for cut in 0..=input.len() {
                let (a, b) = input.split_at(cut);
                assert_eq!(feed([a, b], limits()), expected, "{name} cut at {cut}");
            }
            assert_eq!(feed(input.chunks(1), limits()), expected, "{name} byte by byte");
        }
    }

    #[test]
    fn body_limit() {
        let exact = b"200\r\n".iter().chain(&[b'x'; 0x200]).chain(b"\r\n200\r\n").chain(&[b'y'; 0x200]);
        let mut exact: Vec<u8> = exact.copied().collect();
        let end = exact.len();
        exact.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(whole(&exact).0, Outcome::Done(exact.len()), "exactly max_body (1024)");

        let mut over = exact[..end].to_vec();
        over.extend_from_slice(b"\r\n1\r\nz\r\n0\r\n\r\n");
        let (outcome, body) = whole(&over);
        assert!(
            matches!(outcome, Outcome::Failed(ChunkError { status: 413, .. })),
            "one byte more: {outcome:?}"
        );
        assert_eq!(body.len(), 1024, "refused before copying any of the chunk");
        assert_eq!(status(b"401\r\n"), 413, "one chunk over the limit, refused at its size line");
        assert_eq!(status(b"FFFFFFFFFFFFFFFF\r\n"), 413, "a size that fits u64 but not the limit");
    }

    #[test]
    fn size_line_limit() {
        let line_limits = |max_line| ChunkedLimits { max_line, ..limits() };
        let line = b"5;name=\"value\"";
        let input = [line.as_slice(), b"\r\nhello\r\n0\r\n\r\n"].concat();
        assert_eq!(feed([input.as_slice()], line_limits(line.len())).0, Outcome::Done(input.len()), "exact");
        let error = refused(&input, line_limits(line.len() - 1));
        assert_eq!(error.status, 400, "one byte over");
        assert!(error.reason.contains("too long"), "{error:?}");
        let endless = [b"5;a=\"".as_slice(), &[b'x'; 100]].concat();
        assert_eq!(refused(&endless, limits()).status, 400, "an endless extension is cut off");
    }

    #[test]
    fn trailer_limits() {
        let count_limits = |max_trailers| ChunkedLimits { max_trailers, ..limits() };
        let two = b"0\r\nA: 1\r\nB: 2\r\n\r\n";
        assert_eq!(
            feed([two.as_slice()], count_limits(2)).0,
            Outcome::Done(two.len()),
            "exactly max_trailers"
        );
        assert_eq!(refused(two, count_limits(1)).status, 431, "one trailer more");
        assert_eq!(refused(b"0\r\nA: 1\r\n\r\n", count_limits(0)).status, 431, "no trailers allowed");

        let byte_limits = |max_trailer_bytes| ChunkedLimits { max_trailer_bytes, ..limits() };
        let lines = "A: 1\r\nB: 2\r\n".len();
        assert_eq!(
            feed([two.as_slice()], byte_limits(lines)).0,
            Outcome::Done(two.len()),
            "exact trailer bytes"
        );
        assert_eq!(refused(two, byte_limits(lines - 1)).status, 431, "one trailer byte more");
        assert_eq!(
            feed([b"0\r\n\r\n".as_slice()], byte_limits(0)).0,
            Outcome::Done(5),
            "the final CRLF is not a trailer byte"
        );
    }

    #[test]
    fn encodes_chunk_sizes_and_the_last_chunk() {
        let size = |len| {
            let mut out = Vec::new();
            push_chunk_size(&mut out, len);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(size(255), "ff\r\n");
        assert_eq!(size(1), "1\r\n");
        assert_eq!(size(0x10), "10\r\n");
        assert_eq!(size(usize::MAX), format!("{:x}\r\n", usize::MAX));

        let mut out = b"x".to_vec();
        push_last_chunk::<&str, &str>(&mut out, &[]);
        assert_eq!(out, b"x0\r\n\r\n");
        let mut out = Vec::new();
        push_last_chunk(&mut out, &[("Digest", "abc".to_string()), ("X-Count", "2".to_string())]);
        assert_eq!(out, b"0\r\nDigest: abc\r\nX-Count: 2\r\n\r\n");
        assert_eq!(feed([out.as_slice()], limits()), (Outcome::Done(out.len()), Vec::new(), 2));
    }

    #[test]
    fn encoded_bodies_decode_to_their_data() {
        // xorshift: repeatable without a rand dependency.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        for round in 0..200 {
            let mut data = Vec::new();
            let mut encoded = Vec::new();
            for _ in 0..next(6) {
                let chunk: Vec<u8> = (0..1 + next(100)).map(|_| next(256) as u8).collect();
                push_chunk_size(&mut encoded, chunk.len());
                encoded.extend_from_slice(&chunk);
                encoded.extend_from_slice(b"\r\n");
                data.extend_from_slice(&chunk);
            }
            let trailers: Vec<(String, String)> =
                (0..next(3)).map(|i| (format!("T{i}"), "v".repeat(i))).collect();
            push_last_chunk(&mut encoded, &trailers);
            let end = encoded.len();
            encoded.extend_from_slice(b"NEXT");
            let cut = next(encoded.len() + 1);
            let (a, b) = encoded.split_at(cut);
            assert_eq!(
                feed([a, b], ChunkedLimits { max_body: data.len(), ..limits() }),
                (Outcome::Done(end), data, trailers.len()),
                "round {round}, cut at {cut}"
            );
        }
    }
}
