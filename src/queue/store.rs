//! The queue as the server sees it: store accepted messages durably, change their
//! state, remove them when done, and read them back.

use std::collections::VecDeque;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use super::buffer::MessageBuffer;
use super::dir::QueueDir;
use super::format;
use super::ids::IdGenerator;
use super::index::{Entry, Index};
use super::lock::QueueLock;
use super::replay::{self, Damage, Mode};
use super::segment;
use super::segment_id::SegmentId;
use super::state::MessageState;
use super::writer::{Job, Op, SegmentFiles, StoredBody, StoredNotifier, Writer};
use crate::mail::Envelope;
use crate::mail::QueueId;

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

/// What opening the queue found.
#[derive(Debug, Default)]
pub struct OpenReport {
    pub messages: usize,
    pub segments: usize,
    pub damage: Vec<Damage>,
    pub torn_tail: u64,
    pub cleared_tmp: usize,
}

pub struct Queue {
    dir: QueueDir,
    ids: IdGenerator,
    index: Arc<Mutex<Index>>,
    files: Arc<SegmentFiles>,
    writer: Sender<Job>,
    stored: StoredNotifier,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("root", &self.dir.root()).finish_non_exhaustive()
    }
}

impl Queue {
    /// Opens the queue at `root` (creating it if needed) as its only writer: takes the
    /// lock, replays the log, repairs a torn tail, and starts the writer thread.
    pub fn open(root: &Path) -> io::Result<(Queue, OpenReport)> {
        let dir = QueueDir::create(root)?;
        let lock = QueueLock::acquire(&dir.lock_file())?;
        let cleared_tmp = dir.clear_tmp()?;
        let replayed = replay::replay(&dir, Mode::Repair)?;
        let report = OpenReport {
            messages: replayed.index.len(),
            segments: replayed.segments.len(),
            damage: replayed.damage.clone(),
            torn_tail: replayed.torn_tail,
            cleared_tmp,
        };
        for damage in &report.damage {
            tracing::error!(
                segment = %damage.segment,
                offset = damage.offset,
                error = %damage.error,
                "damaged queue record skipped; the segment was copied to corrupt/"
            );
        }
        let mut segments: VecDeque<SegmentId> = replayed.segments.iter().copied().collect();
        let (active_id, active, active_len) = match replayed.tail {
            Some((id, len)) if len < super::writer::MAX_SEGMENT_LEN => (id, segment::open_for_append(&dir, id)?, len),
            tail => {
                let id = tail.map_or(SegmentId(1), |(id, _)| id.next());
                let file = segment::create(&dir, id)?;
                segments.push_back(id);
                (id, file, format::SEGMENT_HEADER_LEN)
            }
        };
        let ids = IdGenerator::new(replayed.index.newest_id());
        let index = Arc::new(Mutex::new(replayed.index));
        let files = Arc::new(SegmentFiles::default());
        let stored = StoredNotifier::default();
        let writer = Writer {
            stored: Arc::clone(&stored),
            dir: dir.clone(),
            index: Arc::clone(&index),
            files: Arc::clone(&files),
            active,
            active_id,
            active_len,
            segments,
            _lock: lock,
        };
        let (sender, jobs) = std::sync::mpsc::channel();
        std::thread::Builder::new().name("queue-writer".into()).spawn(move || writer.run(&jobs))?;
        Ok((Queue { dir, ids, index, files, writer: sender, stored }, report))
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

    /// Hands `op` to the writer at once (so writes land in call order, even when the
    /// returned futures are awaited elsewhere or later) and returns the wait for it.
    fn submit(&self, op: Op) -> impl Future<Output = io::Result<()>> + Send + 'static + use<> {
        let (done, result) = oneshot::channel();
        let sent = self.writer.send(Job { op, done: Some(done) }).is_ok();
        async move {
            let stopped = || io::Error::other("the queue writer stopped");
            if !sent {
                return Err(stopped());
            }
            result.await.map_err(|_| stopped())?
        }
    }

    /// Ids of newly stored messages, sent once each is durable. Subscribe before
    /// reading [`Self::entries`] so that nothing falls between the two (a message
    /// stored in between shows up in both). Only the latest subscriber is told.
    pub fn subscribe(&self) -> tokio::sync::mpsc::UnboundedReceiver<QueueId> {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        *self.stored.lock().unwrap_or_else(|p| p.into_inner()) = Some(sender);
        receiver
    }

    /// Writes the message (`prefix`, typically our `Received:` header, then the
    /// received content) durably under `envelope.id`. Returns only once it is on disk.
    pub async fn store(
        &self,
        envelope: Envelope,
        state: MessageState,
        prefix: Vec<u8>,
        body: StoredBody,
    ) -> Result<(), StoreError> {
        let op = Op::Store { envelope: Arc::new(envelope), state, prefix, body };
        self.submit(op).await.map_err(StoreError::from)
    }

    /// Replaces a message's state durably. The write is queued when this is called;
    /// the future resolves once it is on disk.
    pub fn set_state(&self, id: QueueId, state: MessageState) -> impl Future<Output = io::Result<()>> + Send + use<> {
        self.submit(Op::SetState { id, state })
    }

    /// Removes a finished message durably (queued at the call, like [`Self::set_state`]).
    pub fn remove(&self, id: QueueId) -> impl Future<Output = io::Result<()>> + Send + use<> {
        self.submit(Op::Remove { id })
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the queue's file system takes writes right now (for readiness checks).
    pub fn check_writable(&self) -> io::Result<()> {
        let probe = self.dir.tmp().join(format!("ready-probe-{}", std::process::id()));
        std::fs::write(&probe, b"ok")?;
        std::fs::remove_file(&probe)
    }

    pub fn len(&self) -> usize {
        self.index().len()
    }

    pub fn is_empty(&self) -> bool {
        self.index().is_empty()
    }

    pub fn get(&self, id: QueueId) -> Option<Entry> {
        self.index().get(id).cloned()
    }

    /// Every live message, oldest first.
    pub fn entries(&self) -> Vec<Entry> {
        self.index().iter().map(|(_, e)| e.clone()).collect()
    }

    /// Reads a message's bytes (as stored: our `Received:` header first).
    pub fn read_message(&self, id: QueueId) -> io::Result<Vec<u8>> {
        let (file, location) = {
            let index = self.index();
            let entry =
                index.get(id).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no message {id}")))?;
            // Taking the handle under the index lock: the writer deletes a segment only
            // under that lock, and an open handle stays readable after deletion.
            let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
            let file = match files.get(&entry.location.segment) {
                Some(file) => Arc::clone(file),
                None => {
                    let file = Arc::new(std::fs::File::open(self.dir.segment_path(entry.location.segment))?);
                    files.insert(entry.location.segment, Arc::clone(&file));
                    file
                }
            };
            (file, entry.location)
        };
        let mut body = vec![0u8; location.body_len as usize];
        file.read_exact_at(&mut body, location.body_offset)?;
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, OpenOptions};
    use std::io::Write;

    use super::*;
    use crate::mail::envelope::test_envelope as envelope;
    use crate::queue::state::Hold;

    async fn store(queue: &Queue, body: &[u8]) -> QueueId {
        let id = queue.next_id();
        let mut buffer = queue.new_buffer(id, 64 << 20);
        buffer.writer().extend_from_slice(body);
        buffer.absorb().await;
        buffer.finish().await;
        let body = StoredBody::Received { content: Arc::new(buffer), skip: 0 };
        queue.store(envelope(id), MessageState::default(), b"Received: x\r\n".to_vec(), body).await.unwrap();
        id
    }

    fn segment_files(root: &Path) -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = fs::read_dir(root.join("segments")).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        files
    }

    #[tokio::test]
    async fn store_read_update_remove_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c);
        {
            let (queue, report) = Queue::open(dir.path()).unwrap();
            assert_eq!(report.messages, 0);
            a = store(&queue, b"first\r\n").await;
            b = store(&queue, b"second\r\n").await;
            c = store(&queue, &vec![b'z'; 600_000]).await;
            assert_eq!(queue.read_message(a).unwrap(), b"Received: x\r\nfirst\r\n");
            assert_eq!(queue.read_message(c).unwrap().len(), 600_000 + 13);
            let held = MessageState { hold: Some(Hold::Held), ..MessageState::default() };
            queue.set_state(b, held.clone()).await.unwrap();
            queue.remove(a).await.unwrap();
            assert_eq!(queue.remove(a).await.unwrap_err().kind(), io::ErrorKind::NotFound);
            assert!(queue.set_state(a, held).await.is_err());
            assert_eq!(queue.len(), 2);
            // The lock keeps a second writer out.
            assert!(Queue::open(dir.path()).is_err());
        }
        // The writer thread ends with the channel; give it a moment to close its files.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (queue, report) = Queue::open(dir.path()).unwrap();
        assert_eq!(report.messages, 2);
        assert!(report.damage.is_empty());
        assert!(queue.get(a).is_none());
        assert_eq!(queue.get(b).unwrap().state.hold, Some(Hold::Held));
        assert_eq!(queue.read_message(b).unwrap(), b"Received: x\r\nsecond\r\n");
        assert!(queue.next_id() > c, "ids keep increasing across restarts");
        let snapshot = crate::queue::snapshot(dir.path()).unwrap();
        assert_eq!(snapshot.messages.len(), 2);
        assert_eq!(snapshot.read_message(&snapshot.messages[0]).unwrap(), b"Received: x\r\nsecond\r\n");
    }

    #[tokio::test]
    async fn a_torn_tail_is_cut_and_damage_in_the_middle_is_skipped_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<QueueId> = {
            let (queue, _) = Queue::open(dir.path()).unwrap();
            let mut ids = Vec::new();
            for i in 0..3 {
                ids.push(store(&queue, format!("message {i}\r\n").as_bytes()).await);
            }
            ids
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        let segment = segment_files(dir.path()).pop().unwrap();
        let clean_len = fs::metadata(&segment).unwrap().len();
        // A torn write: half a record at the end.
        OpenOptions::new().append(true).open(&segment).unwrap().write_all(b"SQRC\x01\0\0\0\xff\0\0\0partial").unwrap();
        {
            let (queue, report) = Queue::open(dir.path()).unwrap();
            assert_eq!(report.messages, 3);
            assert!(report.damage.is_empty());
            assert!(report.torn_tail > 0);
            assert_eq!(queue.len(), 3);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(fs::metadata(&segment).unwrap().len(), clean_len, "torn tail truncated");
        // Damage in the middle record: it is skipped, the others survive, a copy is kept.
        let mut bytes = fs::read(&segment).unwrap();
        let second = memchr::memmem::find_iter(&bytes, b"SQRC").nth(1).unwrap();
        bytes[second + 40] ^= 0xff;
        fs::write(&segment, &bytes).unwrap();
        let (queue, report) = Queue::open(dir.path()).unwrap();
        assert_eq!(report.damage.len(), 1);
        assert!(queue.get(ids[0]).is_some());
        assert!(queue.get(ids[1]).is_none(), "a damaged message is never delivered");
        assert!(queue.get(ids[2]).is_some());
        assert_eq!(fs::read_dir(dir.path().join("corrupt")).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn segments_rotate_and_dead_ones_are_deleted_while_live_messages_move() {
        let dir = tempfile::tempdir().unwrap();
        let (queue, _) = Queue::open(dir.path()).unwrap();
        let big = vec![b'x'; 8 << 20];
        let keep = store(&queue, b"long-lived\r\n").await;
        let mut done = Vec::new();
        for _ in 0..30 {
            done.push(store(&queue, &big).await);
        }
        assert!(segment_files(dir.path()).len() >= 3, "rotated");
        for id in done {
            queue.remove(id).await.unwrap();
        }
        // One more write lets the writer collect garbage after it.
        let last = store(&queue, b"last\r\n").await;
        let files = segment_files(dir.path());
        assert!(files.len() <= 2, "dead segments deleted: {files:?}");
        assert_eq!(queue.read_message(keep).unwrap(), b"Received: x\r\nlong-lived\r\n");
        assert_eq!(queue.read_message(last).unwrap(), b"Received: x\r\nlast\r\n");
        drop(queue);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (queue, report) = Queue::open(dir.path()).unwrap();
        assert_eq!(report.messages, 2);
        assert_eq!(queue.read_message(keep).unwrap(), b"Received: x\r\nlong-lived\r\n");
    }
}
