//! The queue directory layout, shared by the server and the admin CLI:
//!
//! ```text
//! <queue>/lock          held (flock) by the server that owns the queue
//! <queue>/segments/     the log: append-only segment files, oldest first
//! <queue>/tmp/          spill files of messages being received, new segments; emptied at start
//! <queue>/corrupt/      copies of segments in which damaged records were found
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::segment_id::SegmentId;
use crate::fsync;

#[derive(Clone, Debug)]
pub struct QueueDir {
    root: PathBuf,
}

impl QueueDir {
    /// Opens an existing queue directory (for the admin commands).
    pub fn open(root: &Path) -> io::Result<QueueDir> {
        let dir = QueueDir { root: root.to_path_buf() };
        if !dir.segments().is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not a queue directory (no segments/ inside)", root.display()),
            ));
        }
        Ok(dir)
    }

    /// Opens the queue directory, creating it if needed (for the server).
    pub fn create(root: &Path) -> io::Result<QueueDir> {
        let dir = QueueDir { root: root.to_path_buf() };
        // The queue directory itself (a fresh install creates it) and the
        // subdirectories must survive a power cut: every new name's parent is fsynced.
        for sub in [dir.tmp(), dir.segments(), dir.corrupt()] {
            fsync::create_dir_all_durable(&sub)?;
        }
        fsync::sync_dir(&dir.root)?;
        Ok(dir)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("lock")
    }
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    pub fn segments(&self) -> PathBuf {
        self.root.join("segments")
    }
    pub fn corrupt(&self) -> PathBuf {
        self.root.join("corrupt")
    }
    pub fn segment_path(&self, id: SegmentId) -> PathBuf {
        self.segments().join(id.file_name())
    }

    /// The segments, oldest first. Files whose names are not segment names are ignored.
    pub fn segment_ids(&self) -> io::Result<Vec<SegmentId>> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(self.segments())? {
            if let Some(id) = entry?.file_name().to_str().and_then(SegmentId::parse_file_name) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// Removes leftovers of work cut short: nothing in tmp/ was ever acknowledged.
    pub fn clear_tmp(&self) -> io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(self.tmp())? {
            fs::remove_file(entry?.path())?;
            removed += 1;
        }
        Ok(removed)
    }
}
