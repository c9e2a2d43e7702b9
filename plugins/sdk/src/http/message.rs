//! The message at DATA as a request body, read from the host in chunks.

use super::Body;
use crate::{Header, Message};

/// What one `read-body` asks for: the host's cap.
const CHUNK: u32 = 64 * 1024;

/// The header section as `Name: value` lines and the blank line after it. The host
/// hands headers over unfolded and decoded (RFC 2047), so this is what a peer sees
/// instead of the original bytes of the header section.
pub fn header_section(headers: &[Header]) -> Vec<u8> {
    let mut out = Vec::with_capacity(headers.iter().map(|h| h.name.len() + h.value.len() + 4).sum::<usize>() + 2);
    for header in headers {
        out.extend_from_slice(header.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(header.value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

impl<'a> Body<'a> {
    /// The whole message, header section first, then the body streamed from the host.
    pub fn message(message: &'a Message) -> Body<'a> {
        let head = header_section(&message.headers());
        let length = head.len() as u64 + message.body_size();
        let mut offset = 0u64;
        let body = std::iter::from_fn(move || {
            let chunk = message.read_body(offset, CHUNK);
            offset += chunk.len() as u64;
            (!chunk.is_empty()).then_some(chunk)
        });
        Body::Stream { length, chunks: Box::new(std::iter::once(head).chain(body)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_line_per_field_and_the_blank_line() {
        let headers = [
            Header { name: "From".into(), value: "a@example.org".into() },
            Header { name: "Subject".into(), value: "Grüße".into() },
        ];
        assert_eq!(header_section(&headers), "From: a@example.org\r\nSubject: Grüße\r\n\r\n".as_bytes());
        assert_eq!(header_section(&[]), b"\r\n");
    }
}
