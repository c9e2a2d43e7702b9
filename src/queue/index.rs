//! The in-memory view of the queue: every live message, where its bytes are, and its
//! current state. It is rebuilt from the log at start and kept in step by the writer.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::segment_id::SegmentId;
use super::state::MessageState;
use crate::mail::Envelope;
use crate::mail::QueueId;

/// Where a message's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub segment: SegmentId,
    /// Offset of the message bytes in the segment file, and their length.
    pub body_offset: u64,
    pub body_len: u64,
    /// Length of the whole record (for accounting dead space).
    pub record_len: u64,
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub envelope: Arc<Envelope>,
    pub state: MessageState,
    pub location: Location,
}

/// Per-segment bookkeeping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentUsage {
    /// Live messages whose bytes are in this segment.
    pub live: usize,
    /// Bytes of those messages' records.
    pub live_bytes: u64,
}

#[derive(Debug, Default)]
pub struct Index {
    entries: BTreeMap<QueueId, Entry>,
    usage: HashMap<SegmentId, SegmentUsage>,
}

impl Index {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, id: QueueId) -> Option<&Entry> {
        self.entries.get(&id)
    }

    /// Live messages, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (&QueueId, &Entry)> {
        self.entries.iter()
    }

    pub fn newest_id(&self) -> Option<QueueId> {
        self.entries.keys().next_back().copied()
    }

    pub fn usage(&self, segment: SegmentId) -> SegmentUsage {
        self.usage.get(&segment).copied().unwrap_or_default()
    }

    /// Adds a message, or moves it if it is already known (a relocated copy).
    pub fn insert(&mut self, envelope: Arc<Envelope>, state: MessageState, location: Location) {
        let id = envelope.id;
        if let Some(old) = self.entries.insert(id, Entry { envelope, state, location }) {
            self.forget_location(old.location);
        }
        let usage = self.usage.entry(location.segment).or_default();
        usage.live += 1;
        usage.live_bytes += location.record_len;
    }

    /// Replaces a message's state; unknown ids are ignored (see [`Self::apply_state`]).
    pub fn set_state(&mut self, id: QueueId, state: MessageState) -> bool {
        match self.entries.get_mut(&id) {
            Some(entry) => {
                entry.state = state;
                true
            }
            None => false,
        }
    }

    pub fn remove(&mut self, id: QueueId) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        self.forget_location(entry.location);
        Some(entry)
    }

    fn forget_location(&mut self, location: Location) {
        if let Some(usage) = self.usage.get_mut(&location.segment) {
            usage.live = usage.live.saturating_sub(1);
            usage.live_bytes = usage.live_bytes.saturating_sub(location.record_len);
        }
    }

    /// Messages whose bytes are in `segment`.
    pub fn ids_in(&self, segment: SegmentId) -> Vec<QueueId> {
        self.entries.iter().filter(|(_, e)| e.location.segment == segment).map(|(id, _)| *id).collect()
    }

    pub fn drop_segment(&mut self, segment: SegmentId) {
        self.usage.remove(&segment);
    }
}
