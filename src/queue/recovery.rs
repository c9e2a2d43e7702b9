//! Start-up check of the queue: every message is verified, and any that fails is
//! moved aside so that it is never delivered.

use super::QueueId;
use super::dir::QueueDir;
use super::format::{self, FormatError};

#[derive(Debug, Default)]
pub struct Recovery {
    /// Messages that passed verification, oldest first.
    pub messages: Vec<QueueId>,
    /// Messages moved to `corrupt/`.
    pub corrupt: Vec<QueueId>,
}

/// Verifies every queued message. I/O errors other than corruption abort, because an
/// unreadable queue must not look like an empty one.
pub fn recover(dir: &QueueDir) -> std::io::Result<Recovery> {
    let mut recovery = Recovery::default();
    for id in dir.ids()? {
        match format::read_verified(&dir.message_path(id)) {
            Ok(_) => recovery.messages.push(id),
            Err(FormatError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(FormatError::Io(e)) => return Err(e),
            Err(error) => {
                let moved_to = dir.move_aside(id)?;
                tracing::error!(%id, %error, moved_to = %moved_to.display(), "corrupt queue file moved aside");
                recovery.corrupt.push(id);
            }
        }
    }
    Ok(recovery)
}
