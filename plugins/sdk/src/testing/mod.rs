//! Helpers for plugins' host tests (`cargo test`), behind the feature `testing`: list
//! the SDK again under `[dev-dependencies]` with `features = ["testing"]`.
//!
//! A session and a transaction to call hooks with, config values built by hand or from TOML text (as the server would hand them over),
//! a resolver answering from a table, mail-authentication results from a table, an
//! in-memory store with the host's semantics, and an HTTP peer answering from a script.

mod auth;
mod dns;
mod envelope;
mod http;
mod kv;
mod values;

pub use auth::FakeAuth;
pub use dns::FakeDns;
pub use envelope::{session, transaction};
pub use http::{FakeHttp, SentRequest};
pub use kv::MemoryKv;
pub use values::{from_toml, list, parse_clean, read_fixture, strings, table, text};
