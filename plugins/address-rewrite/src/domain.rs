//! Domain patterns and address splitting.
//!
//! Patterns follow the server's `[relay] domains` syntax: `example.com` matches exactly
//! that domain, `*.example.com` matches its subdomains only. (Small and local on
//! purpose; a candidate for a shared `filter-util` crate.)

/// Splits `local@domain` at the last `@`; `None` for addresses without a domain
/// (`postmaster`, the null sender).
pub fn split_address(address: &str) -> Option<(&str, &str)> {
    let (local, domain) = address.rsplit_once('@')?;
    (!local.is_empty() && !domain.is_empty()).then_some((local, domain))
}

/// Lower-cases a domain and drops a trailing dot, for comparisons.
pub fn normalize_domain(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `name` looks like a domain name: dot-separated labels of letters, digits,
/// `-` and `_` (non-ASCII allowed for IDNs as written).
pub fn is_domain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty() && label.len() <= 63 && label.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        })
}

/// A map from domain patterns to values. Lookups prefer an exact entry, then the
/// longest matching `*.` entry, so the order of the configuration does not matter.
#[derive(Clone, Debug)]
pub struct DomainMap<T> {
    exact: Vec<(String, T)>,
    /// Suffixes with their leading dot (`.example.com`), longest first.
    subdomains: Vec<(String, T)>,
}

impl<T> Default for DomainMap<T> {
    fn default() -> Self {
        DomainMap { exact: Vec::new(), subdomains: Vec::new() }
    }
}

impl<T> DomainMap<T> {
    /// Adds `pattern`; returns false (and adds nothing) if it is not a valid pattern.
    pub fn insert(&mut self, pattern: &str, value: T) -> bool {
        let pattern = normalize_domain(pattern);
        if let Some(parent) = pattern.strip_prefix("*.") {
            if !is_domain(parent) {
                return false;
            }
            let suffix = format!(".{parent}");
            let at = self.subdomains.partition_point(|(s, _)| s.len() >= suffix.len());
            self.subdomains.insert(at, (suffix, value));
        } else {
            if !is_domain(&pattern) {
                return false;
            }
            self.exact.push((pattern, value));
        }
        true
    }

    /// The value of the most specific pattern matching `domain`.
    pub fn get(&self, domain: &str) -> Option<&T> {
        let domain = normalize_domain(domain);
        if let Some((_, v)) = self.exact.iter().find(|(d, _)| *d == domain) {
            return Some(v);
        }
        self.subdomains.iter().find(|(suffix, _)| domain.ends_with(suffix.as_str())).map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.subdomains.is_empty()
    }

    pub fn len(&self) -> usize {
        self.exact.len() + self.subdomains.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_last_at() {
        assert_eq!(split_address("user@example.com"), Some(("user", "example.com")));
        assert_eq!(split_address("\"a@b\"@example.com"), Some(("\"a@b\"", "example.com")));
        assert_eq!(split_address("postmaster"), None);
        assert_eq!(split_address(""), None);
        assert_eq!(split_address("@example.com"), None);
        assert_eq!(split_address("user@"), None);
    }

    #[test]
    fn exact_beats_wildcard_and_longest_wildcard_wins() {
        let mut map = DomainMap::default();
        assert!(map.insert("*.example.com", "wild"));
        assert!(map.insert("*.corp.example.com", "corp"));
        assert!(map.insert("Mail.Example.COM.", "exact"));
        assert_eq!(map.get("mail.example.com"), Some(&"exact"));
        assert_eq!(map.get("a.corp.example.com"), Some(&"corp"));
        assert_eq!(map.get("www.example.com"), Some(&"wild"));
        // `*.` means subdomains only.
        assert_eq!(map.get("example.com"), None);
        assert_eq!(map.get("badexample.com"), None);
        assert_eq!(map.len(), 3);
    }

    #[test]
    fn refuses_invalid_patterns() {
        let mut map = DomainMap::default();
        assert!(!map.insert("", 1));
        assert!(!map.insert("user@example.com", 1));
        assert!(!map.insert("*.", 1));
        assert!(!map.insert("a..b", 1));
        assert!(!map.insert("exa mple.com", 1));
        assert!(map.is_empty());
    }
}
