//! Where a message's header section ends.

/// The length of the header section, including the blank line that ends it. A message
/// without a blank line in its first part is all headers as far as we can see.
pub fn header_section_len(message: &[u8]) -> usize {
    if message.starts_with(b"\r\n") {
        return 2;
    }
    memchr::memmem::find(message, b"\r\n\r\n").map_or(message.len(), |at| at + 4)
}

/// Whether every line of `section` ends in CRLF, so that mail-parser, which also ends
/// a header section at a bare LF, sees it end where [`header_section_len`] does.
pub fn only_crlf_lines(section: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', section).all(|at| at > 0 && section[at - 1] == b'\r')
}
