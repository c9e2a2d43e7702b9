//! Durations as administrators write them: `"300s"`, `"5m"`, `"4h"`, `"35d"`, `"1h30m"`.

use std::time::Duration;

/// Parses one or more `<number><unit>` groups, unit one of `ms`, `s`, `m`, `h`, `d`, `w`;
/// a bare number is seconds. Whitespace around groups is ignored.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration (such as \"300s\", \"5m\", \"4h\", \"35d\")");
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(bad());
    }
    if compact.bytes().all(|b| b.is_ascii_digit()) {
        return compact.parse::<u64>().map(Duration::from_secs).map_err(|_| bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = compact.as_str();
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let millis_per_unit: u64 = match rest[..unit_len].to_ascii_lowercase().as_str() {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let millis = number.checked_mul(millis_per_unit).ok_or_else(bad)?;
        total = total.checked_add(Duration::from_millis(millis)).ok_or_else(bad)?;
    }
    Ok(total)
}

/// Whole seconds for a reply such as "try again in 45 seconds": rounded up, so a client
/// told to wait never comes back a moment too early.
pub fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("300s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("4h"), Ok(Duration::from_secs(4 * 3600)));
        assert_eq!(parse_duration("35d"), Ok(Duration::from_secs(35 * 86400)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 86400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)), "bare number is seconds");
        assert_eq!(parse_duration(" 1h 30m "), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1H"), Ok(Duration::from_secs(3600)), "units are case-insensitive");
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_garbage() {
        for bad in ["", "m", "5x", "5 minutes", "-5m", "1.5h", "h5", "99999999999999999999s", "5m3"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should not parse");
        }
        assert!(parse_duration("18446744073709551615d").is_err(), "overflow is an error");
    }

    #[test]
    fn rounds_seconds_up() {
        assert_eq!(ceil_secs(Duration::from_millis(44_001)), 45);
        assert_eq!(ceil_secs(Duration::from_secs(45)), 45);
        assert_eq!(ceil_secs(Duration::ZERO), 0);
    }
}
