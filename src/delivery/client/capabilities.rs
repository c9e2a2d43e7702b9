//! What a server offers in its EHLO reply.

use super::reply::Reply;

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
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else { continue };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => caps.pipelining = true,
                "SIZE" => caps.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "8BITMIME" => caps.eight_bit_mime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "STARTTLS" => caps.starttls = true,
                "DSN" => caps.dsn = true,
                "AUTH" => {
                    for mechanism in words.by_ref() {
                        caps.auth_plain |= mechanism.eq_ignore_ascii_case("PLAIN");
                        caps.auth_login |= mechanism.eq_ignore_ascii_case("LOGIN");
                    }
                }
                "ENHANCEDSTATUSCODES" => caps.enhanced_status_codes = true,
                _ => {}
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
    use crate::delivery::client::reply::parse_reply;

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
