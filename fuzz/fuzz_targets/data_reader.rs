//! The DATA/BDAT content decoder: end of data, dot-unstuffing, bare CR/LF handling and
//! the line-length flag, against a small reference model.
//!
//! Input layout (so that seed files are a 4-byte prefix followed by a raw message):
//!
//! ```text
//! byte 0      bit 0: framing (0 = DATA, dot-terminated; 1 = BDAT, chunked)
//! bytes 1..3  max_line_length, little-endian, taken modulo 2048
//! byte 3      seed of the chunk boundaries
//! bytes 4..   the bytes the client sent
//! ```
//!
//! Invariants:
//! - feeding the input whole, byte by byte, or in pseudo-random chunks gives the same
//!   output, end position and flags;
//! - the output has no bare CR or LF;
//! - DATA ends exactly at the first `<CRLF>.<CRLF>` (or `.<CRLF>` at the very start),
//!   as a reference model that works on the raw bytes finds it; BDAT content never ends;
//! - output, `saw_long_line` and `saw_bare_newline` equal the reference model's.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::smtp::data::{DataDecoder, Framing, Progress};

#[derive(Debug, PartialEq, Eq)]
struct Decoded {
    out: Vec<u8>,
    end: Option<usize>,
    long_line: bool,
    bare_newline: bool,
}

/// Feeds `input` in the given chunk sizes (the last chunk takes the rest).
fn decode(input: &[u8], framing: Framing, max_line_length: usize, mut sizes: impl FnMut() -> usize) -> Decoded {
    let mut decoder = DataDecoder::new(framing, max_line_length);
    let mut out = Vec::new();
    let mut pos = 0;
    let mut end = None;
    while pos < input.len() {
        let size = sizes().clamp(1, input.len() - pos);
        match decoder.feed(&input[pos..pos + size], &mut out) {
            Progress::NeedMore => pos += size,
            Progress::Done { consumed } => {
                assert!(consumed >= 1 && consumed <= size, "consumed {consumed} of a {size}-byte chunk");
                end = Some(pos + consumed);
                break;
            }
        }
    }
    if framing == Framing::Chunked {
        decoder.finish(&mut out);
    }
    Decoded { out, end, long_line: decoder.saw_long_line, bare_newline: decoder.saw_bare_newline }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Break {
    Crlf,
    Bare,
    /// A CR at the very end of the input: whether it is bare is not known yet.
    Pending,
    /// The input ends inside the line.
    None,
}

/// The input cut into lines at CRLF, at a CR not followed by LF and at an LF not
/// preceded by CR.
fn lines(input: &[u8]) -> Vec<(&[u8], Break)> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'\r' if i + 1 == input.len() => {
                lines.push((&input[start..i], Break::Pending));
                return lines;
            }
            b'\r' if input[i + 1] == b'\n' => {
                lines.push((&input[start..i], Break::Crlf));
                i += 2;
                start = i;
            }
            b'\r' | b'\n' => {
                lines.push((&input[start..i], Break::Bare));
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < input.len() {
        lines.push((&input[start..], Break::None));
    }
    lines
}

/// The obviously correct version.
fn reference(input: &[u8], framing: Framing, max_line_length: usize) -> Decoded {
    let dots = framing == Framing::DotTerminated;
    let max_line = max_line_length.saturating_sub(2);
    // The first `<CRLF>.<CRLF>`, the CRLF before the data counting as a line end.
    let end = if !dots {
        None
    } else if input.starts_with(b".\r\n") {
        Some(3)
    } else {
        input.windows(5).position(|w| w == b"\r\n.\r\n").map(|at| at + 5)
    };
    let content = match end {
        Some(end) => &input[..end - 3],
        None => input,
    };
    let mut decoded = Decoded { out: Vec::new(), end, long_line: false, bare_newline: false };
    for (line, brk) in lines(content) {
        // Raw bytes on the wire, a stuffed dot included.
        if line.len() > max_line {
            decoded.long_line = true;
        }
        let text = if dots && line.first() == Some(&b'.') { &line[1..] } else { line };
        decoded.out.extend_from_slice(text);
        match brk {
            Break::Crlf => decoded.out.extend_from_slice(b"\r\n"),
            Break::Bare => {
                decoded.out.extend_from_slice(b"\r\n");
                decoded.bare_newline = true;
            }
            // BDAT LAST settles it: the CR was bare.
            Break::Pending if !dots => {
                decoded.out.extend_from_slice(b"\r\n");
                decoded.bare_newline = true;
            }
            Break::Pending | Break::None => {}
        }
    }
    // The terminating `.` line is a line too.
    if end.is_some() && 1 > max_line {
        decoded.long_line = true;
    }
    decoded
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let framing = if data[0] & 1 == 0 { Framing::DotTerminated } else { Framing::Chunked };
    let max_line_length = usize::from(u16::from_le_bytes([data[1], data[2]]) % 2048);
    let mut seed = u64::from(data[3]) | 0x9e37_79b9_7f4a_7c00;
    let input = &data[4..];

    let whole = decode(input, framing, max_line_length, || usize::MAX);
    let bytewise = decode(input, framing, max_line_length, || 1);
    let chunked = decode(input, framing, max_line_length, || {
        // xorshift64: chunks of 1 to 16 bytes, so that boundaries fall everywhere.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 16) as usize + 1
    });
    assert_eq!(whole, bytewise, "feeding byte by byte changed the result");
    assert_eq!(whole, chunked, "feeding in chunks changed the result");

    for (i, &b) in whole.out.iter().enumerate() {
        if b == b'\r' {
            assert_eq!(whole.out.get(i + 1), Some(&b'\n'), "bare CR in the output at {i}");
        }
        if b == b'\n' {
            assert!(i > 0 && whole.out[i - 1] == b'\r', "bare LF in the output at {i}");
        }
    }
    match whole.end {
        Some(end) => {
            assert_eq!(framing, Framing::DotTerminated, "BDAT content ended");
            let consumed = &input[..end];
            assert!(consumed.ends_with(b".\r\n"), "ended without .CRLF");
            assert!(end == 3 || consumed.ends_with(b"\r\n.\r\n"), "ended at {end} without CRLF.CRLF");
        }
        None => {}
    }
    let expected = reference(input, framing, max_line_length);
    assert_eq!(whole.end, expected.end, "end of data differs from the reference");
    assert_eq!(whole.out, expected.out, "output differs from the reference");
    assert_eq!(whole.long_line, expected.long_line, "saw_long_line differs from the reference");
    assert_eq!(whole.bare_newline, expected.bare_newline, "saw_bare_newline differs from the reference");
});
