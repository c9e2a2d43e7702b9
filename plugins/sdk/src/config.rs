//! The plugin's `[plugin.config]` table (grant: `config`), read into an owned tree.

use crate::bindings::sluice::plugin::config::{Value as Raw, get};

/// A configuration value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Text(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Datetime(String),
    Array(Vec<Value>),
    Table(Vec<(String, Value)>),
}

/// The whole table (empty if the plugin has none). Read it once, at the first call.
pub fn load() -> Value {
    read(&mut Vec::new()).unwrap_or(Value::Table(Vec::new()))
}

fn read(path: &mut Vec<String>) -> Option<Value> {
    Some(match get(path)? {
        Raw::Text(t) => Value::Text(t),
        Raw::Integer(i) => Value::Integer(i),
        Raw::Float(f) => Value::Float(f),
        Raw::Boolean(b) => Value::Boolean(b),
        Raw::Datetime(d) => Value::Datetime(d),
        Raw::Array(n) => {
            let mut items = Vec::with_capacity(n as usize);
            for i in 0..n {
                path.push(i.to_string());
                let item = read(path);
                path.pop();
                items.extend(item);
            }
            Value::Array(items)
        }
        Raw::Table(keys) => {
            let mut entries = Vec::with_capacity(keys.len());
            for key in keys {
                path.push(key.clone());
                let item = read(path);
                path.pop();
                if let Some(item) = item {
                    entries.push((key, item));
                }
            }
            Value::Table(entries)
        }
    })
}

impl Value {
    /// The entry `key` of a table.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Table(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        if let Value::Text(t) = self { Some(t) } else { None }
    }

    pub fn as_i64(&self) -> Option<i64> {
        if let Value::Integer(i) = self { Some(*i) } else { None }
    }

    /// Floats, and integers as floats.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        if let Value::Boolean(b) = self { Some(*b) } else { None }
    }

    pub fn as_array(&self) -> &[Value] {
        if let Value::Array(items) = self { items } else { &[] }
    }

    pub fn entries(&self) -> &[(String, Value)] {
        if let Value::Table(entries) = self { entries } else { &[] }
    }

    /// `key` as a string, if it is one.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    pub fn f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    pub fn i64(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_i64)
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Value::as_bool)
    }

    /// `key` as a list of strings (non-strings skipped; a single string is a list of one).
    pub fn strings(&self, key: &str) -> Vec<String> {
        match self.get(key) {
            Some(Value::Text(t)) => vec![t.clone()],
            Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        }
    }
}
