//! The key/value store behind the plugins' `kv` interface: namespaced per plugin, with
//! TTLs and atomic increments, for greylisting and rate limits. Embedded (redb, on this
//! node) by default; Redis when several nodes must share it.

mod embedded;
mod memory;
mod redis;

use std::time::Duration;

pub use embedded::EmbeddedKv;
pub use memory::MemoryKv;
pub use redis::RedisKv;

use crate::config::{KvBackend, KvConfig};

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
    /// In-process only: for the offline plugin runner and tests.
    Memory(MemoryKv),
    Embedded(EmbeddedKv),
    Redis(RedisKv),
}

impl KvStore {
    pub fn memory() -> KvStore {
        KvStore::Memory(MemoryKv::default())
    }

    /// Opens the store `[kv]` describes.
    pub fn open(config: &KvConfig) -> Result<KvStore, KvError> {
        match config.backend {
            KvBackend::Embedded => {
                let path = config.path.clone().unwrap_or_else(|| "kv.redb".into());
                Ok(KvStore::Embedded(EmbeddedKv::open(&path)?))
            }
            KvBackend::Redis => {
                let url =
                    config.url.as_deref().ok_or_else(|| KvError::Invalid("[kv] url is required for redis".into()))?;
                Ok(KvStore::Redis(RedisKv::new(url, &config.key_prefix, config.timeout.get())?))
            }
        }
    }

    pub async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        match self {
            KvStore::Memory(kv) => Ok(kv.get(namespace, key)),
            KvStore::Embedded(kv) => kv.get(namespace, key),
            KvStore::Redis(kv) => kv.get(namespace, key).await,
        }
    }

    pub async fn set(&self, namespace: &str, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<(), KvError> {
        match self {
            KvStore::Memory(kv) => {
                kv.set(namespace, key, value, ttl);
                Ok(())
            }
            KvStore::Embedded(kv) => kv.set(namespace, key, &value, ttl),
            KvStore::Redis(kv) => kv.set(namespace, key, value, ttl).await,
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
            KvStore::Embedded(kv) => kv.increment(namespace, key, delta, ttl),
            KvStore::Redis(kv) => kv.increment(namespace, key, delta, ttl).await,
        }
    }

    pub async fn delete(&self, namespace: &str, key: &str) -> Result<bool, KvError> {
        match self {
            KvStore::Memory(kv) => Ok(kv.delete(namespace, key)),
            KvStore::Embedded(kv) => kv.delete(namespace, key),
            KvStore::Redis(kv) => kv.delete(namespace, key).await,
        }
    }
}
