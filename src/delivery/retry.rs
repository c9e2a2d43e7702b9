//! When to try again, and when to give up: the `[queue] retry` schedule (its last
//! step repeating) capped by `max_age`.

use std::time::Duration;

use crate::config::QueueConfig;

pub struct RetryPolicy {
    schedule: Vec<Duration>,
    max_age: Duration,
}

impl RetryPolicy {
    pub fn new(config: &QueueConfig) -> RetryPolicy {
        RetryPolicy { schedule: config.retry.iter().map(|t| t.get()).collect(), max_age: config.max_age.get() }
    }

    /// The wait after the `attempts`-th attempt (counting from 1).
    pub fn delay(&self, attempts: u32) -> Duration {
        let step = (attempts.max(1) as usize - 1).min(self.schedule.len().saturating_sub(1));
        self.schedule.get(step).copied().unwrap_or(Duration::from_secs(300))
    }

    /// When a message that arrived at `arrived` (Unix seconds) expires, in Unix ms.
    pub fn expires_ms(&self, arrived: u64) -> u64 {
        arrived.saturating_mul(1000).saturating_add(self.max_age.as_millis() as u64)
    }

    /// The next attempt after the `attempts`-th, at `now_ms`: never later than the
    /// expiry, so the last attempt happens when the message expires.
    pub fn next_attempt_ms(&self, attempts: u32, now_ms: u64, arrived: u64) -> u64 {
        let next = now_ms.saturating_add(self.delay(attempts).as_millis() as u64);
        next.min(self.expires_ms(arrived).max(now_ms))
    }

    pub fn max_age(&self) -> Duration {
        self.max_age
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TimeSpan;

    #[test]
    fn schedule_steps_repeat_the_last_and_stop_at_expiry() {
        let config = QueueConfig {
            path: "q".into(),
            retry: vec![TimeSpan::secs(60), TimeSpan::secs(300)],
            max_age: TimeSpan::secs(3600),
            delay_warning: None,
        };
        let policy = RetryPolicy::new(&config);
        assert_eq!(policy.delay(1), Duration::from_secs(60));
        assert_eq!(policy.delay(2), Duration::from_secs(300));
        assert_eq!(policy.delay(9), Duration::from_secs(300));
        assert_eq!(policy.next_attempt_ms(1, 1_000_000, 1000), 1_060_000);
        // Arrived at 1000 s, expires at 4600 s.
        assert_eq!(policy.next_attempt_ms(5, 4_500_000, 1000), 4_600_000);
    }
}
