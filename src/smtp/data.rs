//! The message-content decoder for DATA and BDAT.
//!
//! Only `<CRLF>.<CRLF>` ends DATA. A lone CR or LF is a line break for dot-unstuffing
//! and is stored as CRLF (or refused, by config), but it never helps to form the end
//! of data: `\n.\n`, `\r.\r`, `\n.\r\n`, `\r\n.\r\r\n`, `\r\n.\n` and friends are
//! content. This closes the SMTP smuggling hole (a receiver and the next hop
//! disagreeing about where a message ends), because whatever we store is re-encoded
//! with strict CRLFs and dot-stuffing on the way out.

use memchr::memchr2;

/// Whether dot-stuffing and the end-of-data marker apply (DATA) or content is
/// length-delimited (BDAT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    DotTerminated,
    Chunked,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a line; `after_crlf` is whether the previous line ended with a
    /// real CRLF (or this is the first line), which is required for the end marker.
    LineStart { after_crlf: bool },
    /// A leading dot was seen (and dropped, per RFC 5321 §4.5.2).
    Dot { after_crlf: bool },
    /// `<CRLF>.<CR>`: the end marker if an LF follows.
    DotCr,
    /// Inside a line.
    Mid,
    /// A CR was seen; an LF makes it a line end, anything else a bare CR.
    Cr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// All input was consumed; the message continues.
    NeedMore,
    /// The end marker was found; `consumed` bytes of the input belonged to the message.
    Done { consumed: usize },
}

/// Streaming decoder: feed it input in chunks of any size, it appends the decoded
/// content (CRLF line ends, dots unstuffed) to the output.
#[derive(Debug)]
pub struct DataDecoder {
    framing: Framing,
    state: State,
    line_len: usize,
    max_line_len: usize,
    /// A CR or LF outside a CRLF pair was seen.
    pub saw_bare_newline: bool,
    /// A line was longer than the limit.
    pub saw_long_line: bool,
}

impl DataDecoder {
    /// `max_line_length` counts the CRLF, as RFC 5321 does.
    pub fn new(framing: Framing, max_line_length: usize) -> Self {
        DataDecoder {
            framing,
            state: State::LineStart { after_crlf: true },
            line_len: 0,
            max_line_len: max_line_length.saturating_sub(2),
            saw_bare_newline: false,
            saw_long_line: false,
        }
    }

    fn count(&mut self, n: usize) {
        self.line_len += n;
        if self.line_len > self.max_line_len {
            self.saw_long_line = true;
        }
    }

    fn end_line(&mut self, out: &mut Vec<u8>, after_crlf: bool) {
        out.extend_from_slice(b"\r\n");
        if !after_crlf {
            self.saw_bare_newline = true;
        }
        self.line_len = 0;
        self.state = State::LineStart { after_crlf };
    }

    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Progress {
        let dots = self.framing == Framing::DotTerminated;
        let mut i = 0;
        while i < input.len() {
            let byte = input[i];
            match self.state {
                State::Mid => match memchr2(b'\r', b'\n', &input[i..]) {
                    Some(0) => {
                        if byte == b'\r' {
                            self.state = State::Cr;
                        } else {
                            self.end_line(out, false);
                        }
                        i += 1;
                    }
                    found => {
                        let run = found.unwrap_or(input.len() - i);
                        out.extend_from_slice(&input[i..i + run]);
                        self.count(run);
                        i += run;
                    }
                },
                State::LineStart { after_crlf } => {
                    match byte {
                        b'.' if dots => {
                            self.count(1);
                            self.state = State::Dot { after_crlf };
                        }
                        b'\r' => self.state = State::Cr,
                        b'\n' => self.end_line(out, false),
                        _ => {
                            out.push(byte);
                            self.count(1);
                            self.state = State::Mid;
                        }
                    }
                    i += 1;
                }
                State::Dot { after_crlf } => {
                    match byte {
                        b'\r' if after_crlf => self.state = State::DotCr,
                        b'\r' => self.state = State::Cr,
                        b'\n' => self.end_line(out, false),
                        _ => {
                            out.push(byte);
                            self.count(1);
                            self.state = State::Mid;
                        }
                    }
                    i += 1;
                }
                State::DotCr => {
                    if byte == b'\n' {
                        return Progress::Done { consumed: i + 1 };
                    }
                    // `.` then a bare CR: the dot line ends here; look at this byte again.
                    self.end_line(out, false);
                }
                State::Cr => {
                    if byte == b'\n' {
                        self.end_line(out, true);
                        i += 1;
                    } else {
                        // A bare CR ends the line; look at this byte again.
                        self.end_line(out, false);
                    }
                }
            }
        }
        Progress::NeedMore
    }

    /// Ends chunked content (BDAT LAST): a CR still waiting for its LF was bare.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if matches!(self.state, State::Cr | State::DotCr) {
            self.end_line(out, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in one piece and byte by byte; both must agree.
    fn decode(input: &[u8]) -> (Vec<u8>, Option<usize>, bool) {
        let mut whole = DataDecoder::new(Framing::DotTerminated, 1000);
        let mut out = Vec::new();
        let end = match whole.feed(input, &mut out) {
            Progress::Done { consumed } => Some(consumed),
            Progress::NeedMore => None,
        };
        let mut bytewise = DataDecoder::new(Framing::DotTerminated, 1000);
        let mut out2 = Vec::new();
        let mut end2 = None;
        for (i, b) in input.iter().enumerate() {
            if let Progress::Done { .. } = bytewise.feed(std::slice::from_ref(b), &mut out2) {
                end2 = Some(i + 1);
                break;
            }
        }
        assert_eq!(out, out2, "chunking changed the output for {input:?}");
        assert_eq!(end, end2, "chunking changed the end for {input:?}");
        assert_eq!(whole.saw_bare_newline, bytewise.saw_bare_newline);
        (out, end, whole.saw_bare_newline)
    }

    #[test]
    fn only_crlf_dot_crlf_ends_data() {
        let (out, end, bare) = decode(b"Subject: hi\r\n\r\nbody\r\n.\r\nMAIL FROM:<x@y>\r\n");
        assert_eq!(out, b"Subject: hi\r\n\r\nbody\r\n");
        assert_eq!(end, Some(24));
        assert!(!bare);
    }

    #[test]
    fn empty_message() {
        assert_eq!(decode(b".\r\n"), (Vec::new(), Some(3), false));
    }

    #[test]
    fn smuggling_variants_never_end_the_message() {
        for (variant, _name) in [
            (&b"\n.\n"[..], "LF.LF"),
            (b"\r.\r", "CR.CR"),
            (b"\n.\r\n", "LF.CRLF"),
            (b"\r\n.\n", "CRLF.LF"),
            (b"\r\n.\r", "CRLF.CR"),
            (b"\r.\r\n", "CR.CRLF"),
            (b"\r\n.\r\r\n", "CRLF.CRCRLF"),
            (b"\r\n\x00.\r\n", "CRLF NUL.CRLF"),
            (b"\r\n.\x00\r\n", "CRLF.NUL CRLF"),
            (b"\r\n \r\n.\r \n", "CRLF.CR SP LF"),
            (b"\n\n.\n\n", "LFLF.LFLF"),
        ] {
            let mut input = b"Subject: smuggle\r\n\r\nfirst".to_vec();
            input.extend_from_slice(variant);
            input.extend_from_slice(
                b"MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nsmuggled\r\n",
            );
            let (out, end, _) = decode(&input);
            assert_eq!(end, None, "{_name} ended the message");
            assert!(out.windows(8).any(|w| w == b"smuggled"), "{_name} lost content");
            // Whatever was stored is CRLF-clean: every CR is followed by LF and vice versa.
            for (i, &b) in out.iter().enumerate() {
                if b == b'\r' {
                    assert_eq!(out.get(i + 1), Some(&b'\n'), "{_name}: bare CR stored");
                }
                if b == b'\n' {
                    assert_eq!(out.get(i.wrapping_sub(1)), Some(&b'\r'), "{_name}: bare LF stored");
                }
            }
            // With the real terminator added, it ends exactly there.
            input.extend_from_slice(b"\r\n.\r\n");
            let (_, end, _) = decode(&input);
            assert_eq!(end, Some(input.len()), "{_name}");
        }
    }

    #[test]
    fn bare_newlines_are_normalised_and_reported() {
        let input = b"a\nb\rc\r\n.\r\n";
        let (out, end, bare) = decode(input);
        assert_eq!(out, b"a\r\nb\r\nc\r\n");
        assert_eq!(end, Some(input.len()));
        assert!(bare);
    }

    #[test]
    fn dot_unstuffing() {
        let (out, _, bare) = decode(b"..leading\r\n...\r\n.x\r\nmid.dle\r\n..\r\n.\r\n");
        assert_eq!(out, b".leading\r\n..\r\nx\r\nmid.dle\r\n.\r\n");
        assert!(!bare);
    }

    #[test]
    fn dot_lines_after_bare_newlines_are_unstuffed_not_ended() {
        let input = b"x\n.\r\ny\r\n.\r\n";
        let (out, end, _) = decode(input);
        assert_eq!(out, b"x\r\n\r\ny\r\n");
        assert_eq!(end, Some(input.len()));
    }

    #[test]
    fn line_length_limit() {
        let mut d = DataDecoder::new(Framing::DotTerminated, 1000);
        let mut out = Vec::new();
        let mut line = vec![b'a'; 998];
        line.extend_from_slice(b"\r\n");
        d.feed(&line, &mut out);
        assert!(!d.saw_long_line);
        let mut line = vec![b'a'; 999];
        line.extend_from_slice(b"\r\n");
        d.feed(&line, &mut out);
        assert!(d.saw_long_line);
        // A stuffed dot counts: it was on the wire.
        let mut d = DataDecoder::new(Framing::DotTerminated, 1000);
        let mut line = vec![b'.'; 999];
        line.extend_from_slice(b"\r\n");
        d.feed(&line, &mut out);
        assert!(d.saw_long_line);
    }

    #[test]
    fn chunked_content_keeps_dots_and_normalises_across_chunks() {
        let mut d = DataDecoder::new(Framing::Chunked, 1000);
        let mut out = Vec::new();
        assert_eq!(d.feed(b".\r\nline\r", &mut out), Progress::NeedMore);
        assert_eq!(d.feed(b"\n.\r\nlast\r", &mut out), Progress::NeedMore);
        d.finish(&mut out);
        assert_eq!(out, b".\r\nline\r\n.\r\nlast\r\n");
        assert!(d.saw_bare_newline);
    }
}
