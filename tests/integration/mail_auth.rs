//! Mail authentication against an independent implementation: messages signed by
//! dkimpy, records from the loopback DNS server; assertions on the
//! Authentication-Results field the next hop receives.

use std::time::Duration;

use crate::support::dkimpy::{Key, arc_sign, dkim_sign, rsa_key};
use crate::support::dns::DnsServer;
use crate::support::sink::{Sink, SinkOptions};
use crate::support::{Client, Sluice};

/// Clients on loopback are outsiders here, so their mail is checked.
const OUTSIDE: &str = "[relay]\nnetworks = []\ndomains = [\"example.com\"]\n";

fn start(dns: &DnsServer, sink: &Sink, extra: &str) -> Sluice {
    Sluice::start(&format!("{OUTSIDE}{}{}{extra}", dns.config(), sink.route("all", "\"*\"", "none")))
}

/// Sends one message in its own session; the final reply code.
fn send(sluice: &Sluice, helo: &str, mail_from: &str, message: &[u8]) -> u16 {
    let (mut c, _) = Client::connect(sluice.addr);
    assert_eq!(c.cmd(&format!("EHLO {helo}")).code, 250);
    assert_eq!(c.cmd(&format!("MAIL FROM:<{mail_from}>")).code, 250);
    assert_eq!(c.cmd("RCPT TO:<bob@example.com>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(message);
    c.send(b".\r\n");
    c.read_reply().code
}

/// The Authentication-Results fields of a received message, unfolded.
fn auth_results(content: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(content);
    let header = text.split("\r\n\r\n").next().unwrap_or_default().replace("\r\n\t", " ").replace("\r\n ", " ");
    header
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("authentication-results:"))
        .map(str::to_string)
        .collect()
}

/// Sends the messages one by one and returns our Authentication-Results of each, as
/// the sink received it.
fn ours_for(sluice: &Sluice, sink: &Sink, cases: &[(&str, &str, Vec<u8>)]) -> Vec<String> {
    for (i, (helo, from, message)) in cases.iter().enumerate() {
        assert_eq!(send(sluice, helo, from, message), 250, "case {i}: {}", sluice.logs());
    }
    let got = sink.wait_for(cases.len(), Duration::from_secs(30));
    assert_eq!(got.len(), cases.len(), "{}", sluice.logs());
    let mut got = got;
    got.sort_by_key(|t| subject(&t.content));
    got.iter()
        .map(|t| {
            let ours: Vec<String> = auth_results(&t.content)
                .into_iter()
                .filter(|f| f.starts_with("Authentication-Results: relay.example.test;"))
                .collect();
            assert_eq!(ours.len(), 1, "{}", String::from_utf8_lossy(&t.content));
            ours[0].clone()
        })
        .collect()
}

fn subject(content: &[u8]) -> String {
    let text = String::from_utf8_lossy(content);
    text.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or_default().to_string()
}

fn message(from: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <bob@example.com>\r\nSubject: {subject}\r\nDate: Thu, 03 Dec 2026 12:00:00 +0000\r\n\
         Message-ID: <{subject}@test>\r\n\r\nHello from {from}.\r\n"
    )
    .into_bytes()
}

const SPF_RECORDS: &str = "
    pass.test     TXT  v=spf1 ip4:127.0.0.1 -all
    fail.test     TXT  v=spf1 ip4:192.0.2.1 -all
    soft.test     TXT  v=spf1 ~all
    neutral.test  TXT  v=spf1 ?all
    none.test     A    192.0.2.1
    slow.test     DROP
    loop.test     TXT  v=spf1 include:loop.test -all
    many.test     TXT  v=spf1 a:a1.many.test a:a2.many.test a:a3.many.test a:a4.many.test a:a5.many.test a:a6.many.test a:a7.many.test a:a8.many.test a:a9.many.test a:a10.many.test a:a11.many.test -all
    a1.many.test  A    192.0.2.1
    a2.many.test  A    192.0.2.2
    a3.many.test  A    192.0.2.3
    a4.many.test  A    192.0.2.4
    a5.many.test  A    192.0.2.5
    a6.many.test  A    192.0.2.6
    a7.many.test  A    192.0.2.7
    a8.many.test  A    192.0.2.8
    a9.many.test  A    192.0.2.9
    a10.many.test  A    192.0.2.10
    a11.many.test  A    192.0.2.11
    helo.test     TXT  v=spf1 ip4:127.0.0.1 -all
";

#[test]
fn spf_gives_every_result_for_mail_from_and_the_helo_name_for_null_senders() {
    let sink = Sink::start(SinkOptions::default());
    let dns = DnsServer::start(SPF_RECORDS);
    let sluice = start(&dns, &sink, "");
    let case = |n: u8, domain: &str| ("client.test", "", message(&format!("a@{domain}"), &format!("{n:02}")));
    let mut cases: Vec<(&str, String, Vec<u8>)> = Vec::new();
    for (n, domain) in ["pass", "fail", "soft", "neutral", "none", "slow", "loop", "many"].iter().enumerate() {
        let (helo, _, msg) = case(n as u8, &format!("{domain}.test"));
        cases.push((helo, format!("a@{domain}.test"), msg));
    }
    // MAIL FROM:<> checks the HELO name.
    cases.push(("helo.test", String::new(), message("a@helo.test", "08")));
    let cases: Vec<(&str, &str, Vec<u8>)> = cases.iter().map(|(h, f, m)| (*h, f.as_str(), m.clone())).collect();
    let got = ours_for(&sluice, &sink, &cases);
    let expected = ["pass", "fail", "softfail", "neutral", "none", "temperror", "permerror", "permerror"];
    for (i, verdict) in expected.iter().enumerate() {
        assert!(got[i].contains(&format!("spf={verdict} ")), "case {i}: want spf={verdict}: {}", got[i]);
    }
    assert!(got[8].contains("spf=pass") && got[8].contains("smtp.helo=helo.test"), "{}", got[8]);
    // The session goes on after every one of them (each was answered 250 above).
}

/// RFC 7208 §4.6.4: three void lookups (NXDOMAIN here) are `permerror`, whatever
/// would match after them; two are not, nor are the lookups of an MX's exchanges.
const VOID_RECORDS: &str = "
    a3.test       TXT  v=spf1 a:n1.void.test a:n2.void.test a:n3.void.test ip4:127.0.0.1 -all
    mx3.test      TXT  v=spf1 mx:n1.void.test mx:n2.void.test mx:n3.void.test ip4:127.0.0.1 -all
    exists3.test  TXT  v=spf1 exists:n1.void.test a:n2.void.test exists:n3.void.test ip4:127.0.0.1 -all
    include3.test TXT  v=spf1 include:n1.void.test include:n2.void.test include:n3.void.test ip4:127.0.0.1 -all
    two.test      TXT  v=spf1 a:n1.void.test mx:n2.void.test ip4:127.0.0.1 -all
    exch.test     TXT  v=spf1 mx:exch.test a:n1.void.test ip4:127.0.0.1 -all
    exch.test     MX   10 n2.void.test
    exch.test     MX   20 n3.void.test
    exch.test     MX   30 n4.void.test
    exch.test     MX   40 n5.void.test
";

#[test]
fn spf_stops_at_the_third_void_lookup() {
    let sink = Sink::start(SinkOptions::default());
    let dns = DnsServer::start(VOID_RECORDS);
    let sluice = start(&dns, &sink, "");
    let domains = ["a3", "mx3", "exists3", "include3", "two", "exch"];
    let cases: Vec<(String, Vec<u8>)> = domains
        .iter()
        .enumerate()
        .map(|(n, d)| (format!("a@{d}.test"), message(&format!("a@{d}.test"), &format!("{n:02}"))))
        .collect();
    let cases: Vec<(&str, &str, Vec<u8>)> = cases.iter().map(|(f, m)| ("client.test", f.as_str(), m.clone())).collect();
    let got = ours_for(&sluice, &sink, &cases);
    let expected = ["permerror", "permerror", "permerror", "permerror", "pass", "pass"];
    for (i, verdict) in expected.iter().enumerate() {
        assert!(got[i].contains(&format!("spf={verdict} ")), "{}: want spf={verdict}: {}", domains[i], got[i]);
    }

    // What plugins granted `auth` are handed says the same.
    let dir = tempfile::tempdir().unwrap();
    for (domain, verdict) in [("a3", "permerror"), ("exists3", "permerror"), ("two", "pass")] {
        let from = format!("a@{domain}.test");
        let records = VOID_RECORDS.replace("127.0.0.1", "192.0.2.7");
        let report = offline_report(dir.path(), &records, &from, &message(&from, "01"));
        assert_eq!(report["auth"]["spf"]["verdict"], verdict, "{domain}: {report:#}");
    }
}

struct Signer {
    key: Key,
    dir: tempfile::TempDir,
}

fn signer() -> Signer {
    let dir = tempfile::tempdir().unwrap();
    Signer { key: rsa_key(dir.path(), "s1"), dir }
}

#[test]
fn dkimpy_signatures_pass_and_tampering_fails() {
    let signer = signer();
    let records = format!(
        "s1._domainkey.signer.test TXT {}\n signer.test TXT v=spf1 -all\n fwd.test TXT v=spf1 ip4:127.0.0.1 -all\n",
        signer.key.record
    );
    let sink = Sink::start(SinkOptions::default());
    let dns = DnsServer::start(&records);
    let sluice = start(&dns, &sink, "");
    let signed = |subject: &str| dkim_sign(&signer.key, "signer.test", "s1", &message("a@signer.test", subject), false);
    let good = signed("01");
    let body_changed = {
        let mut m = signed("02");
        m.extend_from_slice(b"An added line.\r\n");
        m
    };
    let header_changed = String::from_utf8(signed("03")).unwrap().replace("Subject: 03", "Subject: 03 (changed)");
    // A forwarder's ARC set on top of the original signature.
    let forwarded = {
        let mut m = b"Authentication-Results: fwd.test; dkim=pass header.d=signer.test\r\n".to_vec();
        m.extend(signed("04"));
        arc_sign(&signer.key, "signer.test", "s1", "fwd.test", &m)
    };
    let length = dkim_sign(&signer.key, "signer.test", "s1", &message("a@signer.test", "05"), true);
    let cut = {
        // `l=` now counts past the end of the body.
        let text = String::from_utf8(length).unwrap();
        text.replace("Hello from a@signer.test.\r\n", "Hi\r\n").into_bytes()
    };
    let cases = [
        ("client.test", "x@signer.test", good),
        ("client.test", "x@signer.test", body_changed),
        ("client.test", "x@signer.test", header_changed.into_bytes()),
        ("fwd.test", "list@fwd.test", forwarded),
        ("client.test", "x@signer.test", cut),
    ];
    let got = ours_for(&sluice, &sink, &cases);
    assert!(got[0].contains("dkim=pass header.i=@signer.test header.s=s1"), "{}", got[0]);
    assert!(got[0].contains("dmarc=none"), "no DMARC record: {}", got[0]);
    assert!(got[1].contains("dkim=fail"), "{}", got[1]);
    assert!(got[2].contains("dkim=fail"), "{}", got[2]);
    assert!(got[3].contains("arc=pass"), "{}", got[3]);
    assert!(got[3].contains("dkim=pass"), "{}", got[3]);
    assert!(!got[4].contains("dkim=pass"), "l= past the body: {}", got[4]);
    let _ = &signer.dir;
}

#[test]
fn dmarc_aligns_spf_or_dkim_relaxed_or_strict_and_applies_sp() {
    let signer = signer();
    let records = format!(
        "
        s1._domainkey.signer.test TXT {key}
        _dmarc.signer.test TXT v=DMARC1; p=reject
        signer.test TXT v=spf1 -all
        spf.test TXT v=spf1 ip4:127.0.0.1 -all
        _dmarc.spf.test TXT v=DMARC1; p=quarantine
        mail.relaxed.test TXT v=spf1 ip4:127.0.0.1 -all
        _dmarc.relaxed.test TXT v=DMARC1; p=reject; aspf=r
        mail.strict.test TXT v=spf1 ip4:127.0.0.1 -all
        _dmarc.strict.test TXT v=DMARC1; p=reject; aspf=s
        sub.org.test TXT v=spf1 -all
        _dmarc.org.test TXT v=DMARC1; p=none; sp=reject
        norecord.test TXT v=spf1 ip4:127.0.0.1 -all
        other.test TXT v=spf1 ip4:127.0.0.1 -all
        ",
        key = signer.key.record
    );
    let sink = Sink::start(SinkOptions::default());
    let dns = DnsServer::start(&records);
    let sluice = start(&dns, &sink, "");
    let dkim_only = dkim_sign(&signer.key, "signer.test", "s1", &message("a@signer.test", "01"), false);
    let cases = [
        // DKIM aligned, SPF for another domain.
        ("client.test", "x@other.test", dkim_only),
        // SPF aligned, no signature.
        ("client.test", "x@spf.test", message("a@spf.test", "02")),
        // SPF for a subdomain: aligned when relaxed, not when strict.
        ("client.test", "x@mail.relaxed.test", message("a@relaxed.test", "03")),
        ("client.test", "x@mail.strict.test", message("a@strict.test", "04")),
        // A subdomain without its own record: the parent's sp applies.
        ("client.test", "x@sub.org.test", message("a@sub.org.test", "05")),
        ("client.test", "x@norecord.test", message("a@norecord.test", "06")),
    ];
    let got = ours_for(&sluice, &sink, &cases);
    assert!(got[0].contains("dmarc=pass header.from=signer.test policy.dmarc=reject"), "{}", got[0]);
    assert!(got[1].contains("dmarc=pass header.from=spf.test policy.dmarc=quarantine"), "{}", got[1]);
    assert!(got[2].contains("dmarc=pass header.from=relaxed.test"), "{}", got[2]);
    assert!(got[3].contains("dmarc=fail "), "{}", got[3]);
    assert!(got[3].contains("header.from=strict.test policy.dmarc=reject"), "{}", got[3]);
    assert!(got[4].contains("dmarc=fail "), "{}", got[4]);
    assert!(got[4].contains("header.from=sub.org.test policy.dmarc=reject"), "sp applies: {}", got[4]);
    assert!(got[5].contains("dmarc=none"), "{}", got[5]);
}

#[test]
fn forged_results_with_our_id_never_reach_the_next_hop_and_others_stay() {
    let sink = Sink::start(SinkOptions::default());
    let dns = DnsServer::start("pass.test TXT v=spf1 ip4:127.0.0.1 -all\n");
    let forged = b"Authentication-Results: relay.example.test; dkim=pass header.d=forged.example\r\n\
        Authentication-Results: other.example.net; spf=pass smtp.mailfrom=kept.example\r\n\
        authentication-results:\r\n RELAY.example.test; dmarc=pass header.from=forged.example\r\n\
        From: <a@pass.test>\r\nSubject: 01\r\n\r\nHello.\r\n";
    let outside = start(&dns, &sink, "");
    let got = ours_for(&outside, &sink, &[("client.test", "a@pass.test", forged.to_vec())]);
    assert!(got[0].contains("spf=pass"), "{}", got[0]);
    let content = String::from_utf8_lossy(&sink.accepted()[0].content).into_owned();
    assert!(!content.contains("forged.example"), "{content}");
    assert!(content.contains("Authentication-Results: other.example.net; spf=pass smtp.mailfrom=kept.example"));
    // Ours is at the top, right under our Received field.
    let fields = auth_results(content.as_bytes());
    assert_eq!(fields.len(), 2, "{fields:?}");

    // Mail from our own networks is not checked, but a forged field still goes.
    let sink = Sink::start(SinkOptions::default());
    let trusted = Sluice::start(&format!("{}{}", dns.config(), sink.route("all", "\"*\"", "none")));
    assert_eq!(send(&trusted, "client.test", "a@pass.test", forged), 250);
    let got = sink.wait_for(1, Duration::from_secs(20));
    let content = String::from_utf8_lossy(&got[0].content).into_owned();
    assert!(!content.contains("forged.example"), "{content}");
    assert_eq!(auth_results(content.as_bytes()).len(), 1, "only the other one: {content}");
}

#[test]
fn forged_results_past_the_in_memory_head_go_too() {
    let sink = Sink::start(SinkOptions::default());
    let dns = DnsServer::start("pass.test TXT v=spf1 ip4:127.0.0.1 -all\n");
    let sluice = start(&dns, &sink, "");
    // A header section longer than the 256 KiB the server keeps in memory, with the
    // forged field (and another server's) after that.
    let mut big = b"From: <a@pass.test>\r\nSubject: 01\r\n".to_vec();
    while big.len() < 300 << 10 {
        big.extend_from_slice(b"X-Filler: ");
        big.extend_from_slice(&[b'f'; 200]);
        big.extend_from_slice(b"\r\n");
    }
    big.extend_from_slice(
        b"Authentication-Results: relay.example.test; dkim=pass header.d=forged.example\r\n\
          Authentication-Results: other.example.net;\r\n spf=pass smtp.mailfrom=kept.example\r\n\
          X-Last: header\r\n\r\nThe body.\r\n",
    );
    big.extend(std::iter::repeat_n(b"body line\r\n", 30_000).flatten());

    let (mut c, _) = Client::connect(sluice.addr);
    assert_eq!(c.cmd("EHLO client.test").code, 250);
    for _ in 0..2 {
        assert_eq!(c.cmd("MAIL FROM:<a@pass.test>").code, 250);
        assert_eq!(c.cmd("RCPT TO:<bob@example.com>").code, 250);
        assert_eq!(c.cmd("DATA").code, 354);
        c.send(&big);
        c.send(b".\r\n");
        assert_eq!(c.read_reply().code, 250, "{}", sluice.logs());
    }
    assert_eq!(c.cmd("NOOP").code, 250, "the session goes on");
    let got = sink.wait_for(2, Duration::from_secs(30));
    assert_eq!(got.len(), 2, "{}", sluice.logs());
    for t in &got {
        let content = String::from_utf8_lossy(&t.content).into_owned();
        assert!(!content.contains("forged.example"), "the forged field reached the next hop");
        let fields = auth_results(&t.content);
        assert_eq!(fields.len(), 2, "{fields:?}");
        assert!(fields[0].starts_with("Authentication-Results: relay.example.test;") && fields[0].contains("spf=pass"));
        assert_eq!(fields[1], "Authentication-Results: other.example.net; spf=pass smtp.mailfrom=kept.example");
        let expected_body = &big[big.windows(4).position(|w| w == b"\r\n\r\n").unwrap()..];
        assert!(t.content.ends_with(expected_body), "the body and the last field arrive whole");
        assert!(content.contains("\r\nX-Last: header\r\n\r\nThe body.\r\n"));
    }
}

#[test]
fn hostile_messages_get_results_and_the_session_goes_on() {
    let signer = signer();
    let records = format!("s1._domainkey.signer.test TXT {}\n", signer.key.record);
    let sink = Sink::start(SinkOptions::default());
    let dns = DnsServer::start(&records);
    let sluice = start(&dns, &sink, "[limits]\nmax_message_size = \"30MB\"\n");
    let signed = dkim_sign(&signer.key, "signer.test", "s1", &message("a@signer.test", "01"), false);
    let text = String::from_utf8(signed).unwrap();
    let (signature, rest) = text.split_at(text.find("From:").unwrap());
    let fifty = format!("{}{rest}", signature.repeat(50));
    // A header section of 10 MB: one field folded over many lines.
    let mut big = b"X-Big: start\r\n".to_vec();
    while big.len() < 10 << 20 {
        big.extend_from_slice(b" ");
        big.extend_from_slice(&[b'x'; 900]);
        big.extend_from_slice(b"\r\n");
    }
    big.extend(message("a@signer.test", "02"));

    let (mut c, _) = Client::connect(sluice.addr);
    assert_eq!(c.cmd("EHLO client.test").code, 250);
    for content in [fifty.as_bytes(), &big] {
        assert_eq!(c.cmd("MAIL FROM:<x@signer.test>").code, 250);
        assert_eq!(c.cmd("RCPT TO:<bob@example.com>").code, 250);
        assert_eq!(c.cmd("DATA").code, 354);
        c.send(content);
        c.send(b".\r\n");
        assert_eq!(c.read_reply().code, 250, "{}", sluice.logs());
    }
    // The session goes on.
    assert_eq!(c.cmd("NOOP").code, 250);
    let mut got = sink.wait_for(2, Duration::from_secs(60));
    assert_eq!(got.len(), 2, "{}", sluice.logs());
    got.sort_by_key(|t| t.content.len());
    let fields = auth_results(&got[0].content);
    let ours = fields.iter().find(|f| f.contains("relay.example.test;")).expect("our field");
    assert!(ours.contains("dkim=pass"), "{ours}");
    assert!(ours.matches("dkim=").count() <= 10 + 1, "at most ten checked: {ours}");
    let fields = auth_results(&got[1].content);
    assert!(fields.iter().any(|f| f.contains("relay.example.test;")), "the big one has a result too");
}

/// What `sluice plugin test` reports for one message, as JSON.
fn offline_report(dir: &std::path::Path, records: &str, from: &str, message: &[u8]) -> serde_json::Value {
    let (zone, eml) = (dir.join("records.txt"), dir.join("message.eml"));
    std::fs::write(&zone, records).unwrap();
    std::fs::write(&eml, message).unwrap();
    let out = std::process::Command::new(crate::support::server::BIN)
        .args(["plugin", "test"])
        .arg(crate::support::plugins::wasm("noop"))
        .arg("--message")
        .arg(&eml)
        .args(["--from", from, "--rcpt", "bob@example.com", "--client-ip", "192.0.2.7", "--helo", "mx.signer.test"])
        .arg("--dns")
        .arg(&zone)
        .arg("--json")
        .output()
        .expect("sluice plugin test");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no report ({e}): {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn the_offline_runner_reports_the_results_from_a_records_file() {
    let signer = signer();
    let records = format!(
        "s1._domainkey.signer.test TXT {}\n\
         signer.test TXT v=spf1 ip4:192.0.2.7 -all\n\
         _dmarc.signer.test TXT v=DMARC1; p=reject; sp=quarantine; pct=50; adkim=s\n\
         7.2.0.192.in-addr.arpa PTR mx.signer.test\n\
         mx.signer.test A 192.0.2.7\n\
         slow.test DROP\n",
        signer.key.record
    );
    let signed = dkim_sign(&signer.key, "signer.test", "s1", &message("a@signer.test", "01"), false);
    let report = offline_report(signer.dir.path(), &records, "x@signer.test", &signed);
    let auth = &report["auth"];
    assert_eq!(auth["spf"]["verdict"], "pass", "{report:#}");
    assert_eq!(auth["spf"]["identity"], "mail-from");
    assert_eq!(auth["spf"]["domain"], "signer.test");
    assert_eq!(auth["dkim"][0]["verdict"], "pass", "{report:#}");
    assert_eq!(auth["dkim"][0]["domain"], "signer.test");
    assert_eq!(auth["dkim"][0]["selector"], "s1");
    assert_eq!(auth["dkim"][0]["algorithm"], "rsa-sha256");
    assert_eq!(auth["dkim"][0]["aligned"], true);
    let dmarc = &auth["dmarc"];
    assert_eq!(dmarc["verdict"], "pass", "{report:#}");
    assert_eq!(dmarc["from_domain"], "signer.test");
    assert_eq!(dmarc["record_domain"], "signer.test");
    assert_eq!(dmarc["policy"], "reject");
    assert_eq!(dmarc["subdomain_policy"], "quarantine");
    assert_eq!(dmarc["applied_policy"], "reject");
    assert_eq!(dmarc["pct"], 50);
    assert_eq!(dmarc["dkim_alignment"], "strict");
    assert_eq!((&dmarc["spf_aligned"], &dmarc["dkim_aligned"]), (&true.into(), &true.into()));
    assert_eq!(auth["iprev"]["verdict"], "pass", "{report:#}");
    assert_eq!(auth["iprev"]["name"], "mx.signer.test");
    let header = report["authentication_results"].as_str().unwrap_or_default();
    assert!(header.starts_with("Authentication-Results: relay.example.test;"), "{header}");

    // A name the records file drops: temperror, not a hang.
    let report = offline_report(signer.dir.path(), &records, "x@slow.test", &message("a@slow.test", "02"));
    assert_eq!(report["auth"]["spf"]["verdict"], "temperror", "{report:#}");
    assert_eq!(report["auth"]["dmarc"]["verdict"], "temperror", "{report:#}");
}
