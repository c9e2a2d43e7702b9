//! Queue ids: a message's arrival time in microseconds (the queue makes them strictly
//! increasing, so two messages never share one), written as 13 hex digits so they sort
//! by age. Every stage names a message by it.

use std::fmt;
use std::str::FromStr;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_as_hex() {
        let id = QueueId::from_micros(0x1_2345_6789);
        assert_eq!(id.to_string(), "0000123456789");
        assert_eq!(id.to_string().parse::<QueueId>(), Ok(id));
        assert!("xyz".parse::<QueueId>().is_err());
        assert!("".parse::<QueueId>().is_err());
        assert!("12345678901234567".parse::<QueueId>().is_err());
    }
}
