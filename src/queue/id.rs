//! Queue ids: the arrival time in microseconds, made strictly increasing so that two
//! messages never share one, written as 13 hex digits so they sort by age.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueId(u64);

impl QueueId {
    pub fn micros(self) -> u64 {
        self.0
    }

    pub const fn from_micros(micros: u64) -> QueueId {
        QueueId(micros)
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:013X}", self.0)
    }
}

impl FromStr for QueueId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("invalid queue id {s:?}"));
        }
        u64::from_str_radix(s, 16).map(QueueId).map_err(|_| format!("invalid queue id {s:?}"))
    }
}

impl Serialize for QueueId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for QueueId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(de::Error::custom)
    }
}

/// Hands out ids. Seeded with the newest id already in the queue, so a clock that steps
/// back across a restart cannot reuse one.
#[derive(Debug)]
pub struct IdGenerator {
    last: AtomicU64,
}

impl IdGenerator {
    pub fn new(floor: Option<QueueId>) -> Self {
        IdGenerator { last: AtomicU64::new(floor.map_or(0, |id| id.0)) }
    }

    /// Reads the system clock, not an injected one: an id is a name that must stay
    /// unique and ordered across restarts, not a delivery decision, and a test clock
    /// set in the past would only be overridden by the floor anyway.
    pub fn next(&self) -> QueueId {
        let now = crate::clock::since_epoch().as_micros() as u64;
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let candidate = now.max(last + 1);
            match self.last.compare_exchange_weak(last, candidate, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return QueueId(candidate),
                Err(actual) => last = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_round_trip() {
        let generator = IdGenerator::new(None);
        let a = generator.next();
        let b = generator.next();
        assert!(b > a);
        assert_eq!(a.to_string().parse::<QueueId>(), Ok(a));
        assert!(a.to_string().len() >= 13);
        let far_future = QueueId(u64::MAX / 2);
        assert!(IdGenerator::new(Some(far_future)).next() > far_future);
        assert!("xyz".parse::<QueueId>().is_err());
        assert!("".parse::<QueueId>().is_err());
    }
}
