//! Per-namespace quotas (each plugin has its own namespace): keys and bytes (keys and
//! values), kept in a ledger next to the store so that a write is checked without
//! scanning. The ledger starts from a count of what the backend holds (at the
//! namespace's first write), reserves every write before it is made, and is recounted
//! when a write would not fit and the last count is a minute old: values that expired
//! since then (which the ledger cannot see) no longer count.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a namespace holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub keys: u64,
    /// Key and value bytes.
    pub bytes: u64,
}

impl Usage {
    /// With one more key of `bytes` (key and value).
    pub fn plus(self, bytes: usize) -> Usage {
        Usage { keys: self.keys + 1, bytes: self.bytes + bytes as u64 }
    }
}

/// A namespace's quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub keys: u64,
    pub bytes: u64,
}

/// The most a counter's value takes as decimal text (`-9223372036854775808`).
pub const COUNTER_BYTES: u64 = 20;

const RECOUNT_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Account {
    usage: Usage,
    counted_at: Instant,
}

#[derive(Debug, Default)]
pub struct Ledger {
    accounts: Mutex<HashMap<String, Account>>,
}

/// One key's change: from `old` bytes (`None`: no such key) to `new`.
#[derive(Clone, Copy, Debug)]
pub struct Change {
    pub old: Option<u64>,
    pub new: u64,
}

impl Change {
    fn apply(self, usage: Usage) -> Usage {
        let keys = usage.keys + u64::from(self.old.is_none());
        Usage { keys, bytes: (usage.bytes + self.new).saturating_sub(self.old.unwrap_or(0)) }
    }

    fn undo(self, usage: Usage) -> Usage {
        let keys = usage.keys.saturating_sub(u64::from(self.old.is_none()));
        Usage { keys, bytes: (usage.bytes + self.old.unwrap_or(0)).saturating_sub(self.new) }
    }

    fn grows(self) -> bool {
        self.old.is_none_or(|old| self.new > old)
    }
}

impl Ledger {
    fn accounts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Account>> {
        self.accounts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `namespace` has not been counted yet.
    pub fn uncounted(&self, namespace: &str) -> bool {
        !self.accounts().contains_key(namespace)
    }

    /// Whether a count is worth its cost: never counted, or a minute since the last.
    pub fn recount_due(&self, namespace: &str) -> bool {
        self.accounts().get(namespace).is_none_or(|a| a.counted_at.elapsed() >= RECOUNT_EVERY)
    }

    pub fn counted(&self, namespace: &str, usage: Usage) {
        self.accounts().insert(namespace.to_string(), Account { usage, counted_at: Instant::now() });
    }

    /// Books `change` if the namespace stays within `limit` (a change that does not
    /// grow it always fits); otherwise says what is full.
    pub fn reserve(&self, namespace: &str, limit: Limit, change: Change) -> Result<(), String> {
        let mut accounts = self.accounts();
        let account = accounts
            .entry(namespace.to_string())
            .or_insert_with(|| Account { usage: Usage::default(), counted_at: Instant::now() });
        let after = change.apply(account.usage);
        if change.grows() && (after.keys > limit.keys || after.bytes > limit.bytes) {
            return Err(format!(
                "kv quota exceeded: {} keys and {} bytes stored, the quota is {} keys and {} bytes",
                account.usage.keys, account.usage.bytes, limit.keys, limit.bytes
            ));
        }
        account.usage = after;
        Ok(())
    }

    /// Takes back a reservation whose write failed.
    pub fn undo(&self, namespace: &str, change: Change) {
        if let Some(account) = self.accounts().get_mut(namespace) {
            account.usage = change.undo(account.usage);
        }
    }

    /// A key of `bytes` was removed.
    pub fn removed(&self, namespace: &str, bytes: u64) {
        self.undo(namespace, Change { old: None, new: bytes });
    }

    /// A write booked as `booked` bytes turned out to take `actual` (counters).
    pub fn correct(&self, namespace: &str, booked: u64, actual: u64) {
        self.undo(namespace, Change { old: Some(actual), new: booked });
    }

    #[cfg(test)]
    pub fn usage(&self, namespace: &str) -> Option<Usage> {
        self.accounts().get(namespace).map(|a| a.usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Limit = Limit { keys: 2, bytes: 100 };

    fn new_key(bytes: u64) -> Change {
        Change { old: None, new: bytes }
    }

    #[test]
    fn writes_are_booked_until_the_quota_is_full() {
        let ledger = Ledger::default();
        assert!(ledger.uncounted("p"));
        ledger.counted("p", Usage::default());
        assert!(!ledger.uncounted("p") && !ledger.recount_due("p"));
        ledger.reserve("p", LIMIT, new_key(40)).unwrap();
        ledger.reserve("p", LIMIT, new_key(40)).unwrap();
        let full = ledger.reserve("p", LIMIT, new_key(1)).unwrap_err();
        assert!(full.contains("2 keys"), "{full}");
        assert!(ledger.reserve("p", LIMIT, Change { old: Some(40), new: 61 }).is_err(), "over the bytes");
        ledger.reserve("p", LIMIT, Change { old: Some(40), new: 60 }).unwrap();
        assert_eq!(ledger.usage("p"), Some(Usage { keys: 2, bytes: 100 }));
        assert!(ledger.reserve("other", LIMIT, new_key(100)).is_ok(), "namespaces are separate");
    }

    #[test]
    fn shrinking_always_fits_and_removals_and_failures_give_room_back() {
        let ledger = Ledger::default();
        ledger.counted("p", Usage { keys: 5, bytes: 500 });
        assert!(ledger.reserve("p", LIMIT, Change { old: Some(50), new: 10 }).is_ok(), "over, but shrinking");
        assert_eq!(ledger.usage("p"), Some(Usage { keys: 5, bytes: 460 }));
        ledger.removed("p", 60);
        assert_eq!(ledger.usage("p"), Some(Usage { keys: 4, bytes: 400 }));
        let change = Change { old: None, new: 30 };
        ledger.counted("q", Usage::default());
        ledger.reserve("q", LIMIT, change).unwrap();
        ledger.undo("q", change);
        assert_eq!(ledger.usage("q"), Some(Usage::default()));
        ledger.reserve("q", LIMIT, new_key(3 + COUNTER_BYTES)).unwrap();
        ledger.correct("q", 3 + COUNTER_BYTES, 4);
        assert_eq!(ledger.usage("q"), Some(Usage { keys: 1, bytes: 4 }));
    }
}
