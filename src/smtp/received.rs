//! The `Received:` trace header we prepend to every accepted message (RFC 5321 §4.4).

use std::fmt::Write;

use crate::mail::QueueId;
use crate::mail::{ClientInfo, Mailbox};

/// Which protocol keyword goes in the `with` clause (RFC 3848, RFC 6531).
pub fn protocol(extended: bool, tls: bool, authenticated: bool, smtputf8: bool) -> String {
    let mut p = String::with_capacity(10);
    p.push_str(match (smtputf8, extended) {
        (true, _) => "UTF8SMTP",
        (false, true) => "ESMTP",
        (false, false) => "SMTP",
    });
    if tls {
        p.push('S');
    }
    if authenticated {
        p.push('A');
    }
    p
}

/// Keeps client-supplied names from breaking the header's syntax.
fn sanitize(text: &str) -> String {
    text.chars().take(255).map(|c| if c.is_alphanumeric() || "-.:[]_".contains(c) { c } else { '?' }).collect()
}

pub fn received_header(
    hostname: &str,
    client: &ClientInfo,
    protocol: &str,
    id: QueueId,
    single_recipient: Option<&Mailbox>,
    timestamp: i64,
) -> String {
    let mut h = String::with_capacity(320);
    let helo = client.helo.as_deref().map_or_else(|| "unknown".to_string(), sanitize);
    let reverse = client.reverse_name.as_deref().map_or_else(|| "unknown".to_string(), sanitize);
    let _ = write!(h, "Received: from {helo} ({reverse} [{}])\r\n", client.ip);
    if let Some(tls) = &client.tls {
        let _ = write!(h, "\t(using {} with cipher {})\r\n", tls.version, tls.cipher);
    }
    let _ = write!(h, "\tby {hostname} (Sluice) with {protocol} id {id}");
    if let Some(rcpt) = single_recipient {
        // Only with a single recipient: listing several would disclose Bcc recipients.
        let _ = write!(h, "\r\n\tfor <{rcpt}>");
    }
    let date = mail_builder::headers::date::Date::new(timestamp).to_rfc822();
    let _ = write!(h, "; {date}\r\n");
    h
}

/// Counts `Received:` headers in the header section of `message`.
pub fn count_received(message: &[u8]) -> usize {
    let mut count = 0;
    for line in message.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.len() >= 9 && line[..9].eq_ignore_ascii_case(b"received:") {
            count += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::TlsInfo;

    #[test]
    fn header_shape() {
        let client = ClientInfo {
            ip: "192.0.2.7".parse().unwrap(),
            port: 40000,
            reverse_name: None,
            helo: Some("client.example (evil)\r\nX-Injected: 1".into()),
            tls: Some(TlsInfo { version: "TLSv1.3".into(), cipher: "TLS13_AES_256_GCM_SHA384".into() }),
            auth_user: None,
            session_id: "1".into(),
        };
        let id: QueueId = "0000000000001".parse().unwrap();
        let h =
            received_header("relay.example.test", &client, "ESMTPS", id, Some(&Mailbox::new("u", "example.com")), 0);
        assert!(h.starts_with("Received: from client.example??evil???X-Injected:?1 (unknown [192.0.2.7])\r\n"), "{h}");
        assert!(h.contains("\t(using TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384)\r\n"), "{h}");
        assert!(
            h.contains("by relay.example.test (Sluice) with ESMTPS id 0000000000001\r\n\tfor <u@example.com>; "),
            "{h}"
        );
        assert!(h.ends_with("1970 00:00:00 +0000\r\n"), "{h}");
        assert_eq!(h.matches("\r\n").count(), h.matches('\n').count());
    }

    #[test]
    fn counting_stops_at_the_body() {
        let msg = b"Received: a\r\nreceived: b\r\n\tcontinued\r\nSubject: x\r\n\r\nReceived: in body\r\n";
        assert_eq!(count_received(msg), 2);
        assert_eq!(protocol(true, true, false, false), "ESMTPS");
        assert_eq!(protocol(false, false, false, false), "SMTP");
        assert_eq!(protocol(true, true, true, true), "UTF8SMTPSA");
    }
}
