//! The durable queue: accepted messages on disk, in a versioned, checksummed format.

mod buffer;
mod dir;
mod dir_sync;
pub mod format;
mod id;
mod recovery;
mod spool;

pub use buffer::{BufferStatus, MEMORY_THRESHOLD, MessageBuffer};
pub use dir::{Listed, QueueDir};
pub use id::{IdGenerator, QueueId};
pub use recovery::{Recovery, recover};
pub use spool::{Spool, StoreError};
