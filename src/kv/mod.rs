//! The key/value store behind the plugins' `kv` interface: namespaced per plugin, with
//! TTLs and atomic increments, for greylisting and rate limits.

mod memory;

use std::time::Duration;

pub use memory::MemoryKv;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The backend cannot be reached or failed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The request itself is wrong (for example, incrementing a non-integer).
    #[error("{0}")]
    Invalid(String),
}

/// The configured backend.
#[derive(Debug)]
pub enum KvStore {
    Memory(MemoryKv),
}

impl KvStore {
    pub fn memory() -> KvStore {
        KvStore::Memory(MemoryKv::default())
    }

    pub async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        match self {
            KvStore::Memory(kv) => Ok(kv.get(namespace, key)),
        }
    }

    pub async fn set(&self, namespace: &str, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<(), KvError> {
        match self {
            KvStore::Memory(kv) => {
                kv.set(namespace, key, value, ttl);
                Ok(())
            }
        }
    }

    pub async fn increment(
        &self,
        namespace: &str,
        key: &str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> Result<i64, KvError> {
        match self {
            KvStore::Memory(kv) => kv.increment(namespace, key, delta, ttl),
        }
    }

    pub async fn delete(&self, namespace: &str, key: &str) -> Result<bool, KvError> {
        match self {
            KvStore::Memory(kv) => Ok(kv.delete(namespace, key)),
        }
    }
}
