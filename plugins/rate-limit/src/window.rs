//! The sliding window, approximated with two fixed buckets (the "sliding window counter"
//! of Cloudflare and Redis rate limiters).
//!
//! Time is cut into buckets one window long; each bucket has an atomic kv counter. The
//! number of events in the window ending now is estimated as
//!
//! ```text
//! estimate = previous × (1 − elapsed) + current
//! ```
//!
//! where `elapsed` is how far into the current bucket we are (0 to 1): the previous
//! bucket's events are assumed evenly spread, and the part of it still inside the
//! window is counted. This needs one increment and one read per event, never
//! over-counts a steady rate, and smooths the burst at bucket edges that plain fixed
//! windows allow (up to twice the limit around a boundary).

use std::time::Duration;

/// Where `now` falls: the current bucket's number and how far into it, 0 to 1.
pub fn position(now_ms: u64, window_ms: u64) -> (u64, f64) {
    let window_ms = window_ms.max(1);
    (now_ms / window_ms, (now_ms % window_ms) as f64 / window_ms as f64)
}

pub fn estimate(previous: u64, current: u64, elapsed: f64) -> f64 {
    previous as f64 * (1.0 - elapsed.clamp(0.0, 1.0)) + current as f64
}

/// How long until one more event would fit in `limit`, if nothing else happens
/// meanwhile. `current` already includes the event just refused (refused events count:
/// a client that keeps hammering stays limited).
pub fn retry_after(previous: u64, current: u64, limit: u64, elapsed: f64, window: Duration) -> Duration {
    let window_ms = window.as_millis() as f64;
    let elapsed = elapsed.clamp(0.0, 1.0);
    let limit = limit as f64;
    let (previous, current) = (previous as f64, current as f64);
    // Still in this bucket: previous × (1 − e) + current + 1 ≤ limit, as e grows.
    let room = limit - current - 1.0;
    if room >= 0.0 {
        let needed = if previous > 0.0 { 1.0 - room / previous } else { 0.0 };
        if needed <= elapsed {
            return Duration::ZERO;
        }
        if needed < 1.0 {
            return millis((needed - elapsed) * window_ms);
        }
    }
    // In the next bucket, this one is the previous: current × (1 − g) + 1 ≤ limit.
    let rest_of_bucket = (1.0 - elapsed) * window_ms;
    let g = if current > 0.0 { (1.0 - (limit - 1.0) / current).max(0.0) } else { 0.0 };
    millis(rest_of_bucket + g * window_ms)
}

/// Whole milliseconds, rounded up, ignoring float noise (18000.000000000004 is 18000).
fn millis(ms: f64) -> Duration {
    Duration::from_millis((ms - 1e-6).ceil().max(0.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn positions() {
        assert_eq!(position(0, 60_000), (0, 0.0));
        assert_eq!(position(90_000, 60_000), (1, 0.5));
        assert_eq!(position(119_999, 60_000).0, 1);
        assert_eq!(position(120_000, 60_000), (2, 0.0));
        assert_eq!(position(5, 0).0, 5, "a zero window cannot divide by zero");
    }

    #[test]
    fn estimates_weight_the_previous_bucket() {
        assert_eq!(estimate(0, 5, 0.3), 5.0);
        assert_eq!(estimate(10, 5, 0.0), 15.0);
        assert_eq!(estimate(10, 5, 0.5), 10.0);
        assert_eq!(estimate(10, 5, 1.0), 5.0);
        assert_eq!(estimate(10, 0, 0.75), 2.5);
    }

    #[test]
    fn a_steady_rate_at_the_limit_is_not_overcounted() {
        // 30 per minute, evenly: at any point the estimate stays at about 30.
        for tenth in 0..10 {
            let elapsed = f64::from(tenth) / 10.0;
            let current = (30.0 * elapsed).round() as u64;
            assert!(estimate(30, current, elapsed) <= 30.5);
        }
    }

    #[test]
    fn retry_after_within_the_current_bucket() {
        // limit 10; previous 20, current 5, half-way: estimate 15. One more fits when
        // 20 × (1 − e) + 6 ≤ 10, i.e. e ≥ 0.8: 0.3 of a minute from now.
        assert_eq!(retry_after(20, 5, 10, 0.5, MINUTE), Duration::from_secs(18));
    }

    #[test]
    fn retry_after_into_the_next_bucket() {
        // limit 10; no previous; current 12 at 0.25: the rest of this bucket (45 s),
        // then 12 × (1 − g) + 1 ≤ 10, g ≥ 0.25: 15 s more.
        assert_eq!(retry_after(0, 12, 10, 0.25, MINUTE), Duration::from_secs(60));
        // Exactly at the limit: 30 s, then 10 × (1 − g) + 1 ≤ 10, g ≥ 0.1: 6 s more.
        assert_eq!(retry_after(0, 10, 10, 0.5, MINUTE), Duration::from_secs(36));
        // The current bucket alone is over: 6 s, then 11 × (1 − g) + 1 ≤ 10, g ≥ 2/11.
        assert_eq!(retry_after(5, 11, 10, 0.9, MINUTE), Duration::from_millis(16_910));
    }

    #[test]
    fn retry_after_is_zero_when_there_is_room() {
        assert_eq!(retry_after(0, 1, 10, 0.5, MINUTE), Duration::ZERO);
    }

    #[test]
    fn waiting_the_advised_time_makes_room() {
        // Whatever the state, one more event after the advised wait fits the limit.
        for previous in [0u64, 3, 10, 40] {
            for current in [1u64, 5, 11, 30] {
                for tenth in 0..10 {
                    let elapsed = f64::from(tenth) / 10.0;
                    let limit = 10;
                    let wait = retry_after(previous, current, limit, elapsed, MINUTE);
                    let later = elapsed + wait.as_secs_f64() / 60.0;
                    let est = if later < 1.0 {
                        estimate(previous, current + 1, later)
                    } else {
                        estimate(current, 1, later - 1.0)
                    };
                    assert!(est <= limit as f64 + 1e-6, "prev {previous} cur {current} e {elapsed}: {est}");
                }
            }
        }
    }
}
