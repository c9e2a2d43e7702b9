//! http-policy: Postfix's policy delegation over HTTP with JSON. At each configured
//! stage it posts a document about the session (and the transaction, the recipient,
//! the message) to the policy service and returns the verdict it reads back. See
//! `README.md` for both schemas.
//!
//! No usable answer (the service down, slow, an HTTP error, malformed JSON) fails the
//! call, so the plugin's `on_error` decides.

pub mod config;
pub mod document;
pub mod verdict;

use filter_util::service::answer_body;
use sluice_plugin::http::{Body, HostHttp, Http};
use sluice_plugin::prelude::*;

use crate::config::{Settings, stage_name};
use crate::document::Document;

static SETTINGS: PluginConfig<Settings> = PluginConfig::new(config::parse);

/// Posts `document` and reads the verdict: the outcome and the headers to add.
pub fn ask(
    http: &mut impl Http,
    settings: &Settings,
    document: &Document<'_>,
) -> Result<(Outcome, Vec<(String, String)>), String> {
    let mut request = settings.service.post("").header("Content-Type", "application/json");
    request.headers.extend(settings.headers.iter().cloned());
    let request = request.body(Body::Bytes(document.to_json()));
    verdict::read(&answer_body("policy service", http.send(request))?)
}

fn document<'a>(stage: Stage, session: &'a Session, transaction: Option<&'a Transaction>) -> Document<'a> {
    Document {
        stage: stage_name(stage),
        session: document::session(session),
        transaction: transaction.map(document::transaction),
        recipient: None,
        message: None,
    }
}

/// The verdict, or the call fails; headers only count at DATA.
fn outcome(document: &Document<'_>) -> Outcome {
    match ask(&mut HostHttp, SETTINGS.get(), document) {
        Ok((outcome, _)) => outcome,
        Err(why) => sluice_plugin::fail(&why),
    }
}

pub struct HttpPolicy;

impl Plugin for HttpPolicy {
    fn describe() -> PluginInfo {
        PluginInfo::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"), &SETTINGS.get().stages).reusable()
    }

    fn connect(session: &Session) -> Outcome {
        outcome(&document(Stage::Connect, session, None))
    }

    fn helo(session: &Session) -> Outcome {
        outcome(&document(Stage::Helo, session, None))
    }

    fn mail_from(session: &Session, transaction: &Transaction) -> MailFromResult {
        outcome(&document(Stage::MailFrom, session, Some(transaction))).into()
    }

    fn rcpt_to(session: &Session, transaction: &Transaction, recipient: &Recipient) -> RcptToResult {
        let mut doc = document(Stage::RcptTo, session, Some(transaction));
        doc.recipient = Some(document::recipient(recipient));
        outcome(&doc).into()
    }

    fn data(session: &Session, transaction: &Transaction, message: &Message) -> DataResult {
        let settings = SETTINGS.get();
        let headers = message.headers();
        let body = message.read_body_prefix(settings.body_bytes);
        let mut doc = document(Stage::Data, session, Some(transaction));
        doc.message = Some(document::message(message.size(), &headers, message.body_size(), &body));
        let (outcome, added) = ask(&mut HostHttp, settings, &doc).unwrap_or_else(|why| sluice_plugin::fail(&why));
        added.into_iter().fold(DataResult::from(outcome), |result, (name, value)| result.add_header(name, value))
    }
}

sluice_plugin::export!(HttpPolicy);

#[cfg(test)]
mod tests {
    use serde_json::Value as Json;
    use sluice_plugin::testing::{FakeHttp, from_toml, parse_clean, session};
    use sluice_plugin::{Header, Verdict};

    use super::*;

    fn transaction() -> Transaction {
        Transaction {
            tags: vec!["earlier".into()],
            score: 0.5,
            ..sluice_plugin::testing::transaction("a@example.org", &["b@example.com"])
        }
    }

    #[test]
    fn posts_the_document_and_reads_the_verdict() {
        let settings = parse_clean(
            config::parse,
            &from_toml("url = \"http://127.0.0.1:9000/policy\"\nheaders = { Authorization = \"Bearer t\" }"),
        );
        let mut http = FakeHttp::default().answer(200, r#"{"action":"reject","text":"No"}"#);
        let session = session();
        let txn = transaction();
        let headers = [Header { name: "Subject".into(), value: "Hi".into() }];
        let mut doc = document(Stage::Data, &session, Some(&txn));
        doc.message = Some(document::message(30, &headers, 10, b"hello"));
        let (outcome, _) = ask(&mut http, &settings, &doc).unwrap();
        assert!(matches!(outcome.verdict, Verdict::Reject(r) if r.code == 550 && r.text == "No"));

        let sent = http.only_request();
        assert_eq!(sent.url, "http://127.0.0.1:9000/policy");
        assert_eq!(sent.header_values("Authorization"), ["Bearer t"]);
        let json: Json = serde_json::from_slice(&sent.body).unwrap();
        assert_eq!(json["stage"], "data");
        assert_eq!(json["session"]["client_ip"], "192.0.2.7");
        assert_eq!(json["transaction"]["recipients"][0]["address"], "b@example.com");
        assert_eq!(json["message"]["headers"][0]["name"], "Subject");
        assert_eq!(json["message"]["body"], "hello");
        assert_eq!(json["message"]["body_truncated"], true);
        assert!(json.get("recipient").is_none());
    }

    #[test]
    fn no_usable_answer_is_a_failure() {
        let settings = parse_clean(config::parse, &from_toml(""));
        let session = session();
        let doc = document(Stage::Connect, &session, None);
        let mut http =
            FakeHttp::default().answer(503, "busy").answer(200, "{").failing(sluice_plugin::http::HttpError::Timeout);
        for expected in ["HTTP 503", "not a verdict", "timed out"] {
            let error = ask(&mut http, &settings, &doc).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
    }
}
