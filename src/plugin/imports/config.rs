//! `sluice:plugin/config`: the plugin's own TOML table, walked by path.

use crate::plugin::bindings::sluice::plugin::config::{Host, Value};
use crate::plugin::state::PluginState;

impl Host for PluginState {
    fn get(&mut self, path: Vec<String>) -> wasmtime::Result<Option<Value>> {
        Ok(lookup(&self.plugin.config, &path).map(describe))
    }
}

fn lookup<'a>(table: &'a toml::Table, path: &[String]) -> Option<Node<'a>> {
    let mut node = Node::Table(table);
    for step in path {
        node = match node {
            Node::Table(t) => Node::Value(t.get(step)?),
            Node::Value(toml::Value::Table(t)) => Node::Value(t.get(step)?),
            Node::Value(toml::Value::Array(items)) => Node::Value(items.get(step.parse::<usize>().ok()?)?),
            Node::Value(_) => return None,
        };
    }
    Some(node)
}

enum Node<'a> {
    Table(&'a toml::Table),
    Value(&'a toml::Value),
}

fn describe(node: Node<'_>) -> Value {
    let keys = |t: &toml::Table| t.keys().cloned().collect();
    match node {
        Node::Table(t) => Value::Table(keys(t)),
        Node::Value(toml::Value::String(s)) => Value::Text(s.clone()),
        Node::Value(toml::Value::Integer(i)) => Value::Integer(*i),
        Node::Value(toml::Value::Float(f)) => Value::Float(*f),
        Node::Value(toml::Value::Boolean(b)) => Value::Boolean(*b),
        Node::Value(toml::Value::Datetime(d)) => Value::Datetime(d.to_string()),
        Node::Value(toml::Value::Array(items)) => Value::Array(u32::try_from(items.len()).unwrap_or(u32::MAX)),
        Node::Value(toml::Value::Table(t)) => Value::Table(keys(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_walk_tables_and_arrays() {
        let table: toml::Table = toml::from_str(
            "zones = [\"zen.example.test\", \"b.test\"]\nthreshold = 2.5\n[weights]\n\"zen.example.test\" = 3\n",
        )
        .unwrap();
        let get = |path: &[&str]| lookup(&table, &path.iter().map(|s| s.to_string()).collect::<Vec<_>>()).map(describe);
        assert!(matches!(get(&[]), Some(Value::Table(keys)) if keys.len() == 3));
        assert!(matches!(get(&["zones"]), Some(Value::Array(2))));
        assert!(matches!(get(&["zones", "1"]), Some(Value::Text(t)) if t == "b.test"));
        assert!(matches!(get(&["weights", "zen.example.test"]), Some(Value::Integer(3))));
        assert!(matches!(get(&["threshold"]), Some(Value::Float(f)) if f == 2.5));
        assert!(get(&["zones", "7"]).is_none());
        assert!(get(&["threshold", "x"]).is_none());
        assert!(get(&["missing"]).is_none());
    }
}
