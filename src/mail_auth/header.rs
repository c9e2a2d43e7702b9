//! Our Authentication-Results field in, forged ones out (RFC 8601 §5): a field that
//! arrives carrying our authserv-id is removed, whoever wrote it; others stay.

/// The header section without the Authentication-Results fields that name
/// `authserv_id`; `None` when there is none (nothing to copy).
pub fn without_ours(section: &[u8], authserv_id: &str) -> Option<Vec<u8>> {
    let fields = fields(section);
    if !fields.iter().any(|field| is_ours(field, authserv_id)) {
        return None;
    }
    let mut kept = Vec::with_capacity(section.len());
    for field in fields.into_iter().filter(|field| !is_ours(field, authserv_id)) {
        kept.extend_from_slice(field);
    }
    Some(kept)
}

/// The fields of a header section, each with its continuation lines and line ends;
/// the blank line ending the section is a "field" of its own.
fn fields(section: &[u8]) -> Vec<&[u8]> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at < section.len() {
        let end = memchr::memchr(b'\n', &section[at..]).map_or(section.len(), |i| at + i + 1);
        let continues = matches!(section.get(end), Some(b' ' | b'\t'));
        let blank = section[at..end].iter().all(|b| matches!(b, b'\r' | b'\n'));
        if !continues || blank {
            fields.push(&section[start..end]);
            start = end;
        }
        at = end;
    }
    if start < section.len() {
        fields.push(&section[start..]);
    }
    fields
}

/// The field's name, as [`is_ours`] compares it (ASCII case aside).
pub const NAME: &[u8] = b"authentication-results";

/// Whether `field` (with its line ends) is an Authentication-Results field naming
/// `authserv_id`.
pub fn is_ours(field: &[u8], authserv_id: &str) -> bool {
    let Some(colon) = memchr::memchr(b':', field) else { return false };
    if !field[..colon].trim_ascii().eq_ignore_ascii_case(NAME) {
        return false;
    }
    let value = skip_comments(&field[colon + 1..]);
    let end = value.iter().position(|b| matches!(b, b';' | b'(' | b' ' | b'\t' | b'\r' | b'\n')).unwrap_or(value.len());
    value[..end].eq_ignore_ascii_case(authserv_id.as_bytes())
}

/// Leading white space and comments (RFC 5322 CFWS), nested comments included.
fn skip_comments(mut value: &[u8]) -> &[u8] {
    loop {
        value = value.trim_ascii_start();
        if value.first() != Some(&b'(') {
            return value;
        }
        let mut depth = 0usize;
        let mut end = value.len();
        for (i, b) in value.iter().enumerate() {
            match b {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        value = &value[end..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fields_with_our_id_go() {
        let section = b"Authentication-Results: mx.example.test; spf=pass\r\n\
            Subject: hi\r\n\
            authentication-results:  (forged)\r\n MX.Example.Test;\r\n\tdkim=pass\r\n\
            Authentication-Results: other.example.net; dkim=fail\r\n\
            Authentication-Results: mx.example.test.evil; dkim=pass\r\n\
            \r\n";
        let kept = without_ours(section, "mx.example.test").unwrap();
        assert_eq!(
            String::from_utf8(kept).unwrap(),
            "Subject: hi\r\nAuthentication-Results: other.example.net; dkim=fail\r\n\
             Authentication-Results: mx.example.test.evil; dkim=pass\r\n\r\n"
        );
        assert_eq!(without_ours(b"Subject: hi\r\n\r\n", "mx.example.test"), None);
    }
}
