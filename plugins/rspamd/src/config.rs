//! The plugin's settings: where rspamd is, which of its actions to enforce, the header
//! names.

use filter_util::header::is_name;
use filter_util::service::Service;
use sluice_plugin::config::Value;

/// rspamd's actions this plugin knows (the names rspamd uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Reject,
    SoftReject,
    Greylist,
    AddHeader,
    RewriteSubject,
    NoAction,
}

impl Action {
    pub const ENFORCEABLE: [Action; 5] =
        [Action::Reject, Action::SoftReject, Action::Greylist, Action::AddHeader, Action::RewriteSubject];

    pub fn parse(name: &str) -> Option<Action> {
        Some(match name {
            "reject" => Action::Reject,
            "soft reject" => Action::SoftReject,
            "greylist" => Action::Greylist,
            "add header" => Action::AddHeader,
            "rewrite subject" => Action::RewriteSubject,
            "no action" => Action::NoAction,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::Reject => "reject",
            Action::SoftReject => "soft reject",
            Action::Greylist => "greylist",
            Action::AddHeader => "add header",
            Action::RewriteSubject => "rewrite subject",
            Action::NoAction => "no action",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub service: Service,
    /// Actions acted on; the others only leave the score, tags and result header.
    pub enforce: Vec<Action>,
    /// Set (replacing any the client sent) for `add header`.
    pub spam_header: String,
    pub spam_value: String,
    /// rspamd's verdict and symbols; `None` when configured as `""`.
    pub result_header: Option<String>,
    /// For `rewrite subject` when rspamd sends no subject; `%s` is the old one.
    pub subject: String,
}

pub const DEFAULT_URL: &str = "http://127.0.0.1:11333";

fn header_name(config: &Value, key: &str, default: &str, warnings: &mut Vec<String>) -> String {
    match config.str(key) {
        None => default.to_string(),
        Some(name) if is_name(name) => name.to_string(),
        Some(name) => {
            warnings.push(format!("{key}: {name:?} is not a header name; using {default}"));
            default.to_string()
        }
    }
}

pub fn parse(config: &Value) -> (Settings, Vec<String>) {
    let mut warnings = Vec::new();
    let service = Service::parse(config, DEFAULT_URL, &mut warnings);
    let enforce = match config.get("enforce") {
        None => Action::ENFORCEABLE.to_vec(),
        Some(_) => config
            .strings("enforce")
            .iter()
            .filter_map(|name| match Action::parse(name) {
                Some(action) if action != Action::NoAction => Some(action),
                _ => {
                    warnings.push(format!("enforce: {name:?} is not an rspamd action; left out"));
                    None
                }
            })
            .collect(),
    };
    let spam_header = header_name(config, "spam_header", "X-Spam", &mut warnings);
    let spam_value = config.str("spam_header_value").unwrap_or("Yes").to_string();
    let result_header = match config.str("result_header") {
        Some("") => None,
        _ => Some(header_name(config, "result_header", "X-Spamd-Result", &mut warnings)),
    };
    let subject = config.str("subject").unwrap_or("*** SPAM *** %s").to_string();
    (Settings { service, enforce, spam_header, spam_value, result_header, subject }, warnings)
}

#[cfg(test)]
mod tests {
    use sluice_plugin::testing::{from_toml, parse_clean};

    use super::*;

    #[test]
    fn defaults_enforce_every_action() {
        let settings = parse_clean(parse, &from_toml(""));
        assert_eq!(settings.service.url, DEFAULT_URL);
        assert_eq!(settings.enforce, Action::ENFORCEABLE);
        assert_eq!((settings.spam_header.as_str(), settings.spam_value.as_str()), ("X-Spam", "Yes"));
        assert_eq!(settings.result_header.as_deref(), Some("X-Spamd-Result"));
    }

    #[test]
    fn configured_values_and_warnings() {
        let config = from_toml(
            r#"enforce = ["reject", "quarantine", "add header"]
               spam_header = "X Bad"
               result_header = ""
               timeout = "2s""#,
        );
        let (settings, warnings) = parse(&config);
        assert_eq!(settings.enforce, [Action::Reject, Action::AddHeader]);
        assert_eq!(settings.spam_header, "X-Spam");
        assert_eq!(settings.result_header, None);
        assert_eq!(settings.service.timeout.as_secs(), 2);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }
}
