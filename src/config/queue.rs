//! `[queue]`: where accepted mail is kept until it is delivered, and how long delivery
//! keeps trying.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, de};

use super::units::TimeSpan;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// The queue directory; relative paths are taken from the config file's directory.
    pub path: PathBuf,
    /// Waits between delivery attempts after a temporary failure; the last one repeats.
    #[serde(default = "default_retry", deserialize_with = "retry_schedule")]
    pub retry: Vec<TimeSpan>,
    /// A message still undelivered this long after it arrived is bounced.
    #[serde(default = "default_max_age")]
    pub max_age: TimeSpan,
    /// Send the sender a "still trying" notice (RFC 3464 `Action: delayed`) once a
    /// message has waited this long. Off when unset.
    #[serde(default)]
    pub delay_warning: Option<TimeSpan>,
}

fn default_retry() -> Vec<TimeSpan> {
    [60, 300, 900, 1800, 3600, 7200, 14_400].into_iter().map(TimeSpan::secs).collect()
}

fn default_max_age() -> TimeSpan {
    TimeSpan::secs(5 * 86_400)
}

fn retry_schedule<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<TimeSpan>, D::Error> {
    let schedule = Vec::<TimeSpan>::deserialize(deserializer)?;
    if schedule.is_empty() {
        return Err(de::Error::custom("retry needs at least one delay, e.g. [\"1m\", \"5m\", \"1h\"]"));
    }
    if schedule.iter().any(|d| d.get().is_zero()) {
        return Err(de::Error::custom("retry delays must be longer than zero"));
    }
    Ok(schedule)
}
