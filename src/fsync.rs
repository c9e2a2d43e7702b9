//! Making directories and their entries durable.
//!
//! A file's data is durable once the file is fsynced; its name only once the directory
//! holding it is fsynced (the strict POSIX model, which ext4 and XFS follow for new
//! names). A directory made by `create_dir_all` is a name in its parent like any other:
//! without an fsync of the parent, a power cut can take it away with everything under
//! it, however carefully the files inside were synced. Base layer: imports nothing of
//! the crate.

use std::fs::File;
use std::io;
use std::path::Path;

/// Fsyncs a directory, making the names in it durable.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// `create_dir_all`, then fsyncs the parent of every directory it made, up to the first
/// one that already existed, so the new directories survive a power cut.
pub fn create_dir_all_durable(path: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut at = path;
    while !at.is_dir() {
        missing.push(at);
        match at.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => at = parent,
            _ => break,
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(path)?;
    for dir in missing {
        let parent = match dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        sync_dir(parent)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_every_missing_level_and_accepts_existing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        create_dir_all_durable(&deep).unwrap();
        assert!(deep.is_dir());
        create_dir_all_durable(&deep).unwrap();
        create_dir_all_durable(dir.path()).unwrap();
    }

    #[test]
    fn a_file_in_the_way_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(create_dir_all_durable(&file.join("sub")).is_err());
    }
}
