//! What every instance of a plugin shares (its settings and config), and the host
//! services all plugins share (DNS, kv).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::quota_hits::QuotaHits;
use crate::config::{AllowedHop, Grant, HttpConfig, OnError, Quotas};
use crate::dns::SharedResolver;
use crate::kv::KvStore;

/// Per-plugin settings, fixed when the plugin is loaded.
#[derive(Debug)]
pub struct PluginShared {
    pub name: String,
    pub grants: Vec<Grant>,
    pub on_error: OnError,
    pub cpu_time: Duration,
    pub wall_time: Duration,
    pub memory_limit: usize,
    /// The plugin's `[plugin.config]` table.
    pub config: toml::Table,
    pub log_limiter: LogLimiter,
    /// The most memory any instance of it has grown to.
    pub peak_memory: AtomicU64,
    /// The next hops it may choose (`route` grant).
    pub next_hops: Vec<AllowedHop>,
    pub quotas: Quotas,
    pub quota_hits: QuotaHits,
    /// Where it may send HTTP requests (`http` grant).
    pub http: Option<Arc<HttpConfig>>,
}

/// Host services shared by all plugins.
pub struct Services {
    pub resolver: Option<SharedResolver>,
    pub kv: Arc<KvStore>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").field("kv", &self.kv).finish_non_exhaustive()
    }
}

/// A token bucket per plugin: `rate` lines a second, bursts of twice that.
#[derive(Debug)]
pub struct LogLimiter {
    rate: u64,
    state: std::sync::Mutex<(f64, Instant)>,
    dropped: AtomicU64,
    /// When dropped lines were last reported: at most every `REPORT_DROPPED_EVERY`, or
    /// a chatty plugin turns the report itself into a flood.
    reported: std::sync::Mutex<Option<Instant>>,
}

const REPORT_DROPPED_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl LogLimiter {
    pub fn new(rate: u32) -> LogLimiter {
        let rate = u64::from(rate.max(1));
        LogLimiter {
            rate,
            state: std::sync::Mutex::new(((rate * 2) as f64, Instant::now())),
            dropped: AtomicU64::new(0),
            reported: std::sync::Mutex::new(None),
        }
    }

    /// Whether a line may be written now; counts the ones that may not.
    pub fn allow(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(state.1).as_secs_f64() * self.rate as f64;
        state.0 = (state.0 + refill).min((self.rate * 2) as f64);
        state.1 = now;
        if state.0 >= 1.0 {
            state.0 -= 1.0;
            true
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// Lines dropped since the last report, when it is time for one; otherwise 0.
    pub fn take_dropped(&self) -> u64 {
        if self.dropped.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
        if reported.is_some_and(|at| at.elapsed() < REPORT_DROPPED_EVERY) {
            return 0;
        }
        *reported = Some(Instant::now());
        self.dropped.swap(0, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_counted_and_reported_at_most_every_ten_seconds() {
        let limiter = LogLimiter::new(1);
        assert!(limiter.allow() && limiter.allow(), "a burst of twice the rate");
        assert!(!limiter.allow());
        assert_eq!(limiter.take_dropped(), 1);
        assert!(!limiter.allow());
        // Counted, but not reported again so soon: the report would be a flood too.
        assert_eq!(limiter.take_dropped(), 0);
        assert_eq!(limiter.dropped.load(Ordering::Relaxed), 1);
    }
}
