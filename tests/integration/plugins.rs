//! Plugins in the real server: verdicts at every stage, rewrites reaching the queue,
//! discard and quarantine, and hostile plugins that must not hurt anyone else.

use std::time::{Duration, Instant};

use crate::support::client::queued_id;
use crate::support::plugins::{testing, testing_granted};
use crate::support::{Client, Sluice};

fn server(plugins: &str) -> Sluice {
    Sluice::start(plugins)
}

/// Sends one message and returns every reply from the greeting on, stopping at the
/// first refusal (or 421/closed connection).
fn conversation(sluice: &Sluice, rcpt: &str) -> Vec<String> {
    let (mut c, greeting) = Client::connect(sluice.addr);
    let mut replies = vec![greeting.lines.join("|")];
    if greeting.code != 220 {
        return replies;
    }
    for line in ["EHLO client.example", "MAIL FROM:<alice@example.org>", &format!("RCPT TO:<{rcpt}>"), "DATA"] {
        let Some(r) = ({
            c.send(format!("{line}\r\n").as_bytes());
            c.try_read_reply()
        }) else {
            replies.push("closed".into());
            return replies;
        };
        replies.push(r.lines.last().cloned().unwrap_or_default());
        if r.code >= 400 {
            return replies;
        }
    }
    c.send(b"Subject: plugin test\r\nFrom: alice@example.org\r\n\r\nHello.\r\n.\r\n");
    replies.push(c.try_read_reply().map_or("closed".into(), |r| r.lines.join("|")));
    replies
}

#[test]
fn a_reject_at_each_stage_gives_the_plugins_code_and_text() {
    for (stage, code, enhanced) in [
        ("connect", 554, "5.7.1"),
        ("helo", 550, "5.7.1"),
        ("mail-from", 553, "5.7.1"),
        ("rcpt-to", 550, "5.1.1"),
        ("data", 554, "5.7.1"),
    ] {
        let text = format!("No mail at {stage}");
        let sluice = server(&testing(
            "refuser",
            "",
            &format!(
                "stage = \"{stage}\"\naction = \"reject\"\ncode = {code}\nenhanced = \"{enhanced}\"\ntext = \"{text}\""
            ),
        ));
        let replies = conversation(&sluice, "bob@example.com");
        let last = replies.last().unwrap();
        assert_eq!(last, &format!("{code} {enhanced} {text}"), "stage {stage}: {replies:?}");
        assert!(sluice.queued().is_empty(), "stage {stage}");
        if stage == "connect" {
            // RFC 5321 §3.1: only QUIT is served after a 554 greeting.
            let (mut c, _) = Client::connect(sluice.addr);
            let r = c.cmd("EHLO client.example");
            assert_eq!((r.code, r.status()), (503, "5.5.1"));
            assert_eq!(c.cmd("QUIT").code, 221);
        }
    }
}

#[test]
fn tempfail_and_disconnect_verdicts() {
    let sluice = server(&testing(
        "slow-down",
        "",
        "stage = \"mail-from\"\naction = \"tempfail\"\ncode = 451\nenhanced = \"4.7.1\"\ntext = \"Try later\"",
    ));
    let replies = conversation(&sluice, "bob@example.com");
    assert_eq!(replies.last().unwrap(), "451 4.7.1 Try later");

    let sluice = server(&testing(
        "kick",
        "",
        "stage = \"helo\"\naction = \"disconnect\"\ncode = 421\nenhanced = \"4.7.0\"\ntext = \"Go away\"",
    ));
    let (mut c, _) = Client::connect(sluice.addr);
    assert_eq!(c.cmd("EHLO client.example").lines.join("|"), "421 4.7.0 Go away");
    assert!(c.is_closed());
}

#[test]
fn header_and_sender_rewrites_arrive_at_the_queue() {
    let plugins = [
        testing_granted(
            "sender",
            &["recipients"],
            "",
            "stage = \"mail-from\"\naction = \"rewrite-sender\"\nvalue = \"masked@example.net\"",
        ),
        testing("stamp", "", "stage = \"data\"\naction = \"add-header\"\nvalue = \"X-Filtered-By: sluice test\""),
        testing(
            "subject",
            "",
            "stage = \"data\"\naction = \"set-header\"\nvalue = \"Subject: [EXTERNAL] plugin test\"",
        ),
        testing("strip", "", "stage = \"data\"\naction = \"remove-header\"\nvalue = \"X-Secret\""),
    ]
    .concat();
    let sluice = server(&plugins);
    let (mut c, _) = Client::connect(sluice.addr);
    let reply = c.send_mail(
        "alice@example.org",
        &["bob@example.com"],
        "Subject: plugin test\r\nX-Secret: 42\r\nFrom: alice@example.org\r\n\r\nHello.",
    );
    assert_eq!(reply.code, 250, "{reply:?}");
    let queued = sluice.queued();
    assert_eq!(queued.len(), 1);
    let (envelope, message) = queued[0].parts();
    assert_eq!(envelope["sender"], "masked@example.net");
    let text = String::from_utf8(message).unwrap();
    assert!(text.contains("\r\nX-Filtered-By: sluice test\r\n"), "{text}");
    assert!(text.contains("\r\nSubject: [EXTERNAL] plugin test\r\n"), "{text}");
    assert!(!text.contains("Subject: plugin test\r\n"), "{text}");
    assert!(!text.contains("X-Secret"), "{text}");
    assert!(text.ends_with("\r\n\r\nHello.\r\n"), "body intact: {text}");
    assert!(text.starts_with("Received: "), "our trace header stays first");
    // Tags and scores of every plugin add up.
    assert_eq!(envelope["score"], 4.0);
    assert_eq!(envelope["tags"], serde_json::json!(["testing:mail-from", "testing:data"]));
}

#[test]
fn recipients_can_be_rewritten_dropped_added_and_the_body_replaced() {
    let plugins = [
        testing_granted(
            "alias",
            &["recipients"],
            "",
            "stage = \"rcpt-to\"\naction = \"rewrite-recipient\"\nonly_for = \"sales\"\nvalue = \"team@example.com\"",
        ),
        testing_granted(
            "blackhole",
            &["recipients"],
            "",
            "stage = \"rcpt-to\"\naction = \"drop-recipient\"\nonly_for = \"devnull\"",
        ),
        testing_granted(
            "archive",
            &["recipients"],
            "",
            "stage = \"data\"\naction = \"add-recipient\"\nvalue = \"archive@example.com\"",
        ),
        testing_granted(
            "body",
            &["body"],
            "",
            "stage = \"data\"\naction = \"replace-body\"\nvalue = \"[body removed by policy]\"",
        ),
        testing_granted(
            "route",
            &["route"],
            "next_hops = [\"10.0.0.5:2525\"]",
            "stage = \"data\"\naction = \"next-hop\"\nvalue = \"10.0.0.5:2525\"",
        ),
    ]
    .concat();
    let sluice = server(&plugins);
    let (mut c, _) = Client::connect(sluice.addr);
    c.cmd("EHLO client.example");
    c.cmd("MAIL FROM:<alice@example.org>");
    assert_eq!(c.cmd("RCPT TO:<sales@example.com>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<devnull@example.com>").code, 250, "dropped silently");
    assert_eq!(c.cmd("RCPT TO:<bob@example.com>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(b"Subject: s\r\n\r\nsecret body\r\n.\r\n");
    assert_eq!(c.read_reply().code, 250);
    let (envelope, message) = sluice.queued()[0].parts();
    let recipients: Vec<&str> =
        envelope["recipients"].as_array().unwrap().iter().map(|r| r["address"].as_str().unwrap()).collect();
    assert_eq!(recipients, ["team@example.com", "bob@example.com", "archive@example.com"]);
    assert_eq!(envelope["route"], serde_json::json!({"next_hop": "10.0.0.5:2525"}));
    let text = String::from_utf8(message).unwrap();
    assert!(text.ends_with("Subject: s\r\n\r\n[body removed by policy]\r\n"), "{text}");
}

#[test]
fn discard_and_quarantine_behave_as_documented() {
    let sluice = server(&testing("dropper", "", "stage = \"rcpt-to\"\naction = \"discard\""));
    let (mut c, _) = Client::connect(sluice.addr);
    let reply = c.send_mail("alice@example.org", &["bob@example.com"], "Subject: gone\r\n\r\nx");
    assert_eq!(reply.code, 250, "discard looks like acceptance to the client");
    assert!(queued_id(&reply).is_some());
    assert!(sluice.queued().is_empty(), "nothing is kept");
    assert!(sluice.wait_for_log("message discarded by plugin", Duration::from_secs(5)));

    let sluice =
        server(&testing("jail", "", "stage = \"data\"\naction = \"quarantine\"\nvalue = \"looks like phishing\""));
    let (mut c, _) = Client::connect(sluice.addr);
    let reply = c.send_mail("alice@example.org", &["bob@example.com"], "Subject: held\r\n\r\nx");
    assert_eq!(reply.code, 250);
    let queued = sluice.queued();
    assert_eq!(queued.len(), 1, "kept, but held");
    assert_eq!(queued[0].state["hold"]["kind"], "quarantined");
    assert_eq!(queued[0].state["hold"]["reason"], "jail: looks like phishing");
    let listed = sluice.queue_list();
    assert_eq!(listed[0]["hold"]["kind"], "quarantined");
}

#[test]
fn plugins_read_the_message_through_the_host() {
    let sluice = server(&testing("inspect", "", "stage = \"data\"\naction = \"inspect\""));
    let (mut c, _) = Client::connect(sluice.addr);
    let mime = "Subject: =?utf-8?q?caf=C3=A9?=\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\n\r\n%PDF\r\n--b--";
    assert_eq!(c.send_mail("alice@example.org", &["bob@example.com"], mime).code, 250);
    let (_, message) = sluice.queued()[0].parts();
    let text = String::from_utf8(message).unwrap();
    assert!(text.contains("X-Test-Subject: =?utf-8?b?Y2Fmw6k=?=\r\n"), "non-ASCII values are RFC 2047 encoded: {text}");
    assert!(text.contains("X-Test-Parts: 2\r\n"), "{text}");
    assert!(text.contains("X-Test-Attachments: report.pdf\r\n"), "{text}");
    assert!(text.contains("X-Test-Body-Start: --b  Content-Type: text/plain"), "{text}");
    assert!(
        text.contains("X-Test-Subject: =?utf-8?b?Y2Fmw6k=?=\r\n") || text.contains("X-Test-Subject: café"),
        "{text}"
    );
}

/// A normal message through a second, plugin-free port of the same server is not the
/// point; what matters is that the same server keeps serving. This checks it.
fn still_serving(sluice: &Sluice) {
    let (mut c, greeting) = Client::connect(sluice.addr);
    assert_eq!(greeting.code, 220);
    assert_eq!(c.cmd("EHLO client.example").code, 250);
    assert_eq!(c.cmd("NOOP").code, 250);
}

#[test]
fn hostile_plugins_fail_only_their_own_call() {
    let cases = [
        ("loop", "memory = \"32MB\"\ncpu_time = \"100ms\"", "stage = \"rcpt-to\"\naction = \"loop\""),
        ("memory-bomb", "memory = \"16MB\"", "stage = \"rcpt-to\"\naction = \"memory-bomb\""),
        ("trap", "", "stage = \"rcpt-to\"\naction = \"trap\""),
        ("huge-headers", "", "stage = \"data\"\naction = \"huge-headers\""),
        ("bad-reply-code", "", "stage = \"rcpt-to\"\naction = \"bad-reply-code\""),
        ("crlf-text", "", "stage = \"rcpt-to\"\naction = \"crlf-text\""),
    ];
    for (name, limits, config) in cases {
        let sluice = server(&testing(name, limits, config));
        let started = Instant::now();
        let replies = conversation(&sluice, "bob@example.com");
        let last = replies.last().unwrap();
        assert!(last.starts_with("451 4.3.0 "), "{name}: default policy is tempfail: {replies:?}");
        assert!(started.elapsed() < Duration::from_secs(10), "{name} took {:?}", started.elapsed());
        assert!(sluice.queued().is_empty(), "{name}: nothing accepted");
        assert!(sluice.wait_for_log("plugin failed", Duration::from_secs(5)), "{name}: failure logged");
        still_serving(&sluice);
    }
}

#[test]
fn an_endless_loop_is_stopped_within_its_cpu_budget_while_others_are_served() {
    let sluice = server(
        &[testing("spinner", "cpu_time = \"200ms\"", "stage = \"rcpt-to\"\naction = \"loop\"\nonly_for = \"loop\"")]
            .concat(),
    );
    let addr = sluice.addr;
    let spinners: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let (mut c, _) = Client::connect(addr);
                c.cmd("EHLO client.example");
                c.cmd("MAIL FROM:<alice@example.org>");
                let started = Instant::now();
                let r = c.cmd("RCPT TO:<loop@example.com>");
                (r, started.elapsed())
            })
        })
        .collect();
    // Meanwhile, well-behaved sessions get their mail through.
    for i in 0..10 {
        let (mut c, _) = Client::connect(addr);
        let reply = c.send_mail("alice@example.org", &["bob@example.com"], &format!("Subject: {i}\r\n\r\nx"));
        assert_eq!(reply.code, 250);
    }
    for spinner in spinners {
        let (reply, took) = spinner.join().unwrap();
        assert_eq!((reply.code, reply.status()), (451, "4.3.0"), "{reply:?}");
        assert!(took < Duration::from_secs(3), "stopped late: {took:?}");
    }
    assert_eq!(sluice.queued().len(), 10);
    assert!(sluice.wait_for_log("cpu-time", Duration::from_secs(5)));
}

#[test]
fn on_error_policies_decide_the_reply() {
    let sluice = server(&testing("lenient", "on_error = \"continue\"", "stage = \"rcpt-to\"\naction = \"trap\""));
    let replies = conversation(&sluice, "bob@example.com");
    assert!(replies.last().unwrap().starts_with("250"), "continue: {replies:?}");
    assert_eq!(sluice.queued().len(), 1);

    let sluice = server(&testing("strict", "on_error = \"reject\"", "stage = \"rcpt-to\"\naction = \"trap\""));
    let replies = conversation(&sluice, "bob@example.com");
    assert!(replies.last().unwrap().starts_with("550 5.7.0"), "reject: {replies:?}");

    let sluice = server(&testing("at-connect", "", "stage = \"connect\"\naction = \"trap\""));
    let replies = conversation(&sluice, "bob@example.com");
    assert!(replies[0].starts_with("421 4.3.0"), "tempfail at connect is 421: {replies:?}");
}

#[test]
fn slow_host_calls_are_bounded_by_wall_time() {
    // A DNS server that never answers: the lookup gives up before the call's wall time
    // and the plugin decides (the testing plugin carries on).
    let blackhole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dns = blackhole.local_addr().unwrap();
    let extra = format!("[dns]\nservers = [\"{dns}\"]\ntimeout = \"30s\"\nattempts = 1\n");
    let plugin =
        testing("slow", "wall_time = \"1s\"", "stage = \"mail-from\"\naction = \"slow-dns\"\nvalue = \"slow.example\"");
    let sluice = server(&format!("{extra}{plugin}"));
    let started = Instant::now();
    let replies = conversation(&sluice, "bob@example.com");
    let took = started.elapsed();
    assert!(replies.last().unwrap().starts_with("250 2.0.0"), "{replies:?}");
    assert!(took >= Duration::from_millis(800) && took < Duration::from_secs(5), "{took:?}");
    drop(blackhole);

    // A wait nothing else bounds (a sleep) fails the call when the wall time is up.
    let sluice =
        server(&testing("sleepy", "wall_time = \"1s\"", "stage = \"mail-from\"\naction = \"sleep\"\nvalue = \"30\""));
    let started = Instant::now();
    let replies = conversation(&sluice, "bob@example.com");
    let took = started.elapsed();
    assert!(replies.last().unwrap().starts_with("451 4.3.0"), "{replies:?}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(5), "{took:?}");
    assert!(sluice.wait_for_log("wall-time", Duration::from_secs(5)));
}

#[test]
fn the_kv_store_is_shared_by_sessions_and_private_to_the_plugin() {
    let plugins = [testing("counter", "", "stage = \"data\"\naction = \"count\"\nvalue = \"messages\"")].concat();
    let sluice = server(&plugins);
    for _ in 0..3 {
        let (mut c, _) = Client::connect(sluice.addr);
        assert_eq!(c.send_mail("alice@example.org", &["bob@example.com"], "Subject: n\r\n\r\nx").code, 250);
    }
    let counts: Vec<String> = sluice
        .queued()
        .iter()
        .map(|q| {
            let text = String::from_utf8_lossy(&q.message).to_string();
            text.lines().find_map(|l| l.strip_prefix("X-Test-Count: ").map(str::to_string)).unwrap()
        })
        .collect();
    assert_eq!(counts, ["1", "2", "3"]);
}

/// Runs three sessions through a server with `plugins` (a testing plugin doing
/// `instance-calls` at data) and returns how many calls the instance serving each had
/// made: all 1 when every session gets a fresh instance.
pub fn instance_calls(plugins: &str) -> Vec<String> {
    let sluice = server(plugins);
    for _ in 0..3 {
        let (mut c, _) = Client::connect(sluice.addr);
        assert_eq!(c.send_mail("alice@example.org", &["bob@example.com"], "Subject: n\r\n\r\nx").code, 250);
        assert_eq!(c.cmd("QUIT").code, 221);
        assert!(c.is_closed());
        // The session hands its instances back as its task ends, just after closing.
        std::thread::sleep(Duration::from_millis(100));
    }
    sluice
        .queued()
        .iter()
        .map(|q| {
            let text = String::from_utf8_lossy(&q.message).to_string();
            text.lines().find_map(|l| l.strip_prefix("X-Instance-Calls: ").map(str::to_string)).unwrap()
        })
        .collect()
}

#[test]
fn reused_instances_serve_later_sessions_and_fresh_ones_do_not() {
    let calls = |extra: &str| instance_calls(&testing("calls", extra, "stage = \"data\"\naction = \"instance-calls\""));
    assert_eq!(calls(""), ["1", "1", "1"]);
    assert_eq!(calls("reuse_instances = true"), ["1", "2", "3"]);
}

pub(crate) fn check_config(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new(crate::support::server::BIN).arg("check-config").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).replace(path.to_str().unwrap(), "FILE");
    (out.status.code().unwrap_or(-1), stderr)
}

pub(crate) fn plugin_entry(name: &str, path: &str, grants: &str) -> String {
    crate::support::server::base_config(&format!(
        "[[plugin]]\nname = \"{name}\"\npath = \"{path}\"\ngrants = {grants}\n"
    ))
}

#[test]
fn check_config_names_the_plugin_in_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"this is not wasm").unwrap();
    let core_module = dir.path().join("core.wasm");
    std::fs::write(&core_module, b"\0asm\x01\0\0\0").unwrap();
    let testing = crate::support::plugins::wasm("testing");
    let forbidden = crate::support::plugins::wasm("forbidden");
    let cases = [
        (plugin_entry("ghost", "/nonexistent/ghost.wasm", "[]"), "FILE:13:8: plugin \"ghost\": cannot read"),
        (plugin_entry("junk", junk.to_str().unwrap(), "[]"), "plugin \"junk\": "),
        (plugin_entry("core", core_module.to_str().unwrap(), "[]"), "plugin \"core\": "),
        (
            plugin_entry("greedy", testing.to_str().unwrap(), "[\"config\", \"log\"]"),
            "plugin \"greedy\": imports sluice:plugin/dns@0.2.0 but is not granted \"dns\"",
        ),
        (
            plugin_entry("typo", testing.to_str().unwrap(), "[\"config\", \"filesystem\"]"),
            "plugin \"typo\": unknown grant \"filesystem\"",
        ),
        (plugin_entry("snoop", forbidden.to_str().unwrap(), "[]"), "plugin \"snoop\": imports wasi:filesystem/"),
    ];
    for (text, expected) in cases {
        let (code, stderr) = check_config(&text);
        assert_ne!(code, 0, "{expected}");
        assert!(stderr.contains(expected), "expected {expected:?} in {stderr:?}");
        assert!(stderr.starts_with("FILE:"), "{stderr}");
    }
    let (code, stderr) =
        check_config(&plugin_entry("fine", testing.to_str().unwrap(), "[\"config\", \"log\", \"dns\", \"kv\"]"));
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn the_offline_runner_reports_verdicts_changes_and_exits_non_zero_on_reject() {
    let dir = tempfile::tempdir().unwrap();
    let eml = dir.path().join("m.eml");
    // LF line endings on purpose: the runner stores them as CRLF, as the server would.
    std::fs::write(&eml, "From: alice@example.org\nSubject: hello\nX-Remove-Me: 1\n\nBody.\n").unwrap();
    let run = |config: &str, json: bool| {
        let cfg = dir.path().join("plugin.toml");
        std::fs::write(&cfg, config).unwrap();
        let mut cmd = std::process::Command::new(crate::support::server::BIN);
        cmd.args(["plugin", "test"]).arg(crate::support::plugins::wasm("testing"));
        cmd.arg("--message").arg(&eml).args([
            "--from",
            "alice@example.org",
            "--rcpt",
            "bob@example.com",
            "carol@example.com",
        ]);
        cmd.arg("--plugin-config").arg(&cfg);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, text) = run("stage = \"data\"\naction = \"set-header\"\nvalue = \"Subject: [EXTERNAL] hello\"\n", false);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("  - Subject: hello"), "{text}");
    assert!(text.contains("  + Subject: [EXTERNAL] hello"), "{text}");
    for stage in ["connect", "helo", "mail-from", "rcpt-to", "data"] {
        assert!(text.contains(&format!("  {stage}")), "{stage} missing: {text}");
    }
    assert!(text.contains(" µs "), "{text}");

    let (code, json) = run(
        "stage = \"rcpt-to\"\naction = \"reject\"\nonly_for = \"carol\"\ncode = 550\nenhanced = \"5.1.1\"\ntext = \"unknown\"\n",
        true,
    );
    assert_eq!(code, 1, "non-zero on reject: {json}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["fate"], "rejected");
    assert_eq!(report["refused_at"], "rcpt-to");
    assert_eq!(report["reply"], "550 5.1.1 unknown");
    assert_eq!(report["calls"].as_array().unwrap().len(), 5, "connect, helo, mail-from, two rcpt-to");

    let (code, json) =
        run("stage = \"mail-from\"\naction = \"rewrite-sender\"\nvalue = \"bounce@example.net\"\n", true);
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["sender_before"], "<alice@example.org>");
    assert_eq!(report["sender_after"], "<bounce@example.net>");
    assert_eq!(report["score"], 1.0);
    assert!(report["calls"][0]["peak_memory"].as_u64().unwrap() > 0);
}
