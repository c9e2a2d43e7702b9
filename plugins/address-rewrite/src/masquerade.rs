//! Sender masquerading: `user@host.internal.example` becomes `user@example.com`, in
//! the envelope and optionally in the `From:` header.

use crate::config::Config;
use crate::domain::split_address;

/// The masqueraded form of `address`, if it changes.
pub fn masquerade(config: &Config, address: &str) -> Option<String> {
    let (local, domain) = split_address(address)?;
    if config.masquerade_exceptions.contains(&local.to_ascii_lowercase()) {
        return None;
    }
    let target = config.masquerade.get(domain)?;
    if target.eq_ignore_ascii_case(domain) {
        return None;
    }
    Some(format!("{local}@{target}"))
}

/// Rewrites every address in an address-list header value (such as `From:`) with
/// `rewrite`, leaving display names, comments and layout untouched. Returns `None` if
/// nothing changed.
///
/// Addresses in angle brackets are rewritten wherever they are; without any, each
/// comma-separated bare `addr-spec` is. Quoted strings and comments are skipped, so a
/// display name such as `"user@host" <x@y>` is never mistaken for an address.
pub fn rewrite_header_addresses(value: &str, rewrite: impl Fn(&str) -> Option<String>) -> Option<String> {
    let spans = address_spans(value);
    let mut out = String::with_capacity(value.len() + 16);
    let mut last = 0;
    let mut changed = false;
    for (start, end) in spans {
        if let Some(new) = rewrite(&value[start..end]) {
            out.push_str(&value[last..start]);
            out.push_str(&new);
            last = end;
            changed = true;
        }
    }
    out.push_str(&value[last..]);
    changed.then_some(out)
}

/// Byte ranges of the addresses in an address-list header value.
fn address_spans(value: &str) -> Vec<(usize, usize)> {
    let bytes = value.as_bytes();
    let mut angle = Vec::new();
    // Bare tokens: (start, end) of whitespace-separated words outside quotes/comments.
    let mut words: Vec<(usize, usize)> = Vec::new();
    let mut word_start: Option<usize> = None;
    let (mut in_quote, mut comment_depth, mut open_angle) = (false, 0u32, None);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quote {
            match b {
                b'\\' => i += 1,
                b'"' => in_quote = false,
                _ => {}
            }
        } else if comment_depth > 0 {
            match b {
                b'\\' => i += 1,
                b'(' => comment_depth += 1,
                b')' => comment_depth -= 1,
                _ => {}
            }
        } else {
            let ends_word = matches!(b, b' ' | b'\t' | b',' | b'(' | b'"' | b'<' | b'>' | b';' | b':');
            if ends_word {
                if let Some(s) = word_start.take() {
                    words.push((s, i));
                }
            } else if word_start.is_none() {
                word_start = Some(i);
            }
            match b {
                b'"' => in_quote = true,
                b'(' => comment_depth = 1,
                b'<' => open_angle = Some(i + 1),
                b'>' => {
                    if let Some(s) = open_angle.take() {
                        angle.push(trim_span(value, s, i));
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    if let Some(s) = word_start {
        words.push((s, bytes.len()));
    }
    if !angle.is_empty() {
        return angle;
    }
    words.into_iter().filter(|&(s, e)| value[s..e].contains('@')).collect()
}

fn trim_span(value: &str, start: usize, end: usize) -> (usize, usize) {
    let inner = &value[start..end];
    let lead = inner.len() - inner.trim_start().len();
    let trail = inner.len() - inner.trim_end().len();
    (start + lead, end - trail.min(inner.len() - lead))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::config;

    fn cfg() -> Config {
        config(
            r#"
            masquerade = { "host.internal.example" = "example.com", "*.corp.example" = "example.com" }
            masquerade_exceptions = ["root", "MAILER-DAEMON"]
            "#,
        )
    }

    #[test]
    fn masquerades_matching_domains_only() {
        let c = cfg();
        assert_eq!(masquerade(&c, "user@host.internal.example").as_deref(), Some("user@example.com"));
        assert_eq!(masquerade(&c, "User@WS1.Corp.Example").as_deref(), Some("User@example.com"));
        assert_eq!(masquerade(&c, "user@example.com"), None);
        assert_eq!(masquerade(&c, "user@corp.example"), None);
        assert_eq!(masquerade(&c, "user@other.example"), None);
        assert_eq!(masquerade(&c, ""), None, "the null sender stays null");
        assert_eq!(masquerade(&c, "postmaster"), None);
    }

    #[test]
    fn exceptions_keep_their_host() {
        let c = cfg();
        assert_eq!(masquerade(&c, "root@host.internal.example"), None);
        assert_eq!(masquerade(&c, "mailer-daemon@ws1.corp.example"), None);
    }

    fn rewrite(value: &str) -> Option<String> {
        let c = cfg();
        rewrite_header_addresses(value, |a| masquerade(&c, a))
    }

    #[test]
    fn rewrites_angle_addresses_and_keeps_names() {
        assert_eq!(rewrite("Jane Doe <jane@host.internal.example>").as_deref(), Some("Jane Doe <jane@example.com>"));
        assert_eq!(
            rewrite("\"Doe, Jane (ops)\" <jane@ws1.corp.example>, Bob <bob@elsewhere.example>").as_deref(),
            Some("\"Doe, Jane (ops)\" <jane@example.com>, Bob <bob@elsewhere.example>")
        );
        assert_eq!(rewrite("< jane@host.internal.example >").as_deref(), Some("< jane@example.com >"));
    }

    #[test]
    fn quoted_names_and_comments_are_not_addresses() {
        assert_eq!(
            rewrite("\"jane@host.internal.example\" <jane@host.internal.example>").as_deref(),
            Some("\"jane@host.internal.example\" <jane@example.com>")
        );
        assert_eq!(
            rewrite("jane@host.internal.example (jane@host.internal.example)").as_deref(),
            Some("jane@example.com (jane@host.internal.example)")
        );
    }

    #[test]
    fn rewrites_bare_address_lists() {
        assert_eq!(
            rewrite("a@host.internal.example, b@x.corp.example,c@other.example").as_deref(),
            Some("a@example.com, b@example.com,c@other.example")
        );
    }

    #[test]
    fn unchanged_values_give_none() {
        assert_eq!(rewrite("Jane <jane@example.com>"), None);
        assert_eq!(rewrite("undisclosed-recipients:;"), None);
        assert_eq!(rewrite(""), None);
        assert_eq!(rewrite("\"unterminated <jane@host.internal.example>"), None);
    }

    #[test]
    fn non_ascii_display_names_survive() {
        assert_eq!(
            rewrite("Jörg Müller <joerg@host.internal.example>").as_deref(),
            Some("Jörg Müller <joerg@example.com>")
        );
    }
}
