//! An incoming message while it is received: in memory up to a threshold, then
//! spilled to a file in the queue's `tmp/` so that many large messages at once do not
//! exhaust memory. The first part stays in memory either way; headers are read there.

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

mod rewrite;

/// Bytes kept in memory before spilling.
pub const MEMORY_THRESHOLD: usize = 256 * 1024;
/// Spilled bytes are written in batches of this size.
const SPILL_BATCH: usize = 64 * 1024;

#[derive(Debug)]
struct Spill {
    file: tokio::fs::File,
    path: PathBuf,
    written: u64,
}

/// What went wrong while receiving, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferStatus {
    Ok,
    /// More than the limit arrived; the excess was discarded.
    TooBig,
    /// The spill file could not be written.
    IoError,
    /// The spill file could not be written because the disk (or quota) is full.
    NoSpace,
}

#[derive(Debug)]
pub struct MessageBuffer {
    head: Vec<u8>,
    spill: Option<Spill>,
    /// Content received after spilling, not yet written to the spill file.
    pending: Vec<u8>,
    spill_path: PathBuf,
    /// Length after the last [`Self::absorb`].
    accounted: u64,
    /// Everything received, including what was discarded.
    seen: u64,
    limit: u64,
    status: BufferStatus,
}

impl MessageBuffer {
    /// `limit` is the largest message accepted; `spill_path` is where the file goes if
    /// the message outgrows memory.
    pub fn new(limit: u64, spill_path: PathBuf) -> Self {
        MessageBuffer {
            head: Vec::with_capacity(4096),
            spill: None,
            pending: Vec::new(),
            spill_path,
            accounted: 0,
            seen: 0,
            limit,
            status: BufferStatus::Ok,
        }
    }

    /// Where content is appended; call [`Self::absorb`] after each append.
    pub fn writer(&mut self) -> &mut Vec<u8> {
        if self.spill.is_some() { &mut self.pending } else { &mut self.head }
    }

    /// The stored length.
    pub fn len(&self) -> u64 {
        self.head.len() as u64 + self.spill.as_ref().map_or(0, |s| s.written) + self.pending.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Everything received so far, including content discarded over the limit.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    pub fn status(&self) -> BufferStatus {
        self.status
    }

    /// The in-memory start of the message (all of it unless it was spilled).
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Replaces the first `len` bytes of the head (the header section) with `start`:
    /// the server's own header edits made before anyone reads the message.
    pub fn replace_start(&mut self, len: usize, start: Vec<u8>) {
        let len = len.min(self.head.len());
        self.head.splice(..len, start);
        self.accounted = self.len();
    }

    /// The whole message: the head, and the spill file after it (read into memory).
    pub async fn contents(&self) -> io::Result<std::borrow::Cow<'_, [u8]>> {
        match self.spill_file() {
            None => Ok(std::borrow::Cow::Borrowed(&self.head)),
            Some(path) => {
                let mut content = self.head.clone();
                content.extend(tokio::fs::read(path).await?);
                Ok(std::borrow::Cow::Owned(content))
            }
        }
    }

    /// The file holding the rest of the message, after [`Self::head`].
    pub fn spill_file(&self) -> Option<&Path> {
        self.spill.as_ref().map(|s| s.path.as_path())
    }

    /// Accounts for what was appended to [`Self::writer`]: enforces the size limit
    /// and moves content to the spill file once memory is full.
    pub async fn absorb(&mut self) {
        let len = self.len();
        self.seen += len.saturating_sub(self.accounted);
        if len > self.limit && self.status == BufferStatus::Ok {
            self.status = BufferStatus::TooBig;
        }
        if self.status != BufferStatus::Ok {
            // Keep memory bounded: drop what was just appended.
            let excess = (len.saturating_sub(self.accounted)) as usize;
            let writer = self.writer();
            let keep = writer.len().saturating_sub(excess);
            writer.truncate(keep);
            self.accounted = self.len();
            return;
        }
        self.accounted = len;
        if self.spill.is_none() && self.head.len() > MEMORY_THRESHOLD {
            if let Err(e) = self.start_spill().await {
                self.fail(e);
            }
        } else if self.pending.len() >= SPILL_BATCH
            && let Err(e) = self.flush_pending().await
        {
            self.fail(e);
        }
    }

    fn fail(&mut self, error: io::Error) {
        tracing::warn!(path = %self.spill_path.display(), %error, "cannot spill message to disk");
        self.status = match error.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => BufferStatus::NoSpace,
            _ => BufferStatus::IoError,
        };
        self.pending = Vec::new();
    }

    async fn start_spill(&mut self) -> io::Result<()> {
        let mut file = tokio::fs::File::create(&self.spill_path).await?;
        let rest = self.head.split_off(MEMORY_THRESHOLD);
        self.head.shrink_to_fit();
        let written = file.write_all(&rest).await;
        // Recorded even if the write failed, so that Drop removes the file.
        self.spill = Some(Spill { file, path: self.spill_path.clone(), written: rest.len() as u64 });
        written
    }

    async fn flush_pending(&mut self) -> io::Result<()> {
        if let Some(spill) = &mut self.spill
            && !self.pending.is_empty()
        {
            spill.file.write_all(&self.pending).await?;
            spill.written += self.pending.len() as u64;
            self.pending.clear();
        }
        Ok(())
    }

    /// Writes out everything still pending; after this the message is complete on
    /// disk (head in memory, the rest in the spill file).
    pub async fn finish(&mut self) -> BufferStatus {
        if self.status == BufferStatus::Ok {
            let flushed = self.flush_pending().await;
            let synced = match &mut self.spill {
                Some(spill) => spill.file.flush().await,
                None => Ok(()),
            };
            if let Err(e) = flushed.and(synced) {
                self.fail(e);
            }
        }
        self.status
    }
}

impl Drop for MessageBuffer {
    fn drop(&mut self) {
        if let Some(spill) = &self.spill {
            let _ = std::fs::remove_file(&spill.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn append(buffer: &mut MessageBuffer, bytes: &[u8]) {
        buffer.writer().extend_from_slice(bytes);
        buffer.absorb().await;
    }

    #[tokio::test]
    async fn small_messages_stay_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut buffer = MessageBuffer::new(1000, dir.path().join("spill"));
        append(&mut buffer, b"hello ").await;
        append(&mut buffer, b"world").await;
        assert_eq!(buffer.finish().await, BufferStatus::Ok);
        assert_eq!(buffer.head(), b"hello world");
        assert!(buffer.spill_file().is_none());
    }

    #[tokio::test]
    async fn large_messages_spill_and_the_file_goes_away() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spill");
        let mut buffer = MessageBuffer::new(10 << 20, path.clone());
        let chunk: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
        let mut expected = Vec::new();
        for _ in 0..100 {
            append(&mut buffer, &chunk).await;
            expected.extend_from_slice(&chunk);
        }
        assert_eq!(buffer.finish().await, BufferStatus::Ok);
        assert_eq!(buffer.len(), expected.len() as u64);
        assert_eq!(buffer.head().len(), MEMORY_THRESHOLD);
        let mut stored = buffer.head().to_vec();
        stored.extend(std::fs::read(buffer.spill_file().unwrap()).unwrap());
        assert_eq!(stored, expected);
        drop(buffer);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn a_full_disk_while_spilling_is_told_apart_from_other_errors() {
        // /dev/full answers every write with ENOSPC; reach it through a link, which is
        // all that Drop removes.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spill");
        if !Path::new("/dev/full").exists() || std::os::unix::fs::symlink("/dev/full", &path).is_err() {
            return;
        }
        let mut buffer = MessageBuffer::new(10 << 20, path.clone());
        append(&mut buffer, &vec![b'x'; MEMORY_THRESHOLD + SPILL_BATCH + 1]).await;
        append(&mut buffer, &vec![b'y'; SPILL_BATCH]).await;
        assert_eq!(buffer.finish().await, BufferStatus::NoSpace);
        drop(buffer);
        assert!(Path::new("/dev/full").exists());
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn content_over_the_limit_is_counted_but_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut buffer = MessageBuffer::new(10, dir.path().join("spill"));
        append(&mut buffer, b"0123456789").await;
        assert_eq!(buffer.status(), BufferStatus::Ok);
        append(&mut buffer, b"abc").await;
        append(&mut buffer, b"defgh").await;
        assert_eq!(buffer.finish().await, BufferStatus::TooBig);
        assert_eq!(buffer.seen(), 18);
        assert!(buffer.len() <= 10);
    }
}
