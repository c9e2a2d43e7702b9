//! Running the plugin chain at each stage of one SMTP session, in configuration order,
//! with the verdict rules of the WIT contract and each plugin's `on_error` policy.
//!
//! One loop (`runner`) serves every stage; what differs between stages is only what a
//! plugin is called with and what it may change (`stages`).

mod caller;
mod changes;
mod decision;
mod notes;
mod on_error;
mod runner;
mod session;
mod stages;
mod verdict;
mod wit_input;

pub use caller::CallRecord;
pub use changes::DataChanges;
pub use decision::Decision;
pub use notes::{Annotation, Notes};
pub use session::PluginSession;
pub use wit_input::TxnView;
