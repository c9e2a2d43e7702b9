//! Parsing replies from a remote server (RFC 5321 §4.2): a three-digit code, possibly
//! over several lines, with an optional RFC 3463 enhanced status code on the first line.

use std::borrow::Cow;

use super::{Reply, Status};

/// Longest reply line we accept, CRLF included. RFC 5321 allows 512; deployed servers
/// send longer ones, so we are lenient up to this.
pub const MAX_LINE: usize = 4096;
/// Most lines in one reply (an EHLO reply has a dozen or two).
pub const MAX_LINES: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("reply line too long")]
    LineTooLong,
    #[error("reply with too many lines")]
    TooManyLines,
    #[error("malformed reply line {0:?}")]
    Malformed(String),
}

/// Parses one complete reply at the start of `buf`. Returns the reply and the bytes
/// it took, `Ok(None)` when more input is needed.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
    let mut pos = 0;
    let mut code = 0u16;
    let mut enhanced = None;
    let mut text = String::new();
    for n in 0.. {
        if n >= MAX_LINES {
            return Err(ReplyError::TooManyLines);
        }
        let rest = &buf[pos..];
        let Some(lf) = memchr::memchr(b'\n', &rest[..rest.len().min(MAX_LINE)]) else {
            return if rest.len() >= MAX_LINE { Err(ReplyError::LineTooLong) } else { Ok(None) };
        };
        // Lenient about a bare LF ending; CRLF is what servers send.
        let line = &rest[..lf];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += lf + 1;
        let malformed = || ReplyError::Malformed(String::from_utf8_lossy(line).chars().take(100).collect());
        if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&line[0]) {
            return Err(malformed());
        }
        let line_code = u16::from(line[0] - b'0') * 100 + u16::from(line[1] - b'0') * 10 + u16::from(line[2] - b'0');
        let more = match line.get(3) {
            None | Some(b' ') => false,
            Some(b'-') => true,
            Some(_) => return Err(malformed()),
        };
        let body = String::from_utf8_lossy(line.get(4..).unwrap_or_default());
        if n == 0 {
            code = line_code;
            let (status, rest) = split_enhanced(&body, code);
            enhanced = status;
            text.push_str(rest);
        } else {
            if line_code != code {
                return Err(malformed());
            }
            text.push('\n');
            // Servers repeat the enhanced status on every line; keep the text only.
            let (_, rest) = split_enhanced(&body, code);
            text.push_str(rest);
        }
        if !more {
            break;
        }
    }
    Ok(Some((Reply { code, status: enhanced, text: Cow::Owned(text) }, pos)))
}

/// Splits `5.1.1 text` into the status and the text, when the status's class agrees
/// with the reply code (RFC 3463 §2).
fn split_enhanced(body: &str, code: u16) -> (Option<Status>, &str) {
    let (first, rest) = body.split_once(' ').unwrap_or((body, ""));
    match first.parse::<Status>() {
        Ok(status) if u16::from(status.class()) == code / 100 => (Some(status), rest),
        _ => (None, body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Reply {
        let (reply, used) = parse_reply(text.as_bytes()).unwrap().unwrap();
        assert_eq!(used, text.len());
        reply
    }

    #[test]
    fn single_and_multi_line_replies() {
        let r = parse("250 2.1.5 Ok\r\n");
        assert_eq!((r.code, r.status, &*r.text), (250, Some(Status(2, 1, 5)), "Ok"));
        assert_eq!(r.to_string(), "250 2.1.5 Ok");
        let r = parse("250-mx.test hello\r\n250-PIPELINING\r\n250 SIZE 1000\r\n");
        assert_eq!(r.lines().collect::<Vec<_>>(), ["mx.test hello", "PIPELINING", "SIZE 1000"]);
        let r = parse("550-5.1.1 no such\r\n550 5.1.1 user\r\n");
        assert_eq!(r.effective_status(), Status(5, 1, 1));
        assert_eq!(r.to_string(), "550 5.1.1 no such user");
        let r = parse("451 try later\r\n");
        assert_eq!((r.status, r.effective_status()), (None, Status(4, 0, 0)));
        // A status whose class disagrees with the code is text.
        assert_eq!(parse("250 5.1.1 odd\r\n").status, None);
        assert_eq!(parse("220\r\n").text, "");
    }

    #[test]
    fn incomplete_and_bad_replies() {
        assert_eq!(parse_reply(b"250-a\r\n250 b"), Ok(None));
        assert_eq!(parse_reply(b""), Ok(None));
        assert!(parse_reply(b"hello\r\n").is_err());
        assert!(parse_reply(b"250-a\r\n251 b\r\n").is_err());
        assert!(parse_reply(b"250x\r\n").is_err());
        assert!(parse_reply(b"650 no\r\n").is_err());
        assert_eq!(parse_reply(&vec![b'2'; MAX_LINE + 1]), Err(ReplyError::LineTooLong));
        let many = "250-x\r\n".repeat(MAX_LINES + 1);
        assert_eq!(parse_reply(many.as_bytes()), Err(ReplyError::TooManyLines));
        // Two replies back to back: one at a time.
        let (r, used) = parse_reply(b"250 a\r\n354 b\r\n").unwrap().unwrap();
        assert_eq!((r.code, used), (250, 7));
    }
}
