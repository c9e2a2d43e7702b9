//! Human-friendly units in the config file: sizes such as `"25MB"` and durations such as `"5m"`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// A byte count. `KB`/`MB`/`GB` are decimal (SI), `KiB`/`MiB`/`GiB` binary; a bare number is bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("invalid size {s:?}: expected a number followed by B, KB, MB, GB, KiB, MiB or GiB"))?;
        let multiplier: u64 = match unit.trim() {
            "" | "B" => 1,
            "KB" | "kB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            other => return Err(format!("invalid size unit {other:?} in {s:?}: use B, KB, MB, GB, KiB, MiB or GiB")),
        };
        number.checked_mul(multiplier).map(ByteSize).ok_or_else(|| format!("size {s:?} is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}B", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"25MB\" or a number of bytes")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v).map(ByteSize).map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

/// A duration written as a number with a unit: `ms`, `s`, `m`, `h` or `d`, possibly
/// combined (`"1h30m"`). `"0"` and `"0s"` mean zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeSpan(pub Duration);

impl TimeSpan {
    pub const fn secs(secs: u64) -> Self {
        TimeSpan(Duration::from_secs(secs))
    }
    pub const fn millis(ms: u64) -> Self {
        TimeSpan(Duration::from_millis(ms))
    }
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for TimeSpan {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        if text == "0" {
            return Ok(TimeSpan(Duration::ZERO));
        }
        let bad = || format!("invalid duration {s:?}: expected e.g. \"30s\", \"5m\", \"20ms\", \"1h30m\" or \"5d\"");
        let mut rest = text;
        let mut total = Duration::ZERO;
        if rest.is_empty() {
            return Err(bad());
        }
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            if digits == 0 {
                return Err(bad());
            }
            let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let part = match unit {
                "ms" => Duration::from_millis(number),
                "s" => Duration::from_secs(number),
                "m" => Duration::from_secs(number.saturating_mul(60)),
                "h" => Duration::from_secs(number.saturating_mul(3600)),
                "d" => Duration::from_secs(number.saturating_mul(86_400)),
                _ => return Err(bad()),
            };
            total = total.saturating_add(part);
        }
        Ok(TimeSpan(total))
    }
}

impl fmt::Display for TimeSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) { write!(f, "{ms}ms") } else { write!(f, "{}s", ms / 1000) }
    }
}

impl<'de> Deserialize<'de> for TimeSpan {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!("25MB".parse::<ByteSize>(), Ok(ByteSize(25_000_000)));
        assert_eq!("32MiB".parse::<ByteSize>(), Ok(ByteSize(32 << 20)));
        assert_eq!("512".parse::<ByteSize>(), Ok(ByteSize(512)));
        assert_eq!("10 KB".parse::<ByteSize>(), Ok(ByteSize(10_000)));
        assert!("25XB".parse::<ByteSize>().is_err());
        assert!("MB".parse::<ByteSize>().is_err());
        assert!("99999999999999999999GB".parse::<ByteSize>().is_err());
    }

    #[test]
    fn durations() {
        assert_eq!("5m".parse::<TimeSpan>(), Ok(TimeSpan::secs(300)));
        assert_eq!("20ms".parse::<TimeSpan>(), Ok(TimeSpan::millis(20)));
        assert_eq!("1h30m".parse::<TimeSpan>(), Ok(TimeSpan::secs(5400)));
        assert_eq!("5d".parse::<TimeSpan>(), Ok(TimeSpan::secs(432_000)));
        assert_eq!("0".parse::<TimeSpan>(), Ok(TimeSpan::secs(0)));
        for bad in ["", "5", "m", "5 minutes", "-1s", "1.5s"] {
            assert!(bad.parse::<TimeSpan>().is_err(), "{bad}");
        }
    }
}
