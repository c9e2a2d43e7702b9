//! The queue's writer thread: the only code that appends to the log.
//!
//! Group commit: whatever was submitted while the previous batch was being synced goes
//! out as one batch, one write and one fdatasync for all of it. Creating and syncing a
//! file per message costs an inode allocation, a data flush and a directory flush each;
//! a batch of appends costs one flush, which is what lets the server acknowledge
//! thousands of messages a second with every one of them on disk first.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::buffer::MessageBuffer;
use super::dir::QueueDir;
use super::format;
use super::index::{Index, Location};
use super::lock::QueueLock;
use super::segment;
use super::segment_id::SegmentId;
use super::state::MessageState;
use crate::mail::Envelope;
use crate::mail::QueueId;

/// A new segment is started once the active one would grow past this.
pub const MAX_SEGMENT_LEN: u64 = 64 << 20;
const MAX_BATCH_JOBS: usize = 512;
/// Bytes of message content gathered into one batch at most.
const MAX_BATCH_BYTES: u64 = 32 << 20;

pub enum Op {
    Store {
        envelope: Arc<Envelope>,
        state: MessageState,
        prefix: Vec<u8>,
        body: StoredBody,
    },
    SetState {
        id: QueueId,
        state: MessageState,
    },
    Remove {
        id: QueueId,
    },
    /// Copy a live message to the active segment so its old segment can go.
    Relocate {
        id: QueueId,
    },
}

impl Op {
    fn content_len(&self) -> u64 {
        match self {
            Op::Store { prefix, body, .. } => prefix.len() as u64 + body.len(),
            _ => 0,
        }
    }
}

/// The message bytes that follow the prefix.
pub enum StoredBody {
    /// What the client sent, from offset `skip` (past a header section a plugin
    /// rewrote, for example).
    Received { content: Arc<MessageBuffer>, skip: u64 },
    /// A body a plugin supplied.
    Replaced(Vec<u8>),
}

impl StoredBody {
    pub fn len(&self) -> u64 {
        match self {
            StoredBody::Received { content, skip } => content.len().saturating_sub(*skip),
            StoredBody::Replaced(bytes) => bytes.len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct Job {
    pub op: Op,
    pub done: Option<oneshot::Sender<io::Result<()>>>,
}

/// Open segment files for reading, shared with readers so the writer can drop the
/// handle of a segment it deletes.
pub type SegmentFiles = Mutex<HashMap<SegmentId, Arc<File>>>;

/// Where the ids of newly stored messages go once they are durable (the delivery
/// scheduler). Sending on an unbounded tokio channel never blocks this thread.
pub type StoredNotifier = Arc<Mutex<Option<tokio::sync::mpsc::UnboundedSender<QueueId>>>>;

pub struct Writer {
    pub dir: QueueDir,
    pub index: Arc<Mutex<Index>>,
    pub files: Arc<SegmentFiles>,
    pub stored: StoredNotifier,
    pub active: File,
    pub active_id: SegmentId,
    pub active_len: u64,
    /// Every segment on disk, oldest first; the last is the active one.
    pub segments: VecDeque<SegmentId>,
    /// Held for as long as this thread may append: one writer per queue.
    pub _lock: QueueLock,
}

/// What encoding a job produced, relative to the batch buffer.
enum Planned {
    /// `fresh` is a newly stored message, not a relocated copy.
    Message {
        envelope: Arc<Envelope>,
        state: MessageState,
        rel_offset: u64,
        layout: format::MessageLayout,
        fresh: bool,
    },
    State {
        id: QueueId,
        state: MessageState,
    },
    Removed {
        id: QueueId,
    },
}

fn lock(index: &Mutex<Index>) -> std::sync::MutexGuard<'_, Index> {
    index.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn copy_error(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}

impl Writer {
    pub fn run(mut self, jobs: &Receiver<Job>) {
        let mut batch = Vec::with_capacity(MAX_BATCH_JOBS);
        while let Ok(first) = jobs.recv() {
            let mut bytes = first.op.content_len();
            batch.push(first);
            while batch.len() < MAX_BATCH_JOBS && bytes < MAX_BATCH_BYTES {
                match jobs.try_recv() {
                    Ok(job) => {
                        bytes += job.op.content_len();
                        batch.push(job);
                    }
                    Err(_) => break,
                }
            }
            self.commit(std::mem::take(&mut batch));
            self.collect_garbage();
        }
    }

    fn encode(&self, op: &Op, buf: &mut Vec<u8>) -> io::Result<Planned> {
        let rel_offset = buf.len() as u64;
        match op {
            Op::Store { envelope, state, prefix, body } => {
                let layout = match body {
                    StoredBody::Replaced(bytes) => format::encode_message(buf, envelope, state, &[prefix, bytes])?,
                    StoredBody::Received { content, skip } => {
                        let (head, spilled) = received_parts(content, *skip)?;
                        format::encode_message(buf, envelope, state, &[prefix, head, &spilled])?
                    }
                };
                Ok(Planned::Message {
                    envelope: Arc::clone(envelope),
                    state: state.clone(),
                    rel_offset,
                    layout,
                    fresh: true,
                })
            }
            Op::SetState { id, state } => {
                if lock(&self.index).get(*id).is_none() {
                    return Err(io::Error::new(io::ErrorKind::NotFound, format!("no message {id} in the queue")));
                }
                format::encode_state(buf, *id, state)?;
                Ok(Planned::State { id: *id, state: state.clone() })
            }
            Op::Remove { id } => {
                if lock(&self.index).get(*id).is_none() {
                    return Err(io::Error::new(io::ErrorKind::NotFound, format!("no message {id} in the queue")));
                }
                format::encode_removed(buf, *id)?;
                Ok(Planned::Removed { id: *id })
            }
            Op::Relocate { id } => {
                let (envelope, state, location) = {
                    let index = lock(&self.index);
                    let entry = index
                        .get(*id)
                        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no message {id}")))?;
                    (Arc::clone(&entry.envelope), entry.state.clone(), entry.location)
                };
                let mut body = vec![0u8; location.body_len as usize];
                File::open(self.dir.segment_path(location.segment))?.read_exact_at(&mut body, location.body_offset)?;
                let layout = format::encode_message(buf, &envelope, &state, &[&body])?;
                Ok(Planned::Message { envelope, state, rel_offset, layout, fresh: false })
            }
        }
    }

    fn commit(&mut self, batch: Vec<Job>) {
        let mut buf = Vec::with_capacity(batch.iter().map(|j| j.op.content_len() as usize + 1024).sum());
        let mut planned = Vec::with_capacity(batch.len());
        for job in batch {
            let mark = buf.len();
            let plan = self.encode(&job.op, &mut buf);
            if plan.is_err() {
                buf.truncate(mark);
            }
            planned.push((job, plan));
        }
        if buf.is_empty() {
            for (job, plan) in planned {
                finish(job, plan.map(|_| ()));
            }
            return;
        }
        let written = self.append(&buf);
        let mut fresh_ids = Vec::new();
        let mut index = lock(&self.index);
        for (job, plan) in planned {
            let result = match (plan, &written) {
                (Err(e), _) => Err(e),
                (Ok(_), Err(e)) => Err(copy_error(e)),
                (Ok(plan), Ok(base)) => {
                    match plan {
                        Planned::Message { envelope, state, rel_offset, layout, fresh } => {
                            if fresh {
                                fresh_ids.push(envelope.id);
                            }
                            let record_start = base + rel_offset;
                            let location = Location {
                                segment: self.active_id,
                                body_offset: record_start + layout.body_offset,
                                body_len: layout.body_len,
                                record_len: layout.record_len,
                            };
                            index.insert(envelope, state, location);
                        }
                        Planned::State { id, state } => {
                            index.set_state(id, state);
                        }
                        Planned::Removed { id } => {
                            index.remove(id);
                        }
                    }
                    Ok(())
                }
            };
            finish(job, result);
        }
        drop(index);
        if !fresh_ids.is_empty()
            && let Some(sender) = self.stored.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
        {
            for id in fresh_ids {
                let _ = sender.send(id);
            }
        }
    }

    /// Appends `buf` durably; returns the offset it starts at. On failure nothing of it
    /// is left in the log.
    fn append(&mut self, buf: &[u8]) -> io::Result<u64> {
        if self.active_len > format::SEGMENT_HEADER_LEN && self.active_len + buf.len() as u64 > MAX_SEGMENT_LEN {
            self.rotate()?;
        }
        let base = self.active_len;
        if let Err(e) = self.active.write_all_at(buf, base) {
            // A short write (disk full) must not leave half a record behind.
            if self.active.set_len(base).is_err() {
                self.abandon_active();
            }
            return Err(e);
        }
        if let Err(e) = self.active.sync_data() {
            // After a failed fsync the kernel may have dropped the dirty pages; what is
            // on disk is unknown. Cut the batch off and continue in a fresh segment.
            let _ = self.active.set_len(base);
            self.abandon_active();
            return Err(e);
        }
        self.active_len = base + buf.len() as u64;
        Ok(base)
    }

    /// Stops appending to a segment we cannot trust to take more writes.
    fn abandon_active(&mut self) {
        if let Err(error) = self.rotate() {
            tracing::error!(%error, "cannot start a new queue segment");
        }
    }

    fn rotate(&mut self) -> io::Result<()> {
        let next = self.active_id.next();
        self.active = segment::create(&self.dir, next)?;
        self.active_id = next;
        self.active_len = format::SEGMENT_HEADER_LEN;
        self.segments.push_back(next);
        tracing::debug!(segment = %next, "new queue segment");
        Ok(())
    }

    /// Deletes segments with nothing live in them, oldest first, and moves the last
    /// few live messages out of an old segment that is mostly dead. Deleting strictly
    /// in order keeps replay correct: a segment's removals and state changes only
    /// concern messages in it or in older segments.
    fn collect_garbage(&mut self) {
        while let Some(&oldest) = self.segments.front() {
            if oldest == self.active_id {
                return;
            }
            let usage = lock(&self.index).usage(oldest);
            if usage.live == 0 {
                let path = self.dir.segment_path(oldest);
                if let Err(error) = fs::remove_file(&path) {
                    tracing::warn!(%error, path = %path.display(), "cannot delete queue segment");
                    return;
                }
                lock(&self.index).drop_segment(oldest);
                self.files.lock().unwrap_or_else(|p| p.into_inner()).remove(&oldest);
                self.segments.pop_front();
                continue;
            }
            let size = fs::metadata(self.dir.segment_path(oldest)).map_or(0, |m| m.len());
            if self.segments.len() > 2 && usage.live_bytes * 2 < size {
                let ids = lock(&self.index).ids_in(oldest);
                tracing::debug!(segment = %oldest, messages = ids.len(), "relocating live messages");
                let jobs = ids.into_iter().map(|id| Job { op: Op::Relocate { id }, done: None }).collect();
                self.commit(jobs);
                if lock(&self.index).usage(oldest).live == 0 {
                    continue;
                }
            }
            return;
        }
    }
}

/// The received bytes from `skip` on: the in-memory part, and the spilled part read
/// from its file.
fn received_parts(content: &MessageBuffer, skip: u64) -> io::Result<(&[u8], Vec<u8>)> {
    let head = content.head();
    let head_skip = (skip as usize).min(head.len());
    let spilled = match content.spill_file() {
        Some(path) => {
            let mut bytes = Vec::new();
            File::open(path)?.read_to_end(&mut bytes)?;
            let spill_skip = (skip as usize).saturating_sub(head.len()).min(bytes.len());
            bytes.drain(..spill_skip);
            bytes
        }
        None => Vec::new(),
    };
    if (head.len() - head_skip + spilled.len()) as u64 != content.len().saturating_sub(skip) {
        return Err(io::Error::other("spill file changed size"));
    }
    Ok((&head[head_skip..], spilled))
}

fn finish(job: Job, result: io::Result<()>) {
    if let Some(done) = job.done {
        let _ = done.send(result);
    }
}
