//! SMTP smuggling: no end-of-data variant but <CRLF>.<CRLF> ends a message, so a
//! pipelined second message can never be split off.

use std::collections::HashSet;
use std::time::Duration;

use crate::delivery::wait_until;
use crate::support::sink::{Sink, SinkOptions};
use crate::support::{Client, Sluice};

const VARIANTS: &[(&str, &[u8])] = &[
    ("LF.LF", b"\n.\n"),
    ("CR.CR", b"\r.\r"),
    ("LF.CRLF", b"\n.\r\n"),
    ("CRLF.LF", b"\r\n.\n"),
    ("CRLF.CR", b"\r\n.\r"),
    ("CR.CRLF", b"\r.\r\n"),
    ("CR.LF", b"\r.\n"),
    ("CRLF.CRCRLF", b"\r\n.\r\r\n"),
    ("CRLF.NUL.CRLF", b"\r\n\x00.\r\n"),
    ("CRLF.NULCRLF", b"\r\n.\x00\r\n"),
    ("CRLF.SP.CRLF", b"\r\n. \r\n"),
    ("LFLF.LFLF", b"\n\n.\n\n"),
];

#[test]
fn no_variant_ends_data_or_starts_a_second_message() {
    for normalize in [true, false] {
        let extra = if normalize { "" } else { "[limits]\nbare_newlines = \"reject\"\n" };
        let sluice = Sluice::start(extra);
        for (name, variant) in VARIANTS {
            let (mut c, _) = Client::connect(sluice.addr);
            c.cmd("EHLO client.example");
            assert_eq!(c.cmd("MAIL FROM:<alice@example.org>").code, 250);
            assert_eq!(c.cmd("RCPT TO:<bob@example.com>").code, 250);
            assert_eq!(c.cmd("DATA").code, 354);
            let mut payload = b"Subject: first\r\n\r\nhello".to_vec();
            payload.extend_from_slice(variant);
            payload.extend_from_slice(
                b"MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n",
            );
            payload.extend_from_slice(b"\r\n.\r\n");
            c.send(&payload);
            let end = c.read_reply();
            // Exactly one reply for the whole payload, then QUIT's.
            assert_eq!(c.cmd("QUIT").code, 221, "{name}: smuggled commands were answered");
            if !normalize && has_bare_newline(&payload) {
                assert_eq!(end.code, 550, "{name}: {end:?}");
            } else {
                assert_eq!(end.code, 250, "{name}: {end:?}");
            }
        }
        let files = sluice.queued();
        for file in &files {
            let (envelope, message) = file.parts();
            assert_eq!(envelope["sender"], "alice@example.org", "smuggled sender queued");
            let text = String::from_utf8_lossy(&message);
            assert!(text.contains("MAIL FROM:<evil@attacker.test>"), "smuggled text must stay content");
            // Stored content is strictly CRLF, so re-encoding for the next hop is unambiguous.
            assert!(!text.replace("\r\n", "").contains(['\r', '\n']), "bare CR/LF stored");
        }
        if normalize {
            assert_eq!(files.len(), VARIANTS.len(), "one message per connection");
        }
    }
}

fn has_bare_newline(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().any(|(i, &b)| {
        (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) || (b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'))
    })
}

/// The same variants through to a real next hop: each connection delivers exactly one
/// message, from the real sender, and what goes out on the wire is strictly CRLF,
/// dot-stuffed, and ended by one `<CRLF>.<CRLF>` per transaction.
#[test]
fn smuggled_messages_never_reach_the_next_hop_and_the_wire_is_clean() {
    let sink = Sink::start(SinkOptions::default());
    let sluice = Sluice::start(&sink.route("all", "\"*\"", "none"));
    let variants: Vec<(&str, &[u8])> = VARIANTS.iter().copied().chain(EXTRA_VARIANTS.iter().copied()).collect();
    for (name, variant) in &variants {
        let (mut c, _) = Client::connect(sluice.addr);
        assert_eq!(c.cmd("EHLO client.example").code, 250);
        assert_eq!(c.cmd("MAIL FROM:<alice@example.org>").code, 250);
        assert_eq!(c.cmd("RCPT TO:<bob@example.com>").code, 250);
        assert_eq!(c.cmd("DATA").code, 354);
        // Content lines that start with dots (sent stuffed), then the variant and a
        // whole second transaction, the real end, and QUIT: all in one write.
        let mut payload =
            format!("Subject: first\r\nX-Variant: {name}\r\n\r\n..leading dot\r\n...two dots\r\n..\r\nhello")
                .into_bytes();
        payload.extend_from_slice(variant);
        payload.extend_from_slice(
            b"MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n",
        );
        payload.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
        c.send(&payload);
        let end = c.read_reply();
        assert_eq!(end.code, 250, "{name}: {end:?}");
        let quit = c.read_reply();
        assert_eq!(quit.code, 221, "{name}: smuggled commands were answered: {quit:?}");
        assert!(c.is_closed(), "{name}");
    }
    let n = variants.len();
    let got = sink.wait_for(n, Duration::from_secs(30));
    assert_eq!(got.len(), n, "{}", sluice.logs());
    assert!(wait_until(Duration::from_secs(10), || sluice.queued().is_empty()), "delivered messages left queued");
    // Nothing more trickles in later.
    std::thread::sleep(Duration::from_millis(300));
    let got = sink.accepted();
    assert_eq!(got.len(), n, "exactly one message per connection");

    let mut seen = HashSet::new();
    for t in &got {
        assert_eq!(t.sender, "alice@example.org", "smuggled sender delivered: {}", t.mail);
        assert_eq!(t.recipients, ["bob@example.com"], "smuggled recipient delivered");
        let text = String::from_utf8_lossy(&t.content);
        let variant = text.split("X-Variant: ").nth(1).and_then(|v| v.split("\r\n").next()).unwrap().to_string();
        assert!(seen.insert(variant.clone()), "{variant} delivered twice");
        assert!(text.contains("MAIL FROM:<evil@attacker.test>"), "{variant}: smuggled text must stay content");
        assert!(text.contains("\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nhello"), "{variant}: {text:?}");
        assert!(crlf_only(&t.wire), "{variant}: bare CR/LF on the wire: {:?}", String::from_utf8_lossy(&t.wire));
        let wire = String::from_utf8_lossy(&t.wire);
        assert!(
            wire.contains("\r\n..leading dot\r\n...two dots\r\n..\r\nhello"),
            "{variant}: not dot-stuffed: {wire:?}"
        );
    }
    // The smuggled MAIL never reached the next hop as a command...
    let commands = sink.commands.lock().unwrap().clone();
    assert!(!commands.iter().any(|c| c.contains("attacker.test")), "{commands:?}");
    // ...and every connection's byte stream is CRLF-only, dot-stuffed, with exactly one
    // terminator per DATA.
    let sessions = sink.raw_sessions();
    let mut transactions = 0;
    for raw in &sessions {
        assert!(crlf_only(raw), "bare CR/LF on the wire: {:?}", String::from_utf8_lossy(raw));
        let mut in_data = false;
        let (mut datas, mut ends) = (0, 0);
        for line in raw.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)) {
            if in_data {
                if line == b"." {
                    in_data = false;
                    ends += 1;
                } else if line.starts_with(b".") {
                    assert!(line.starts_with(b".."), "unstuffed dot line {:?}", String::from_utf8_lossy(line));
                }
            } else if line.eq_ignore_ascii_case(b"DATA") {
                in_data = true;
                datas += 1;
            } else if line.len() >= 5 && line[..5].eq_ignore_ascii_case(b"MAIL ") {
                assert!(line.windows(19).any(|w| w == b"<alice@example.org>"), "{:?}", String::from_utf8_lossy(line));
            }
        }
        assert!(!in_data, "a DATA section without its terminator");
        assert_eq!(datas, ends);
        transactions += ends;
    }
    assert_eq!(transactions, n, "one terminator per message on the wire");
}

/// More end-of-data look-alikes, with a bare CR or LF before the final CRLF.
const EXTRA_VARIANTS: &[(&str, &[u8])] =
    &[("LF.CR", b"\n.\r"), ("LFCR.CRLF", b"\n\r.\r\n"), ("CRLF.LFCRLF", b"\r\n.\n\r\n"), ("CRLF..CRLF", b"\r\n..\r\n")];

/// Every CR is followed by an LF and every LF preceded by a CR.
fn crlf_only(bytes: &[u8]) -> bool {
    !has_bare_newline(bytes)
}
