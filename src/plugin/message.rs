//! The message as plugins see it at DATA: read through the host in bounded pieces,
//! parsed (with mail-parser) once per message however many plugins look at it.

use std::collections::HashMap;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex, OnceLock};

use mail_parser::{MessageParser, PartType};

pub use super::header_section::header_section_len;
pub use super::part_info::PartInfo;
use super::part_info::describe;
use super::single_part::single_part;
use crate::queue::MessageBuffer;

/// Largest chunk a plugin reads at once.
pub const MAX_READ: u32 = 64 * 1024;

/// A header field, value unfolded and decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderField {
    pub name: String,
    pub value: String,
}

/// One received message and what was learnt parsing it, shared by the plugins.
pub struct MessageShared {
    content: Arc<MessageBuffer>,
    /// Where the body starts (after the blank line ending the header section), found
    /// in the spill file when the section is longer than the part kept in memory.
    body_offset: OnceLock<u64>,
    headers: OnceLock<Vec<HeaderField>>,
    /// The whole message when part of it is in the spill file (otherwise the head is).
    whole: OnceLock<Vec<u8>>,
    parts: OnceLock<Parts>,
    /// Decoded content of the parts that are not a plain range of the message.
    decoded: Mutex<HashMap<u32, Arc<Vec<u8>>>>,
}

/// The leaf parts, and where each one's content is when it needs no decoding.
struct Parts {
    info: Vec<PartInfo>,
    /// `Some(range)` of the whole message for content that mail-parser left as it was
    /// (no transfer encoding, no charset conversion): read straight from the message,
    /// without parsing it again.
    ranges: Vec<Option<Range<usize>>>,
}

impl MessageShared {
    pub fn new(content: Arc<MessageBuffer>) -> MessageShared {
        MessageShared {
            content,
            body_offset: OnceLock::new(),
            headers: OnceLock::new(),
            whole: OnceLock::new(),
            parts: OnceLock::new(),
            decoded: Mutex::new(HashMap::new()),
        }
    }

    pub fn content(&self) -> &Arc<MessageBuffer> {
        &self.content
    }

    pub fn size(&self) -> u64 {
        self.content.len()
    }

    pub fn body_offset(&self) -> u64 {
        *self.body_offset.get_or_init(|| {
            let head = self.content.head();
            let len = header_section_len(head);
            if len < head.len() || self.content.spill_file().is_none() {
                return len as u64;
            }
            self.whole().map_or(len, header_section_len) as u64
        })
    }

    pub fn body_size(&self) -> u64 {
        self.content.len().saturating_sub(self.body_offset())
    }

    pub fn headers(&self) -> &[HeaderField] {
        self.headers.get_or_init(|| {
            let (end, head) = (self.body_offset() as usize, self.content.head());
            let section = match head.get(..end) {
                Some(section) => section,
                None => self.whole().ok().and_then(|whole| whole.get(..end)).unwrap_or(head),
            };
            parse_headers(section)
        })
    }

    /// Reads `max` bytes of the whole message from `offset` (head or spill file).
    pub fn read_raw(&self, offset: u64, max: u32) -> io::Result<Vec<u8>> {
        let end = offset.saturating_add(u64::from(max.min(MAX_READ))).min(self.content.len());
        if offset >= end {
            return Ok(Vec::new());
        }
        let head = self.content.head();
        let mut out = Vec::with_capacity((end - offset) as usize);
        let head_len = head.len() as u64;
        if offset < head_len {
            out.extend_from_slice(&head[offset as usize..end.min(head_len) as usize]);
        }
        if end > head_len
            && let Some(spill) = self.content.spill_file()
        {
            let from = offset.max(head_len);
            let mut tail = vec![0u8; (end - from) as usize];
            std::fs::File::open(spill)?.read_exact_at(&mut tail, from - head_len)?;
            out.extend_from_slice(&tail);
        }
        Ok(out)
    }

    pub fn read_body(&self, offset: u64, max: u32) -> io::Result<Vec<u8>> {
        self.read_raw(self.body_offset().saturating_add(offset), max)
    }

    /// The whole message in memory (on the host), for MIME parsing: the head itself
    /// unless part of the message was spilled to disk.
    fn whole(&self) -> io::Result<&[u8]> {
        let Some(spill) = self.content.spill_file() else { return Ok(self.content.head()) };
        if let Some(whole) = self.whole.get() {
            return Ok(whole);
        }
        let mut bytes = self.content.head().to_vec();
        bytes.extend(std::fs::read(spill)?);
        Ok(self.whole.get_or_init(|| bytes))
    }

    fn parsed_parts(&self) -> io::Result<&Parts> {
        if let Some(parts) = self.parts.get() {
            return Ok(parts);
        }
        let whole = self.whole()?;
        let parts = match single_part(whole) {
            Some((start, info)) => Parts { info: vec![info], ranges: vec![Some(start..whole.len())] },
            None => full_parse(whole),
        };
        Ok(self.parts.get_or_init(|| parts))
    }

    pub fn parts(&self) -> io::Result<&[PartInfo]> {
        Ok(&self.parsed_parts()?.info)
    }

    /// Reads the decoded content of leaf part `index`.
    pub fn read_part(&self, index: u32, offset: u64, max: u32) -> io::Result<Option<Vec<u8>>> {
        let parts = self.parsed_parts()?;
        let Some(range) = parts.ranges.get(index as usize) else { return Ok(None) };
        let read = |content: &[u8]| {
            let start = (offset.min(content.len() as u64)) as usize;
            let end = (start + max.min(MAX_READ) as usize).min(content.len());
            content[start..end].to_vec()
        };
        if let Some(range) = range {
            return Ok(Some(read(self.whole()?.get(range.clone()).unwrap_or_default())));
        }
        let decoded = {
            let mut cache = self.decoded.lock().unwrap_or_else(|p| p.into_inner());
            match cache.get(&index) {
                Some(bytes) => Arc::clone(bytes),
                None => {
                    let mut found = None;
                    let mut n = 0u32;
                    walk_parts(self.whole()?, 0, &mut |part, _| {
                        if n == index {
                            found = Some(part.contents().to_vec());
                        }
                        n += 1;
                    });
                    let bytes = Arc::new(found.unwrap_or_default());
                    cache.insert(index, Arc::clone(&bytes));
                    bytes
                }
            }
        };
        Ok(Some(read(&decoded)))
    }
}

fn full_parse(whole: &[u8]) -> Parts {
    let mut parts = Parts { info: Vec::new(), ranges: Vec::new() };
    walk_parts(whole, 0, &mut |part, depth| {
        parts.info.push(describe(part, depth, part.len() as u64));
        parts.ranges.push(range_within(whole, part.contents()));
    });
    parts
}

/// Where `inner` lies in `outer`, if it is a slice of it (compared by address).
fn range_within(outer: &[u8], inner: &[u8]) -> Option<Range<usize>> {
    let start = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)?;
    let end = start.checked_add(inner.len())?;
    (end <= outer.len()).then_some(start..end)
}

fn parse_headers(section: &[u8]) -> Vec<HeaderField> {
    let Some(parsed) = MessageParser::new().parse_headers(section) else { return Vec::new() };
    parsed
        .headers()
        .iter()
        .map(|header| {
            let raw = section.get(header.offset_start as usize..header.offset_end as usize).unwrap_or_default();
            HeaderField { name: header.name.as_str().to_string(), value: decode_value(raw) }
        })
        .collect()
}

/// Unfolds a raw header value and decodes RFC 2047 encoded words.
fn decode_value(raw: &[u8]) -> String {
    match mail_parser::parsers::MessageStream::new(raw).parse_unstructured() {
        mail_parser::HeaderValue::Text(text) => text.into_owned(),
        _ => String::from_utf8_lossy(raw).split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// Calls `visit` for every leaf part, descending into multiparts and attached messages.
fn walk_parts(raw: &[u8], depth: u32, visit: &mut dyn FnMut(&mail_parser::MessagePart<'_>, u32)) {
    const MAX_DEPTH: u32 = 8;
    let Some(message) = MessageParser::new().parse(raw) else { return };
    walk_message(&message, 0, depth, visit, MAX_DEPTH);
}

fn walk_message(
    message: &mail_parser::Message<'_>,
    part_id: usize,
    depth: u32,
    visit: &mut dyn FnMut(&mail_parser::MessagePart<'_>, u32),
    max_depth: u32,
) {
    let Some(part) = message.parts.get(part_id) else { return };
    match &part.body {
        PartType::Multipart(children) => {
            for &child in children {
                walk_message(message, child as usize, depth + 1, visit, max_depth);
            }
        }
        PartType::Message(nested) if depth < max_depth => {
            visit(part, depth);
            walk_message(nested, 0, depth + 1, visit, max_depth);
        }
        _ => visit(part, depth),
    }
}

/// The resource handed to a plugin: a handle on the shared message.
pub struct MessageView {
    pub shared: Arc<MessageShared>,
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn shared(bytes: &[u8]) -> MessageShared {
        // Kept for the whole test run: the spill file lives there.
        let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
        let mut buffer = MessageBuffer::new(1 << 30, dir.path().join("spill"));
        buffer.writer().extend_from_slice(bytes);
        buffer.absorb().await;
        buffer.finish().await;
        MessageShared::new(Arc::new(buffer))
    }

    const MIME: &[u8] = b"From: a@example.org\r\nSubject: =?utf-8?q?caf=C3=A9?= and\r\n more\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename=\"x.zip\"\r\nContent-Transfer-Encoding: base64\r\n\r\nUEsDBA==\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: application/octet-stream; name=evil.exe\r\n\r\nMZ\r\n--b--\r\n";

    #[tokio::test]
    async fn headers_are_unfolded_and_decoded() {
        let m = shared(MIME).await;
        let headers = m.headers();
        assert_eq!(headers[0], HeaderField { name: "From".into(), value: "a@example.org".into() });
        assert_eq!(headers[1].value, "café and more");
        assert_eq!(m.read_body(0, 3).unwrap(), b"--b");
        assert!(m.read_body(m.body_size(), 10).unwrap().is_empty());
    }

    #[tokio::test]
    async fn parts_include_nested_messages_and_decode_content() {
        let m = shared(MIME).await;
        let parts = m.parts().unwrap().to_vec();
        let types: Vec<&str> = parts.iter().map(|p| p.content_type.as_str()).collect();
        assert_eq!(types, ["text/plain", "application/zip", "message/rfc822", "application/octet-stream"]);
        assert_eq!(parts[1].filename.as_deref(), Some("x.zip"));
        assert!(parts[1].is_attachment);
        assert_eq!(parts[3].filename.as_deref(), Some("evil.exe"));
        assert!(parts[3].depth > parts[1].depth);
        assert_eq!(m.read_part(1, 0, 100).unwrap().unwrap(), b"PK\x03\x04");
        // Parts without a transfer encoding are read straight from the message.
        assert_eq!(m.read_part(0, 0, 100).unwrap().unwrap(), b"hello");
        assert_eq!(m.read_part(0, 2, 2).unwrap().unwrap(), b"ll");
        assert_eq!(m.read_part(3, 0, 100).unwrap().unwrap(), b"MZ");
        assert!(m.read_part(3, 5, 100).unwrap().unwrap().is_empty());
        assert_eq!(m.read_part(9, 0, 100).unwrap(), None);
    }

    /// What the full parse gives for every leaf part: description and content.
    fn parsed(message: &[u8]) -> Vec<(PartInfo, Vec<u8>)> {
        let mut out = Vec::new();
        walk_parts(message, 0, &mut |part, depth| {
            out.push((describe(part, depth, part.len() as u64), part.contents().to_vec()));
        });
        out
    }

    #[test]
    fn one_part_messages_skip_the_parse_and_read_the_same() {
        let fast: &[&[u8]] = &[
            b"Subject: plain\r\n\r\nhello\r\nworld\r\n",
            b"Subject: no body\r\n\r\n",
            b"Content-Type: text/plain; charset=utf-8\r\n\r\ncaf\xc3\xa9\r\n",
            b"Content-Type: text/html; charset=\"US-ASCII\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n<p>hi</p>\r\n",
            b"Content-Type: application/pdf; name=\"a.pdf\"\r\nContent-Disposition: attachment\r\n\r\n%PDF\xff\xfe\r\n",
            b"Content-Type: image/png\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\x89PNG\r\n",
            b"Subject: folded\r\n  header\r\nX-Other: x\r\n\r\n\r\nbody after a blank line\r\n",
        ];
        let slow: &[&[u8]] = &[
            MIME,
            b"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n",
            b"Content-Transfer-Encoding: Quoted-Printable\r\n\r\ncaf=C3=A9\r\n",
            b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\ncaf\xe9\r\n",
            b"Content-Type: text/plain\r\n\r\nnot utf-8 \xe9\r\n",
            b"Content-Type: text/plain; charset=us-ascii\r\n\r\ncaf\xc3\xa9\r\n",
            b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nx\r\n",
            b"Content-Type: multipart/mixed\r\n\r\nno boundary\r\n",
        ];
        for message in fast {
            let (start, info) = single_part(message).unwrap_or_else(|| panic!("parsed: {message:?}"));
            let full = parsed(message);
            assert_eq!(full, [(info, message[start..].to_vec())], "{message:?}");
        }
        for message in slow {
            assert!(single_part(message).is_none(), "not parsed: {message:?}");
        }
    }

    #[tokio::test]
    async fn a_header_section_past_the_memory_threshold_is_read_whole() {
        let mut big = Vec::new();
        while big.len() <= crate::queue::MEMORY_THRESHOLD {
            big.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
        }
        big.extend_from_slice(b"From: last@example.org\r\n\r\nBODY\r\n");
        let m = shared(&big).await;
        assert!(m.content().spill_file().is_some());
        assert_eq!(m.body_offset(), big.len() as u64 - 6);
        assert_eq!(m.read_body(0, 100).unwrap(), b"BODY\r\n");
        let last = m.headers().last().cloned().unwrap();
        assert_eq!(last, HeaderField { name: "From".into(), value: "last@example.org".into() });
    }

    #[tokio::test]
    async fn reading_spans_memory_and_the_spill_file() {
        let mut big = b"Subject: big\r\n\r\n".to_vec();
        big.extend((0..600_000u32).map(|i| b'a' + (i % 26) as u8));
        let m = shared(&big).await;
        assert!(m.content().spill_file().is_some());
        let at = crate::queue::MEMORY_THRESHOLD as u64 - 10;
        assert_eq!(m.read_raw(at, 20).unwrap(), big[at as usize..at as usize + 20]);
        assert_eq!(m.read_raw(at, 1 << 30).unwrap().len(), MAX_READ as usize);
    }
}
