//! Config values for tests.

use crate::config::Value;
use crate::settings::Parse;

/// A table of `entries`, in order.
pub fn table(entries: &[(&str, Value)]) -> Value {
    Value::Table(entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
}

pub fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

/// An array of strings.
pub fn strings(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| text(s)).collect())
}

pub fn list(items: &[Value]) -> Value {
    Value::Array(items.to_vec())
}

/// The config tree the host hands over for a `[plugin.config]` written as `toml`.
/// Panics on bad TOML (a mistake in the test).
pub fn from_toml(toml: &str) -> Value {
    fn convert(v: toml::Value) -> Value {
        match v {
            toml::Value::String(s) => Value::Text(s),
            toml::Value::Integer(i) => Value::Integer(i),
            toml::Value::Float(f) => Value::Float(f),
            toml::Value::Boolean(b) => Value::Boolean(b),
            toml::Value::Datetime(d) => Value::Datetime(d.to_string()),
            toml::Value::Array(items) => Value::Array(items.into_iter().map(convert).collect()),
            toml::Value::Table(t) => Value::Table(t.into_iter().map(|(k, v)| (k, convert(v))).collect()),
        }
    }
    match toml.parse::<toml::Table>() {
        Ok(table) => convert(toml::Value::Table(table)),
        Err(e) => panic!("bad TOML in test: {e}"),
    }
}

/// Parses `config` with `parse`; panics if there are warnings.
pub fn parse_clean<T>(parse: Parse<T>, config: &Value) -> T {
    let (settings, warnings) = parse(config);
    assert!(warnings.is_empty(), "unexpected warnings: {warnings:?}");
    settings
}

/// The text of a file below the plugin's directory (pass `env!("CARGO_MANIFEST_DIR")`),
/// such as `fixtures/config.toml`. Panics when it cannot be read.
pub fn read_fixture(manifest_dir: &str, file: &str) -> String {
    let path = format!("{manifest_dir}/{file}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_becomes_the_hosts_tree() {
        let value = from_toml("a = \"x\"\nb = [1, 2.5, true]\n[c]\nd = \"y\"");
        let expected = table(&[
            ("a", text("x")),
            ("b", list(&[Value::Integer(1), Value::Float(2.5), Value::Boolean(true)])),
            ("c", table(&[("d", text("y"))])),
        ]);
        assert_eq!(value, expected);
        assert_eq!(strings(&["p", "q"]), list(&[text("p"), text("q")]));
    }
}
