//! Making accepted messages durable. A message is written to `tmp/`, fsynced, renamed
//! into `messages/`, and the directory is fsynced (group commit) before the caller may
//! say 250. Any failure leaves nothing behind and is reported, so the client gets 4xx.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::buffer::MessageBuffer;
use super::dir::QueueDir;
use super::dir_sync::DirSync;
use super::format::{self, ChecksumWriter};
use super::id::{IdGenerator, QueueId};
use crate::mail::Envelope;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The disk or quota is full: RFC 3463 4.3.1.
    #[error("insufficient storage: {0}")]
    NoSpace(io::Error),
    #[error("queue write failed: {0}")]
    Io(io::Error),
}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => StoreError::NoSpace(e),
            _ => StoreError::Io(e),
        }
    }
}

#[derive(Debug)]
pub struct Spool {
    dir: QueueDir,
    ids: IdGenerator,
    dir_sync: DirSync,
}

impl Spool {
    /// Opens (creating if needed) the queue at `root` for writing. Needs a tokio runtime.
    pub fn open(root: &Path) -> io::Result<Spool> {
        let dir = QueueDir::create(root)?;
        let cleared = dir.clear_tmp()?;
        if cleared > 0 {
            tracing::info!(files = cleared, "removed unfinished writes from the queue's tmp/");
        }
        let newest = dir.ids()?.last().copied();
        let dir_sync = DirSync::start(File::open(dir.messages())?);
        Ok(Spool { dir, ids: IdGenerator::new(newest), dir_sync })
    }

    pub fn dir(&self) -> &QueueDir {
        &self.dir
    }

    pub fn next_id(&self) -> QueueId {
        self.ids.next()
    }

    /// A buffer for an incoming message that spills into this queue's `tmp/`.
    pub fn new_buffer(&self, id: QueueId, limit: u64) -> MessageBuffer {
        MessageBuffer::new(limit, self.dir.tmp().join(format!("{id}.spill")))
    }

    /// Writes the message (`prefix`, typically our `Received:` header, then the
    /// received content) durably under `envelope.id`. Returns only once it would
    /// survive a crash.
    pub async fn store(&self, envelope: &Envelope, prefix: Vec<u8>, content: MessageBuffer) -> Result<(), StoreError> {
        let id = envelope.id;
        let tmp_path = self.dir.tmp().join(id.to_string());
        let final_path = self.dir.message_path(id);
        let envelope = envelope.clone();
        let written = {
            let final_path = final_path.clone();
            tokio::task::spawn_blocking(move || write_durably(&tmp_path, &final_path, &envelope, &prefix, &content))
                .await
                .map_err(|e| io::Error::other(format!("spool writer panicked: {e}")))?
        };
        written?;
        if let Err(e) = self.dir_sync.sync().await {
            // Not durable, and the client will be told to retry: do not keep a copy
            // that could be delivered besides the retried one.
            let _ = fs::remove_file(&final_path);
            return Err(e.into());
        }
        Ok(())
    }
}

fn write_durably(
    tmp_path: &Path,
    final_path: &Path,
    envelope: &Envelope,
    prefix: &[u8],
    content: &MessageBuffer,
) -> io::Result<()> {
    let result = write_file(tmp_path, envelope, prefix, content).and_then(|()| fs::rename(tmp_path, final_path));
    if result.is_err() {
        let _ = fs::remove_file(tmp_path);
    }
    result
}

fn write_file(path: &Path, envelope: &Envelope, prefix: &[u8], content: &MessageBuffer) -> io::Result<()> {
    let file = OpenOptions::new().write(true).create_new(true).open(path)?;
    let message_len = prefix.len() as u64 + content.len();
    let mut out = ChecksumWriter::new(BufWriter::with_capacity(64 * 1024, file));
    format::write_head(&mut out, envelope, message_len)?;
    out.write_all(prefix)?;
    out.write_all(content.head())?;
    if let Some(spill) = content.spill_file() {
        let copied = io::copy(&mut File::open(spill)?, &mut out)?;
        if copied + content.head().len() as u64 != content.len() {
            return Err(io::Error::other("spill file changed size"));
        }
    }
    let file = out.finish()?.into_inner().map_err(|e| e.into_error())?;
    file.sync_data()
}
