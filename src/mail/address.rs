//! Envelope addresses: the `Path` grammar of RFC 5321 §4.1.2, extended for UTF-8 by
//! RFC 6531. Parsing keeps what relay control needs to see (source routes, quoted local
//! parts) instead of silently normalising it away.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const MAX_LOCAL_PART: usize = 64;
const MAX_DOMAIN: usize = 255;
const MAX_PATH: usize = 256;

/// `local@domain`, kept as the client wrote it. `domain` is empty only for the bare
/// `postmaster` recipient of RFC 5321 §4.5.1.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mailbox {
    pub local: String,
    pub domain: String,
}

impl Mailbox {
    pub fn new(local: impl Into<String>, domain: impl Into<String>) -> Self {
        Mailbox { local: local.into(), domain: domain.into() }
    }

    pub fn is_postmaster(&self) -> bool {
        self.local.eq_ignore_ascii_case("postmaster")
    }

    pub fn is_ascii(&self) -> bool {
        self.local.is_ascii() && self.domain.is_ascii()
    }

    /// `%` hacks, bang paths and quoted local parts holding an `@` ask the next server to
    /// relay once more; open-relay probes (nmap's smtp-open-relay) rely on them.
    pub fn has_relay_tricks(&self) -> bool {
        self.local.contains(['%', '!']) || (self.local.starts_with('"') && self.local.contains('@'))
    }

    /// Parses `local@domain` (or bare `postmaster`) as it appears in configs and plugin output.
    pub fn parse(text: &str) -> Result<Mailbox, AddressError> {
        match parse_path_body(text, PathRole::Forward)? {
            (Some(mailbox), false) => Ok(mailbox),
            (None, _) => Err(AddressError::Syntax),
            (Some(_), true) => Err(AddressError::Syntax),
        }
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.domain.is_empty() { f.write_str(&self.local) } else { write!(f, "{}@{}", self.local, self.domain) }
    }
}

/// Stored as its text form. Reading it back splits at the domain `@` without
/// re-validating: what was written was validated when it entered the envelope.
impl Serialize for Mailbox {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mailbox {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(match split_at_domain(&text) {
            Some(at) => Mailbox::new(&text[..at], &text[at + 1..]),
            None => Mailbox::new(text, ""),
        })
    }
}

/// What was parsed from a `MAIL FROM:` or `RCPT TO:` argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedPath<'a> {
    /// `None` is the null reverse path `<>`.
    pub mailbox: Option<Mailbox>,
    /// The client wrote an RFC 5321 source route (`<@relay:user@domain>`), which we
    /// ignore, as §4.1.1.3 allows; relay control refuses it from untrusted clients.
    pub source_route: bool,
    /// The ESMTP parameters after the path, unparsed.
    pub params: &'a str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathRole {
    Reverse,
    Forward,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressError {
    Syntax,
    TooLong,
    NullNotAllowed,
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressError::Syntax => "bad address syntax",
            AddressError::TooLong => "address too long",
            AddressError::NullNotAllowed => "null address not allowed here",
        })
    }
}

/// Parses the text after `MAIL FROM:` / `RCPT TO:`: a path, then parameters.
/// Spaces after the colon and a path without angle brackets are tolerated, as
/// deployed clients send both; everything inside the path is strict.
pub fn parse_path(arg: &str, role: PathRole) -> Result<ParsedPath<'_>, AddressError> {
    let arg = arg.trim_start_matches(' ');
    let (inner, rest) = if let Some(after) = arg.strip_prefix('<') {
        let end = find_closing_bracket(after).ok_or(AddressError::Syntax)?;
        (&after[..end], &after[end + 1..])
    } else {
        let end = arg.find(' ').unwrap_or(arg.len());
        (&arg[..end], &arg[end..])
    };
    if inner.len() + 2 > MAX_PATH {
        return Err(AddressError::TooLong);
    }
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Err(AddressError::Syntax);
    }
    let (mailbox, source_route) = parse_path_body(inner, role)?;
    Ok(ParsedPath { mailbox, source_route, params: rest.trim_start_matches(' ') })
}

/// The closing `>`, skipping over quoted strings so `<"a>b"@x>` parses.
fn find_closing_bracket(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut quoted = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'>' if !quoted => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn parse_path_body(inner: &str, role: PathRole) -> Result<(Option<Mailbox>, bool), AddressError> {
    if inner.is_empty() {
        return match role {
            PathRole::Reverse => Ok((None, false)),
            PathRole::Forward => Err(AddressError::NullNotAllowed),
        };
    }
    let (source_route, mailbox_text) = match inner.strip_prefix('@') {
        Some(_) => {
            let colon = inner.find(':').ok_or(AddressError::Syntax)?;
            let route = &inner[..colon];
            for hop in route.split(',') {
                let domain = hop.strip_prefix('@').ok_or(AddressError::Syntax)?;
                if !is_domain(domain) {
                    return Err(AddressError::Syntax);
                }
            }
            (true, &inner[colon + 1..])
        }
        None => (false, inner),
    };
    if role == PathRole::Forward && !source_route && mailbox_text.eq_ignore_ascii_case("postmaster") {
        return Ok((Some(Mailbox::new(mailbox_text, "")), false));
    }
    let at = split_at_domain(mailbox_text).ok_or(AddressError::Syntax)?;
    let (local, domain) = (&mailbox_text[..at], &mailbox_text[at + 1..]);
    if local.len() > MAX_LOCAL_PART || domain.len() > MAX_DOMAIN {
        return Err(AddressError::TooLong);
    }
    if !is_local_part(local) || !(is_domain(domain) || is_address_literal(domain)) {
        return Err(AddressError::Syntax);
    }
    Ok((Some(Mailbox::new(local, domain)), source_route))
}

/// The `@` between local part and domain: the last one outside a quoted string.
fn split_at_domain(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut quoted = false;
    let mut last = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'@' if !quoted => last = Some(i),
            _ => {}
        }
        i += 1;
    }
    last
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || (!c.is_ascii() && !c.is_control())
}

fn is_local_part(local: &str) -> bool {
    if let Some(body) = local.strip_prefix('"') {
        let Some(body) = body.strip_suffix('"') else { return false };
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(' '..='~') => {}
                    _ => return false,
                },
                '"' => return false,
                ' '..='~' => {}
                c if !c.is_ascii() && !c.is_control() => {}
                _ => return false,
            }
        }
        true
    } else {
        !local.is_empty() && local.split('.').all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
    }
}

/// A domain name (`sub-domain *("." sub-domain)`), with U-labels allowed for SMTPUTF8.
pub fn is_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= MAX_DOMAIN
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c.is_alphanumeric()))
        })
}

/// `[192.0.2.1]` or `[IPv6:2001:db8::1]`.
pub fn is_address_literal(text: &str) -> bool {
    parse_address_literal(text).is_some()
}

pub fn parse_address_literal(text: &str) -> Option<IpAddr> {
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    match inner.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => inner[5..].parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        _ => inner.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(arg: &str, role: PathRole) -> Result<Option<Mailbox>, AddressError> {
        parse_path(arg, role).map(|p| p.mailbox)
    }

    #[test]
    fn ordinary_paths() {
        let p = parse_path("<user@example.com> SIZE=100 BODY=8BITMIME", PathRole::Reverse).unwrap();
        assert_eq!(p.mailbox, Some(Mailbox::new("user", "example.com")));
        assert_eq!(p.params, "SIZE=100 BODY=8BITMIME");
        assert!(!p.source_route);
        assert_eq!(mailbox("<>", PathRole::Reverse), Ok(None));
        assert_eq!(mailbox("<>", PathRole::Forward), Err(AddressError::NullNotAllowed));
        assert_eq!(mailbox(" <a.b+c@[192.0.2.1]>", PathRole::Forward).unwrap().unwrap().domain, "[192.0.2.1]");
        assert!(mailbox("<a@[IPv6:2001:db8::1]>", PathRole::Forward).is_ok());
        assert_eq!(mailbox("user@example.com", PathRole::Forward).unwrap().unwrap().local, "user");
    }

    #[test]
    fn postmaster_without_domain_only_as_recipient() {
        assert_eq!(mailbox("<Postmaster>", PathRole::Forward).unwrap().unwrap(), Mailbox::new("Postmaster", ""));
        assert_eq!(mailbox("<postmaster>", PathRole::Reverse), Err(AddressError::Syntax));
    }

    #[test]
    fn malformed_paths() {
        for bad in [
            "<user@example.com",
            "<user>",
            "<@example.com>",
            "<user@>",
            "<us er@example.com>",
            "<user@exa mple.com>",
            "<user@-example.com>",
            "<a..b@example.com>",
            "<.a@example.com>",
            "<user@example.com.>",
            "<user@[300.1.1.1]>",
            "<user@example.com>junk",
            "<\"unterminated@example.com>",
            "<@relay.test,user@example.com>",
        ] {
            assert!(mailbox(bad, PathRole::Forward).is_err(), "{bad} parsed");
        }
        let long_local = format!("<{}@example.com>", "a".repeat(65));
        assert_eq!(mailbox(&long_local, PathRole::Forward), Err(AddressError::TooLong));
    }

    #[test]
    fn relay_tricks_are_visible() {
        let routed = parse_path("<@relay.test,@other.test:user@victim.test>", PathRole::Forward).unwrap();
        assert!(routed.source_route);
        assert_eq!(routed.mailbox, Some(Mailbox::new("user", "victim.test")));
        for tricky in
            ["<user%victim.test@example.com>", "<victim.test!user@example.com>", "<\"user@victim.test\"@example.com>"]
        {
            let m = mailbox(tricky, PathRole::Forward).unwrap().unwrap();
            assert!(m.has_relay_tricks(), "{tricky}");
            assert_eq!(m.domain, "example.com");
        }
        assert!(!Mailbox::new("plain.user", "example.com").has_relay_tricks());
    }

    #[test]
    fn utf8_addresses() {
        let m = mailbox("<用户@例子.测试>", PathRole::Forward).unwrap().unwrap();
        assert!(!m.is_ascii());
        assert_eq!(m.domain, "例子.测试");
    }

    #[test]
    fn quoted_local_parts() {
        let m = mailbox("<\"john doe\"@example.com>", PathRole::Forward).unwrap().unwrap();
        assert_eq!(m.local, "\"john doe\"");
        assert!(mailbox("<\"a\\\"b\"@example.com>", PathRole::Forward).is_ok());
        assert!(mailbox("<\"a>b\"@example.com>", PathRole::Forward).is_ok());
    }
}
