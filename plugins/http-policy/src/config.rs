//! The plugin's settings: the service, the stages it is asked at, how much of the
//! body it sees.

use filter_util::config::size_value;
use filter_util::header::is_name;
use filter_util::service::Service;
use sluice_plugin::Stage;
use sluice_plugin::config::Value;

#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub service: Service,
    pub stages: Vec<Stage>,
    /// How many bytes of the body the document carries at DATA.
    pub body_bytes: u64,
    /// Sent with every request, such as an `Authorization` header.
    pub headers: Vec<(String, String)>,
}

pub const DEFAULT_URL: &str = "http://127.0.0.1:10040/";

pub fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Connect => "connect",
        Stage::Helo => "helo",
        Stage::MailFrom => "mail-from",
        Stage::RcptTo => "rcpt-to",
        Stage::Data => "data",
    }
}

fn stage(name: &str) -> Option<Stage> {
    [Stage::Connect, Stage::Helo, Stage::MailFrom, Stage::RcptTo, Stage::Data]
        .into_iter()
        .find(|s| stage_name(*s) == name)
}

pub fn parse(config: &Value) -> (Settings, Vec<String>) {
    let mut warnings = Vec::new();
    let service = Service::parse(config, DEFAULT_URL, &mut warnings);
    let stages = match config.get("stages") {
        None => vec![Stage::RcptTo, Stage::Data],
        Some(_) => {
            let mut stages = Vec::new();
            for name in config.strings("stages") {
                match stage(&name) {
                    Some(s) if !stages.contains(&s) => stages.push(s),
                    Some(_) => {}
                    None => warnings.push(format!("stages: {name:?} is not a stage; left out")),
                }
            }
            stages
        }
    };
    let default_body = 64 * 1024;
    let body_bytes = match config.get("body_bytes") {
        None => default_body,
        Some(value) => size_value(value).unwrap_or_else(|| {
            warnings.push(format!("body_bytes must be a size such as \"64KiB\"; using {default_body}"));
            default_body
        }),
    };
    let mut headers = Vec::new();
    for (name, value) in config.get("headers").map(Value::entries).unwrap_or_default() {
        match value.as_str() {
            Some(value) if is_name(name) && !value.contains(['\r', '\n']) => {
                headers.push((name.clone(), value.to_string()))
            }
            _ => warnings.push(format!("headers: {name:?} is not a header name with a one-line value; left out")),
        }
    }
    (Settings { service, stages, body_bytes, headers }, warnings)
}

#[cfg(test)]
mod tests {
    use sluice_plugin::testing::{from_toml, parse_clean};

    use super::*;

    #[test]
    fn defaults() {
        let settings = parse_clean(parse, &from_toml(""));
        assert_eq!(settings.stages, [Stage::RcptTo, Stage::Data]);
        assert_eq!(settings.body_bytes, 65536);
        assert_eq!(settings.service.url, DEFAULT_URL);
    }

    #[test]
    fn stages_headers_and_warnings() {
        let config = from_toml(
            r#"stages = ["connect", "data", "data", "quit"]
               body_bytes = "1KiB"
               headers = { Authorization = "Bearer t", "Bad Name" = "x" }"#,
        );
        let (settings, warnings) = parse(&config);
        assert_eq!(settings.stages, [Stage::Connect, Stage::Data]);
        assert_eq!(settings.body_bytes, 1024);
        assert_eq!(settings.headers, [("Authorization".to_string(), "Bearer t".to_string())]);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }
}
