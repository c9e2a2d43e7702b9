//! Most mail is one part: no multipart, no nested message, no transfer encoding. Its
//! only part is the body as it arrived, which needs no MIME parse; mail-parser would
//! still walk the body byte by byte and validate it as UTF-8 (a tenth of the host's
//! time for a 100 KB message). Anything else goes to the full parse, so what plugins
//! read is the same either way (the tests compare both).

use mail_parser::{MessageParser, MimeHeaders};

use super::header_section::{header_section_len, only_crlf_lines};
use super::part_info::{PartInfo, describe};

/// The part a one-part message consists of, described from its header section alone:
/// `None` when only a full parse can say (multipart, message/*, an encoding, a charset
/// that mail-parser would convert, text that is not valid UTF-8).
/// The part's content is `whole[start..]`, returned with its description.
pub fn single_part(whole: &[u8]) -> Option<(usize, PartInfo)> {
    let start = header_section_len(whole);
    let (section, body) = whole.split_at(start);
    if !only_crlf_lines(section) {
        return None;
    }
    let parsed = MessageParser::new().parse_headers(section)?;
    let part = parsed.root_part();
    if part
        .content_transfer_encoding()
        .is_some_and(|e| e.eq_ignore_ascii_case("base64") || e.eq_ignore_ascii_case("quoted-printable"))
    {
        return None;
    }
    let content_type = part.content_type();
    let is_text = match content_type {
        None => true,
        Some(ct) if ct.ctype().eq_ignore_ascii_case("multipart") || ct.ctype().eq_ignore_ascii_case("message") => {
            return None;
        }
        Some(ct) => ct.ctype().eq_ignore_ascii_case("text"),
    };
    if is_text && !text_as_is(content_type.and_then(|ct| ct.attribute("charset")), body) {
        return None;
    }
    Some((start, describe(part, 0, body.len() as u64)))
}

/// Whether mail-parser's text for `body` in `charset` is `body` itself: UTF-8 as it
/// is, or ASCII under an ASCII label (which it decodes as windows-1252).
fn text_as_is(charset: Option<&str>, body: &[u8]) -> bool {
    let label = charset.unwrap_or("utf-8").to_ascii_lowercase().replace('_', "-");
    match label.as_str() {
        "utf-8" | "utf8" => std::str::from_utf8(body).is_ok(),
        "us-ascii" | "ascii" => body.is_ascii(),
        _ => false,
    }
}
