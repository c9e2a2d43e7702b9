//! rspamd: at DATA, posts the message with its envelope to rspamd's `/checkv2` and
//! applies rspamd's action, milter headers and score. See `README.md`.
//!
//! The request and the mapping are plain modules tested on the host; this file sends
//! the request through the host and fails the call when rspamd does not answer, so the
//! plugin's `on_error` decides (`continue` in the examples: a down rspamd stops no mail).

pub mod config;
pub mod decide;
pub mod reply;
pub mod request;

use filter_util::service::answer_body;
use sluice_plugin::http::{Body, HostHttp, Http};
use sluice_plugin::prelude::*;

use crate::config::Settings;
use crate::reply::Scan;

static SETTINGS: PluginConfig<Settings> = PluginConfig::new(config::parse);

/// Scans the message; the failure, described, when rspamd gives no usable answer.
pub fn scan(
    http: &mut impl Http,
    settings: &Settings,
    session: &Session,
    transaction: &Transaction,
    body: Body<'_>,
    subject: Option<&str>,
) -> Result<DataResult, String> {
    let request = request::checkv2(settings, session, transaction, body);
    let answer = answer_body("rspamd", http.send(request))?;
    Ok(decide::decide(settings, &Scan::parse(&answer)?, subject))
}

pub struct Rspamd;

impl Plugin for Rspamd {
    fn describe() -> PluginInfo {
        sluice_plugin::plugin_info!(Stage::Data).reusable()
    }

    fn data(session: &Session, transaction: &Transaction, message: &Message) -> DataResult {
        let settings = SETTINGS.get();
        let subject = message.first_header("Subject");
        let body = Body::message(message);
        scan(&mut HostHttp, settings, session, transaction, body, subject.as_deref())
            .unwrap_or_else(|why| sluice_plugin::fail(&why))
    }
}

sluice_plugin::export!(Rspamd);

#[cfg(test)]
mod tests {
    use sluice_plugin::Verdict;
    use sluice_plugin::http::HttpError;
    use sluice_plugin::testing::{FakeHttp, from_toml, parse_clean};

    use super::*;
    use crate::request::tests::{session, transaction};

    #[test]
    fn posts_the_message_and_applies_the_answer() {
        let settings = parse_clean(config::parse, &from_toml("url = \"http://127.0.0.1:11333/\""));
        let mut http = FakeHttp::default().answer(200, r#"{"action":"reject","messages":{"smtp_message":"No"}}"#);
        let message = b"Subject: hi\r\n\r\nbody\r\n".to_vec();
        let txn = transaction("a@example.org", &["b@example.com"]);
        let result = scan(&mut http, &settings, &session(), &txn, Body::Bytes(message.clone()), None).unwrap();
        assert!(matches!(result.outcome.verdict, Verdict::Reject(_)));
        let sent = http.only_request();
        assert_eq!(sent.url, "http://127.0.0.1:11333/checkv2");
        assert_eq!(sent.body, message);
        assert_eq!(sent.header_values("Rcpt"), ["b@example.com"]);
    }

    #[test]
    fn no_usable_answer_is_a_failure() {
        let settings = parse_clean(config::parse, &from_toml(""));
        let txn = transaction("a@example.org", &["b@example.com"]);
        let mut http = FakeHttp::default()
            .failing(HttpError::Connection("refused".into()))
            .answer(500, "oops")
            .answer(200, "not json");
        for expected in ["rspamd: connection failed: refused", "rspamd answered HTTP 500: oops", "not a scan result"] {
            let error = scan(&mut http, &settings, &session(), &txn, Body::Empty, None).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
    }
}
