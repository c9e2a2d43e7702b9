//! The config loader: TOML parsing, the custom value parsers (sizes, durations,
//! networks, domain patterns, next hops, listeners) and validation.
//!
//! Two modes, chosen by the first byte:
//! - anything but `~`: the whole input, as UTF-8 (lossily), is the config text;
//! - `~`: the example config (`examples/sluice.toml`) with a splice: bytes 1..3 give the
//!   offset (little-endian, modulo its length), byte 3 how many bytes to cut there, and
//!   the rest is inserted in their place. This keeps most of a valid config around the
//!   mutation, so validation is reached far more often than from random text.
//!
//! Invariants:
//! - nothing panics;
//! - errors display as `fuzz.toml:LINE:COL: message` or `fuzz.toml: message`, on one
//!   line, with a non-empty message, and LINE:COL inside the text.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sluice::config::{Config, ListenTls};

const EXAMPLE: &str = include_str!("../../examples/sluice.toml");

fn splice(data: &[u8]) -> Option<String> {
    if data.len() < 4 {
        return None;
    }
    let mut at = usize::from(u16::from_le_bytes([data[1], data[2]])) % (EXAMPLE.len() + 1);
    while !EXAMPLE.is_char_boundary(at) {
        at -= 1;
    }
    let mut cut_end = (at + usize::from(data[3])).min(EXAMPLE.len());
    while !EXAMPLE.is_char_boundary(cut_end) {
        cut_end -= 1;
    }
    let insert = String::from_utf8_lossy(&data[4..]);
    Some(format!("{}{}{}", &EXAMPLE[..at], insert, &EXAMPLE[cut_end..]))
}

fn check(text: &str) {
    let file = Path::new("fuzz.toml");
    match Config::parse(file, text) {
        Ok(config) => {
            assert!(!config.server.listen.get_ref().is_empty(), "a config without listeners accepted");
            assert!(
                config.tls.is_some() || config.server.listen.get_ref().iter().all(|l| l.tls != ListenTls::Implicit),
                "implicit TLS accepted without [tls]"
            );
            let mut names = std::collections::HashSet::new();
            for route in &config.routes {
                assert!(names.insert(route.name.get_ref().clone()), "route name used twice");
                assert!(route.next_hop.is_some() != route.uses_mx(), "route needs exactly one of next_hop and mx");
            }
        }
        Err(error) => {
            let shown = error.to_string();
            assert!(!error.message.is_empty(), "empty error message: {shown:?}");
            assert!(!shown.contains('\n') && !shown.contains('\r'), "error is not one line: {shown:?}");
            if error.line == 0 {
                assert_eq!(error.column, 0, "a column without a line: {shown:?}");
                assert_eq!(shown, format!("fuzz.toml: {}", error.message));
            } else {
                let prefix = format!("fuzz.toml:{}:{}: ", error.line, error.column);
                assert!(shown.starts_with(&prefix), "{shown:?} does not start with {prefix:?}");
                assert!(error.column >= 1, "column 0 on line {}: {shown:?}", error.line);
                let lines: Vec<&str> = text.split('\n').collect();
                assert!(
                    error.line <= lines.len(),
                    "line {} past the end ({} lines): {shown:?}",
                    error.line,
                    lines.len()
                );
                let line_chars = lines[error.line - 1].chars().count();
                assert!(
                    error.column <= line_chars + 1,
                    "column {} past the end of line {} ({line_chars} characters): {shown:?}",
                    error.column,
                    error.line
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.first() == Some(&b'~') {
        if let Some(text) = splice(data) {
            check(&text);
        }
    } else {
        check(&String::from_utf8_lossy(data));
    }
});
