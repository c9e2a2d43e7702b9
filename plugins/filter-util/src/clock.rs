//! Wall-clock time for plugins that need it (greylisting, rate limits).
//!
//! A plugin sees real time only when granted `clock`; otherwise the host's WASI clock is
//! frozen at the Unix epoch. Time-based filters must notice that and stand aside rather
//! than act on a clock that never moves (a greylist would then refuse everyone forever).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time since the Unix epoch, or `None` when the clock reads the epoch itself (or
/// earlier): the plugin was not granted `clock`.
pub fn unix_now() -> Option<Duration> {
    SystemTime::now().duration_since(UNIX_EPOCH).ok().filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_clock_runs() {
        // On the host (cargo test) the clock is real.
        assert!(unix_now().is_some_and(|d| d.as_secs() > 1_600_000_000));
    }
}
