//! Applying what plugins changed to a transaction, for the server and the offline
//! runner (`sluice plugin test`) alike, so that the two cannot disagree.

use super::message::header_section_len;
use super::output::{HeaderEdit, Invalid, RecipientFate};
use super::rewrite::apply_header_edits;
use crate::mail::{Mailbox, Recipient};

/// The same mailbox: local parts are case-sensitive (RFC 5321 §2.4), domains are not.
pub fn same_address(a: &Mailbox, b: &Mailbox) -> bool {
    a.local == b.local && a.domain.eq_ignore_ascii_case(&b.domain)
}

/// What a RCPT plugin decided for the recipient: rewritten in place, or dropped (`None`).
pub fn rewrite_recipient(recipient: &mut Option<Recipient>, fate: RecipientFate) {
    match fate {
        RecipientFate::Keep => {}
        RecipientFate::Rewrite(address) => {
            if let Some(recipient) = recipient.as_mut() {
                recipient.address = address;
            }
        }
        RecipientFate::Drop => *recipient = None,
    }
}

fn plain(address: Mailbox) -> Recipient {
    Recipient { address, params: Default::default(), route: None }
}

/// The end of RCPT: the recipient (unless dropped) and those plugins added join the
/// transaction, each once, while there is room for `limit`.
pub fn accept_recipients(list: &mut Vec<Recipient>, recipient: Option<Recipient>, added: Vec<Mailbox>, limit: usize) {
    for recipient in recipient.into_iter().chain(added.into_iter().map(plain)) {
        let duplicate = list.iter().any(|r| same_address(&r.address, &recipient.address));
        if !duplicate && list.len() < limit {
            tracing::debug!(recipient = %recipient.address, "recipient accepted");
            list.push(recipient);
        }
    }
}

/// The end of DATA: removals first, then additions (each once).
pub fn change_recipients(list: &mut Vec<Recipient>, remove: &[Mailbox], add: Vec<Mailbox>) {
    list.retain(|r| !remove.iter().any(|gone| same_address(gone, &r.address)));
    accept_recipients(list, None, add, usize::MAX);
}

/// Where the stored body comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum BodySource {
    /// The content as received, from this offset (past the header section replaced).
    Received { skip: u64 },
    /// A body a plugin supplied.
    Replaced(Vec<u8>),
}

/// The message as DATA plugins left it.
#[derive(Debug, PartialEq, Eq)]
pub enum Content {
    /// As received.
    Unchanged,
    /// A new header section (ending with its blank line) before the body.
    Edited { header: Vec<u8>, body: BodySource },
}

/// Applies header edits and a new body to the content received (`head`: its start,
/// where the header section is).
pub fn edit_content(head: &[u8], header_edits: &[HeaderEdit], new_body: Option<Vec<u8>>) -> Result<Content, Invalid> {
    if header_edits.is_empty() && new_body.is_none() {
        return Ok(Content::Unchanged);
    }
    let section_len = header_section_len(head);
    let header = apply_header_edits(&head[..section_len], header_edits)?;
    let body = match new_body {
        Some(bytes) => BodySource::Replaced(bytes),
        None => BodySource::Received { skip: section_len as u64 },
    };
    Ok(Content::Edited { header, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rcpt(local: &str, domain: &str) -> Recipient {
        plain(Mailbox::new(local, domain))
    }

    fn addresses(list: &[Recipient]) -> Vec<String> {
        list.iter().map(|r| r.address.to_string()).collect()
    }

    #[test]
    fn domains_compare_without_case_local_parts_with_it() {
        assert!(same_address(&Mailbox::new("user", "Example.ORG"), &Mailbox::new("user", "example.org")));
        assert!(!same_address(&Mailbox::new("User", "example.org"), &Mailbox::new("user", "example.org")));
        assert!(!same_address(&Mailbox::new("user", "example.org"), &Mailbox::new("user", "example.net")));
    }

    #[test]
    fn rcpt_rewrites_and_drops_in_place() {
        let mut recipient = Some(rcpt("a", "example.org"));
        rewrite_recipient(&mut recipient, RecipientFate::Keep);
        assert_eq!(recipient, Some(rcpt("a", "example.org")));
        rewrite_recipient(&mut recipient, RecipientFate::Rewrite(Mailbox::new("b", "example.net")));
        assert_eq!(recipient, Some(rcpt("b", "example.net")));
        rewrite_recipient(&mut recipient, RecipientFate::Drop);
        assert_eq!(recipient, None);
        rewrite_recipient(&mut recipient, RecipientFate::Rewrite(Mailbox::new("c", "example.net")));
        assert_eq!(recipient, None, "a dropped recipient stays dropped");
    }

    #[test]
    fn rcpt_adds_each_address_once_within_the_limit() {
        let mut list = vec![rcpt("a", "example.org")];
        let added =
            vec![Mailbox::new("a", "EXAMPLE.org"), Mailbox::new("A", "example.org"), Mailbox::new("c", "x.org")];
        accept_recipients(&mut list, Some(rcpt("b", "example.org")), added, 3);
        assert_eq!(addresses(&list), ["a@example.org", "b@example.org", "A@example.org"]);
        let mut list = Vec::new();
        accept_recipients(&mut list, None, vec![Mailbox::new("x", "example.org")], 10);
        assert_eq!(addresses(&list), ["x@example.org"], "a dropped recipient's additions still count");
    }

    #[test]
    fn data_removes_then_adds() {
        let mut list = vec![rcpt("a", "example.org"), rcpt("b", "Example.org"), rcpt("C", "example.org")];
        let remove = [Mailbox::new("b", "example.ORG"), Mailbox::new("c", "example.org")];
        let add =
            vec![Mailbox::new("a", "example.org"), Mailbox::new("d", "example.org"), Mailbox::new("b", "example.org")];
        change_recipients(&mut list, &remove, add);
        assert_eq!(addresses(&list), ["a@example.org", "C@example.org", "d@example.org", "b@example.org"]);
    }

    const MESSAGE: &[u8] = b"Subject: hi\r\nX-Old: 1\r\n\r\nbody\r\n";

    #[test]
    fn content_without_changes_is_unchanged() {
        assert_eq!(edit_content(MESSAGE, &[], None), Ok(Content::Unchanged));
    }

    #[test]
    fn header_edits_keep_the_received_body() {
        let edits = [HeaderEdit::Remove("X-Old".into()), HeaderEdit::Add("X-New".into(), "2".into())];
        let Ok(Content::Edited { header, body }) = edit_content(MESSAGE, &edits, None) else { panic!("not edited") };
        assert_eq!(header, b"Subject: hi\r\nX-New: 2\r\n\r\n");
        assert_eq!(body, BodySource::Received { skip: 25 });
        assert_eq!(&MESSAGE[25..], b"body\r\n");
    }

    #[test]
    fn a_new_body_keeps_the_header_section() {
        let Ok(Content::Edited { header, body }) = edit_content(MESSAGE, &[], Some(b"new\r\n".to_vec())) else {
            panic!("not edited")
        };
        assert_eq!(header, b"Subject: hi\r\nX-Old: 1\r\n\r\n");
        assert_eq!(body, BodySource::Replaced(b"new\r\n".to_vec()));
    }

    #[test]
    fn an_edit_that_cannot_be_written_is_an_error() {
        let edits = [HeaderEdit::Add("X-Blob".into(), "x".repeat(1200))];
        assert!(edit_content(MESSAGE, &edits, None).is_err());
    }
}
