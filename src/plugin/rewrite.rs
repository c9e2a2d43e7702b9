//! Applying plugins' header changes to a header section.

use std::borrow::Cow;

use super::output::{HeaderEdit, Invalid};

/// RFC 5322 §2.1.1: lines SHOULD be at most 78 characters and MUST be at most 998.
const FOLD_AT: usize = 78;
const MAX_LINE: usize = 998;

struct Field<'a> {
    name: Cow<'a, str>,
    /// The whole field, name and folded lines, CRLFs included.
    raw: Cow<'a, [u8]>,
}

impl Field<'_> {
    fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// Splits a header section (with or without its terminating blank line) into fields.
/// A stray continuation line before the first field is kept as a field of its own.
fn fields(section: &[u8]) -> Vec<Field<'_>> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    while pos < section.len() {
        let end = memchr::memchr(b'\n', &section[pos..]).map_or(section.len(), |i| pos + i + 1);
        let line = &section[pos..end];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation && pos > start {
            fields.push(parsed(&section[start..pos]));
            start = pos;
        }
        pos = end;
    }
    if pos > start {
        fields.push(parsed(&section[start..pos]));
    }
    fields
}

fn parsed(raw: &[u8]) -> Field<'_> {
    let colon = memchr::memchr(b':', raw).unwrap_or(0);
    Field { name: String::from_utf8_lossy(raw[..colon].trim_ascii()), raw: Cow::Borrowed(raw) }
}

/// RFC 2047 encoded words (UTF-8, base64) for a non-ASCII value, so the header
/// section stays 7-bit whatever the message's transport.
fn encode_words(value: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut words = Vec::new();
    let mut chunk_start = 0;
    // 39 bytes of input make 52 of base64: a word is 64 characters, under the 75 of
    // RFC 2047 and short enough to share a line with the field name.
    while chunk_start < value.len() {
        let mut end = (chunk_start + 39).min(value.len());
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        let bytes = &value.as_bytes()[chunk_start..end];
        let mut encoded = String::with_capacity(64);
        for group in bytes.chunks(3) {
            let n = group.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..4 {
                if i <= group.len() {
                    encoded.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    encoded.push('=');
                }
            }
        }
        words.push(format!("=?utf-8?b?{encoded}?="));
        chunk_start = end;
    }
    words.join(" ")
}

/// `Name: value`, folded at spaces so that lines stay short.
fn render(name: &str, value: &str) -> Result<Field<'static>, Invalid> {
    let encoded;
    let value = if value.is_ascii() {
        value
    } else {
        encoded = encode_words(value);
        &encoded
    };
    let mut out = Vec::with_capacity(name.len() + value.len() + 8);
    out.extend_from_slice(name.as_bytes());
    out.push(b':');
    let mut line_len = name.len() + 1;
    for word in value.split(' ') {
        // Never fold before a word of whitespace only (empty in a run of spaces or after
        // a trailing one, or tabs): the continuation line would then be whitespace only,
        // which RFC 5322 §3.2.2 forbids and some parsers take for the end of the section.
        let blank = word.bytes().all(|b| b == b'\t');
        if !blank && line_len + 1 + word.len() > FOLD_AT && line_len > name.len() + 1 {
            out.extend_from_slice(b"\r\n\t");
            line_len = 1;
        } else {
            out.push(b' ');
            line_len += 1;
        }
        out.extend_from_slice(word.as_bytes());
        line_len += word.len();
        if line_len > MAX_LINE {
            return Err(Invalid(format!("header {name} has a word too long for one mail line")));
        }
    }
    out.extend_from_slice(b"\r\n");
    Ok(Field { name: Cow::Owned(name.to_string()), raw: Cow::Owned(out) })
}

/// Applies `edits` in order: `Add` appends at the end, `Set` replaces the first field
/// with that name and removes the others (or appends), `Remove` removes them all.
/// Returns the new section, terminated by a blank line.
pub fn apply_header_edits(section: &[u8], edits: &[HeaderEdit]) -> Result<Vec<u8>, Invalid> {
    let mut fields = fields(section);
    for edit in edits {
        match edit {
            HeaderEdit::Add(name, value) => fields.push(render(name, value)?),
            HeaderEdit::Set(name, value) => {
                let new = render(name, value)?;
                match fields.iter().position(|f| f.is(name)) {
                    Some(at) => {
                        fields[at] = new;
                        let mut index = 0;
                        fields.retain(|f| {
                            let keep = index == at || !f.is(name);
                            index += 1;
                            keep
                        });
                    }
                    None => fields.push(new),
                }
            }
            HeaderEdit::Remove(name) => fields.retain(|f| !f.is(name)),
        }
    }
    let mut out = Vec::with_capacity(section.len() + 256);
    for field in &fields {
        out.extend_from_slice(&field.raw);
        if !field.raw.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(section: &str, edits: &[HeaderEdit]) -> String {
        String::from_utf8(apply_header_edits(section.as_bytes(), edits).unwrap()).unwrap()
    }

    const SECTION: &str = "From: a@example.org\r\nSubject: hi\r\n there\r\nX-Old: 1\r\nx-old: 2\r\n\r\n";

    #[test]
    fn add_set_remove() {
        let add = HeaderEdit::Add("X-Spam-Score".into(), "3.5".into());
        assert_eq!(apply(SECTION, &[add]), format!("{}X-Spam-Score: 3.5\r\n\r\n", &SECTION[..SECTION.len() - 2]));
        let set = HeaderEdit::Set("X-OLD".into(), "new".into());
        assert_eq!(apply(SECTION, &[set]), "From: a@example.org\r\nSubject: hi\r\n there\r\nX-OLD: new\r\n\r\n");
        let set_new = HeaderEdit::Set("Subject".into(), "[EXTERNAL] hi".into());
        assert!(
            apply(SECTION, &[set_new]).starts_with("From: a@example.org\r\nSubject: [EXTERNAL] hi\r\nX-Old: 1\r\n")
        );
        let remove = HeaderEdit::Remove("x-old".into());
        assert_eq!(apply(SECTION, &[remove]), "From: a@example.org\r\nSubject: hi\r\n there\r\n\r\n");
    }

    #[test]
    fn non_ascii_values_become_encoded_words() {
        assert_eq!(encode_words("café"), "=?utf-8?b?Y2Fmw6k=?=");
        assert_eq!(encode_words("ab"), "=?utf-8?b?YWI=?=");
        let long = "é".repeat(40);
        let out = apply("", &[HeaderEdit::Add("Subject".into(), long)]);
        assert!(out.is_ascii());
        assert!(out.lines().all(|l| l.len() <= 78), "{out}");
    }

    #[test]
    fn long_values_are_folded() {
        let value = vec!["word"; 60].join(" ");
        let out = apply("", &[HeaderEdit::Add("X-Long".into(), value.clone())]);
        assert!(out.lines().all(|l| l.len() <= 78), "{out}");
        assert!(out.contains("\r\n\tword"));
        let unfolded = out.replace("\r\n\t", " ");
        assert!(unfolded.starts_with(&format!("X-Long: {value}\r\n")));
        assert!(apply_header_edits(b"", &[HeaderEdit::Add("X-Blob".into(), "x".repeat(1200))]).is_err());
    }

    /// Found by the plugin_output fuzz target: a run of spaces (or a trailing space)
    /// after a long word used to be folded into whitespace-only continuation lines.
    #[test]
    fn folding_never_leaves_a_whitespace_only_line() {
        for value in [
            format!("{} ", "a".repeat(76)),
            format!("{}{}b", "a".repeat(76), " ".repeat(300)),
            format!("{}x:192.0.2.1", " ".repeat(800)),
            format!("{}  ", vec!["word"; 40].join(" ")),
            // Found by the plugin_output fuzz target: a tab-only word after spaces.
            format!("{}\t\t  ", " ".repeat(100)),
            format!("{} \t x", "a".repeat(76)),
        ] {
            let out = apply("", &[HeaderEdit::Add("X-Spaces".into(), value.clone())]);
            assert!(out.ends_with("\r\n\r\n"), "{out:?}");
            for line in out.trim_end_matches("\r\n").split("\r\n") {
                assert!(!line.trim_matches([' ', '\t']).is_empty(), "whitespace-only line in {out:?}");
                assert!(line.len() <= MAX_LINE, "{out:?}");
            }
            assert_eq!(out.replace("\r\n\t", " "), format!("X-Spaces: {value}\r\n\r\n"));
        }
    }
}
