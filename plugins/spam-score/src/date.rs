//! Validates `Date:` values against RFC 5322 §3.3, accepting the obsolete forms of
//! §4.3 (two-digit years, named zones) that real mailers still write.

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const ZONES: [&str; 10] = ["ut", "gmt", "est", "edt", "cst", "cdt", "mst", "mdt", "pst", "pdt"];

/// Whether `value` is a well-formed date-time.
pub fn is_valid_date(value: &str) -> bool {
    let text = strip_comments(value);
    let mut tokens = text.split(|c: char| c.is_whitespace() || c == ',').filter(|t| !t.is_empty()).peekable();
    // Optional day of week, which must then be followed by a comma.
    if let Some(first) = tokens.peek()
        && first.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
    {
        if !DAYS.contains(&first.to_ascii_lowercase().as_str()) || !has_comma_after_day(&text) {
            return false;
        }
        tokens.next();
    }
    let (Some(day), Some(month), Some(year), Some(time), Some(zone)) =
        (tokens.next(), tokens.next(), tokens.next(), tokens.next(), tokens.next())
    else {
        return false;
    };
    tokens.next().is_none()
        && number_in(day, 1, 2, 1, 31)
        && MONTHS.contains(&month.to_ascii_lowercase().as_str())
        && number_in(year, 2, 4, 0, 9999)
        && valid_time(time)
        && valid_zone(zone)
}

fn has_comma_after_day(text: &str) -> bool {
    text.trim_start().chars().skip_while(|c| c.is_ascii_alphabetic()).find(|c| !c.is_whitespace()) == Some(',')
}

/// Drops `( ... )` comments, nested ones included, such as `(UTC)` or `(CET)`.
fn strip_comments(value: &str) -> String {
    let mut depth = 0u32;
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn number_in(token: &str, min_digits: usize, max_digits: usize, low: u32, high: u32) -> bool {
    (min_digits..=max_digits).contains(&token.len())
        && token.bytes().all(|b| b.is_ascii_digit())
        && token.parse::<u32>().is_ok_and(|n| (low..=high).contains(&n))
}

fn valid_time(token: &str) -> bool {
    let fields: Vec<&str> = token.split(':').collect();
    match fields.as_slice() {
        [h, m] => number_in(h, 2, 2, 0, 23) && number_in(m, 2, 2, 0, 59),
        [h, m, s] => number_in(h, 2, 2, 0, 23) && number_in(m, 2, 2, 0, 59) && number_in(s, 2, 2, 0, 60),
        _ => false,
    }
}

fn valid_zone(token: &str) -> bool {
    if let Some(rest) = token.strip_prefix(['+', '-']) {
        return rest.len() == 4
            && rest.bytes().all(|b| b.is_ascii_digit())
            && rest[..2].parse::<u32>().is_ok_and(|h| h <= 99)
            && rest[2..].parse::<u32>().is_ok_and(|m| m <= 59);
    }
    let lower = token.to_ascii_lowercase();
    // Obsolete military zones: one letter except J.
    ZONES.contains(&lower.as_str())
        || (lower.len() == 1 && lower != "j" && lower.bytes().all(|b| b.is_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_dates() {
        for date in [
            "Mon, 3 Nov 2025 10:00:00 +0000",
            "Tue, 04 Nov 2025 14:02:55 +0100 (CET)",
            "4 Nov 2025 14:02 -0500",
            "Wed, 5 Nov 2025 07:15:00 GMT",
            "Thu, 6 Nov 25 23:59:60 EST",
            "fri,7 nov 2025 00:00:00 +0530",
            "Sat, 8 Nov 2025 12:00:00 Z",
        ] {
            assert!(is_valid_date(date), "{date}");
        }
    }

    #[test]
    fn refuses_malformed_dates() {
        for date in [
            "",
            "yesterday",
            "2025-11-03T10:00:00Z",
            "Mon 3 Nov 2025 10:00:00 +0000",
            "Mun, 3 Nov 2025 10:00:00 +0000",
            "Mon, 32 Nov 2025 10:00:00 +0000",
            "Mon, 3 Novembre 2025 10:00:00 +0000",
            "Mon, 3 Nov 2025 24:00:00 +0000",
            "Mon, 3 Nov 2025 10:60 +0000",
            "Mon, 3 Nov 2025 10:00:00",
            "Mon, 3 Nov 2025 10:00:00 +000",
            "Mon, 3 Nov 2025 10:00:00 CEST",
            "Mon, 3 Nov 2025 10:00:00 +0000 extra",
        ] {
            assert!(!is_valid_date(date), "{date}");
        }
    }
}
