//! The embedded store: a redb database file on this node, kept across restarts.
//!
//! Writes commit without fsync and a background thread makes them durable once a
//! second (and at shutdown): greylisting and rate-limit records can afford to lose the
//! last second in a power cut, not an fsync on every message.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::KvError;
use super::memory::parse_counter;
use super::quota::Usage;
use crate::clock::{self, SharedClock};
use crate::fsync;

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
const FLUSH_EVERY: Duration = Duration::from_secs(1);
const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub struct EmbeddedKv {
    db: Arc<Database>,
    /// TTLs are kept as Unix ms on this clock.
    clock: SharedClock,
    dirty: Arc<AtomicBool>,
    /// Dropping it wakes the flusher to finish; its handle is joined on drop so the
    /// database file is closed when this value is gone.
    stop: Option<std::sync::mpsc::Sender<()>>,
    flusher: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for EmbeddedKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmbeddedKv")
    }
}

fn failed(e: impl std::fmt::Display) -> KvError {
    KvError::Unavailable(e.to_string())
}

/// Stored values are `expires_at_ms:u64 LE | bytes`; zero means no expiry.
fn encode(bytes: &[u8], expires: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + bytes.len());
    out.extend_from_slice(&expires.to_le_bytes());
    out.extend_from_slice(bytes);
    out
}

/// When a value written at `now` with `ttl` expires (never zero, which means never).
fn expiry(now: u64, ttl: Option<Duration>) -> u64 {
    ttl.map_or(0, |ttl| now.saturating_add(ttl.as_millis() as u64).max(1))
}

fn decode(stored: &[u8], now: u64) -> Option<(&[u8], u64)> {
    let expires = u64::from_le_bytes(stored.get(..8)?.try_into().ok()?);
    (expires == 0 || expires > now).then(|| (&stored[8..], expires))
}

fn slot(namespace: &str, key: &str) -> String {
    format!("{namespace}\u{0}{key}")
}

impl EmbeddedKv {
    pub fn open(path: &Path) -> Result<EmbeddedKv, KvError> {
        EmbeddedKv::open_with_clock(path, clock::system())
    }

    pub fn open_with_clock(path: &Path, clock: SharedClock) -> Result<EmbeddedKv, KvError> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        fsync::create_dir_all_durable(dir).map_err(failed)?;
        let db = Arc::new(Database::create(path).map_err(|e| failed(format!("{}: {e}", path.display())))?);
        // redb syncs the file, not the directory: make a new database file's name durable.
        fsync::sync_dir(dir).map_err(failed)?;
        let write = db.begin_write().map_err(failed)?;
        write.open_table(TABLE).map_err(failed)?;
        write.commit().map_err(failed)?;
        let mut kv = EmbeddedKv { db, clock, dirty: Arc::new(AtomicBool::new(false)), stop: None, flusher: None };
        kv.start_flusher();
        Ok(kv)
    }

    fn start_flusher(&mut self) {
        let (db, dirty, clock) = (Arc::clone(&self.db), Arc::clone(&self.dirty), Arc::clone(&self.clock));
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let spawned = std::thread::Builder::new().name("kv-flush".into()).spawn(move || {
            let mut since_sweep = Duration::ZERO;
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(FLUSH_EVERY) {
                since_sweep += FLUSH_EVERY;
                if since_sweep >= SWEEP_EVERY {
                    since_sweep = Duration::ZERO;
                    if let Err(error) = sweep(&db, clock.now_ms()) {
                        tracing::warn!(%error, "kv sweep failed");
                    }
                }
                if dirty.swap(false, Ordering::AcqRel)
                    && let Err(error) = flush(&db)
                {
                    dirty.store(true, Ordering::Release);
                    tracing::warn!(%error, "kv flush failed");
                }
            }
        });
        match spawned {
            Ok(handle) => {
                self.stop = Some(stop);
                self.flusher = Some(handle);
            }
            Err(error) => {
                tracing::error!(%error, "cannot start the kv flusher; writes become durable at shutdown only")
            }
        }
    }

    fn write<T>(
        &self,
        apply: impl FnOnce(&mut redb::Table<'_, &str, &[u8]>) -> Result<T, KvError>,
    ) -> Result<T, KvError> {
        let mut txn = self.db.begin_write().map_err(failed)?;
        txn.set_durability(Durability::None).map_err(failed)?;
        let result = {
            let mut table = txn.open_table(TABLE).map_err(failed)?;
            apply(&mut table)?
        };
        txn.commit().map_err(failed)?;
        self.dirty.store(true, Ordering::Release);
        Ok(result)
    }

    pub fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let txn = self.db.begin_read().map_err(failed)?;
        let table = txn.open_table(TABLE).map_err(failed)?;
        let stored = table.get(slot(namespace, key).as_str()).map_err(failed)?;
        Ok(stored.and_then(|guard| decode(guard.value(), self.clock.now_ms()).map(|(bytes, _)| bytes.to_vec())))
    }

    pub fn set(&self, namespace: &str, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), KvError> {
        let expires = expiry(self.clock.now_ms(), ttl);
        self.write(|table| {
            table.insert(slot(namespace, key).as_str(), encode(value, expires).as_slice()).map_err(failed)?;
            Ok(())
        })
    }

    pub fn increment(&self, namespace: &str, key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64, KvError> {
        let now = self.clock.now_ms();
        let slot = slot(namespace, key);
        self.write(|table| {
            let current = match table.get(slot.as_str()).map_err(failed)? {
                Some(guard) => decode(guard.value(), now).map(|(bytes, expires)| (parse_counter(bytes), expires)),
                None => None,
            };
            let (next, expires) = match current {
                Some((value, expires)) => {
                    (value?.checked_add(delta).ok_or_else(|| KvError::Invalid("counter overflow".into()))?, expires)
                }
                None => (delta, expiry(now, ttl)),
            };
            table.insert(slot.as_str(), encode(next.to_string().as_bytes(), expires).as_slice()).map_err(failed)?;
            Ok(next)
        })
    }

    pub fn delete(&self, namespace: &str, key: &str) -> Result<bool, KvError> {
        let now = self.clock.now_ms();
        self.write(|table| {
            let removed = table.remove(slot(namespace, key).as_str()).map_err(failed)?;
            Ok(removed.is_some_and(|guard| decode(guard.value(), now).is_some()))
        })
    }

    /// The size (key and value bytes) of the live value under `key`.
    pub fn size_of(&self, namespace: &str, key: &str) -> Result<Option<u64>, KvError> {
        Ok(self.get(namespace, key)?.map(|value| (key.len() + value.len()) as u64))
    }

    /// The live keys of `namespace` and their size: one scan of its range.
    pub fn usage(&self, namespace: &str) -> Result<Usage, KvError> {
        let (start, end) = (format!("{namespace}\u{0}"), format!("{namespace}\u{1}"));
        let now = self.clock.now_ms();
        let txn = self.db.begin_read().map_err(failed)?;
        let table = txn.open_table(TABLE).map_err(failed)?;
        let mut usage = Usage::default();
        for entry in table.range(start.as_str()..end.as_str()).map_err(failed)? {
            let (slot, stored) = entry.map_err(failed)?;
            if let Some((bytes, _)) = decode(stored.value(), now) {
                usage = usage.plus(slot.value().len() - start.len() + bytes.len());
            }
        }
        Ok(usage)
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<(), KvError> {
        flush(&self.db)
    }
}

fn flush(db: &Database) -> Result<(), KvError> {
    let mut txn = db.begin_write().map_err(failed)?;
    txn.set_durability(Durability::Immediate).map_err(failed)?;
    txn.commit().map_err(failed)
}

fn sweep(db: &Database, now: u64) -> Result<(), KvError> {
    let mut txn = db.begin_write().map_err(failed)?;
    txn.set_durability(Durability::None).map_err(failed)?;
    {
        let mut table = txn.open_table(TABLE).map_err(failed)?;
        table.retain(|_, stored| decode(stored, now).is_some()).map_err(failed)?;
    }
    txn.commit().map_err(failed)
}

impl Drop for EmbeddedKv {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
        if let Err(error) = flush(&self.db) {
            tracing::warn!(%error, "kv flush at shutdown failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    #[test]
    fn survives_reopening_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.redb");
        let clock = ManualClock::at_ms(1_700_000_000_000);
        {
            let kv = EmbeddedKv::open_with_clock(&path, clock.clone()).unwrap();
            kv.set("greylist", "k", b"v", None).unwrap();
            assert_eq!(kv.increment("rate", "n", 2, Some(Duration::from_secs(60))).unwrap(), 2);
            assert_eq!(kv.increment("rate", "n", 3, None).unwrap(), 5);
            kv.set("greylist", "short", b"x", Some(Duration::from_millis(1))).unwrap();
        }
        let kv = EmbeddedKv::open_with_clock(&path, clock.clone()).unwrap();
        assert_eq!(kv.get("greylist", "k").unwrap(), Some(b"v".to_vec()));
        assert_eq!(kv.get("other", "k").unwrap(), None, "namespaces are separate");
        assert_eq!(kv.get("greylist", "short").unwrap(), Some(b"x".to_vec()), "not expired before its time");
        assert_eq!(kv.increment("rate", "n", 1, None).unwrap(), 6);
        clock.advance(Duration::from_millis(1));
        assert_eq!(kv.get("greylist", "short").unwrap(), None, "expired at its time");
        assert!(kv.delete("greylist", "k").unwrap());
        assert!(!kv.delete("greylist", "k").unwrap());
        kv.set("s", "text", b"abc", None).unwrap();
        assert!(matches!(kv.increment("s", "text", 1, None), Err(KvError::Invalid(_))));
    }

    #[test]
    fn a_counter_keeps_the_ttl_it_was_created_with_and_restarts_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::at_ms(1_000_000);
        let kv = EmbeddedKv::open_with_clock(&dir.path().join("kv.redb"), clock.clone()).unwrap();
        assert_eq!(kv.increment("rate", "c", 1, Some(Duration::from_secs(10))).unwrap(), 1);
        clock.advance(Duration::from_secs(9));
        assert_eq!(kv.increment("rate", "c", 1, Some(Duration::from_secs(60))).unwrap(), 2, "the later TTL is ignored");
        clock.advance(Duration::from_secs(1));
        assert_eq!(kv.increment("rate", "c", 1, None).unwrap(), 1, "expired after the first TTL");
        assert!(!kv.delete("rate", "missing").unwrap());
        sweep(&kv.db, clock.now_ms()).unwrap();
        assert_eq!(kv.get("rate", "c").unwrap(), Some(b"1".to_vec()), "a live value survives a sweep");
    }
}
