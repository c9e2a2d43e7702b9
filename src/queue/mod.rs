//! The durable queue: an append-only log of segments in a versioned, checksummed
//! format, with an in-memory index of the live messages.

mod buffer;
mod dir;
pub mod format;
mod ids;
mod index;
mod inspect;
mod lock;
mod replay;
mod segment;
mod segment_id;
mod state;
mod store;
mod writer;

pub use buffer::{BufferStatus, MEMORY_THRESHOLD, MessageBuffer};
pub use dir::QueueDir;
pub use ids::IdGenerator;
pub use index::{Entry, Location};
pub use inspect::{Snapshot, snapshot};
pub use replay::Damage;
pub use segment_id::SegmentId;
pub use state::{Diagnostic, Hold, MessageState, RecipientState, RecipientStatus};
pub use store::{OpenReport, Queue, StoreError};
pub use writer::StoredBody;
