//! What plugins learn of a leaf MIME part, from mail-parser's view of it.

use mail_parser::MimeHeaders;

/// A leaf MIME part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartInfo {
    pub content_type: String,
    pub filename: Option<String>,
    pub size: u64,
    pub depth: u32,
    pub is_attachment: bool,
}

pub(super) fn describe(part: &mail_parser::MessagePart<'_>, depth: u32, size: u64) -> PartInfo {
    let content_type = part
        .content_type()
        .map(|ct| match &ct.c_subtype {
            Some(sub) => format!("{}/{}", ct.c_type, sub),
            None => ct.c_type.to_string(),
        })
        .unwrap_or_else(|| if part.is_message() { "message/rfc822".into() } else { "text/plain".into() })
        .to_ascii_lowercase();
    let filename = part.attachment_name().map(str::to_string);
    let disposition_attachment =
        part.content_disposition().is_some_and(|cd| cd.c_type.eq_ignore_ascii_case("attachment"));
    PartInfo { content_type, is_attachment: disposition_attachment || filename.is_some(), filename, size, depth }
}
