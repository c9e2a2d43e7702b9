//! Wall-clock time, behind one trait so that time-driven rules (retries, expiry,
//! delay warnings, kv TTLs) can be tested by moving a [`ManualClock`] instead of
//! sleeping. Base layer: it uses nothing else in the crate.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix time, as the queue records it.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Whole seconds since the Unix epoch.
    fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }
}

/// A clock to hand to the parts that keep time.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        since_epoch().as_millis() as u64
    }
}

/// The system clock, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// Time since the Unix epoch on the system clock (zero if the clock is before it).
/// For the few readers with nothing to inject: queue ids, file names, the CLI.
pub fn since_epoch() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// Unix seconds on the system clock.
pub fn now_secs() -> u64 {
    SystemClock.now_secs()
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock {
    ms: AtomicU64,
}

impl ManualClock {
    /// A clock showing `ms` (Unix milliseconds).
    pub fn at_ms(ms: u64) -> Arc<ManualClock> {
        Arc::new(ManualClock { ms: AtomicU64::new(ms) })
    }

    pub fn advance(&self, by: Duration) {
        self.ms.fetch_add(by.as_millis() as u64, Ordering::AcqRel);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.ms.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::at_ms(1_700_000_000_999);
        assert_eq!(clock.now_secs(), 1_700_000_000);
        clock.advance(Duration::from_millis(1));
        assert_eq!((clock.now_ms(), clock.now_secs()), (1_700_000_001_000, 1_700_000_001));
        let shared: SharedClock = clock.clone();
        clock.advance(Duration::from_secs(60));
        assert_eq!(shared.now_secs(), 1_700_000_061, "every holder sees the same time");
    }

    #[test]
    fn system_clock_agrees_with_system_time() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let now = SystemClock.now_ms();
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        assert!(before <= now && now <= after);
        assert!(now_secs() >= now / 1000);
    }
}
