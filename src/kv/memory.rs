//! An in-process store: fast, but private to one node and gone at restart.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::KvError;
use super::quota::Usage;
use crate::clock::{self, SharedClock};

#[derive(Debug)]
struct Value {
    bytes: Vec<u8>,
    /// Unix ms on the store's clock.
    expires: Option<u64>,
}

impl Value {
    fn live(&self, now: u64) -> bool {
        self.expires.is_none_or(|at| at > now)
    }
}

/// Expired entries are dropped when read, and swept every this many writes.
const SWEEP_EVERY: u64 = 4096;

#[derive(Debug)]
pub struct MemoryKv {
    entries: Mutex<HashMap<(String, String), Value>>,
    writes: AtomicU64,
    clock: SharedClock,
}

impl Default for MemoryKv {
    fn default() -> Self {
        MemoryKv::with_clock(clock::system())
    }
}

fn expiry(now: u64, ttl: Option<Duration>) -> Option<u64> {
    ttl.map(|ttl| now.saturating_add(ttl.as_millis() as u64))
}

impl MemoryKv {
    pub fn with_clock(clock: SharedClock) -> MemoryKv {
        MemoryKv { entries: Mutex::default(), writes: AtomicU64::new(0), clock }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Value>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wrote(&self, entries: &mut HashMap<(String, String), Value>, now: u64) {
        if self.writes.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            entries.retain(|_, v| v.live(now));
        }
    }

    pub fn get(&self, namespace: &str, key: &str) -> Option<Vec<u8>> {
        let entries = self.lock();
        let value = entries.get(&(namespace.to_string(), key.to_string()))?;
        value.live(self.clock.now_ms()).then(|| value.bytes.clone())
    }

    pub fn set(&self, namespace: &str, key: &str, bytes: Vec<u8>, ttl: Option<Duration>) {
        let mut entries = self.lock();
        let now = self.clock.now_ms();
        entries.insert((namespace.to_string(), key.to_string()), Value { bytes, expires: expiry(now, ttl) });
        self.wrote(&mut entries, now);
    }

    pub fn increment(&self, namespace: &str, key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64, KvError> {
        let mut entries = self.lock();
        let now = self.clock.now_ms();
        let slot = (namespace.to_string(), key.to_string());
        let current = match entries.get(&slot) {
            Some(value) if value.live(now) => Some((parse_counter(&value.bytes)?, value.expires)),
            _ => None,
        };
        let (next, expires) = match current {
            Some((n, expires)) => {
                (n.checked_add(delta).ok_or_else(|| KvError::Invalid("counter overflow".into()))?, expires)
            }
            None => (delta, expiry(now, ttl)),
        };
        entries.insert(slot, Value { bytes: next.to_string().into_bytes(), expires });
        self.wrote(&mut entries, now);
        Ok(next)
    }

    pub fn delete(&self, namespace: &str, key: &str) -> bool {
        let mut entries = self.lock();
        let now = self.clock.now_ms();
        entries.remove(&(namespace.to_string(), key.to_string())).is_some_and(|v| v.live(now))
    }
}

impl MemoryKv {
    /// The size (key and value bytes) of the live value under `key`.
    pub fn size_of(&self, namespace: &str, key: &str) -> Option<u64> {
        let entries = self.lock();
        let value = entries.get(&(namespace.to_string(), key.to_string()))?;
        value.live(self.clock.now_ms()).then(|| (key.len() + value.bytes.len()) as u64)
    }

    /// The live keys of `namespace` and their size.
    pub fn usage(&self, namespace: &str) -> Usage {
        let now = self.clock.now_ms();
        self.lock()
            .iter()
            .filter(|((ns, _), value)| ns == namespace && value.live(now))
            .fold(Usage::default(), |usage, ((_, key), value)| usage.plus(key.len() + value.bytes.len()))
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
    use crate::clock::ManualClock;

    #[test]
    fn namespaces_ttl_and_counters() {
        let clock = ManualClock::at_ms(1_700_000_000_000);
        let kv = MemoryKv::with_clock(clock.clone());
        kv.set("a", "k", b"1".to_vec(), None);
        assert_eq!(kv.get("a", "k"), Some(b"1".to_vec()));
        assert_eq!(kv.get("b", "k"), None, "namespaces are separate");
        assert_eq!(kv.increment("a", "k", 5, None), Ok(6));
        assert_eq!(kv.increment("a", "n", -2, None), Ok(-2));
        kv.set("a", "t", b"x".to_vec(), Some(Duration::from_millis(2)));
        clock.advance(Duration::from_millis(1));
        assert_eq!(kv.get("a", "t"), Some(b"x".to_vec()), "not yet expired");
        clock.advance(Duration::from_millis(1));
        assert_eq!(kv.get("a", "t"), None, "expired");
        assert!(!kv.delete("a", "t"));
        assert!(kv.delete("a", "k"));
        kv.set("a", "s", b"text".to_vec(), None);
        assert!(kv.increment("a", "s", 1, None).is_err());
        // A TTL given to increment applies when the counter is created, not after.
        assert_eq!(kv.increment("a", "c", 1, Some(Duration::from_secs(1))), Ok(1));
        clock.advance(Duration::from_millis(999));
        assert_eq!(kv.increment("a", "c", 1, Some(Duration::from_secs(60))), Ok(2));
        clock.advance(Duration::from_millis(1));
        assert_eq!(kv.increment("a", "c", 1, Some(Duration::from_secs(60))), Ok(1), "expired counter restarts");
    }
}
