//! The PROXY protocol header parser (v1 text, v2 binary), fed what a load balancer
//! (or anyone who can reach a `proxy_protocol` listener) sends first.
//!
//! Invariants:
//! - nothing panics;
//! - `Ok(Some((_, n)))` has 0 < n <= input length, at most 107 bytes for v1 and
//!   16 + 1024 for v2, and the same header parses from the first n bytes alone (what
//!   follows the header is never looked at);
//! - `Ok(None)` (wait for more) only while the input is shorter than the longest
//!   header, so a client cannot make us buffer without bound;
//! - shorter prefixes of a complete header ask for more bytes instead of failing or
//!   giving another answer.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::smtp::proxy::parse;

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(Some((header, n))) => {
            assert!(n > 0 && n <= data.len(), "header length {n} for {} bytes of input", data.len());
            let v2 = data.starts_with(b"\r\n\r\n\0\r\nQUIT\n");
            assert!(n <= if v2 { 16 + 1024 } else { 107 }, "header of {n} bytes accepted");
            assert_eq!(parse(&data[..n]), Ok(Some((header.clone(), n))), "the header alone parses differently");
            let mut prefixes: Vec<usize> = (0..n.min(24)).collect();
            prefixes.extend([n / 2, n - 1]);
            for k in prefixes {
                assert_eq!(parse(&data[..k]), Ok(None), "a {k}-byte prefix of a {n}-byte header does not ask for more");
            }
        }
        Ok(None) => {
            let v2 = data.len() >= 6 && !data.starts_with(b"PROXY ");
            let longest = if v2 { 16 + 1024 } else { 107 };
            assert!(data.len() < longest, "waiting for more after {} bytes", data.len());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
