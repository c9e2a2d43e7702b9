//! Byte sizes in configs: an integer (bytes) or a string such as `"256KiB"`, `"10 MB"`
//! (`filter_util::size`).

use sluice_plugin::config::Value;

/// A size from a config value (integer bytes or a size string).
pub fn size_value(value: &Value) -> Option<u64> {
    match value {
        Value::Integer(i) => u64::try_from(*i).ok(),
        Value::Text(t) => filter_util::size::parse_size(t),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_strings() {
        assert_eq!(size_value(&Value::Integer(-5)), None);
        assert_eq!(size_value(&Value::Integer(4096)), Some(4096));
        assert_eq!(size_value(&Value::Text("64k".into())), Some(64 * 1024));
        assert_eq!(size_value(&Value::Boolean(true)), None);
    }
}
