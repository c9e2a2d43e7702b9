//! Read-only access for the admin CLI, safe beside a running server.

use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::dir::QueueDir;
use super::index::Entry;
use super::replay::{self, Damage, Mode};

pub struct Snapshot {
    dir: QueueDir,
    /// Live messages, oldest first.
    pub messages: Vec<Entry>,
    pub damage: Vec<Damage>,
}

impl Snapshot {
    /// Reads a listed message's bytes (as stored: our `Received:` header first).
    pub fn read_message(&self, entry: &Entry) -> io::Result<Vec<u8>> {
        let file = std::fs::File::open(self.dir.segment_path(entry.location.segment))?;
        let mut body = vec![0u8; entry.location.body_len as usize];
        file.read_exact_at(&mut body, entry.location.body_offset)?;
        Ok(body)
    }
}

/// Replays the queue's log without changing anything.
pub fn snapshot(root: &Path) -> io::Result<Snapshot> {
    let dir = QueueDir::open(root)?;
    let replayed = replay::replay(&dir, Mode::ReadOnly)?;
    let messages = replayed.index.iter().map(|(_, e)| e.clone()).collect();
    Ok(Snapshot { dir, messages, damage: replayed.damage })
}
