//! The SMTP command line parser, and for MAIL/RCPT the path and ESMTP parameter parsers.
//!
//! Input: one command line without its CRLF (as the session hands it to
//! `parse_command`). The same bytes are also given directly to the path parser when
//! they are UTF-8, so the address grammar is reached without a `MAIL FROM:` prefix.
//!
//! Invariants:
//! - nothing panics;
//! - every error reply is a 5xx syntax-class reply (500..=559) whose enhanced code has
//!   class 5, and whose text is one line without control characters;
//! - a parsed mailbox with a domain re-parses to itself from its text form
//!   (`Mailbox::parse(&m.to_string())`) and from its wire form (`<m>` in a path);
//! - `postmaster` without a domain only as a recipient; the null path only as a sender.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::mail::Mailbox;
use sluice::mail::address::{ParsedPath, PathRole, parse_path};
use sluice::wire::Reply;
use sluice::smtp::command::{Command, parse_command};
use sluice::smtp::params::{parse_mail_params, parse_rcpt_params};

fn check_error(reply: &Reply, what: &str, input: &[u8]) {
    assert!(
        (500..=559).contains(&reply.code),
        "{what}: reply code {} outside 500..=559 for {:?}",
        reply.code,
        String::from_utf8_lossy(input)
    );
    assert_eq!(
        u16::from(reply.status.0),
        reply.code / 100,
        "{what}: enhanced code {} does not fit {}",
        reply.status,
        reply.code
    );
    assert!(!reply.text.is_empty(), "{what}: empty reply text");
    assert!(!reply.text.chars().any(char::is_control), "{what}: control character in reply text {:?}", reply.text);
}

fn check_mailbox(m: &Mailbox, role: PathRole) {
    assert!(m.local.len() <= 64, "local part over 64 bytes accepted: {m:?}");
    assert!(m.domain.len() <= 255, "domain over 255 bytes accepted: {m:?}");
    assert!(!m.to_string().chars().any(char::is_control), "control character in an accepted address {m:?}");
    if m.domain.is_empty() {
        assert!(role == PathRole::Forward && m.is_postmaster(), "an address without a domain accepted: {m:?}");
        return;
    }
    let text = m.to_string();
    assert_eq!(Mailbox::parse(&text).as_ref(), Ok(m), "mailbox {m:?} does not re-parse from {text:?}");
    let wire = format!("<{text}>");
    let again = parse_path(&wire, role).unwrap_or_else(|e| panic!("wire form {wire:?} of {m:?} refused: {e}"));
    assert_eq!(again.mailbox.as_ref(), Some(m), "wire form {wire:?} parses differently");
    assert!(!again.source_route, "wire form {wire:?} grew a source route");
    assert_eq!(again.params, "", "wire form {wire:?} grew parameters");
}

fn check_path(arg: &str, role: PathRole, input: &[u8]) {
    let Ok(ParsedPath { mailbox, params, .. }) = parse_path(arg, role) else { return };
    match &mailbox {
        Some(m) => check_mailbox(m, role),
        None => assert_eq!(role, PathRole::Reverse, "null path accepted as a recipient: {arg:?}"),
    }
    assert!(arg.ends_with(params), "params {params:?} are not the tail of {arg:?}");
    assert!(!params.starts_with(' '), "params {params:?} keep their leading space");
    match role {
        PathRole::Reverse => {
            for max_size in [0, 25_000_000, u64::MAX] {
                match parse_mail_params(params, max_size) {
                    Ok(p) => {
                        assert!(p.size.is_none_or(|s| s <= max_size), "SIZE over the limit accepted");
                        if let Some(envid) = &p.envid {
                            assert!(!envid.is_empty() && envid.len() <= 100, "ENVID length");
                            assert!(envid.bytes().all(|b| b.is_ascii_graphic()), "ENVID {envid:?} not printable");
                        }
                    }
                    Err(reply) => check_error(&reply, "MAIL parameters", input),
                }
            }
        }
        PathRole::Forward => {
            for smtputf8 in [false, true] {
                match parse_rcpt_params(params, smtputf8) {
                    Ok(p) => {
                        if let Some(n) = p.notify {
                            assert!(!(n.never && (n.success || n.failure || n.delay)), "NOTIFY=NEVER combined");
                        }
                        if let Some(orcpt) = &p.orcpt {
                            assert!(orcpt.len() <= 500 && orcpt.contains(';'), "ORCPT {orcpt:?}");
                            assert!(smtputf8 || orcpt.is_ascii(), "non-ASCII ORCPT without SMTPUTF8");
                            assert!(!orcpt.chars().any(char::is_control), "control character in ORCPT");
                        }
                    }
                    Err(reply) => check_error(&reply, "RCPT parameters", input),
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match parse_command(data) {
        Err(reply) => check_error(&reply, "command", data),
        Ok(Command::Mail(arg)) => check_path(arg, PathRole::Reverse, data),
        Ok(Command::Rcpt(arg)) => check_path(arg, PathRole::Forward, data),
        Ok(Command::Ehlo(name) | Command::Helo(name)) => {
            assert!(!name.is_empty(), "empty HELO name");
            assert!(!name.contains([' ', '\t']), "HELO name {name:?} holds blanks");
            assert!(!name.chars().any(char::is_control), "control character in HELO name {name:?}");
        }
        Ok(Command::Auth { mechanism, initial }) => {
            assert!(!mechanism.is_empty() && !mechanism.contains(' '), "AUTH mechanism {mechanism:?}");
            assert!(initial.is_none_or(|i| !i.is_empty() && !i.contains(' ')), "AUTH initial response {initial:?}");
        }
        Ok(_) => {}
    }
    if let Ok(text) = std::str::from_utf8(data) {
        check_path(text, PathRole::Reverse, data);
        check_path(text, PathRole::Forward, data);
    }
});
