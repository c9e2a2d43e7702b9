//! The durable queue: an append-only log of segments in a versioned, checksummed
//! format, with an in-memory index of the live messages.

mod buffer;
mod dir;
pub mod format;
mod id;
mod index;
mod inspect;
mod lock;
mod replay;
mod segment;
mod state;
mod store;
mod writer;

pub use buffer::{BufferStatus, MEMORY_THRESHOLD, MessageBuffer};
pub use dir::QueueDir;
pub use id::{IdGenerator, QueueId};
pub use index::{Entry, Location};
pub use inspect::{Snapshot, snapshot};
pub use replay::Damage;
pub use segment::SegmentId;
pub use state::{Diagnostic, Hold, MessageState, RecipientState, RecipientStatus};
pub use store::{OpenReport, Queue, StoreError};
pub use writer::StoredBody;
