//! Rewriting a header section that runs on past the in-memory head into the spill
//! file: read field by field from the head and the file, written to a new spill file
//! that replaces the old one. Memory holds the head and, of the fields that may go,
//! one at a time; the others are copied line by line as they come.

use std::io;
use std::path::PathBuf;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};

use super::{MEMORY_THRESHOLD, MessageBuffer, Spill};

/// Where a rewritten message goes: the head in memory up to the threshold, the rest
/// to the new spill file.
struct Output {
    head: Vec<u8>,
    file: BufWriter<tokio::fs::File>,
    written: u64,
}

impl Output {
    async fn put(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        let room = MEMORY_THRESHOLD.saturating_sub(self.head.len()).min(bytes.len());
        self.head.extend_from_slice(&bytes[..room]);
        bytes = &bytes[room..];
        if !bytes.is_empty() {
            self.file.write_all(bytes).await?;
            self.written += bytes.len() as u64;
        }
        Ok(())
    }
}

impl MessageBuffer {
    /// Replaces the header section with `top` and its fields but those named `name`
    /// that `keep` (given the field whole, with its continuation lines) refuses; the
    /// body unchanged. For a spilled message only (in memory,
    /// [`MessageBuffer::replace_start`] does it); on an error the message is as it was.
    pub async fn rewrite_header(&mut self, top: &[u8], name: &[u8], keep: impl Fn(&[u8]) -> bool) -> io::Result<()> {
        let Some(spill) = &self.spill else { return Err(io::Error::other("the message is not spilled")) };
        let old = tokio::fs::File::open(&spill.path).await?;
        let mut path = spill.path.clone().into_os_string();
        path.push(".new");
        let path = PathBuf::from(path);
        let rewritten = async {
            let file = tokio::fs::File::create(&path).await?;
            let mut out = Output { head: Vec::with_capacity(MEMORY_THRESHOLD), file: BufWriter::new(file), written: 0 };
            out.put(top).await?;
            let mut input = BufReader::new((&self.head[..]).chain(old));
            copy_fields(&mut input, &mut out, name, keep).await?;
            loop {
                let chunk = input.fill_buf().await?;
                if chunk.is_empty() {
                    break;
                }
                let n = chunk.len();
                out.put(chunk).await?;
                input.consume(n);
            }
            out.file.flush().await?;
            Ok::<_, io::Error>(out)
        };
        let out = match rewritten.await {
            Ok(out) => out,
            Err(error) => {
                let _ = tokio::fs::remove_file(&path).await;
                return Err(error);
            }
        };
        if let Err(error) = tokio::fs::rename(&path, &spill.path).await {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(error);
        }
        let path = spill.path.clone();
        self.spill = Some(Spill { file: out.file.into_inner(), path, written: out.written });
        self.head = out.head;
        self.pending.clear();
        self.accounted = self.len();
        Ok(())
    }
}

/// Copies the header section's fields `keep` keeps, and the blank line after them.
async fn copy_fields<R: AsyncBufReadExt + Unpin>(
    input: &mut R,
    out: &mut Output,
    name: &[u8],
    keep: impl Fn(&[u8]) -> bool,
) -> io::Result<()> {
    // The field being judged; `None` while one that stays is copied through.
    let mut judged: Option<Vec<u8>> = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        input.read_until(b'\n', &mut line).await?;
        let continues = matches!(line.first(), Some(b' ' | b'\t'));
        match &mut judged {
            Some(field) if continues => {
                field.extend_from_slice(&line);
                continue;
            }
            None if continues => {
                out.put(&line).await?;
                continue;
            }
            Some(field) if keep(field) => out.put(field).await?,
            _ => {}
        }
        if line.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            // The end of the section (or of the message).
            return out.put(&line).await;
        }
        judged = if may_be_named(&line, name) {
            Some(line.clone())
        } else {
            out.put(&line).await?;
            None
        };
    }
}

/// Whether a field starting with `line` may be named `name`: it is, or its name does
/// not end on this line.
fn may_be_named(line: &[u8], name: &[u8]) -> bool {
    memchr::memchr(b':', line).is_none_or(|colon| line[..colon].trim_ascii().eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fields_past_the_head_are_filtered_and_the_body_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spill");
        let mut buffer = MessageBuffer::new(10 << 20, path.clone());
        let mut message = b"Subject: big\r\n".to_vec();
        while message.len() < MEMORY_THRESHOLD + 1000 {
            message.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
        }
        message.extend_from_slice(
            b"Bad: folded\r\n across\r\nGood: folded\r\n\ttoo\r\nBAD : x\r\n\r\nBad: in the body\r\n",
        );
        message.extend(std::iter::repeat_n(b'b', MEMORY_THRESHOLD));
        buffer.writer().extend_from_slice(&message);
        buffer.absorb().await;
        assert_eq!(buffer.finish().await, super::super::BufferStatus::Ok);
        assert!(buffer.spill_file().is_some());

        let keep = |field: &[u8]| !field.to_ascii_lowercase().starts_with(b"bad");
        buffer.rewrite_header(b"Top: 1\r\n", b"bad", keep).await.unwrap();
        let content = buffer.contents().await.unwrap().into_owned();
        let text = String::from_utf8(content.clone()).unwrap();
        let expected = format!(
            "Top: 1\r\n{}",
            String::from_utf8_lossy(&message).replace("Bad: folded\r\n across\r\n", "").replace("BAD : x\r\n", "")
        );
        assert_eq!(text, expected);
        assert_eq!(buffer.len(), content.len() as u64);
        assert_eq!(buffer.head().len(), MEMORY_THRESHOLD);
        drop(buffer);
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no file left behind");
    }
}
