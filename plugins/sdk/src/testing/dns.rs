//! A resolver answering from a table.

use std::collections::HashMap;

use crate::dns::{Dns, DnsError};

/// Answers from a table keyed by record type (`"A"`, `"AAAA"`, `"TXT"`, `"PTR"`) and
/// name; names not in it do not exist. Records every query as `"<type> <name>"`.
#[derive(Debug, Default)]
pub struct FakeDns {
    records: HashMap<(&'static str, String), Result<Vec<String>, DnsError>>,
    pub queries: Vec<String>,
}

impl FakeDns {
    /// `name` has these `kind` records.
    pub fn with(mut self, kind: &'static str, name: &str, values: &[&str]) -> FakeDns {
        self.records.insert((kind, name.to_string()), Ok(values.iter().map(|v| v.to_string()).collect()));
        self
    }

    /// Looking up `kind` records of `name` fails with `error`.
    pub fn failing(mut self, kind: &'static str, name: &str, error: DnsError) -> FakeDns {
        self.records.insert((kind, name.to_string()), Err(error));
        self
    }

    fn answer(&mut self, kind: &'static str, name: &str) -> Result<Vec<String>, DnsError> {
        self.queries.push(format!("{kind} {name}"));
        self.records.get(&(kind, name.to_string())).cloned().unwrap_or(Err(DnsError::NotFound))
    }
}

impl Dns for FakeDns {
    fn a(&mut self, name: &str) -> Result<Vec<String>, DnsError> {
        self.answer("A", name)
    }
    fn aaaa(&mut self, name: &str) -> Result<Vec<String>, DnsError> {
        self.answer("AAAA", name)
    }
    fn txt(&mut self, name: &str) -> Result<Vec<String>, DnsError> {
        self.answer("TXT", name)
    }
    fn ptr(&mut self, address: &str) -> Result<Vec<String>, DnsError> {
        self.answer("PTR", address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_from_the_table() {
        let mut dns =
            FakeDns::default().with("A", "a.example", &["192.0.2.1"]).failing("TXT", "a.example", DnsError::Timeout);
        assert_eq!(dns.a("a.example"), Ok(vec!["192.0.2.1".to_string()]));
        assert_eq!(dns.txt("a.example"), Err(DnsError::Timeout));
        assert_eq!(dns.aaaa("a.example"), Err(DnsError::NotFound));
        assert_eq!(dns.queries, ["A a.example", "TXT a.example", "AAAA a.example"]);
    }
}
