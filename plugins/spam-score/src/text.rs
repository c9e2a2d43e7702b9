//! Text helpers: HTML to text, URLs, shouting, and the domain of an address header.

/// The visible text of an HTML document: tags dropped (with the content of `script`
/// and `style`), common entities decoded, whitespace collapsed. Good enough for
/// pattern rules; not a renderer.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        push_decoded(&mut out, &rest[..lt]);
        let after = &rest[lt..];
        let Some(gt) = after.find('>') else {
            rest = "";
            break;
        };
        let tag = after[1..gt].trim_start_matches('/').to_ascii_lowercase();
        rest = &after[gt + 1..];
        for hidden in ["script", "style"] {
            if tag.starts_with(hidden) && !after[1..].starts_with('/') {
                let close = format!("</{hidden}");
                rest = find_ascii_ci(rest, &close).map_or("", |i| &rest[i..]);
            }
        }
        out.push(' ');
    }
    push_decoded(&mut out, rest);
    collapse_whitespace(&out)
}

fn find_ascii_ci(haystack: &str, needle: &str) -> Option<usize> {
    haystack.as_bytes().windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn push_decoded(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        match after
            .find(';')
            .filter(|&semi| semi <= 10)
            .and_then(|semi| decode_entity(&after[1..semi]).map(|c| (c, semi)))
        {
            Some((c, semi)) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
}

fn decode_entity(name: &str) -> Option<char> {
    let numeric = |digits: &str, radix| u32::from_str_radix(digits, radix).ok().and_then(char::from_u32);
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => match name.strip_prefix('#') {
            Some(hex) if hex.starts_with(['x', 'X']) => numeric(&hex[1..], 16),
            Some(dec) => numeric(dec, 10),
            None => None,
        },
    }
}

fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The `http`/`https` URLs in `text`, lower-cased for counting distinct ones.
pub fn urls(text: &str) -> impl Iterator<Item = String> + '_ {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i + 8 <= bytes.len() {
            // Skip to the next `h` or `H`: a byte-by-byte scheme comparison at every
            // position made this the costliest check on long bodies (memchr scans a
            // word, or a SIMD vector, at a time).
            match memchr::memchr2(b'h', b'H', &bytes[i..=bytes.len() - 8]) {
                Some(offset) => i += offset,
                None => break,
            }
            let start = i;
            let scheme = if bytes[i..].len() >= 8 && bytes[i..i + 8].eq_ignore_ascii_case(b"https://") {
                8
            } else if bytes[i..i + 7].eq_ignore_ascii_case(b"http://") {
                7
            } else {
                i += 1;
                continue;
            };
            let mut end = start + scheme;
            while end < bytes.len() && !is_url_end(bytes[end]) {
                end += 1;
            }
            i = end.max(start + 1);
            if end > start + scheme {
                let url = String::from_utf8_lossy(&bytes[start..end]);
                return Some(url.trim_end_matches(['.', ',', ';', ':', '!', '?']).to_ascii_lowercase());
            }
        }
        None
    })
}

fn is_url_end(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b'<' | b'>' | b'(' | b')' | b'[' | b']' | b'{' | b'}')
}

/// Whether a subject shouts: at least `min_letters` cased letters, none lower-case.
/// Reply and forward prefixes are ignored.
pub fn is_all_caps(subject: &str, min_letters: usize) -> bool {
    let mut rest = subject.trim();
    loop {
        let lower = rest.get(..4).map(str::to_ascii_lowercase);
        match lower.as_deref() {
            Some("re: " | "fw: ") => rest = rest[4..].trim_start(),
            Some("fwd:") => rest = rest[4..].trim_start(),
            _ => break,
        }
    }
    let (mut upper, mut lower) = (0usize, 0usize);
    for c in rest.chars() {
        if c.is_uppercase() {
            upper += 1;
        } else if c.is_lowercase() {
            lower += 1;
        }
    }
    lower == 0 && upper >= min_letters
}

/// The domain of the first address in an address header value, lower-cased.
pub fn address_domain(value: &str) -> Option<String> {
    let address = match (value.find('<'), value.rfind('>')) {
        (Some(open), Some(close)) if open < close => &value[open + 1..close],
        _ => value.split([' ', ',', '\t']).find(|w| w.contains('@'))?,
    };
    let (_, domain) = address.trim().rsplit_once('@')?;
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    (!domain.is_empty()).then_some(domain)
}

/// Whether two domains belong together: equal, or one a subdomain of the other.
pub fn related_domains(a: &str, b: &str) -> bool {
    a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_text() {
        let html = "<html><head><style>p { color: red }</style><title>T</title></head>\
                    <body><p>Cheap&nbsp;<b>pills</b> &amp; more &#8364;5 &#x41;</p><script>var x = '<p>';</script>end</body></html>";
        assert_eq!(html_to_text(html), "T Cheap pills & more €5 A end");
        assert_eq!(html_to_text("a < b and &unknown; &"), "a");
        assert_eq!(html_to_text("plain"), "plain");
    }

    #[test]
    fn finds_distinct_urls() {
        let text = "Visit https://Example.com/a, or http://example.com/b. <a href=\"https://example.com/a\">here</a> http:// nothing";
        let mut found: Vec<String> = urls(text).collect();
        found.sort();
        found.dedup();
        assert_eq!(found, vec!["http://example.com/b", "https://example.com/a"]);
        assert_eq!(urls("no links at all").count(), 0);
        assert_eq!(urls("short").count(), 0);
    }

    #[test]
    fn detects_shouting() {
        assert!(is_all_caps("FREE MONEY WAITING FOR YOU", 8));
        assert!(is_all_caps("RE: FWD: ACT NOW!!! 100% FREE", 8));
        assert!(is_all_caps("ÜBERWEISUNG BESTÄTIGT", 8));
        assert!(!is_all_caps("Free money waiting", 8));
        assert!(!is_all_caps("RE: OK", 8), "too short to shout");
        assert!(!is_all_caps("Meeting at 10:00 about the ACME deal", 8));
        assert!(!is_all_caps("", 8));
    }

    #[test]
    fn address_domains() {
        assert_eq!(address_domain("Jane <jane@Example.COM>").as_deref(), Some("example.com"));
        assert_eq!(address_domain("jane@example.org (Jane)").as_deref(), Some("example.org"));
        assert_eq!(address_domain("undisclosed-recipients:;"), None);
        assert!(related_domains("mail.example.com", "example.com"));
        assert!(related_domains("example.com", "example.com"));
        assert!(!related_domains("example.com", "badexample.com"));
    }
}
