//! rspamd's answer to `/checkv2` (the parts this plugin uses).

use std::collections::BTreeMap;

use filter_util::header::unfold;
use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Debug, Default, Deserialize)]
pub struct Scan {
    pub action: String,
    #[serde(default)]
    pub score: f64,
    #[serde(default)]
    pub required_score: f64,
    #[serde(default)]
    pub symbols: BTreeMap<String, Symbol>,
    #[serde(default)]
    pub messages: Messages,
    /// The rewritten subject, for `rewrite subject`.
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub milter: Milter,
}

#[derive(Debug, Default, Deserialize)]
pub struct Symbol {
    #[serde(default)]
    pub score: f64,
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Messages {
    /// What rspamd wants the SMTP client told.
    #[serde(default)]
    pub smtp_message: Option<String>,
}

/// rspamd's instructions for an MTA: headers to add and remove.
#[derive(Debug, Default, Deserialize)]
pub struct Milter {
    /// Name to a value: a string, `{"value": ..., "order": n}`, or a list of either.
    #[serde(default)]
    pub add_headers: BTreeMap<String, Json>,
    /// Name to which occurrence (0 for all); every occurrence is removed here.
    #[serde(default)]
    pub remove_headers: BTreeMap<String, Json>,
}

impl Scan {
    pub fn parse(body: &[u8]) -> Result<Scan, String> {
        serde_json::from_slice(body).map_err(|e| format!("rspamd's answer is not a scan result: {e}"))
    }
}

impl Milter {
    /// The headers to add, in rspamd's order: each value as one line.
    pub fn additions(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, value) in &self.add_headers {
            let values = match value {
                Json::Array(items) => items.iter().collect(),
                single => vec![single],
            };
            for value in values {
                let text = match value {
                    Json::String(s) => Some(s.as_str()),
                    Json::Object(fields) => fields.get("value").and_then(Json::as_str),
                    _ => None,
                };
                if let Some(text) = text {
                    out.push((name.clone(), unfold(text)));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_checkv2_answer() {
        let body = br#"{"is_skipped":false,"score":7.5,"required_score":15.0,"action":"add header",
            "symbols":{"GTUBE":{"name":"GTUBE","score":0.0,"metric_score":0.0},
                       "R_SPAM":{"name":"R_SPAM","score":7.5,"options":["a","b"]}},
            "messages":{"smtp_message":"Spam!"},"message-id":"x@y","time_real":0.1,
            "milter":{"add_headers":{"X-Spam-Status":{"value":"Yes, score=7.5","order":0},
                                     "X-Two":["one",{"value":"two\n\tfolded","order":1}]},
                      "remove_headers":{"X-Spam":1}}}"#;
        let scan = Scan::parse(body).unwrap();
        assert_eq!(scan.action, "add header");
        assert_eq!(scan.score, 7.5);
        assert_eq!(scan.symbols["R_SPAM"].options, ["a", "b"]);
        assert_eq!(scan.messages.smtp_message.as_deref(), Some("Spam!"));
        assert_eq!(
            scan.milter.additions(),
            [
                ("X-Spam-Status".to_string(), "Yes, score=7.5".to_string()),
                ("X-Two".to_string(), "one".to_string()),
                ("X-Two".to_string(), "two folded".to_string()),
            ]
        );
        assert!(scan.milter.remove_headers.contains_key("X-Spam"));
    }

    #[test]
    fn refuses_what_is_not_a_scan() {
        assert!(Scan::parse(b"<html>").is_err());
        assert!(Scan::parse(br#"{"error":"bad request"}"#).is_err(), "no action");
    }
}
