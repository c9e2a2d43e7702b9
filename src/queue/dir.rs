//! The queue directory layout, shared by the server, delivery and the admin CLI:
//!
//! ```text
//! <queue>/tmp/        messages being written, and spill files; emptied at start
//! <queue>/messages/   one file per accepted message, named by queue id
//! <queue>/corrupt/    files that failed verification, kept for inspection
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::QueueId;
use super::format::{self, FormatError, Head};

#[derive(Clone, Debug)]
pub struct QueueDir {
    root: PathBuf,
}

/// One message found in the queue.
#[derive(Debug)]
pub struct Listed {
    pub id: QueueId,
    pub head: Result<Head, FormatError>,
    /// Size of the queue file in bytes.
    pub file_size: u64,
}

impl QueueDir {
    /// Opens an existing queue directory (for the admin commands).
    pub fn open(root: &Path) -> io::Result<QueueDir> {
        let dir = QueueDir { root: root.to_path_buf() };
        if !dir.messages().is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not a queue directory (no messages/ inside)", root.display()),
            ));
        }
        Ok(dir)
    }

    /// Opens the queue directory, creating it if needed (for the server).
    pub fn create(root: &Path) -> io::Result<QueueDir> {
        let dir = QueueDir { root: root.to_path_buf() };
        for sub in [dir.tmp(), dir.messages(), dir.corrupt()] {
            fs::create_dir_all(&sub)?;
        }
        // The subdirectories themselves must survive a crash.
        fs::File::open(&dir.root)?.sync_all()?;
        Ok(dir)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    pub fn messages(&self) -> PathBuf {
        self.root.join("messages")
    }
    pub fn corrupt(&self) -> PathBuf {
        self.root.join("corrupt")
    }
    pub fn message_path(&self, id: QueueId) -> PathBuf {
        self.messages().join(id.to_string())
    }

    /// Ids of the queued messages, oldest first. Files whose names are not ids are
    /// ignored (an editor's backup file, say).
    pub fn ids(&self) -> io::Result<Vec<QueueId>> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(self.messages())? {
            let entry = entry?;
            if let Some(id) = entry.file_name().to_str().and_then(|n| n.parse::<QueueId>().ok()) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// Every queued message with its envelope, read without checking checksums.
    pub fn list(&self) -> io::Result<Vec<Listed>> {
        let mut listed = Vec::new();
        for id in self.ids()? {
            let path = self.message_path(id);
            let file_size = match fs::metadata(&path) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // delivered meanwhile
                Err(e) => return Err(e),
            };
            listed.push(Listed { id, head: format::read_envelope(&path), file_size });
        }
        Ok(listed)
    }

    /// Moves a message that failed verification out of the way, so it is never
    /// delivered and never silently deleted.
    pub fn move_aside(&self, id: QueueId) -> io::Result<PathBuf> {
        let target = self.corrupt().join(id.to_string());
        fs::rename(self.message_path(id), &target)?;
        fs::File::open(self.messages())?.sync_all()?;
        Ok(target)
    }

    /// Removes leftovers of writes that were cut short: nothing in tmp/ was ever
    /// acknowledged.
    pub fn clear_tmp(&self) -> io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(self.tmp())? {
            fs::remove_file(entry?.path())?;
            removed += 1;
        }
        Ok(removed)
    }
}
