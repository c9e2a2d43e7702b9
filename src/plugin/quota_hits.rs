//! Quota hits: counted in `sluice_plugin_quota_hits_total{plugin, quota}`, and logged
//! at most every ten seconds per plugin (with the number of hits since), so that a
//! plugin hammering its quota cannot flood the log.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The quotas, as the metric's `quota` label names them.
pub const QUOTAS: [&str; 2] = ["kv", "dns"];

const LOG_EVERY: Duration = Duration::from_secs(10);

/// Hits of one plugin since its last log line.
#[derive(Debug, Default)]
pub struct QuotaHits {
    unlogged: AtomicU64,
    logged: Mutex<Option<Instant>>,
}

impl QuotaHits {
    /// Counts a hit of `quota`; logs it (with `why`) unless a line went out lately.
    pub fn hit(&self, plugin: &str, quota: &'static str, why: &str) {
        metrics::counter!("sluice_plugin_quota_hits_total", "plugin" => plugin.to_string(), "quota" => quota)
            .increment(1);
        self.unlogged.fetch_add(1, Ordering::Relaxed);
        if let Some(hits) = self.due() {
            tracing::warn!(plugin, quota, hits, why, "plugin hit its quota");
        }
    }

    /// The hits to log now, if it is time.
    fn due(&self) -> Option<u64> {
        let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
        if logged.is_some_and(|at| at.elapsed() < LOG_EVERY) {
            return None;
        }
        *logged = Some(Instant::now());
        Some(self.unlogged.swap(0, Ordering::Relaxed))
    }
}

/// The DNS lookups a call has left; reset at the start of each call.
#[derive(Debug, Clone, Copy)]
pub struct DnsBudget {
    left: u32,
}

impl DnsBudget {
    pub fn new(lookups: u32) -> DnsBudget {
        DnsBudget { left: lookups }
    }

    /// Takes one lookup; `false` when the call has none left (and no query may go out).
    pub fn take(&mut self) -> bool {
        match self.left.checked_sub(1) {
            Some(left) => {
                self.left = left;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_gets_its_lookups_and_no_more() {
        let mut budget = DnsBudget::new(2);
        assert!(budget.take() && budget.take());
        assert!(!budget.take());
        assert!(!budget.take(), "stays spent");
        assert!(!DnsBudget::new(0).take());
    }

    #[test]
    fn hits_are_logged_at_most_every_ten_seconds_with_the_count_since() {
        let hits = QuotaHits::default();
        hits.hit("p", "kv", "full");
        assert_eq!(hits.unlogged.load(Ordering::Relaxed), 0, "the first is logged at once");
        hits.hit("p", "kv", "full");
        hits.hit("p", "dns", "spent");
        assert_eq!(hits.unlogged.load(Ordering::Relaxed), 2, "the next ones wait for the next line");
    }
}
