//! The RESP request parser of `examples/kv` (compiled from its source file,
//! not a copy). Properties: it never panics; a complete command is reported
//! only once all of it has arrived (every shorter prefix is `Incomplete`);
//! argument ranges lie inside the command; parsing the rest after a command
//! continues exactly where it ended.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../examples/kv/resp.rs"]
mod resp;

use resp::{Parsed, parse};

fuzz_target!(|data: &[u8]| {
    let mut at = 0;
    while at < data.len() {
        let rest = &data[at..];
        match parse(rest) {
            Parsed::Incomplete | Parsed::Error(_) => break,
            Parsed::Command { args, len } => {
                assert!(len > 0 && len <= rest.len(), "length {len} of {}", rest.len());
                for range in &args {
                    assert!(range.start <= range.end && range.end <= len);
                }
                for cut in 0..len {
                    assert_eq!(parse(&rest[..cut]), Parsed::Incomplete, "prefix of {cut} bytes");
                }
                at += len;
            }
        }
    }
});
