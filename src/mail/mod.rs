//! The vocabulary of a mail transaction shared by every stage: addresses, ESMTP
//! parameters and the envelope that travels with a message into the queue.

pub mod address;
pub mod envelope;
pub mod params;
pub mod queue_id;

pub use address::Mailbox;
pub use envelope::{ClientInfo, Envelope, Recipient, RouteChoice, TlsInfo};
pub use queue_id::QueueId;
