//! What a server offers in its EHLO reply.

use crate::wire::{Extension, Reply};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// EHLO was accepted (false after falling back to HELO: no extensions at all).
    pub esmtp: bool,
    pub pipelining: bool,
    /// `SIZE n`: the largest message taken; `Some(0)` means no fixed limit.
    pub size: Option<u64>,
    pub eight_bit_mime: bool,
    pub smtputf8: bool,
    pub starttls: bool,
    pub dsn: bool,
    pub enhanced_status_codes: bool,
    /// SASL mechanisms offered with `AUTH` that we can use.
    pub auth_plain: bool,
    pub auth_login: bool,
}

impl Capabilities {
    pub fn from_ehlo(reply: &Reply) -> Capabilities {
        let mut caps = Capabilities { esmtp: true, ..Capabilities::default() };
        // The first line is the server's name and greeting, not a keyword.
        for line in reply.lines().skip(1) {
            let Some((extension, mut params)) = Extension::parse_line(line) else { continue };
            match extension {
                Extension::Pipelining => caps.pipelining = true,
                Extension::Size => caps.size = Some(params.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                Extension::EightBitMime => caps.eight_bit_mime = true,
                Extension::SmtpUtf8 => caps.smtputf8 = true,
                Extension::StartTls => caps.starttls = true,
                Extension::Dsn => caps.dsn = true,
                Extension::Auth => {
                    for mechanism in params {
                        caps.auth_plain |= mechanism.eq_ignore_ascii_case("PLAIN");
                        caps.auth_login |= mechanism.eq_ignore_ascii_case("LOGIN");
                    }
                }
                Extension::EnhancedStatusCodes => caps.enhanced_status_codes = true,
                Extension::Chunking | Extension::Help => {}
            }
        }
        caps
    }

    /// The message is larger than the server's declared limit.
    pub fn too_small_for(&self, size: u64) -> bool {
        matches!(self.size, Some(limit) if limit > 0 && size > limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse_reply;

    #[test]
    fn ehlo_keywords() {
        let text =
            "250-mx.test Hello\r\n250-pipelining\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 DSN\r\n";
        let (reply, _) = parse_reply(text.as_bytes()).unwrap().unwrap();
        let caps = Capabilities::from_ehlo(&reply);
        assert!(caps.pipelining && caps.eight_bit_mime && caps.starttls && caps.dsn);
        assert!(!caps.smtputf8);
        assert!(caps.too_small_for(1001));
        assert!(!caps.too_small_for(1000));
        let (reply, _) = parse_reply(b"250-mx\r\n250 SIZE\r\n").unwrap().unwrap();
        assert!(!Capabilities::from_ehlo(&reply).too_small_for(u64::MAX));
    }
}
