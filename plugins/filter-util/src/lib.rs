//! Helpers shared by Sluice's filter plugins (dnsbl, helo-checks, greylist, rate-limit,
//! attachment-guard, spam-score).
//!
//! Plain Rust with no dependency on the plugin bindings: everything here runs and tests
//! on the host. Plugins map their `config::Value`s to the `&str`s these functions take.

pub mod clock;
pub mod domain;
pub mod duration;
pub mod key;
pub mod kv;
pub mod net;
pub mod reply;
pub mod size;
