//! The plugin's key/value store (grant: `kv`).
//!
//! Plugin logic takes `&mut impl Kv`: [`HostKv`] in the plugin, an in-memory store
//! (`testing::MemoryKv`) in host tests. The raw host functions are here too.

use std::fmt;
use std::time::Duration;

pub use crate::bindings::sluice::plugin::kv::{Error, delete, get, increment, set};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvError {
    /// The store is unavailable.
    Unavailable(String),
    /// A key or value over the host's limits, or a non-integer under `increment`.
    Invalid(String),
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::Unavailable(why) => write!(f, "store unavailable: {why}"),
            KvError::Invalid(why) => write!(f, "invalid request: {why}"),
        }
    }
}

impl From<Error> for KvError {
    fn from(error: Error) -> Self {
        match error {
            Error::Unavailable(why) => KvError::Unavailable(why),
            Error::Invalid(why) => KvError::Invalid(why),
        }
    }
}

/// The store's operations, as plugin logic uses them.
pub trait Kv {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    fn set(&mut self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), KvError>;
    /// Adds `delta` atomically and returns the new value; `ttl` applies when the key is
    /// created.
    fn increment(&mut self, key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64, KvError>;
}

/// The longest TTL handed to the store: ten years. A configured `pass_ttl = "100000w"`
/// then means "practically forever" instead of an overflow in some backend.
pub const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 86_400);

/// Milliseconds for the host's `ttl-ms`: at least 1 (0 would expire at once), at most
/// [`MAX_TTL`].
pub fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.min(MAX_TTL).as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The host's store.
pub struct HostKv;

impl Kv for HostKv {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        get(key).map_err(KvError::from)
    }
    fn set(&mut self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), KvError> {
        set(key, value, ttl.map(ttl_ms)).map_err(KvError::from)
    }
    fn increment(&mut self, key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64, KvError> {
        increment(key, delta, ttl.map(ttl_ms)).map_err(KvError::from)
    }
}
