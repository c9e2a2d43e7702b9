//! An in-memory store with the host's semantics: TTL set by `increment` only on
//! creation, counters stored as decimal text, and a clock of its own.

use std::collections::HashMap;
use std::time::Duration;

use crate::kv::{Kv, KvError, ttl_ms};

/// An in-memory store on a manual clock (`now_ms`), for tests.
#[derive(Clone, Debug, Default)]
pub struct MemoryKv {
    entries: HashMap<String, (Vec<u8>, Option<u64>)>,
    /// The store's clock; advance it to expire entries.
    pub now_ms: u64,
    /// When set, every call fails with this error.
    pub failure: Option<KvError>,
}

impl MemoryKv {
    /// An empty store whose clock reads `now_ms`.
    pub fn at(now_ms: u64) -> MemoryKv {
        MemoryKv { now_ms, ..MemoryKv::default() }
    }

    fn live(&self, key: &str) -> Option<&(Vec<u8>, Option<u64>)> {
        self.entries.get(key).filter(|(_, expires)| expires.is_none_or(|at| at > self.now_ms))
    }

    fn check(&self) -> Result<(), KvError> {
        self.failure.clone().map_or(Ok(()), Err)
    }

    /// Number of live entries.
    pub fn len(&self) -> usize {
        self.entries.keys().filter(|k| self.live(k).is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The expiry of a live key, in the store's milliseconds.
    pub fn expires_at(&self, key: &str) -> Option<u64> {
        self.live(key).and_then(|(_, expires)| *expires)
    }
}

impl Kv for MemoryKv {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.check()?;
        Ok(self.live(key).map(|(bytes, _)| bytes.clone()))
    }

    fn set(&mut self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), KvError> {
        self.check()?;
        let expires = ttl.map(|ttl| self.now_ms.saturating_add(ttl_ms(ttl)));
        self.entries.insert(key.to_string(), (value.to_vec(), expires));
        Ok(())
    }

    fn increment(&mut self, key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64, KvError> {
        self.check()?;
        let (next, expires) = match self.live(key) {
            Some((bytes, expires)) => {
                let current: i64 = std::str::from_utf8(bytes)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| KvError::Invalid("value is not an integer".into()))?;
                (current.checked_add(delta).ok_or_else(|| KvError::Invalid("counter overflow".into()))?, *expires)
            }
            None => (delta, ttl.map(|ttl| self.now_ms.saturating_add(ttl_ms(ttl)))),
        };
        self.entries.insert(key.to_string(), (next.to_string().into_bytes(), expires));
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MAX_TTL;

    #[test]
    fn memory_kv_behaves_like_the_host() {
        let mut kv = MemoryKv::default();
        assert_eq!(kv.get("a"), Ok(None));
        kv.set("a", b"x", Some(Duration::from_secs(10))).unwrap();
        assert_eq!(kv.get("a"), Ok(Some(b"x".to_vec())));
        kv.now_ms = 10_000;
        assert_eq!(kv.get("a"), Ok(None), "expired");
        assert_eq!(kv.increment("c", 1, Some(Duration::from_secs(5))), Ok(1));
        kv.now_ms += 4_000;
        assert_eq!(kv.increment("c", 2, Some(Duration::from_secs(60))), Ok(3), "TTL kept from creation");
        assert_eq!(kv.get("c"), Ok(Some(b"3".to_vec())));
        kv.now_ms += 1_000;
        assert_eq!(kv.increment("c", 1, None), Ok(1), "expired counter restarts");
        kv.set("s", b"text", None).unwrap();
        assert!(matches!(kv.increment("s", 1, None), Err(KvError::Invalid(_))));
        kv.failure = Some(KvError::Unavailable("down".into()));
        assert!(kv.get("c").is_err());
        assert_eq!(ttl_ms(Duration::ZERO), 1);
        assert_eq!(ttl_ms(Duration::from_secs(u64::MAX)), ttl_ms(MAX_TTL));
    }
}
