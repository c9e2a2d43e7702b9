//! RFC 3463 enhanced status codes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// An enhanced status code `class.subject.detail`, e.g. `5.1.1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Status(pub u8, pub u16, pub u16);

impl Status {
    /// The status a bare reply code implies (RFC 3463 §3: `X.0.0`), for replies from
    /// servers that send no enhanced status.
    pub const fn of_code(code: u16) -> Status {
        Status((code / 100) as u8, 0, 0)
    }

    pub const fn class(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

impl FromStr for Status {
    type Err = String;

    /// `class.subject.detail` with class 2, 4 or 5 and subject and detail of one to
    /// three digits (RFC 3463 §2).
    fn from_str(s: &str) -> Result<Status, String> {
        let invalid = || format!("invalid enhanced status code {s:?}");
        let mut parts = s.split('.');
        let mut number = |max_len: usize| {
            parts
                .next()
                .filter(|p| (1..=max_len).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u16>().ok())
        };
        let (Some(class), Some(subject), Some(detail)) = (number(1), number(3), number(3)) else {
            return Err(invalid());
        };
        if parts.next().is_some() || !matches!(class, 2 | 4 | 5) {
            return Err(invalid());
        }
        Ok(Status(class as u8, subject, detail))
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_prints() {
        assert_eq!("5.1.1".parse(), Ok(Status(5, 1, 1)));
        assert_eq!("4.7.123".parse(), Ok(Status(4, 7, 123)));
        assert_eq!(Status(2, 1, 5).to_string(), "2.1.5");
        assert_eq!(Status::of_code(451), Status(4, 0, 0));
        for bad in ["", "5.1", "5.1.1.1", "3.1.1", "5.1234.1", "5.a.1", "55.1.1", "5..1"] {
            assert!(bad.parse::<Status>().is_err(), "{bad}");
        }
    }
}
