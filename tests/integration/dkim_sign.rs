//! DKIM signing of outgoing mail (`[[dkim_sign]]`, `sluice dkim keygen`): what the
//! sink receives is verified by dkimpy, with the keys served by the loopback DNS server.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::operations::{b64, hash_password, tls_upgrade};
use crate::support::dkimpy;
use crate::support::dns::DnsServer;
use crate::support::server::{BIN, base_config};
use crate::support::sink::{Sink, SinkOptions};
use crate::support::tls::make_pki;
use crate::support::{Client, Sluice};

/// Runs `sluice dkim keygen` into `dir/NAME.pem`; the records-file line it publishes.
fn keygen(dir: &Path, domain: &str, selector: &str, algorithm: &str) -> String {
    let out_path = dir.join(format!("{domain}.pem"));
    let out = Command::new(BIN)
        .args(["dkim", "keygen", "--domain", domain, "--selector", selector, "--algorithm", algorithm, "--out"])
        .arg(&out_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "keygen: {}", String::from_utf8_lossy(&out.stderr));
    let record = String::from_utf8(out.stdout).unwrap();
    let prefix = format!("{selector}._domainkey.{domain} IN TXT \"v=DKIM1; k={algorithm}; p=");
    assert!(record.starts_with(&prefix), "{record}");
    let mode = std::fs::metadata(&out_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "key file mode");
    // The printed strings, joined, as the records file writes a TXT value.
    let value: String = record.trim_end().split('"').skip(1).step_by(2).collect();
    format!("{selector}._domainkey.{domain} TXT {value}\n")
}

fn dkim_sign(domain: &str, selector: &str) -> String {
    format!("[[dkim_sign]]\ndomain = \"{domain}\"\nselector = \"{selector}\"\nkey = \"{domain}.pem\"\n")
}

/// A server signing for example.org (RSA) and ed.example.org (Ed25519), relaying to a
/// sink, with `extra` config; and the DNS server publishing both keys.
fn signing_server(extra: &str) -> (Sluice, Sink, DnsServer) {
    signing_server_in(tempfile::tempdir().unwrap(), extra)
}

/// [`signing_server`] in `dir` (for files `extra` refers to).
fn signing_server_in(dir: tempfile::TempDir, extra: &str) -> (Sluice, Sink, DnsServer) {
    let mut records = keygen(dir.path(), "example.org", "s2026", "rsa");
    records.push_str(&keygen(dir.path(), "ed.example.org", "ed1", "ed25519"));
    let dns = DnsServer::start(&records);
    let sink = Sink::start(SinkOptions::default());
    let config = base_config(&format!(
        "{}{}{}{extra}",
        sink.route("all", "\"*\"", "none"),
        dkim_sign("example.org", "s2026"),
        dkim_sign("ed.example.org", "ed1")
    ));
    (Sluice::start_in(dir, &config), sink, dns)
}

fn message(from: &str, subject: &str) -> String {
    format!(
        "From: Alice <{from}>\r\nTo: bob@example.com\r\nSubject: {subject}\r\nDate: Thu, 03 Dec 2026 17:00:00 +0000\r\n\
         Message-ID: <{subject}@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n\
         Hello,   Bob.  \r\n\r\n.leading dot and trailing blanks\r\n\r\n\r\n"
    )
}

/// Sends one message per sender and returns what the sink received, in order.
fn relay(sluice: &Sluice, sink: &Sink, froms: &[&str]) -> Vec<Vec<u8>> {
    for (n, from) in froms.iter().enumerate() {
        let (mut c, _) = Client::connect(sluice.addr);
        let reply = c.send_mail(from, &["bob@example.com"], &message(from, &format!("m{n}")));
        assert_eq!(reply.code, 250, "{reply:?}\n{}", sluice.logs());
    }
    let mut got = sink.wait_for(froms.len(), Duration::from_secs(20));
    assert_eq!(got.len(), froms.len(), "{}", sluice.logs());
    got.sort_by_key(|t| String::from_utf8_lossy(&t.content).split("Subject: m").nth(1).map(|s| s[..1].to_string()));
    got.into_iter().map(|t| t.content).collect()
}

fn signatures(content: &[u8]) -> usize {
    let text = String::from_utf8_lossy(content);
    let header = text.split("\r\n\r\n").next().unwrap_or_default();
    header.lines().filter(|l| l.to_ascii_lowercase().starts_with("dkim-signature:")).count()
}

#[test]
fn relayed_mail_is_signed_and_dkimpy_verifies_rsa_and_ed25519() {
    let (sluice, sink, dns) = signing_server("");
    let got = relay(&sluice, &sink, &["alice@example.org", "carol@ed.example.org", "dave@unsigned.example"]);
    let rsa = &got[0];
    let text = String::from_utf8_lossy(rsa);
    assert!(
        text.starts_with("DKIM-Signature: v=1; a=rsa-sha256; s=s2026; d=example.org; c=relaxed/relaxed;"),
        "{text}"
    );
    assert_eq!(dkimpy::verify(rsa, dns.addr), ["pass example.org"], "{text}");
    let ed = &got[1];
    assert!(String::from_utf8_lossy(ed).contains("a=ed25519-sha256; s=ed1; d=ed.example.org;"));
    assert_eq!(dkimpy::verify(ed, dns.addr), ["pass ed.example.org"]);
    assert_eq!(signatures(&got[2]), 0, "a From domain without a key is not signed");

    // The check can fail: a changed body or signed header does not verify.
    let tampered = text.replace("Hello,   Bob.", "Hello, Mallory.");
    assert_eq!(dkimpy::verify(tampered.as_bytes(), dns.addr), ["fail example.org"]);
    let tampered = text.replace("Subject: m0", "Subject: urgent");
    assert_eq!(dkimpy::verify(tampered.as_bytes(), dns.addr), ["fail example.org"]);
}

#[test]
fn mail_from_outside_the_relay_networks_is_not_signed() {
    let (sluice, sink, _dns) = signing_server("[relay]\nnetworks = [\"10.0.0.0/8\"]\ndomains = [\"example.com\"]\n");
    let got = relay(&sluice, &sink, &["alice@example.org"]);
    assert_eq!(signatures(&got[0]), 0, "{}", String::from_utf8_lossy(&got[0]));
}

#[test]
fn mail_from_an_authenticated_user_outside_the_relay_networks_is_signed() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(&["relay.example.test"]);
    let tls = pki.write_to(dir.path());
    let extra = format!(
        "[relay]\nnetworks = []\ndomains = [\"example.com\"]\n{tls}[auth]\nfailure_delay = \"10ms\"\n\
         [[auth.users]]\nname = \"alice\"\npassword_hash = \"{}\"\n",
        hash_password("correct horse")
    );
    let (sluice, sink, dns) = signing_server_in(dir, &extra);
    // The same message over TLS, once without AUTH (not ours: unsigned), once with.
    for (n, user) in [None, Some("alice")].into_iter().enumerate() {
        let (mut c, _) = Client::connect(sluice.addr);
        assert_eq!(c.cmd("EHLO client.example").code, 250);
        assert_eq!(c.cmd("STARTTLS").code, 220);
        let mut c = tls_upgrade(c, pki.client_config());
        assert_eq!(c.cmd("EHLO client.example").code, 250);
        if let Some(user) = user {
            let r = c.cmd(&format!("AUTH PLAIN {}", b64(format!("\0{user}\0correct horse").as_bytes())));
            assert_eq!(r.code, 235, "{r:?}");
        }
        assert_eq!(c.cmd("MAIL FROM:<alice@example.org>").code, 250);
        assert_eq!(c.cmd("RCPT TO:<bob@example.com>").code, 250);
        assert_eq!(c.cmd("DATA").code, 354);
        c.send(message("alice@example.org", &format!("m{n}")).as_bytes());
        c.send(b".\r\n");
        assert_eq!(c.read_reply().code, 250, "{}", sluice.logs());
    }
    let mut got = sink.wait_for(2, Duration::from_secs(20));
    assert_eq!(got.len(), 2, "{}", sluice.logs());
    got.sort_by_key(|t| String::from_utf8_lossy(&t.content).contains("Subject: m1"));
    assert_eq!(signatures(&got[0].content), 0, "{}", String::from_utf8_lossy(&got[0].content));
    let text = String::from_utf8_lossy(&got[1].content);
    assert!(text.contains("with ESMTPSA"), "{text}");
    assert_eq!(signatures(&got[1].content), 1, "{text}");
    assert_eq!(dkimpy::verify(&got[1].content, dns.addr), ["pass example.org"], "{text}");
}

#[test]
fn a_message_spilled_to_disk_is_signed_whole() {
    let (sluice, sink, dns) = signing_server("");
    // Twice the 256 KiB kept in memory: the rest of the body is in the spill file.
    let mut big = message("alice@example.org", "m0");
    for i in 0..10_000 {
        big.push_str(&format!("line {i} of a long body, long enough to be spilled to disk\r\n"));
    }
    big.push_str("The last line.\r\n");
    assert!(big.len() > 2 * 256 * 1024);
    let (mut c, _) = Client::connect(sluice.addr);
    let reply = c.send_mail("alice@example.org", &["bob@example.com"], &big);
    assert_eq!(reply.code, 250, "{reply:?}\n{}", sluice.logs());
    let got = sink.wait_for(1, Duration::from_secs(20));
    assert_eq!(got.len(), 1, "{}", sluice.logs());
    let text = String::from_utf8_lossy(&got[0].content).into_owned();
    assert!(text.contains("line 9999 of a long body") && text.contains("The last line."), "delivered whole");
    assert_eq!(dkimpy::verify(&got[0].content, dns.addr), ["pass example.org"]);
    // The signature covers the spilled end of the body too.
    let tampered = text.replace("The last line.", "The last lime.");
    assert_eq!(dkimpy::verify(tampered.as_bytes(), dns.addr), ["fail example.org"]);
}

#[test]
fn a_from_field_past_the_in_memory_head_is_found_and_signed() {
    let (sluice, sink, dns) = signing_server("");
    // 300 KiB of header fields before From: the From field is in the spill file.
    let mut big = String::new();
    for i in 0..6_000 {
        big.push_str(&format!("X-Filler-{i}: a header field long enough to fill the memory head\r\n"));
    }
    assert!(big.len() > 256 * 1024);
    big.push_str("From: <alice@example.org>\r\nTo: <bob@example.com>\r\nSubject: far\r\n\r\nbody\r\n");
    let (mut c, _) = Client::connect(sluice.addr);
    let reply = c.send_mail("alice@example.org", &["bob@example.com"], &big);
    assert_eq!(reply.code, 250, "{reply:?}\n{}", sluice.logs());
    let got = sink.wait_for(1, Duration::from_secs(20));
    assert_eq!(got.len(), 1, "{}", sluice.logs());
    assert_eq!(dkimpy::verify(&got[0].content, dns.addr), ["pass example.org"]);
}

#[test]
fn the_signature_covers_what_plugins_rewrote() {
    let plugin = crate::support::plugins::testing(
        "subject",
        "",
        "stage = \"data\"\naction = \"set-header\"\nvalue = \"Subject: m0 [rewritten]\"",
    );
    let (sluice, sink, dns) = signing_server(&plugin);
    let got = relay(&sluice, &sink, &["alice@example.org"]);
    let text = String::from_utf8_lossy(&got[0]);
    assert!(text.contains("Subject: m0 [rewritten]\r\n"), "{text}");
    assert_eq!(dkimpy::verify(&got[0], dns.addr), ["pass example.org"], "{text}");
    let original = text.replace("Subject: m0 [rewritten]", "Subject: m0");
    assert_eq!(dkimpy::verify(original.as_bytes(), dns.addr), ["fail example.org"]);
}

#[test]
fn keygen_refuses_to_overwrite_and_check_config_points_at_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path(), "example.org", "s1", "ed25519");
    let key = dir.path().join("example.org.pem");
    let before = std::fs::read(&key).unwrap();
    let out = Command::new(BIN)
        .args(["dkim", "keygen", "--domain", "example.org", "--selector", "s2", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&key).unwrap(), before);

    std::fs::write(dir.path().join("garbage.pem"), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        .unwrap();
    let config = dir.path().join("sluice.toml");
    let check = |text: String| {
        std::fs::write(&config, text).unwrap();
        let out = Command::new(BIN).arg("check-config").arg(&config).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).replace(config.to_str().unwrap(), "FILE");
        (out.status.success(), stderr)
    };
    let entry = |key: &str| format!("[[dkim_sign]]\ndomain = \"example.org\"\nselector = \"s1\"\nkey = \"{key}\"\n");
    assert_eq!(check(base_config(&entry("example.org.pem"))), (true, String::new()));
    let (ok, stderr) = check(base_config(&entry("missing.pem")));
    assert!(!ok);
    assert!(stderr.starts_with("FILE:14:7: cannot read DKIM key "), "{stderr}");
    let (ok, stderr) = check(base_config(&entry("garbage.pem")));
    assert!(!ok);
    assert!(stderr.starts_with("FILE:14:7: DKIM key "), "{stderr}");
}

#[test]
fn keys_reload_and_a_bad_key_keeps_the_running_ones() {
    let (sluice, sink, dns) = signing_server("");
    let config = sluice.config_path.clone();
    let reload = || sluice.cli(&["reload", "--config", config.to_str().unwrap()]);
    let text = std::fs::read_to_string(&config).unwrap();
    // A key that does not load: the reload fails and the old keys still sign.
    std::fs::write(&config, text.replace("key = \"ed.example.org.pem\"", "key = \"missing.pem\"")).unwrap();
    let (code, _, stderr) = reload();
    assert_ne!(code, 0);
    assert!(stderr.contains("missing.pem"), "{stderr}");
    let got = relay(&sluice, &sink, &["carol@ed.example.org"]);
    assert_eq!(dkimpy::verify(&got[0], dns.addr), ["pass ed.example.org"]);
    // Without its table, ed.example.org is no longer signed.
    let without = text.replace(&dkim_sign("ed.example.org", "ed1"), "");
    std::fs::write(&config, without).unwrap();
    let (code, _, stderr) = reload();
    assert_eq!(code, 0, "{stderr}");
    let (mut c, _) = Client::connect(sluice.addr);
    assert_eq!(c.send_mail("carol@ed.example.org", &["bob@example.com"], &message("c@ed.example.org", "m1")).code, 250);
    let got = sink.wait_for(2, Duration::from_secs(20));
    assert_eq!(got.len(), 2, "{}", sluice.logs());
    let last = got.iter().find(|t| String::from_utf8_lossy(&t.content).contains("Subject: m1")).unwrap();
    assert_eq!(signatures(&last.content), 0, "{}", String::from_utf8_lossy(&last.content));
}
