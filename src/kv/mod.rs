//! The key/value store behind the plugins' `kv` interface: namespaced per plugin, with
//! TTLs and atomic increments, for greylisting and rate limits. Embedded (redb, on this
//! node) by default; Redis when several nodes must share it.

mod embedded;
mod memory;
mod quota;
mod redis;

use std::time::Duration;

pub use embedded::EmbeddedKv;
pub use memory::MemoryKv;
pub use quota::{Limit, Usage};
pub use redis::RedisKv;

use quota::{COUNTER_BYTES, Change, Ledger};

use crate::config::{KvBackend, KvConfig};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The backend cannot be reached or failed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The request itself is wrong (for example, incrementing a non-integer).
    #[error("{0}")]
    Invalid(String),
    /// The write does not fit the namespace's quota; nothing was written.
    #[error("{0}")]
    OverQuota(String),
}

/// The configured backend.
#[derive(Debug)]
enum Backend {
    /// In-process only: for the offline plugin runner and tests.
    Memory(MemoryKv),
    Embedded(EmbeddedKv),
    Redis(RedisKv),
}

/// The store: a backend, and the ledger that holds each namespace to its quota.
#[derive(Debug)]
pub struct KvStore {
    backend: Backend,
    ledger: Ledger,
}

impl KvStore {
    fn with(backend: Backend) -> KvStore {
        KvStore { backend, ledger: Ledger::default() }
    }

    pub fn memory() -> KvStore {
        KvStore::with(Backend::Memory(MemoryKv::default()))
    }

    /// An in-process store whose TTLs follow `clock` (tests).
    pub fn memory_with_clock(clock: crate::clock::SharedClock) -> KvStore {
        KvStore::with(Backend::Memory(MemoryKv::with_clock(clock)))
    }

    /// Opens the store `[kv]` describes.
    pub fn open(config: &KvConfig) -> Result<KvStore, KvError> {
        match config.backend {
            KvBackend::Embedded => {
                let path = config.path.clone().unwrap_or_else(|| "kv.redb".into());
                Ok(KvStore::with(Backend::Embedded(EmbeddedKv::open(&path)?)))
            }
            KvBackend::Redis => {
                let url =
                    config.url.as_deref().ok_or_else(|| KvError::Invalid("[kv] url is required for redis".into()))?;
                Ok(KvStore::with(Backend::Redis(RedisKv::new(url, &config.key_prefix, config.timeout.get())?)))
            }
        }
    }

    pub async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        match &self.backend {
            Backend::Memory(kv) => Ok(kv.get(namespace, key)),
            Backend::Embedded(kv) => kv.get(namespace, key),
            Backend::Redis(kv) => kv.get(namespace, key).await,
        }
    }

    /// Writes `value` under `key` if the namespace stays within `limit`.
    pub async fn set(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
        limit: Limit,
    ) -> Result<(), KvError> {
        let change = self.admit(namespace, key, (key.len() + value.len()) as u64, limit).await?;
        let result = match &self.backend {
            Backend::Memory(kv) => {
                kv.set(namespace, key, value, ttl);
                Ok(())
            }
            Backend::Embedded(kv) => kv.set(namespace, key, &value, ttl),
            Backend::Redis(kv) => kv.set(namespace, key, value, ttl).await,
        };
        if result.is_err() {
            self.ledger.undo(namespace, change);
        }
        result
    }

    /// Adds `delta` to the counter under `key` if the namespace stays within `limit`
    /// (booked at the longest a counter can be, then corrected).
    pub async fn increment(
        &self,
        namespace: &str,
        key: &str,
        delta: i64,
        ttl: Option<Duration>,
        limit: Limit,
    ) -> Result<i64, KvError> {
        let booked = key.len() as u64 + COUNTER_BYTES;
        let change = self.admit(namespace, key, booked, limit).await?;
        let result = match &self.backend {
            Backend::Memory(kv) => kv.increment(namespace, key, delta, ttl),
            Backend::Embedded(kv) => kv.increment(namespace, key, delta, ttl),
            Backend::Redis(kv) => kv.increment(namespace, key, delta, ttl).await,
        };
        match &result {
            Ok(value) => self.ledger.correct(namespace, booked, (key.len() + value.to_string().len()) as u64),
            Err(_) => self.ledger.undo(namespace, change),
        }
        result
    }

    pub async fn delete(&self, namespace: &str, key: &str) -> Result<bool, KvError> {
        let size = self.size_of(namespace, key).await?;
        let removed = match &self.backend {
            Backend::Memory(kv) => Ok(kv.delete(namespace, key)),
            Backend::Embedded(kv) => kv.delete(namespace, key),
            Backend::Redis(kv) => kv.delete(namespace, key).await,
        }?;
        if let (true, Some(size)) = (removed, size) {
            self.ledger.removed(namespace, size);
        }
        Ok(removed)
    }

    /// Books a write of `new` bytes under `key`, counting the namespace first if it
    /// never was, and again (at most once a minute) before refusing.
    async fn admit(&self, namespace: &str, key: &str, new: u64, limit: Limit) -> Result<Change, KvError> {
        if self.ledger.uncounted(namespace) {
            self.recount(namespace).await?;
        }
        let change = Change { old: self.size_of(namespace, key).await?, new };
        match self.ledger.reserve(namespace, limit, change) {
            Ok(()) => Ok(change),
            Err(_) if self.ledger.recount_due(namespace) => {
                self.recount(namespace).await?;
                self.ledger.reserve(namespace, limit, change).map(|()| change).map_err(KvError::OverQuota)
            }
            Err(full) => Err(KvError::OverQuota(full)),
        }
    }

    async fn recount(&self, namespace: &str) -> Result<(), KvError> {
        let usage = match &self.backend {
            Backend::Memory(kv) => kv.usage(namespace),
            Backend::Embedded(kv) => kv.usage(namespace)?,
            Backend::Redis(kv) => kv.usage(namespace).await?,
        };
        self.ledger.counted(namespace, usage);
        Ok(())
    }

    async fn size_of(&self, namespace: &str, key: &str) -> Result<Option<u64>, KvError> {
        match &self.backend {
            Backend::Memory(kv) => Ok(kv.size_of(namespace, key)),
            Backend::Embedded(kv) => kv.size_of(namespace, key),
            Backend::Redis(kv) => kv.size_of(namespace, key).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Limit = Limit { keys: 3, bytes: 1000 };

    async fn fill(kv: &KvStore) {
        for i in 0..3 {
            kv.set("hog", &format!("k{i}"), vec![0; 100], None, LIMIT).await.unwrap();
        }
        let refused = kv.set("hog", "k3", vec![0; 100], None, LIMIT).await;
        assert!(matches!(refused, Err(KvError::OverQuota(_))), "{refused:?}");
        assert!(matches!(kv.increment("hog", "n", 1, None, LIMIT).await, Err(KvError::OverQuota(_))));
        assert_eq!(kv.get("hog", "k3").await.unwrap(), None, "nothing was written");
        // Existing keys may still be rewritten; others' namespaces are untouched.
        kv.set("hog", "k0", vec![1; 50], None, LIMIT).await.unwrap();
        assert_eq!(kv.increment("polite", "n", 1, None, LIMIT).await, Ok(1));
        assert!(kv.delete("hog", "k1").await.unwrap());
        kv.set("hog", "k3", vec![0; 100], None, LIMIT).await.unwrap();
    }

    #[tokio::test]
    async fn the_memory_store_holds_each_namespace_to_its_quota() {
        fill(&KvStore::memory()).await;
    }

    #[tokio::test]
    async fn the_embedded_store_holds_each_namespace_to_its_quota_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let config = KvConfig { path: Some(dir.path().join("kv.redb")), ..KvConfig::default() };
        fill(&KvStore::open(&config).unwrap()).await;
        let reopened = KvStore::open(&config).unwrap();
        let refused = reopened.set("hog", "k9", vec![0; 10], None, LIMIT).await;
        assert!(matches!(refused, Err(KvError::OverQuota(_))), "counted from the file at the first write: {refused:?}");
        let bytes = |limit| Limit { keys: 100, bytes: limit };
        assert!(reopened.set("big", "k", vec![0; 600], None, bytes(1000)).await.is_ok());
        assert!(matches!(reopened.set("big", "l", vec![0; 600], None, bytes(1000)).await, Err(KvError::OverQuota(_))));
    }
}
