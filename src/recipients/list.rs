//! The recipient list: one address or `@domain` (every address there) per line,
//! `#` starting a comment. Domains compare without regard to case; local parts as
//! written (RFC 5321 §2.4).

use std::collections::HashSet;
use std::path::Path;

use crate::config::ConfigError;
use crate::mail::Mailbox;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecipientList {
    /// `local@domain`, domain lowercased.
    addresses: HashSet<String>,
    /// Catch-all domains, lowercased.
    domains: HashSet<String>,
}

impl RecipientList {
    pub fn load(path: &Path) -> Result<RecipientList, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::without_position(path, format!("cannot read the recipient list: {e}")))?;
        RecipientList::parse(&text).map_err(|(line, message)| ConfigError {
            file: path.to_path_buf(),
            line,
            column: 1,
            message,
        })
    }

    /// Parses list text; an error names its 1-based line.
    pub fn parse(text: &str) -> Result<RecipientList, (usize, String)> {
        let mut list = RecipientList::default();
        for (index, raw) in text.lines().enumerate() {
            let entry = strip_comment(raw).trim();
            if entry.is_empty() {
                continue;
            }
            let bad = |why: &str| (index + 1, format!("{why}: {entry:?}"));
            if let Some(domain) = entry.strip_prefix('@') {
                if !crate::mail::address::is_domain(domain) {
                    return Err(bad("not a domain"));
                }
                list.domains.insert(domain.to_ascii_lowercase());
                continue;
            }
            let mailbox = Mailbox::parse(entry).map_err(|_| bad("not an address or @domain"))?;
            if mailbox.domain.is_empty() {
                return Err(bad("an address needs a domain"));
            }
            list.addresses.insert(key(&mailbox));
        }
        Ok(list)
    }

    pub fn contains(&self, recipient: &Mailbox) -> bool {
        self.domains.contains(&recipient.domain.to_ascii_lowercase()) || self.addresses.contains(&key(recipient))
    }

    pub fn len(&self) -> usize {
        self.addresses.len() + self.domains.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `local@domain` with the domain lowercased: how the list and the cache key an address.
pub fn key(mailbox: &Mailbox) -> String {
    format!("{}@{}", mailbox.local, mailbox.domain.to_ascii_lowercase())
}

/// A `#` at the start of a line or after white space starts a comment (a `#` inside
/// an address, which RFC 5322 allows, does not).
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let at = (0..bytes.len()).find(|&i| bytes[i] == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()));
    at.map_or(line, |i| &line[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(text: &str) -> Mailbox {
        Mailbox::parse(text).unwrap()
    }

    #[test]
    fn addresses_catch_alls_and_comments() {
        let list = RecipientList::parse(
            "# the mailstore's users\n\nalice@example.com\n  bob@Example.COM   # trailing comment\n@sales.example.com\nodd#name@example.com\n",
        )
        .unwrap();
        assert_eq!(list.len(), 4);
        assert!(list.contains(&mailbox("alice@example.com")));
        assert!(list.contains(&mailbox("alice@EXAMPLE.com")), "domains compare without case");
        assert!(list.contains(&mailbox("bob@example.com")));
        assert!(list.contains(&mailbox("odd#name@example.com")));
        assert!(list.contains(&mailbox("anyone@Sales.Example.com")), "catch-all");
        assert!(!list.contains(&mailbox("Alice@example.com")), "local parts are compared as written");
        assert!(!list.contains(&mailbox("carol@example.com")));
        assert!(!list.contains(&mailbox("anyone@sub.sales.example.com")));
    }

    #[test]
    fn a_malformed_line_is_named() {
        assert_eq!(RecipientList::parse("a@example.com\nnot an address\n").unwrap_err().0, 2);
        assert_eq!(RecipientList::parse("\n\n@bad..domain\n").unwrap_err().0, 3);
        assert_eq!(RecipientList::parse("postmaster\n").unwrap_err().0, 1);
        let error = RecipientList::parse("a@b.example\n<x@example.com>\n").unwrap_err();
        assert_eq!(error.0, 2);
        assert!(error.1.contains("<x@example.com>"), "{}", error.1);
    }

    #[test]
    fn load_reports_file_and_line() {
        let dir = std::env::temp_dir().join(format!("sluice-list-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("recipients.txt");
        std::fs::write(&path, "ok@example.com\nbad line\n").unwrap();
        let error = RecipientList::load(&path).unwrap_err();
        assert!(error.to_string().starts_with(&format!("{}:2:", path.display())), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
