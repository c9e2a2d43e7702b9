//! Message content on the wire (RFC 5321 §4.5.2): every line ends in CRLF, a line
//! starting with `.` gets a second one, and `.` alone on a line ends the data. Lone CRs
//! and LFs become CRLF, so no other server can read a different end of message into
//! what we send (SMTP smuggling).

/// Appends `content`, encoded, to `out`. `at_line_start` carries whether the previous
/// chunk ended a line (start with `true`); chunks may split anywhere, even inside CRLF.
pub struct DataEncoder {
    at_line_start: bool,
    /// The previous chunk ended in CR, whose LF may start the next one.
    pending_cr: bool,
}

impl Default for DataEncoder {
    fn default() -> Self {
        DataEncoder { at_line_start: true, pending_cr: false }
    }
}

impl DataEncoder {
    pub fn encode(&mut self, mut content: &[u8], out: &mut Vec<u8>) {
        if self.pending_cr {
            self.pending_cr = false;
            out.extend_from_slice(b"\r\n");
            self.at_line_start = true;
            if content.first() == Some(&b'\n') {
                content = &content[1..];
            }
        }
        while !content.is_empty() {
            if self.at_line_start && content[0] == b'.' {
                out.push(b'.');
            }
            match memchr::memchr2(b'\r', b'\n', content) {
                None => {
                    out.extend_from_slice(content);
                    self.at_line_start = false;
                    return;
                }
                Some(i) => {
                    out.extend_from_slice(&content[..i]);
                    let skip = match (content[i], content.get(i + 1)) {
                        (b'\r', Some(b'\n')) => 2,
                        (b'\r', None) => {
                            // Might be half of a CRLF split across chunks.
                            self.pending_cr = true;
                            return;
                        }
                        _ => 1,
                    };
                    out.extend_from_slice(b"\r\n");
                    self.at_line_start = true;
                    content = &content[i + skip..];
                }
            }
        }
    }

    /// Ends the content: the last line's CRLF if it had none, then `.` CRLF.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.pending_cr {
            self.pending_cr = false;
            out.extend_from_slice(b"\r\n");
            self.at_line_start = true;
        }
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        self.at_line_start = true;
    }
}

/// Content needs 8BITMIME to go out unchanged.
pub fn has_8bit(content: &[u8]) -> bool {
    content.iter().any(|&b| b >= 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_chunks(chunks: &[&[u8]]) -> Vec<u8> {
        let mut encoder = DataEncoder::default();
        let mut out = Vec::new();
        for chunk in chunks {
            encoder.encode(chunk, &mut out);
        }
        encoder.finish(&mut out);
        out
    }

    #[test]
    fn dot_stuffing_and_termination() {
        assert_eq!(encode_chunks(&[b"a\r\n.b\r\n..\r\n.\r\n"]), b"a\r\n..b\r\n...\r\n..\r\n.\r\n");
        assert_eq!(encode_chunks(&[b".first"]), b"..first\r\n.\r\n");
        assert_eq!(encode_chunks(&[b""]), b".\r\n");
        assert_eq!(encode_chunks(&[b"no newline"]), b"no newline\r\n.\r\n");
    }

    #[test]
    fn bare_newlines_become_crlf_so_nothing_smuggles() {
        assert_eq!(encode_chunks(&[b"a\n.\nb\r.\rc\r\n"]), b"a\r\n..\r\nb\r\n..\r\nc\r\n.\r\n");
        assert_eq!(encode_chunks(&[b"x\r\n.\r\r\n"]), b"x\r\n..\r\n\r\n.\r\n");
    }

    #[test]
    fn chunks_may_split_anywhere() {
        let whole: &[u8] = b"line\r\n.dot\r\n\r\n..\r\nend\r\r\nx";
        let expected = encode_chunks(&[whole]);
        for split in 0..=whole.len() {
            let (a, b) = whole.split_at(split);
            assert_eq!(encode_chunks(&[a, b]), expected, "split at {split}");
        }
    }
}
