//! Delivery status notifications (RFC 3464): what the sender is told about a message
//! that failed, was delayed, or (when asked with `NOTIFY=SUCCESS`) was delivered. A
//! notice is an ordinary message from `<>`, queued and delivered like any other.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::mime::{BodyPart, MimePart};

use crate::client::data::has_8bit;
use crate::mail::QueueId;
use crate::mail::params::{Body, MailParams, Notify, Ret};
use crate::mail::{ClientInfo, Envelope, Mailbox, Recipient};
use crate::queue::{MessageState, Queue, RecipientState, StoreError, StoredBody};
use crate::wire::Status;

/// The original message is returned whole up to this size; beyond it, and when the
/// sender asked `RET=HDRS`, only its header.
pub const FULL_RETURN_LIMIT: usize = 1 << 20;

/// RFC 3464 §2.3.3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
    Delivered,
    /// Delivered to a next hop that does not pass DSN requests on.
    Relayed,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
        }
    }
}

/// Whether the sender asked for (or by default gets) a notice of this kind (RFC 3461
/// §4.1: without NOTIFY, failures are reported and delays may be).
pub fn wanted(notify: Option<Notify>, action: Action) -> bool {
    match (notify, action) {
        (Some(n), _) if n.never => false,
        (None, Action::Failed | Action::Delayed) => true,
        (None, _) => false,
        (Some(n), Action::Failed) => n.failure,
        (Some(n), Action::Delayed) => n.delay,
        (Some(n), Action::Delivered | Action::Relayed) => n.success,
    }
}

/// One recipient in a notice.
pub struct Line<'a> {
    pub recipient: &'a Recipient,
    pub state: &'a RecipientState,
    pub action: Action,
}

/// What goes into one notice.
pub struct Notice<'a> {
    pub reporting_mta: &'a str,
    pub envelope: &'a Envelope,
    pub lines: Vec<Line<'a>>,
    /// The message as stored.
    pub original: &'a [u8],
    /// For delay notices: until when we keep trying (Unix seconds).
    pub retry_until: Option<u64>,
    /// When the last attempt was made (Unix seconds).
    pub last_attempt: u64,
}

impl Notice<'_> {
    /// The notice as a message (RFC 5322, CRLF lines).
    pub fn build(&self, id: QueueId) -> Vec<u8> {
        let failed = self.lines.iter().any(|l| l.action == Action::Failed);
        let delayed = self.lines.iter().any(|l| l.action == Action::Delayed);
        let subject = if failed {
            "Undelivered Mail Returned to Sender"
        } else if delayed {
            "Delayed Mail (still being retried)"
        } else {
            "Successful Mail Delivery Report"
        };
        let utf8 = self.lines.iter().any(|l| !l.recipient.address.is_ascii())
            || self.envelope.sender.as_ref().is_some_and(|s| !s.is_ascii());
        let status_type = if utf8 { "message/global-delivery-status" } else { "message/delivery-status" };
        let header_end = memchr::memmem::find(self.original, b"\r\n\r\n").map_or(self.original.len(), |i| i + 2);
        let full =
            failed && self.envelope.mail_params.ret != Some(Ret::Hdrs) && self.original.len() <= FULL_RETURN_LIMIT;
        let returned: &[u8] = if full { self.original } else { &self.original[..header_end] };
        let returned_type = match (full, self.envelope.mail_params.smtputf8) {
            (true, true) => "message/global",
            (true, false) => "message/rfc822",
            (false, true) => "message/global-headers",
            (false, false) => "text/rfc822-headers",
        };
        let report = MimePart::new(
            ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
            BodyPart::Multipart(vec![
                MimePart::new(ContentType::new("text/plain").attribute("charset", "utf-8"), self.explanation()),
                MimePart::new(
                    ContentType::new(status_type),
                    BodyPart::Binary(self.status_fields(utf8).into_bytes().into()),
                )
                .transfer_encoding(if utf8 { "8bit" } else { "7bit" }),
                MimePart::new(ContentType::new(returned_type), BodyPart::Binary(returned.into()))
                    .transfer_encoding(if has_8bit(returned) { "8bit" } else { "7bit" }),
            ]),
        );
        let to = self.envelope.sender.as_ref().map_or_else(String::new, ToString::to_string);
        MessageBuilder::new()
            .from(("Mail Delivery System", format!("MAILER-DAEMON@{}", self.reporting_mta).as_str()))
            .to(to)
            .subject(subject)
            .message_id(format!("{id}.notice@{}", self.reporting_mta))
            .header("Auto-Submitted", mail_builder::headers::raw::Raw::new("auto-replied"))
            .body(report)
            .write_to_vec()
            .unwrap_or_default()
    }

    fn explanation(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "This is the mail system at host {}.\n", self.reporting_mta);
        let failed = self.lines.iter().any(|l| l.action == Action::Failed);
        let delayed = self.lines.iter().any(|l| l.action == Action::Delayed);
        if failed {
            text.push_str("Your message could not be delivered to one or more recipients.\nIt is attached below.\n\n");
        } else if delayed {
            text.push_str("Your message has not been delivered yet. The mail system will keep trying");
            if let Some(until) = self.retry_until {
                let _ = write!(text, " until {}", Date::new(until as i64).to_rfc822());
            }
            text.push_str(".\nYou do not need to send it again.\n\n");
        } else {
            text.push_str("Your message was delivered to the following recipients, as you asked.\n\n");
        }
        for line in &self.lines {
            let _ = write!(text, "<{}>: {}", line.recipient.address, line.action.name());
            if let Some(diagnostic) = &line.state.diagnostic {
                let _ = write!(text, ": {diagnostic}");
            }
            text.push('\n');
        }
        text
    }

    /// The machine-readable part: per-message fields, then a block per recipient.
    fn status_fields(&self, utf8: bool) -> String {
        let mut out = String::new();
        let _ = write!(out, "Reporting-MTA: dns; {}\r\n", self.reporting_mta);
        let _ = write!(out, "X-Sluice-Queue-ID: {}\r\n", self.envelope.id);
        if let Some(envid) = &self.envelope.mail_params.envid {
            let _ = write!(out, "Original-Envelope-Id: {}\r\n", clean(envid, false));
        }
        if let Some(sender) = &self.envelope.sender {
            let _ =
                write!(out, "X-Original-Sender: {}; {}\r\n", address_type(sender), clean(&sender.to_string(), utf8));
        }
        let _ = write!(out, "Arrival-Date: {}\r\n", Date::new(self.envelope.arrived as i64).to_rfc822());
        for line in &self.lines {
            out.push_str("\r\n");
            let address = &line.recipient.address;
            let _ =
                write!(out, "Final-Recipient: {}; {}\r\n", address_type(address), clean(&address.to_string(), utf8));
            if let Some(orcpt) = &line.recipient.params.orcpt
                && let Some((kind, value)) = orcpt.split_once(';')
            {
                let _ = write!(out, "Original-Recipient: {kind}; {}\r\n", clean(&decode_xtext(value), utf8));
            }
            let _ = write!(out, "Action: {}\r\n", line.action.name());
            let status = line.state.diagnostic.as_ref().map_or_else(
                || if line.action == Action::Failed { Status(5, 0, 0) } else { Status(2, 0, 0) },
                |d| d.status,
            );
            let _ = write!(out, "Status: {status}\r\n");
            if let Some(diagnostic) = &line.state.diagnostic {
                if let Some(mta) = &diagnostic.remote_mta {
                    let name = mta.split('[').next().unwrap_or(mta);
                    let _ = write!(out, "Remote-MTA: dns; {}\r\n", clean(name, false));
                }
                let kind = if diagnostic.smtp { "smtp" } else { "X-Sluice" };
                let _ = write!(out, "Diagnostic-Code: {kind}; {}\r\n", clean(&diagnostic.text, false));
            }
            let _ = write!(out, "Last-Attempt-Date: {}\r\n", Date::new(self.last_attempt as i64).to_rfc822());
            if line.action == Action::Delayed
                && let Some(until) = self.retry_until
            {
                let _ = write!(out, "Will-Retry-Until: {}\r\n", Date::new(until as i64).to_rfc822());
            }
        }
        out
    }

    /// The notice's envelope: from `<>` to the original sender.
    pub fn envelope(&self, id: QueueId, message: &[u8], now: u64) -> Option<Envelope> {
        let sender = self.envelope.sender.clone()?;
        let smtputf8 = !sender.is_ascii();
        Some(Envelope {
            id,
            arrived: now,
            sender: None,
            mail_params: MailParams {
                size: None,
                body: has_8bit(message).then_some(Body::EightBitMime),
                smtputf8,
                ret: None,
                envid: None,
            },
            recipients: vec![Recipient { address: sender, params: Default::default(), route: None }],
            client: ClientInfo {
                ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                port: 0,
                reverse_name: None,
                helo: None,
                tls: None,
                auth_user: None,
                session_id: format!("notice-{}", self.envelope.id),
            },
            route: None,
            tags: vec!["dsn".into()],
            score: 0.0,
        })
    }

    /// Builds the notice and stores it in the queue, where delivery picks it up.
    /// Returns its id, or `None` when there is nobody to tell (sender `<>`).
    pub async fn queue(&self, queue: &Queue, now: u64) -> Result<Option<QueueId>, StoreError> {
        let id = queue.next_id();
        let message = self.build(id);
        let Some(envelope) = self.envelope(id, &message, now) else { return Ok(None) };
        queue.store(envelope, MessageState::default(), Vec::new(), StoredBody::Replaced(message)).await?;
        Ok(Some(id))
    }
}

fn address_type(address: &Mailbox) -> &'static str {
    if address.is_ascii() { "rfc822" } else { "utf-8" }
}

/// Keeps a field value on one line and, unless UTF-8 is allowed, in ASCII.
fn clean(text: &str, utf8: bool) -> String {
    text.chars()
        .map(|c| match c {
            '\r' | '\n' | '\t' => ' ',
            c if c.is_control() => '?',
            c if !c.is_ascii() && !utf8 => '?',
            c => c,
        })
        .collect()
}

/// RFC 3461 §4: `+XX` escapes.
fn decode_xtext(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'+'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::envelope::test_envelope;
    use crate::queue::{Diagnostic, RecipientStatus};

    #[test]
    fn notify_rules() {
        let never = Notify { never: true, ..Notify::default() };
        let success = Notify { success: true, ..Notify::default() };
        assert!(wanted(None, Action::Failed));
        assert!(wanted(None, Action::Delayed));
        assert!(!wanted(None, Action::Delivered));
        assert!(!wanted(Some(never), Action::Failed));
        assert!(wanted(Some(success), Action::Relayed));
        assert!(!wanted(Some(success), Action::Failed));
    }

    #[test]
    fn failure_report_has_the_rfc3464_fields() {
        let mut envelope = test_envelope(QueueId::from_micros(7));
        envelope.mail_params.envid = Some("QQ+2B1".into());
        envelope.recipients[0].params.orcpt = Some("rfc822;b+2Bx@example.com".into());
        let state = RecipientState {
            status: RecipientStatus::Failed,
            diagnostic: Some(Diagnostic {
                status: Status(5, 1, 1),
                text: "550 5.1.1 no such user".into(),
                smtp: true,
                remote_mta: Some("mx.example.com[192.0.2.1]:25".into()),
            }),
            ..RecipientState::default()
        };
        let original = b"Received: x\r\nSubject: hi\r\n\r\nbody\r\n";
        let notice = Notice {
            reporting_mta: "relay.test",
            envelope: &envelope,
            lines: vec![Line { recipient: &envelope.recipients[0], state: &state, action: Action::Failed }],
            original,
            retry_until: None,
            last_attempt: 1_700_000_100,
        };
        let bytes = notice.build(QueueId::from_micros(8));
        let text = String::from_utf8(bytes.clone()).unwrap();
        for needle in [
            "multipart/report",
            "report-type=\"delivery-status\"",
            "Content-Type: message/delivery-status",
            "Reporting-MTA: dns; relay.test",
            "Original-Envelope-Id: QQ+2B1",
            "Final-Recipient: rfc822; b@example.com",
            "Original-Recipient: rfc822; b+x@example.com",
            "Action: failed",
            "Status: 5.1.1",
            "Remote-MTA: dns; mx.example.com",
            "Diagnostic-Code: smtp; 550 5.1.1 no such user",
            "Content-Type: message/rfc822",
            "Subject: hi\r\n\r\nbody\r\n",
            "From: \"Mail Delivery System\" <MAILER-DAEMON@relay.test>",
            "Auto-Submitted: auto-replied",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
        assert!(!text.replace("\r\n", "").contains('\n'), "CRLF only");
        let envelope = notice.envelope(QueueId::from_micros(8), &bytes, 5).unwrap();
        assert_eq!(envelope.sender, None);
        assert_eq!(envelope.recipients[0].address.to_string(), "a@example.org");
    }
}
