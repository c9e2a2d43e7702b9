//! The host-side validation of what plugins return, and the header rewriting that
//! applies their header changes.
//!
//! The WIT binding types do not implement `Arbitrary`, so they are built here from
//! `arbitrary::Unstructured`; strings are drawn either freely or from fragments that
//! matter to the checks (reply codes, dots, CR/LF, NUL, non-ASCII, `@`, brackets,
//! header names, long runs), so that both sides of every check are reached.
//!
//! Invariants:
//! - nothing panics;
//! - an accepted reply has a code in 400..=599 that fits its verdict (5xx reject, 4xx
//!   tempfail, 421 or 5xx disconnect), an enhanced code of the same class, and text of
//!   1 to 400 bytes without control characters, so it goes out as exactly one reply
//!   line of at most 512 bytes;
//! - accepted tags, scores, annotations and quarantine reasons are within their limits;
//! - an accepted address has a domain (or is postmaster), re-parses to itself, and its
//!   wire form `<address>` parses back to it; an accepted next hop is one the delivery
//!   side can parse (`sluice::config::NextHop`);
//! - `apply_header_edits` with checked edits on a clean header section (CRLF only,
//!   lines of at most 998 bytes, no whitespace-only line) gives a clean section: CRLF
//!   only, every line at most 998 bytes, no whitespace-only line (RFC 5322 §3.2.2
//!   folding), exactly one empty line, at the end; ASCII stays ASCII; fields set are
//!   there once, fields removed are gone, fields added are there;
//! - with no edits, the header section comes out as it went in (plus the final blank
//!   line when it was missing).

#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use sluice::config::NextHop;
use sluice::mail::Mailbox;
use sluice::mail::address::{PathRole, parse_path};
use sluice::plugin::bindings::exports::sluice::plugin::hooks::{HeaderChange, RecipientAction};
use sluice::plugin::bindings::sluice::plugin::types::{Outcome, Reply as WitReply, Route, Verdict as WitVerdict};
use sluice::plugin::output::{
    HeaderEdit, RecipientFate, Verdict, check_address, check_header_changes, check_outcome, check_recipient_action,
    check_recipients, check_route,
};
use sluice::plugin::rewrite::apply_header_edits;
use sluice::wire::Reply;

const FRAGMENTS: &[&str] = &[
    "5",
    "4",
    "2",
    "0",
    "1",
    "7",
    "550",
    "451",
    "421",
    "250",
    ".",
    ". ",
    " ",
    "  ",
    "\t",
    "\r",
    "\n",
    "\r\n",
    "\0",
    "\x7f",
    "\u{85}",
    "\u{2028}",
    "é",
    "用户",
    "例子.测试",
    "@",
    "example.com",
    "mx.example.net",
    "\"",
    "\\",
    "<",
    ">",
    ":",
    ";",
    ",",
    "[",
    "]",
    "IPv6:",
    "2001:db8::1",
    "192.0.2.1",
    ":25",
    ":0",
    ":99999",
    "postmaster",
    "Subject",
    "subject",
    "X-Spam",
    "Received",
    "From",
    "To",
    "word",
    "a",
    "-",
    "+",
    "%",
    "!",
    "=?utf-8?b?",
    "?=",
    "x",
];

/// Raw bytes: a little-endian u16 length, then that many bytes (or what is left).
/// Everything is read from the front, so seeds can be written by hand
/// (`fuzz/seeds.py`).
fn raw(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let len = usize::from(u16::arbitrary(u)?).min(u.len());
    Ok(u.bytes(len)?.to_vec())
}

fn string(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0..=3)? {
        0 => String::from_utf8_lossy(&raw(u)?).into_owned(),
        1 | 2 => {
            let mut s = String::new();
            for _ in 0..u.int_in_range(0..=12)? {
                s.push_str(u.choose(FRAGMENTS)?);
            }
            s
        }
        _ => {
            // Long runs, for the length limits (400, 900, 998, 8 KiB...).
            let unit = u.choose(FRAGMENTS)?;
            let count = u.int_in_range(0..=1100)?;
            let mut s = unit.repeat(count);
            for _ in 0..u.int_in_range(0..=3)? {
                s.push_str(u.choose(FRAGMENTS)?);
            }
            s
        }
    })
}

fn reply(u: &mut Unstructured<'_>) -> Result<WitReply> {
    let code = if bool::arbitrary(u)? {
        *u.choose(&[250, 354, 399, 400, 421, 450, 451, 499, 500, 550, 554, 599, 600])?
    } else {
        u16::arbitrary(u)?
    };
    Ok(WitReply { code, enhanced_code: string(u)?, text: string(u)? })
}

fn verdict(u: &mut Unstructured<'_>) -> Result<WitVerdict> {
    Ok(match u.int_in_range(0..=6)? {
        0 => WitVerdict::Continue,
        1 => WitVerdict::Accept,
        2 => WitVerdict::Reject(reply(u)?),
        3 => WitVerdict::Tempfail(reply(u)?),
        4 => WitVerdict::Disconnect(reply(u)?),
        5 => WitVerdict::Discard,
        _ => WitVerdict::Quarantine(string(u)?),
    })
}

fn list<T>(
    u: &mut Unstructured<'_>,
    max: usize,
    mut item: impl FnMut(&mut Unstructured<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let count = u.int_in_range(0..=max)?;
    (0..count).map(|_| item(u)).collect()
}

fn outcome(u: &mut Unstructured<'_>) -> Result<Outcome> {
    let verdict = verdict(u)?;
    let tags = list(u, 34, string)?;
    let score = if bool::arbitrary(u)? { f64::arbitrary(u)? } else { f64::from(i32::arbitrary(u)?) };
    let annotations = list(u, 34, |u| Ok((string(u)?, string(u)?)))?;
    Ok(Outcome { verdict, tags, score, annotations })
}

fn header_change(u: &mut Unstructured<'_>) -> Result<HeaderChange> {
    Ok(match u.int_in_range(0..=2)? {
        0 => HeaderChange::Add((string(u)?, string(u)?)),
        1 => HeaderChange::Set((string(u)?, string(u)?)),
        _ => HeaderChange::Remove(string(u)?),
    })
}

/// A header section: mostly clean (CRLF, plausible fields), sometimes anything.
fn section(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    if u.ratio(1, 8)? {
        return raw(u);
    }
    let mut out = Vec::new();
    for _ in 0..u.int_in_range(0..=8)? {
        match u.int_in_range(0..=3)? {
            0 | 1 => {
                out.extend_from_slice(
                    u.choose(&["Subject", "subject", "X-Spam", "Received", "From", "To", "x"])?.as_bytes(),
                );
                out.extend_from_slice(u.choose(&[": ", ":", " : "])?.as_bytes());
                out.extend_from_slice(string(u)?.as_bytes());
            }
            2 => {
                out.extend_from_slice(u.choose(&[" ", "\t"])?.as_bytes());
                out.extend_from_slice(string(u)?.as_bytes());
            }
            _ => out.extend_from_slice(string(u)?.as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
    }
    match u.int_in_range(0..=2)? {
        0 => {}
        1 => out.extend_from_slice(b"\r\n"),
        _ => {
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(string(u)?.as_bytes());
        }
    }
    if u.ratio(1, 8)? {
        out.truncate(out.len().saturating_sub(2));
    }
    Ok(out)
}

fn check_reply(r: &Reply, allowed: impl Fn(u16) -> bool) {
    assert!((400..=599).contains(&r.code) && allowed(r.code), "reply code {} accepted for its verdict", r.code);
    assert_eq!(u16::from(r.status.0), r.code / 100, "enhanced code {} accepted with {}", r.status, r.code);
    assert!(r.status.1 <= 999 && r.status.2 <= 999, "enhanced code {} out of range", r.status);
    assert!(!r.text.is_empty() && r.text.len() <= 400, "reply text of {} bytes accepted", r.text.len());
    assert!(!r.text.chars().any(char::is_control), "control character in accepted reply text {:?}", r.text);
    let mut wire = Vec::new();
    r.write_to(&mut wire);
    assert!(wire.len() <= 512, "reply line of {} bytes", wire.len());
    assert!(wire.ends_with(b"\r\n"), "reply line without CRLF");
    assert_eq!(wire.iter().filter(|&&b| b == b'\n' || b == b'\r').count(), 2, "reply is not one line: {wire:?}");
    assert!(wire.starts_with(r.code.to_string().as_bytes()), "reply line does not start with its code");
}

fn check_mailbox(m: &Mailbox) {
    assert!(!m.domain.is_empty() || m.is_postmaster(), "address without a domain accepted: {m:?}");
    let text = m.to_string();
    assert_eq!(Mailbox::parse(&text).as_ref(), Ok(m), "accepted address {m:?} does not re-parse from {text:?}");
    let wire = format!("<{text}>");
    let parsed = parse_path(&wire, PathRole::Forward).unwrap_or_else(|e| panic!("wire form {wire:?} refused: {e}"));
    assert_eq!(parsed.mailbox.as_ref(), Some(m), "wire form {wire:?} parses differently");
    assert!(!parsed.source_route && parsed.params.is_empty(), "wire form {wire:?} parses differently");
}

fn is_clean(section: &[u8]) -> bool {
    let mut i = 0;
    let mut line_start = 0;
    let mut in_header = true;
    while i < section.len() {
        match section[i] {
            b'\r' if section.get(i + 1) == Some(&b'\n') => {
                let line = &section[line_start..i];
                if line.len() > 998 {
                    return false;
                }
                if line.is_empty() {
                    in_header = false;
                } else if in_header && line.iter().all(|b| *b == b' ' || *b == b'\t') {
                    return false;
                }
                i += 2;
                line_start = i;
            }
            b'\r' | b'\n' => return false,
            _ => i += 1,
        }
    }
    let last = &section[line_start..];
    last.len() <= 998 && !(in_header && !last.is_empty() && last.iter().all(|b| *b == b' ' || *b == b'\t'))
}

/// Whether `line` starts a field called `name` (`Name:`, `Name :`), ignoring case.
fn starts_field(line: &[u8], name: &str) -> bool {
    line.len() > name.len()
        && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        && line[name.len()..].iter().find(|b| **b != b' ' && **b != b'\t') == Some(&b':')
}

fn check_rewrite(section: &[u8], edits: &[HeaderEdit]) {
    let Ok(out) = apply_header_edits(section, edits) else { return };
    if !is_clean(section) {
        return;
    }
    let shown = || String::from_utf8_lossy(&out).into_owned();
    for (i, &b) in out.iter().enumerate() {
        if b == b'\r' {
            assert_eq!(out.get(i + 1), Some(&b'\n'), "bare CR in the rewritten section {:?}", shown());
        }
        if b == b'\n' {
            assert!(i > 0 && out[i - 1] == b'\r', "bare LF in the rewritten section {:?}", shown());
        }
    }
    assert!(out.ends_with(b"\r\n"), "rewritten section does not end with a line break");
    let lines: Vec<&[u8]> =
        out[..out.len() - 2].split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).collect();
    // `out` minus its last CRLF: the last line is the empty one (or the whole is "").
    let (blank, fields) = lines.split_last().expect("at least one line");
    assert!(blank.is_empty(), "the rewritten section does not end with an empty line: {:?}", shown());
    for line in fields {
        assert!(!line.is_empty(), "an empty line inside the rewritten section: {:?}", shown());
        assert!(line.len() <= 998, "a line of {} bytes in the rewritten section", line.len());
        assert!(
            !line.iter().all(|b| *b == b' ' || *b == b'\t'),
            "a whitespace-only line in the rewritten section: {:?}",
            shown()
        );
    }
    if section.is_ascii() {
        assert!(out.is_ascii(), "non-ASCII in the rewritten section: {:?}", shown());
    }
    if edits.is_empty() {
        let header_end = if section.starts_with(b"\r\n") {
            Some(2)
        } else {
            section.windows(4).position(|w| w == b"\r\n\r\n").map(|at| at + 4)
        };
        let expected = match header_end {
            Some(end) => section[..end].to_vec(),
            None => {
                let mut e = section.to_vec();
                if !e.is_empty() && !e.ends_with(b"\r\n") {
                    e.extend_from_slice(b"\r\n");
                }
                e.extend_from_slice(b"\r\n");
                e
            }
        };
        assert_eq!(out, expected, "no edits changed the section");
    }
    // What the last edit of each name says must hold.
    for (at, edit) in edits.iter().enumerate() {
        let name = match edit {
            HeaderEdit::Add(n, _) | HeaderEdit::Set(n, _) | HeaderEdit::Remove(n) => n,
        };
        let later = edits[at + 1..].iter().any(|e| match e {
            HeaderEdit::Add(n, _) | HeaderEdit::Set(n, _) | HeaderEdit::Remove(n) => n.eq_ignore_ascii_case(name),
        });
        if later {
            continue;
        }
        let count = fields.iter().filter(|l| starts_field(l, name)).count();
        match edit {
            HeaderEdit::Add(..) => assert!(count >= 1, "added field {name} missing: {:?}", shown()),
            HeaderEdit::Set(..) => assert_eq!(count, 1, "set field {name} not there once: {:?}", shown()),
            HeaderEdit::Remove(..) => assert_eq!(count, 0, "removed field {name} still there: {:?}", shown()),
        }
    }
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    match check_outcome(outcome(u)?) {
        Ok(checked) => {
            match &checked.verdict {
                Verdict::Reject(r) => check_reply(r, |c| (500..=599).contains(&c)),
                Verdict::Tempfail(r) => check_reply(r, |c| (400..=499).contains(&c)),
                Verdict::Disconnect(r) => check_reply(r, |c| c == 421 || (500..=599).contains(&c)),
                Verdict::Quarantine(reason) => {
                    assert!(reason.len() <= 256, "quarantine reason of {} bytes", reason.len());
                    assert!(!reason.chars().any(char::is_control), "control character in quarantine reason");
                }
                Verdict::Continue | Verdict::Accept | Verdict::Discard => {}
            }
            assert!(checked.tags.len() <= 32, "{} tags", checked.tags.len());
            for tag in &checked.tags {
                assert!(!tag.is_empty() && tag.len() <= 64 && tag.bytes().all(|b| b.is_ascii_graphic()), "tag {tag:?}");
            }
            assert!(checked.score.is_finite() && checked.score.abs() <= 1e6, "score {}", checked.score);
            assert!(checked.annotations.len() <= 32, "{} annotations", checked.annotations.len());
            for (k, v) in &checked.annotations {
                assert!(!k.is_empty() && k.len() <= 64 && v.len() <= 1024, "annotation {k:?}");
                assert!(!k.chars().chain(v.chars()).any(char::is_control), "control character in annotation");
            }
        }
        Err(invalid) => assert!(!invalid.0.is_empty(), "empty explanation"),
    }

    let null_ok = bool::arbitrary(u)?;
    let address = string(u)?;
    match check_address(&address, null_ok) {
        Ok(Some(m)) => check_mailbox(&m),
        Ok(None) => assert!(null_ok && address.is_empty(), "null address accepted for {address:?}"),
        Err(_) => {}
    }
    let action = match u.int_in_range(0..=2)? {
        0 => RecipientAction::Keep,
        1 => RecipientAction::Drop,
        _ => RecipientAction::Rewrite(string(u)?),
    };
    if let Ok(RecipientFate::Rewrite(m)) = check_recipient_action(action) {
        check_mailbox(&m);
    }
    if let Ok(added) = check_recipients(&list(u, 3, string)?) {
        added.iter().for_each(check_mailbox);
    }

    let route = if bool::arbitrary(u)? { Route::Named(string(u)?) } else { Route::NextHop(string(u)?) };
    match check_route(route) {
        Ok(sluice::mail::RouteChoice::Named(name)) => {
            assert!(
                !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_graphic()),
                "route {name:?}"
            );
        }
        Ok(sluice::mail::RouteChoice::NextHop(hop)) => {
            if let Err(e) = hop.parse::<NextHop>() {
                panic!("next hop {hop:?} accepted, but delivery cannot use it: {e}");
            }
        }
        Err(_) => {}
    }

    let changes = list(u, 6, header_change)?;
    let section = section(u)?;
    if let Ok(edits) = check_header_changes(changes) {
        for edit in &edits {
            let name = match edit {
                HeaderEdit::Add(n, v) | HeaderEdit::Set(n, v) => {
                    assert!(v.len() <= 8192 && !v.contains(['\r', '\n', '\0']), "header value {v:?} accepted");
                    n
                }
                HeaderEdit::Remove(n) => n,
            };
            assert!(
                !name.is_empty() && name.len() <= 76 && name.bytes().all(|b| b.is_ascii_graphic() && b != b':'),
                "header name {name:?} accepted"
            );
        }
        check_rewrite(&section, &edits);
    }
    check_rewrite(&section, &[]);
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
