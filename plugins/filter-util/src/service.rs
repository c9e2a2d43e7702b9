//! Plugins that ask an HTTP service (rspamd, a policy service): where it is, how long to
//! wait, how much of an answer to read, and what counts as an answer.

use std::time::Duration;

use sluice_plugin::config::Value;
use sluice_plugin::http::{HttpError, Request, Response, Url};

use crate::config::{duration, size_value};

/// The `url`, `timeout` and `max_response` keys of a plugin's config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub url: String,
    pub timeout: Duration,
    pub max_response: usize,
}

impl Service {
    /// Reads the keys; `url` must be an `http://` or `https://` URL (else `default_url`).
    pub fn parse(config: &Value, default_url: &str, warnings: &mut Vec<String>) -> Service {
        let url = match config.str("url") {
            None => default_url.to_string(),
            Some(url) => match Url::parse(url) {
                Ok(_) => url.to_string(),
                Err(e) => {
                    warnings.push(format!("url: {e}; using {default_url}"));
                    default_url.to_string()
                }
            },
        };
        let timeout = duration(config, "timeout", Duration::from_secs(5), warnings);
        let default_max = 1 << 20;
        let max_response = match config.get("max_response") {
            None => default_max,
            Some(value) => match size_value(value).and_then(|n| usize::try_from(n).ok()) {
                Some(n) if n > 0 => n,
                _ => {
                    warnings.push(format!("max_response must be a size such as \"1MB\"; using {default_max}"));
                    default_max
                }
            },
        };
        Service { url, timeout, max_response }
    }

    /// A POST to `path` under the URL (`""` for the URL itself), with the bounds.
    pub fn post(&self, path: &str) -> Request<'static> {
        let url = if path.is_empty() { self.url.clone() } else { format!("{}{path}", self.url.trim_end_matches('/')) };
        Request::post(url).timeout(self.timeout).max_response(self.max_response)
    }
}

/// The body of a 2xx answer; anything else is the failure, described (the plugin fails
/// the call with it: the service's trouble is for `on_error` to decide).
pub fn answer_body(service: &str, sent: Result<Response, HttpError>) -> Result<Vec<u8>, String> {
    match sent {
        Ok(response) if response.is_success() => Ok(response.body),
        Ok(response) => {
            let excerpt: String = String::from_utf8_lossy(&response.body).chars().take(200).collect();
            Err(format!("{service} answered HTTP {}: {}", response.status, excerpt.trim()))
        }
        Err(e) => Err(format!("{service}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use sluice_plugin::testing::{table, text};

    use super::*;

    #[test]
    fn reads_the_keys_with_fallbacks() {
        let mut w = Vec::new();
        let config = table(&[("url", text("http://127.0.0.1:11333/")), ("timeout", text("2s"))]);
        let service = Service::parse(&config, "http://localhost:1", &mut w);
        assert_eq!(service.timeout, Duration::from_secs(2));
        assert_eq!(service.max_response, 1 << 20);
        assert_eq!(service.post("/checkv2").url, "http://127.0.0.1:11333/checkv2");
        assert_eq!(service.post("").url, "http://127.0.0.1:11333/");
        assert!(w.is_empty(), "{w:?}");

        let config = table(&[("url", text("127.0.0.1:11333")), ("max_response", text("lots"))]);
        let service = Service::parse(&config, "http://localhost:1", &mut w);
        assert_eq!(service.url, "http://localhost:1");
        assert_eq!(w.len(), 2, "{w:?}");
    }

    #[test]
    fn only_a_2xx_answer_counts() {
        let ok = Response { status: 200, headers: Vec::new(), body: b"{}".to_vec() };
        assert_eq!(answer_body("rspamd", Ok(ok)), Ok(b"{}".to_vec()));
        let error = Response { status: 500, headers: Vec::new(), body: b"{\"error\":\"oops\"}".to_vec() };
        assert_eq!(answer_body("rspamd", Ok(error)), Err("rspamd answered HTTP 500: {\"error\":\"oops\"}".to_string()));
        assert_eq!(answer_body("rspamd", Err(HttpError::Timeout)), Err("rspamd: timed out".to_string()));
    }
}
