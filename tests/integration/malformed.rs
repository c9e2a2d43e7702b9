//! Bad input gets a precise reply, the session stays usable where the RFCs allow,
//! and other sessions never notice.

use std::time::{Duration, Instant};

use crate::support::{Client, Sluice};

fn greeted(sluice: &Sluice) -> Client {
    let (mut c, _) = Client::connect(sluice.addr);
    assert_eq!(c.cmd("EHLO client.example").code, 250);
    c
}

fn in_data(sluice: &Sluice) -> Client {
    let mut c = greeted(sluice);
    assert_eq!(c.cmd("MAIL FROM:<a@example.org>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<user@example.com>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c
}

#[test]
fn syntax_errors_have_precise_codes_and_keep_the_session() {
    let sluice = Sluice::start("[limits]\nmax_errors = 100\n");
    let mut c = greeted(&sluice);
    for (line, code, status) in [
        ("FOO bar", 500, "5.5.1"),
        ("EHLO", 501, "5.5.4"),
        ("MAIL FROM <a@example.org>", 501, "5.5.4"),
        ("MAIL FROM:<a@example.org", 501, "5.1.7"),
        ("MAIL FROM:<a b@example.org>", 501, "5.1.7"),
        ("MAIL FROM:<a@example.org> SIZE=abc", 501, "5.5.4"),
        ("MAIL FROM:<a@example.org> FOO=BAR", 555, "5.5.4"),
        ("MAIL FROM:<a@example.org> BODY=BINARYMIME", 555, "5.5.4"),
        ("MAIL FROM:<a@example.org> SIZE=25000001", 552, "5.3.4"),
        ("DATA extra", 501, "5.5.4"),
        ("STARTTLS now", 501, "5.5.4"),
    ] {
        let r = c.cmd(line);
        assert_eq!((r.code, r.status()), (code, status), "{line}: {r:?}");
    }
    // Invalid UTF-8 in a command and in an address.
    c.send(b"MAIL FROM:<\xff\xfe@example.org>\r\n");
    let r = c.read_reply();
    assert_eq!((r.code, r.status()), (553, "5.1.7"), "{r:?}");
    c.send(b"NOOP \xc3\x28\r\n");
    assert_eq!(c.read_reply().code, 501);
    c.send(b"\xff\xfeLO x\r\n");
    assert_eq!(c.read_reply().code, 500);
    assert_eq!(c.cmd("MAIL FROM:<a@example.org>").code, 250);
    c.send(b"RCPT TO:<\xffuser@example.com>\r\n");
    let r = c.read_reply();
    assert_eq!((r.code, r.status()), (553, "5.1.3"), "{r:?}");
    for (line, code) in [
        ("RCPT TO:<>", 501),
        ("RCPT TO:<user@example.com> NOTIFY=SOMETIMES", 501),
        ("RCPT TO:<user@example.com> XYZ", 555),
    ] {
        assert_eq!(c.cmd(line).code, code, "{line}");
    }
    assert_eq!(c.cmd("RCPT TO:<user@example.com>").code, 250, "session still usable");
}

#[test]
fn overlong_command_lines_get_500_and_the_session_goes_on() {
    let sluice = Sluice::start("");
    let mut c = greeted(&sluice);
    let long = format!("NOOP {}", "x".repeat(600));
    let r = c.cmd(&long);
    assert_eq!((r.code, r.status()), (500, "5.5.2"));
    // 512 with CRLF is the limit: exactly at it is fine.
    let at_limit = format!("NOOP {}", "x".repeat(512 - 2 - 5));
    assert_eq!(c.cmd(&at_limit).code, 250);
    assert_eq!(c.cmd("MAIL FROM:<a@example.org>").code, 250);
}

#[test]
fn hundred_megabyte_line_is_discarded_with_bounded_memory() {
    let sluice = Sluice::start("");
    let rss_before = rss_kib(sluice.pid());
    let mut c = greeted(&sluice);
    let chunk = vec![b'A'; 1 << 20];
    for _ in 0..100 {
        c.send(&chunk);
    }
    c.send(b"\r\n");
    let r = c.read_reply();
    assert_eq!((r.code, r.status()), (500, "5.5.2"));
    assert_eq!(c.cmd("NOOP").code, 250);
    let growth = rss_kib(sluice.pid()).saturating_sub(rss_before);
    eprintln!(
        "REPORT 100MB-line: 500 {} after 100 MiB without a newline, RSS +{} KiB (peak {} MiB)",
        r.status(),
        growth,
        sluice.peak_rss_kib() / 1024
    );
    assert!(growth < 20 * 1024, "RSS grew by {growth} KiB for one 100 MB line");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn relay_is_closed_to_outsiders_including_open_relay_tricks() {
    // No trusted networks: the test client is an outsider.
    let sluice = Sluice::start("[relay]\nnetworks = []\ndomains = [\"example.com\"]\n");
    let mut c = greeted(&sluice);
    assert_eq!(c.cmd("MAIL FROM:<a@example.org>").code, 250);
    for rcpt in [
        "<user@example.org>",
        "<user%example.org@example.com>",
        "<example.org!user@example.com>",
        "<\"user@example.org\"@example.com>",
        "<@example.com:user@example.org>",
        "<@example.com:user@example.com>",
        "<user@[127.0.0.1]>",
        "<user@example.org@example.com>",
    ] {
        let r = c.cmd(&format!("RCPT TO:{rcpt}"));
        assert!(r.code >= 500, "{rcpt} accepted: {r:?}");
    }
    let r = c.cmd("RCPT TO:<user@example.org>");
    assert_eq!((r.code, r.status()), (554, "5.7.1"));
    assert_eq!(c.cmd("RCPT TO:<user@example.com>").code, 250);
}

#[test]
fn trusted_networks_may_relay_anywhere() {
    let sluice = Sluice::start("[relay]\nnetworks = [\"127.0.0.0/8\"]\n");
    let mut c = greeted(&sluice);
    c.cmd("MAIL FROM:<a@example.org>");
    assert_eq!(c.cmd("RCPT TO:<anyone@anywhere.test>").code, 250);
}

#[test]
fn content_sent_before_354_is_refused() {
    let sluice = Sluice::start("");
    let mut c = greeted(&sluice);
    c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<user@example.com>\r\nDATA\r\nSubject: blind\r\n\r\nx\r\n.\r\n");
    assert_eq!(c.read_reply().code, 250);
    assert_eq!(c.read_reply().code, 250);
    let r = c.read_reply();
    assert_eq!((r.code, r.status()), (554, "5.5.0"), "{r:?}");
    assert!(c.is_closed());
    assert!(sluice.queued().is_empty());
}

#[test]
fn early_talkers_get_554() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::support::server::base_config("")
        .replace("listen = [\"127.0.0.1:0\"]\n", "listen = [\"127.0.0.1:0\"]\ngreeting_delay = \"1s\"\n");
    let sluice = Sluice::start_in(dir, &config);
    let mut c = Client::connect_silent(sluice.addr);
    c.send(b"EHLO impatient.example\r\n");
    let r = c.read_reply();
    assert_eq!(r.code, 554, "{r:?}");
    assert!(c.is_closed());
    // A patient client is greeted after the delay.
    let started = Instant::now();
    let (_, greeting) = Client::connect(sluice.addr);
    assert_eq!(greeting.code, 220);
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[test]
fn message_size_limit_is_enforced_during_data() {
    let sluice = Sluice::start("[limits]\nmax_message_size = \"10KB\"\n");
    let mut c = in_data(&sluice);
    let line = format!("{}\r\n", "x".repeat(78));
    for _ in 0..200 {
        c.send(line.as_bytes());
    }
    c.send(b".\r\n");
    let r = c.read_reply();
    assert_eq!((r.code, r.status()), (552, "5.3.4"));
    // The transaction is over, the session is not.
    assert_eq!(c.cmd("MAIL FROM:<a@example.org>").code, 250);
    assert!(sluice.queued().is_empty());
}

#[test]
fn huge_data_is_cut_off_early_with_bounded_memory() {
    let sluice = Sluice::start("[limits]\nmax_message_size = \"1MB\"\n");
    let mut c = in_data(&sluice);
    let chunk = format!("{}\r\n", "y".repeat(998)).repeat(1024);
    let mut sent = 0usize;
    while sent < 200 << 20 && c.try_send(chunk.as_bytes()) {
        sent += chunk.len();
    }
    assert!(sent < 200 << 20, "server kept reading {sent} bytes");
    let r = c.try_read_reply();
    if let Some(r) = r {
        assert_eq!(r.code, 552);
    }
    assert!(sluice.queued().is_empty());
}

#[test]
fn overlong_text_lines_get_500() {
    let sluice = Sluice::start("");
    let mut c = in_data(&sluice);
    c.send(format!("Subject: long\r\n\r\n{}\r\n.\r\n", "z".repeat(1200)).as_bytes());
    let r = c.read_reply();
    assert_eq!((r.code, r.status()), (500, "5.5.2"));
    assert_eq!(c.cmd("NOOP").code, 250);

    let sluice = Sluice::start("[limits]\nmax_line_length = 2000\n");
    let mut c = in_data(&sluice);
    c.send(format!("Subject: long\r\n\r\n{}\r\n.\r\n", "z".repeat(1200)).as_bytes());
    assert_eq!(c.read_reply().code, 250, "allowance raised");
}

#[test]
fn bare_newlines_are_normalised_or_rejected_by_config() {
    let sluice = Sluice::start("");
    let mut c = in_data(&sluice);
    c.send(b"Subject: bare\n\nline one\nline two\r\n.\r\n");
    assert_eq!(c.read_reply().code, 250);
    let (_, message) = sluice.queued()[0].parts();
    assert!(message.ends_with(b"Subject: bare\r\n\r\nline one\r\nline two\r\n"));

    let sluice = Sluice::start("[limits]\nbare_newlines = \"reject\"\n");
    let mut c = in_data(&sluice);
    c.send(b"Subject: bare\n\nx\r\n.\r\n");
    let r = c.read_reply();
    assert_eq!(r.code, 550, "{r:?}");
    assert!(sluice.queued().is_empty());
}

#[test]
fn mail_loops_are_detected() {
    let sluice = Sluice::start("");
    let mut c = in_data(&sluice);
    let hops: String = (0..51)
        .map(|i| format!("Received: from hop{i}.example by hop{}.example; Mon, 1 Jan 2024 00:00:00 +0000\r\n", i + 1))
        .collect();
    c.send(format!("{hops}Subject: loop\r\n\r\nx\r\n.\r\n").as_bytes());
    let r = c.read_reply();
    assert_eq!((r.code, r.status()), (554, "5.4.6"));

    let mut c = in_data(&sluice);
    let hops: String =
        (0..50).map(|i| format!("Received: from hop{i}.example; Mon, 1 Jan 2024 00:00:00 +0000\r\n")).collect();
    c.send(format!("{hops}Subject: fifty\r\n\r\nx\r\n.\r\n").as_bytes());
    assert_eq!(c.read_reply().code, 250, "50 hops is within the limit");
}

#[test]
fn too_many_errors_drop_the_session() {
    let sluice = Sluice::start("[limits]\nmax_errors = 3\n");
    let mut c = greeted(&sluice);
    assert_eq!(c.cmd("BOGUS").code, 500);
    assert_eq!(c.cmd("BOGUS").code, 500);
    let r = c.cmd("BOGUS");
    assert_eq!(r.code, 500);
    let r = c.read_reply();
    assert_eq!((r.code, r.status()), (421, "4.7.0"));
    assert!(c.is_closed());
}

#[test]
fn recipient_limit_answers_452() {
    let sluice = Sluice::start("[limits]\nmax_recipients = 100\n");
    let mut c = greeted(&sluice);
    c.cmd("MAIL FROM:<a@example.org>");
    let mut batch = String::new();
    for i in 0..150 {
        batch.push_str(&format!("RCPT TO:<user{i}@example.com>\r\n"));
    }
    c.send(batch.as_bytes());
    let codes: Vec<u16> = (0..150).map(|_| c.read_reply().code).collect();
    assert!(codes[..100].iter().all(|&c| c == 250));
    assert!(codes[100..].iter().all(|&c| c == 452), "{:?}", &codes[100..]);
    assert_eq!(c.cmd("DATA").code, 354, "452s do not count as errors");
    c.send(b"Subject: many\r\n\r\nx\r\n.\r\n");
    assert_eq!(c.read_reply().code, 250);
    let (envelope, _) = sluice.queued()[0].parts();
    assert_eq!(envelope["recipients"].as_array().unwrap().len(), 100);
}

#[test]
fn connection_limits_answer_421() {
    // Loopback is in relay.networks by default, which is exempt from the per-IP limit.
    let sluice =
        Sluice::start("[relay]\ndomains = [\"example.com\"]\nnetworks = []\n[limits]\nmax_connections_per_ip = 2\n");
    let (_a, ga) = Client::connect(sluice.addr);
    let (_b, gb) = Client::connect(sluice.addr);
    assert_eq!((ga.code, gb.code), (220, 220));
    let (mut c, refused) = Client::connect(sluice.addr);
    assert_eq!((refused.code, refused.status()), (421, "4.7.0"));
    assert!(c.is_closed());
    drop(_a);
    std::thread::sleep(Duration::from_millis(200));
    let (_d, again) = Client::connect(sluice.addr);
    assert_eq!(again.code, 220, "a slot was freed");
}

#[test]
fn idle_clients_time_out_with_421() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::support::server::base_config("[limits]\ncommand_timeout = \"1s\"\n");
    let sluice = Sluice::start_in(dir, &config);
    let mut c = greeted(&sluice);
    // Slowloris: a byte at a time never completes a line within the timeout.
    for b in b"NOOP" {
        c.send(&[*b]);
        std::thread::sleep(Duration::from_millis(300));
    }
    let r = c.read_reply();
    assert_eq!((r.code, r.status()), (421, "4.4.2"));
    assert!(c.is_closed());
}

#[test]
fn relay_networks_are_exempt_from_the_per_ip_limit() {
    let sluice = Sluice::start("[limits]\nmax_connections = 4\nmax_connections_per_ip = 2\n");
    let clients: Vec<_> = (0..4).map(|_| Client::connect(sluice.addr)).collect();
    let codes: Vec<u16> = clients.iter().map(|(_, greeting)| greeting.code).collect();
    assert_eq!(codes, [220, 220, 220, 220], "our own networks may hold more than 2");
    let (_c, refused) = Client::connect(sluice.addr);
    assert_eq!((refused.code, refused.status()), (421, "4.7.0"), "the global limit still holds");
}
