//! Rebuilding the index from the log. The server replays in repair mode at start; the
//! admin CLI replays read-only, next to a running server.

use std::fs::{self, OpenOptions};
use std::io;
use std::sync::Arc;

use super::dir::QueueDir;
use super::format::{self, Record};
use super::index::{Index, Location};
use super::segment_id::SegmentId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Truncate torn tails and copy damaged segments aside (the owner, at start).
    Repair,
    /// Change nothing (a reader beside a running server).
    ReadOnly,
}

/// Damage found during replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub segment: SegmentId,
    pub offset: u64,
    pub error: String,
}

#[derive(Debug, Default)]
pub struct Replay {
    pub index: Index,
    pub segments: Vec<SegmentId>,
    /// The newest segment and its valid length, where appending continues.
    pub tail: Option<(SegmentId, u64)>,
    /// Records that could not be read; the messages in them are never delivered.
    pub damage: Vec<Damage>,
    /// Bytes cut from the end of the newest segment: a write that never completed,
    /// so nothing in it was acknowledged.
    pub torn_tail: u64,
}

pub fn replay(dir: &QueueDir, mode: Mode) -> io::Result<Replay> {
    let mut result = Replay::default();
    let all = dir.segment_ids()?;
    let count = all.len();
    for (n, &segment) in all.iter().enumerate() {
        let newest = n + 1 == count;
        let path = dir.segment_path(segment);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            // Deleted by the owner while we (read-only) were listing.
            Err(e) if e.kind() == io::ErrorKind::NotFound && mode == Mode::ReadOnly => continue,
            Err(e) => return Err(e),
        };
        if let Err(error) = format::check_segment_header(&bytes) {
            result.damage.push(Damage { segment, offset: 0, error: error.to_string() });
            if mode == Mode::Repair {
                set_aside(dir, segment)?;
            }
            continue;
        }
        result.segments.push(segment);
        let (valid_len, damaged) = replay_segment(segment, &bytes, newest, &mut result);
        if newest {
            if valid_len < bytes.len() as u64 {
                result.torn_tail = bytes.len() as u64 - valid_len;
                if mode == Mode::Repair {
                    OpenOptions::new().write(true).open(&path)?.set_len(valid_len)?;
                }
            }
            result.tail = Some((segment, valid_len));
        }
        if mode == Mode::Repair && !damaged.is_empty() {
            copy_aside(dir, segment)?;
            neutralize(&path, &damaged)?;
        }
    }
    Ok(result)
}

/// Applies every readable record. Returns the length up to the last good record, and
/// the damaged byte ranges.
fn replay_segment(segment: SegmentId, bytes: &[u8], newest: bool, result: &mut Replay) -> (u64, Vec<(usize, usize)>) {
    let mut pos = format::SEGMENT_HEADER_LEN as usize;
    let mut valid_end = pos;
    let mut damaged = Vec::new();
    while pos < bytes.len() {
        match format::decode_record(&bytes[pos..]) {
            Ok((record, len)) => {
                apply(&mut result.index, segment, pos as u64, len as u64, record);
                pos += len;
                valid_end = pos;
            }
            Err(error) => {
                // Look for the next record that reads cleanly. None after a bad spot
                // in the newest segment is a torn write at the end, not damage.
                match next_valid_record(bytes, pos + 1) {
                    Some(next) => {
                        result.damage.push(Damage { segment, offset: pos as u64, error: error.to_string() });
                        damaged.push((pos, next));
                        pos = next;
                        valid_end = pos;
                    }
                    None if newest => break,
                    None => {
                        result.damage.push(Damage { segment, offset: pos as u64, error: error.to_string() });
                        damaged.push((pos, bytes.len()));
                        valid_end = bytes.len();
                        break;
                    }
                }
            }
        }
    }
    (valid_end as u64, damaged)
}

/// Overwrites damaged ranges (already copied aside) with padding records, so later
/// replays and listings read cleanly. A range too short for a record stays as it is.
fn neutralize(path: &std::path::Path, damaged: &[(usize, usize)]) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let file = OpenOptions::new().write(true).open(path)?;
    for &(start, end) in damaged {
        if let Some(padding) = format::encode_padding(end - start) {
            file.write_all_at(&padding, start as u64)?;
        }
    }
    file.sync_data()
}

fn next_valid_record(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(found) = memchr::memmem::find(&bytes[at.min(bytes.len())..], b"SQRC") {
        let candidate = at + found;
        if format::decode_record(&bytes[candidate..]).is_ok() {
            return Some(candidate);
        }
        at = candidate + 1;
    }
    None
}

fn apply(index: &mut super::index::Index, segment: SegmentId, offset: u64, len: u64, record: Record<'_>) {
    match record {
        Record::Message { envelope, state, body, body_offset } => {
            let location =
                Location { segment, body_offset: offset + body_offset, body_len: body.len() as u64, record_len: len };
            index.insert(Arc::from(envelope), state, location);
        }
        // A state for an unknown id belongs to a message relocated later in the log;
        // its relocated copy carries the state current at the time.
        Record::State { id, state } => {
            index.set_state(id, state);
        }
        Record::Removed { id } => {
            index.remove(id);
        }
        Record::Padding => {}
    }
}

fn set_aside(dir: &QueueDir, segment: SegmentId) -> io::Result<()> {
    fs::rename(dir.segment_path(segment), dir.corrupt().join(aside_name(segment)))
}

fn copy_aside(dir: &QueueDir, segment: SegmentId) -> io::Result<()> {
    fs::copy(dir.segment_path(segment), dir.corrupt().join(aside_name(segment))).map(|_| ())
}

fn aside_name(segment: SegmentId) -> String {
    let now = crate::clock::now_secs();
    format!("{}.{now}", segment.file_name())
}
