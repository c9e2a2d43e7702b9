//! The request to `/checkv2`: the envelope as rspamd's protocol headers, the message
//! as the body.

use sluice_plugin::http::{Body, Request};
use sluice_plugin::{Session, Transaction};

use crate::config::Settings;

/// `From`, `Rcpt` (one each), `IP`, `Helo`, `Hostname`, `User` and `Queue-Id`, for
/// what is known. rspamd takes an unknown client name as `unknown`.
pub fn envelope_headers(session: &Session, transaction: &Transaction) -> Vec<(String, String)> {
    let mut headers = Vec::with_capacity(6 + transaction.recipients.len());
    let mut put = |name: &str, value: &str| headers.push((name.to_string(), value.to_string()));
    if let Some(sender) = &transaction.sender {
        put("From", if sender.is_empty() { "<>" } else { sender });
    }
    for recipient in &transaction.recipients {
        put("Rcpt", &recipient.address);
    }
    put("IP", &session.client_ip);
    if let Some(helo) = &session.helo {
        put("Helo", helo);
    }
    put("Hostname", session.reverse_name.as_deref().unwrap_or("unknown"));
    if let Some(user) = &session.auth_user {
        put("User", user);
    }
    // The queue ID is assigned after the DATA hooks; the session ID is what the
    // server's log shows meanwhile.
    put("Queue-Id", &session.id);
    put("MTA-Name", &session.server_hostname);
    headers
}

/// The whole request, with `body` (the message) streamed.
pub fn checkv2<'a>(settings: &Settings, session: &Session, transaction: &Transaction, body: Body<'a>) -> Request<'a> {
    let mut request = settings.service.post("/checkv2").body(body);
    request.headers = envelope_headers(session, transaction);
    request
}

#[cfg(test)]
pub(crate) mod tests {

    use super::*;

    pub fn session() -> Session {
        Session { id: "s42".into(), ..sluice_plugin::testing::session() }
    }

    pub use sluice_plugin::testing::transaction;

    #[test]
    fn envelope_as_protocol_headers() {
        let mut session = session();
        session.auth_user = Some("alice".into());
        let headers = envelope_headers(&session, &transaction("a@example.org", &["b@example.com", "c@example.com"]));
        let expected = [
            ("From", "a@example.org"),
            ("Rcpt", "b@example.com"),
            ("Rcpt", "c@example.com"),
            ("IP", "192.0.2.7"),
            ("Helo", "client.example.org"),
            ("Hostname", "unknown"),
            ("User", "alice"),
            ("Queue-Id", "s42"),
            ("MTA-Name", "mx.example.com"),
        ];
        let got: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn null_sender_and_known_client_name() {
        let mut session = session();
        session.reverse_name = Some("client.example.org".into());
        let headers = envelope_headers(&session, &transaction("", &["b@example.com"]));
        assert!(headers.contains(&("From".into(), "<>".into())));
        assert!(headers.contains(&("Hostname".into(), "client.example.org".into())));
    }
}
