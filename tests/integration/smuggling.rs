//! SMTP smuggling: no end-of-data variant but <CRLF>.<CRLF> ends a message, so a
//! pipelined second message can never be split off.

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
