//! Domain names and addresses: FQDN syntax, the domain of an address, domain allow-lists.

/// Lower-case, without one trailing dot: the form names are compared in.
pub fn normalize(name: &str) -> String {
    let name = name.trim();
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Whether one label is acceptable in a host name: 1 to 63 bytes of letters, digits,
/// hyphens and underscores, not starting or ending with a hyphen. Underscores are not
/// in RFC 1123 but are common in real HELO names (Windows hosts), so they pass; non-ASCII
/// letters pass too, since SMTPUTF8 (RFC 6531) allows U-labels.
fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || (!c.is_ascii() && c.is_alphanumeric()))
}

/// Whether `name` is a fully qualified host name: at least two valid labels, at most 253
/// bytes, and a top-level label that is not all digits (so a bare IP address such as
/// `192.0.2.1` is not a name). One trailing dot is allowed.
pub fn is_fqdn(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 || !name.contains('.') {
        return false;
    }
    name.split('.').all(valid_label)
        && name.rsplit('.').next().is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()))
}

/// The domain of `local@domain`, lower-cased; `None` for the null sender, `postmaster`
/// and anything without a domain.
pub fn domain_of(address: &str) -> Option<String> {
    let (_, domain) = address.rsplit_once('@')?;
    let domain = normalize(domain);
    if domain.is_empty() { None } else { Some(domain) }
}

/// Domains to match: `example.com` matches exactly that domain; `.example.com` or
/// `*.example.com` matches its subdomains (not the domain itself: list both for both).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainList {
    exact: Vec<String>,
    suffixes: Vec<String>,
}

impl DomainList {
    /// Parses every pattern; empty and malformed ones are left out and described.
    pub fn parse_all<'a>(items: impl IntoIterator<Item = &'a str>) -> (DomainList, Vec<String>) {
        let mut list = DomainList::default();
        let mut errors = Vec::new();
        for item in items {
            let pattern = normalize(item);
            let (suffix, bare) = match pattern.strip_prefix("*.").or_else(|| pattern.strip_prefix('.')) {
                Some(rest) => (true, rest),
                None => (false, pattern.as_str()),
            };
            // A single label (`localhost`, `com`) is allowed: admins list such things.
            let valid = !bare.is_empty() && bare.len() <= 253 && bare.split('.').all(valid_label);
            if !valid {
                errors.push(format!("{item:?} is not a domain (such as \"example.com\" or \".example.com\")"));
            } else if suffix {
                list.suffixes.push(format!(".{bare}"));
            } else {
                list.exact.push(bare.to_string());
            }
        }
        (list, errors)
    }

    /// Whether `domain` (any case, trailing dot or not) is listed.
    pub fn matches(&self, domain: &str) -> bool {
        let domain = normalize(domain);
        self.exact.contains(&domain) || self.suffixes.iter().any(|s| domain.ends_with(s.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.suffixes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fqdn_syntax() {
        for good in [
            "mail.example.com",
            "mx1.example.co.uk",
            "a.b",
            "MAIL.Example.COM",
            "mail.example.com.",
            "win_host.corp.example",
            "xn--bcher-kva.example",
            "bücher.example",
            "1.2.3.example",
        ] {
            assert!(is_fqdn(good), "{good:?} is a FQDN");
        }
        let long_label = format!("{}.example", "a".repeat(64));
        let long_name = format!("{}example", "abcdefghi.".repeat(26));
        for bad in [
            "localhost",
            "",
            ".",
            "example.",
            ".example.com",
            "mail..example.com",
            "-mail.example.com",
            "mail-.example.com",
            "192.0.2.1",
            "[192.0.2.1]",
            "mail example.com",
            "mail@example.com",
            "exa$mple.com",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert!(!is_fqdn(bad), "{bad:?} is not a FQDN");
        }
    }

    #[test]
    fn domains_of_addresses() {
        assert_eq!(domain_of("Alice@Example.ORG"), Some("example.org".into()));
        assert_eq!(domain_of("\"odd@local\"@example.org"), Some("example.org".into()));
        assert_eq!(domain_of(""), None);
        assert_eq!(domain_of("postmaster"), None);
        assert_eq!(domain_of("user@"), None);
        assert_eq!(normalize(" Mail.Example.COM. "), "mail.example.com");
    }

    #[test]
    fn domain_lists() {
        let (list, errors) =
            DomainList::parse_all(["example.com", ".lists.example.org", "*.partner.test", "bad domain", ""]);
        assert_eq!(errors.len(), 2);
        assert!(list.matches("example.com"));
        assert!(list.matches("EXAMPLE.COM."));
        assert!(!list.matches("sub.example.com"), "exact entries do not cover subdomains");
        assert!(list.matches("a.lists.example.org"));
        assert!(!list.matches("lists.example.org"), "suffix entries do not cover the apex");
        assert!(!list.matches("evillists.example.org"));
        assert!(list.matches("mx.partner.test"));
        assert!(!list.matches("notexample.com"));
        assert!(!list.is_empty() && DomainList::default().is_empty());
    }
}
