//! An in-process store: fast, but private to one node and gone at restart.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::KvError;

#[derive(Debug)]
struct Value {
    bytes: Vec<u8>,
    expires: Option<Instant>,
}

impl Value {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|at| at > now)
    }
}

/// Expired entries are dropped when read, and swept every this many writes.
const SWEEP_EVERY: u64 = 4096;

#[derive(Debug, Default)]
pub struct MemoryKv {
    entries: Mutex<HashMap<(String, String), Value>>,
    writes: AtomicU64,
}

impl MemoryKv {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Value>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wrote(&self, entries: &mut HashMap<(String, String), Value>) {
        if self.writes.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            let now = Instant::now();
            entries.retain(|_, v| v.live(now));
        }
    }

    pub fn get(&self, namespace: &str, key: &str) -> Option<Vec<u8>> {
        let entries = self.lock();
        let value = entries.get(&(namespace.to_string(), key.to_string()))?;
        value.live(Instant::now()).then(|| value.bytes.clone())
    }

    pub fn set(&self, namespace: &str, key: &str, bytes: Vec<u8>, ttl: Option<Duration>) {
        let mut entries = self.lock();
        let expires = ttl.map(|ttl| Instant::now() + ttl);
        entries.insert((namespace.to_string(), key.to_string()), Value { bytes, expires });
        self.wrote(&mut entries);
    }

    pub fn increment(&self, namespace: &str, key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64, KvError> {
        let mut entries = self.lock();
        let now = Instant::now();
        let slot = (namespace.to_string(), key.to_string());
        let current = match entries.get(&slot) {
            Some(value) if value.live(now) => Some((parse_counter(&value.bytes)?, value.expires)),
            _ => None,
        };
        let (next, expires) = match current {
            Some((n, expires)) => {
                (n.checked_add(delta).ok_or_else(|| KvError::Invalid("counter overflow".into()))?, expires)
            }
            None => (delta, ttl.map(|ttl| now + ttl)),
        };
        entries.insert(slot, Value { bytes: next.to_string().into_bytes(), expires });
        self.wrote(&mut entries);
        Ok(next)
    }

    pub fn delete(&self, namespace: &str, key: &str) -> bool {
        let mut entries = self.lock();
        let now = Instant::now();
        entries.remove(&(namespace.to_string(), key.to_string())).is_some_and(|v| v.live(now))
    }
}

/// Counters are stored as decimal text, as Redis does, so both backends agree.
pub fn parse_counter(bytes: &[u8]) -> Result<i64, KvError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| KvError::Invalid("value is not an integer".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_ttl_and_counters() {
        let kv = MemoryKv::default();
        kv.set("a", "k", b"1".to_vec(), None);
        assert_eq!(kv.get("a", "k"), Some(b"1".to_vec()));
        assert_eq!(kv.get("b", "k"), None, "namespaces are separate");
        assert_eq!(kv.increment("a", "k", 5, None), Ok(6));
        assert_eq!(kv.increment("a", "n", -2, None), Ok(-2));
        kv.set("a", "t", b"x".to_vec(), Some(Duration::from_millis(1)));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(kv.get("a", "t"), None, "expired");
        assert!(!kv.delete("a", "t"));
        assert!(kv.delete("a", "k"));
        kv.set("a", "s", b"text".to_vec(), None);
        assert!(kv.increment("a", "s", 1, None).is_err());
        // A TTL given to increment applies when the counter is created, not after.
        assert_eq!(kv.increment("a", "c", 1, Some(Duration::from_millis(1))), Ok(1));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(kv.increment("a", "c", 1, Some(Duration::from_secs(60))), Ok(1), "expired counter restarts");
    }
}
