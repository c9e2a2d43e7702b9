//! The WebAssembly plugin host: loads the configured chain of components, runs them at
//! each SMTP stage under strict budgets, and turns their verdicts and rewrites into
//! what the server does.

pub mod apply;
pub mod bindings;
mod cache;
mod chain;
mod effects;
mod engine;
mod header_section;
mod hooks;
mod host;
mod http;
mod idle;
mod imports;
mod instance;
mod lift_limit;
mod loader;
pub mod message;
pub mod output;
mod part_info;
mod penalty;
mod quota_hits;
pub mod rewrite;
mod shared;
mod single_part;
mod stage;
mod state;
mod version;

pub use chain::{Annotation, CallRecord, DataChanges, Decision, Notes, PluginSession, TxnView};
pub use host::PluginHost;
pub use http::RESULTS as HTTP_RESULTS;
pub use instance::Failure;
pub use loader::{LoadError, LoadedPlugin};
pub use quota_hits::QUOTAS as PLUGIN_QUOTAS;
pub use shared::Services;
pub use stage::{Stage, StageSet};
pub use version::{Interface, Line};
