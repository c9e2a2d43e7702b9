//! One SMTP reply (RFC 5321 §4.2): a three-digit code, an RFC 3463 enhanced status
//! and text that may span several lines.

use std::borrow::Cow;
use std::fmt;

use super::Status;

/// A reply, as the server sends it or as a next hop sent it. Text may hold several
/// lines separated by `\n`; on the wire each is its own reply line, all carrying the
/// code and the enhanced status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Every reply Sluice sends has one; a next hop may send none.
    pub status: Option<Status>,
    pub text: Cow<'static, str>,
}

impl Reply {
    pub const fn new(code: u16, status: Status, text: &'static str) -> Reply {
        Reply { code, status: Some(status), text: Cow::Borrowed(text) }
    }

    pub fn owned(code: u16, status: Status, text: String) -> Reply {
        Reply { code, status: Some(status), text: Cow::Owned(text) }
    }

    pub fn is_error(&self) -> bool {
        self.code >= 400
    }
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The enhanced status, or the one the basic code implies (RFC 3463 §3), as a DSN
    /// reports it.
    pub fn effective_status(&self) -> Status {
        self.status.unwrap_or(Status::of_code(self.code))
    }

    /// The text's lines; after an EHLO, every line past the first is a keyword.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.text.split('\n')
    }

    /// Appends the wire form of the reply to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut lines = self.text.split('\n').peekable();
        while let Some(line) = lines.next() {
            let separator = if lines.peek().is_some() { '-' } else { ' ' };
            // Writing to a Vec cannot fail.
            let _ = match self.status {
                Some(status) => {
                    std::io::Write::write_fmt(out, format_args!("{}{separator}{status} {line}\r\n", self.code))
                }
                None => std::io::Write::write_fmt(out, format_args!("{}{separator}{line}\r\n", self.code)),
            };
        }
    }
}

impl fmt::Display for Reply {
    /// `550 5.1.1 text`, with multi-line text joined by spaces: how DSNs and logs show it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(status) = self.status {
            write!(f, " {status}")?;
        }
        for (i, line) in self.text.split('\n').enumerate() {
            if i == 0 && line.is_empty() {
                continue;
            }
            write!(f, " {line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_replies_repeat_the_codes() {
        let reply = Reply::new(214, Status(2, 0, 0), "Commands: EHLO\nSee RFC 5321");
        let mut out = Vec::new();
        reply.write_to(&mut out);
        assert_eq!(out, b"214-2.0.0 Commands: EHLO\r\n214 2.0.0 See RFC 5321\r\n");
        assert_eq!(reply.to_string(), "214 2.0.0 Commands: EHLO See RFC 5321");
    }

    #[test]
    fn a_reply_without_enhanced_status() {
        let reply = Reply { code: 451, status: None, text: "try later".into() };
        let mut out = Vec::new();
        reply.write_to(&mut out);
        assert_eq!(out, b"451 try later\r\n");
        assert_eq!(reply.to_string(), "451 try later");
        assert_eq!(reply.effective_status(), Status(4, 0, 0));
        assert!(reply.is_transient() && reply.is_error() && !reply.is_permanent());
    }
}
