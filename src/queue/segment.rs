//! Segment files: naming, creation and reading back.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};

use super::dir::QueueDir;
use super::format;
use super::segment_id::SegmentId;
use crate::fsync;

/// Creates a segment the durable way: written in tmp/, fsynced, renamed into
/// segments/, and segments/ fsynced. Returns it open for appending.
pub fn create(dir: &QueueDir, id: SegmentId) -> io::Result<File> {
    let tmp_path = dir.tmp().join(id.file_name());
    let final_path = dir.segment_path(id);
    let mut file = OpenOptions::new().read(true).write(true).create_new(true).open(&tmp_path)?;
    let created = file
        .write_all(&format::segment_header())
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&tmp_path, &final_path))
        .and_then(|()| fsync::sync_dir(&dir.segments()));
    if let Err(e) = created {
        let _ = fs::remove_file(&tmp_path);
        let _ = fs::remove_file(&final_path);
        return Err(e);
    }
    Ok(file)
}

/// Opens an existing segment for appending after replay.
pub fn open_for_append(dir: &QueueDir, id: SegmentId) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(dir.segment_path(id))
}
