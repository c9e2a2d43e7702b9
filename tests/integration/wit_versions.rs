//! Interface versions side by side: components built from the frozen
//! sluice:plugin@0.1.0 WIT (committed fixtures) and from 0.2.0 (the current SDK) in one
//! server, each with its own behaviour; reuse defaulting to what a plugin declares.

use std::time::Duration;

use crate::plugins::instance_calls;
use crate::support::plugins::{testing, testing_at, wit_0_1_0};
use crate::support::server::{BIN, base_config};
use crate::support::sink::{Sink, SinkOptions};
use crate::support::{Client, Sluice};

#[test]
fn a_0_1_and_a_0_2_component_run_side_by_side() {
    let old = wit_0_1_0("testing");
    let sink = Sink::start(SinkOptions::default());
    let plugins = [
        testing_at(
            &old,
            "old-rcpt",
            &[],
            "",
            "stage = \"rcpt-to\"\naction = \"reject\"\ncode = 550\nenhanced = \"5.1.1\"\ntext = \"Refused by 0.1.0\"\nonly_for = \"refused-by-old\"",
        ),
        testing(
            "new-mail",
            "",
            "stage = \"mail-from\"\naction = \"reject\"\ncode = 553\nenhanced = \"5.7.1\"\ntext = \"Refused by 0.2.0\"\nonly_for = \"refused-by-new\"",
        ),
        testing_at(&old, "old-data", &[], "", "stage = \"data\"\naction = \"add-header\"\nvalue = \"X-Old: 0.1.0 was here\""),
        testing("new-data", "", "stage = \"data\"\naction = \"set-header\"\nvalue = \"Subject: [0.2.0] side by side\""),
        sink.route("all", "\"*\"", "none"),
    ]
    .concat();
    let sluice = Sluice::start(&plugins);

    let (mut c, _) = Client::connect(sluice.addr);
    assert_eq!(c.cmd("EHLO client.example").code, 250);
    assert_eq!(c.cmd("MAIL FROM:<alice@example.org>").code, 250);
    let refused = c.cmd("RCPT TO:<refused-by-old@example.com>");
    assert_eq!((refused.code, refused.lines.last().unwrap().as_str()), (550, "550 5.1.1 Refused by 0.1.0"));
    assert_eq!(c.cmd("RSET").code, 250);
    let refused = c.cmd("MAIL FROM:<refused-by-new@example.org>");
    assert_eq!((refused.code, refused.lines.last().unwrap().as_str()), (553, "553 5.7.1 Refused by 0.2.0"));
    assert_eq!(c.cmd("RSET").code, 250);
    let reply =
        c.send_mail("alice@example.org", &["bob@example.com"], "Subject: plain\r\nFrom: alice@example.org\r\n\r\nHi.");
    assert_eq!(reply.code, 250, "{reply:?}");

    let delivered = sink.wait_for(1, Duration::from_secs(10));
    assert_eq!(delivered.len(), 1, "one message reaches the next hop");
    assert_eq!(delivered[0].recipients, ["bob@example.com"]);
    let text = String::from_utf8_lossy(&delivered[0].content).to_string();
    assert!(text.contains("\r\nX-Old: 0.1.0 was here\r\n"), "the 0.1.0 plugin's header: {text}");
    assert!(text.contains("\r\nSubject: [0.2.0] side by side\r\n"), "the 0.2.0 plugin's header: {text}");
    assert!(!text.contains("Subject: plain"), "{text}");

    let logs = sluice.logs();
    for plugin in ["old-rcpt", "old-data"] {
        assert!(logs.lines().any(|l| l.contains(plugin) && l.contains("sluice:plugin@0.1.0")), "{logs}");
    }
    assert!(logs.lines().any(|l| l.contains("new-data") && l.contains("sluice:plugin@0.2.0")), "{logs}");
    assert!(logs.contains("superseded by 0.2"), "a 0.1.0 plugin is warned about: {logs}");
}

#[test]
fn tags_and_scores_of_both_versions_add_up() {
    let plugins = [
        testing_at(&wit_0_1_0("testing"), "old", &[], "", "stage = \"data\""),
        testing("new", "", "stage = \"data\""),
        testing_at(&wit_0_1_0("noop"), "old-noop", &[], "", ""),
    ]
    .concat();
    let sluice = Sluice::start(&plugins);
    let (mut c, _) = Client::connect(sluice.addr);
    assert_eq!(c.send_mail("alice@example.org", &["bob@example.com"], "Subject: t\r\n\r\nx").code, 250);
    let queued = sluice.queued();
    assert_eq!(queued.len(), 1);
    let (envelope, _) = queued[0].parts();
    assert_eq!(envelope["score"], 2.0, "{envelope}");
    assert_eq!(envelope["tags"], serde_json::json!(["testing:data"]));
}

#[test]
fn reuse_defaults_to_what_the_plugin_declares_and_the_admin_decides_last() {
    let counting = "stage = \"data\"\naction = \"instance-calls\"";
    let declaring = format!("{counting}\nreusable = true");
    let old = wit_0_1_0("testing");
    assert_eq!(instance_calls(&testing("new", "", &declaring)), ["1", "2", "3"], "declared reusable");
    assert_eq!(instance_calls(&testing("new", "", counting)), ["1", "1", "1"], "not declared");
    assert_eq!(instance_calls(&testing("new", "reuse_instances = false", &declaring)), ["1", "1", "1"], "turned off");
    assert_eq!(instance_calls(&testing_at(&old, "old", &[], "", counting)), ["1", "1", "1"], "0.1.0 never declares");
    assert_eq!(instance_calls(&testing_at(&old, "old", &[], "reuse_instances = true", counting)), ["1", "2", "3"]);
}

#[test]
fn check_config_shows_each_plugins_interface_version() {
    let plugins = [
        testing_at(&wit_0_1_0("testing"), "old", &[], "", ""),
        testing("new", "", "reusable = true"),
        testing("pinned", "reuse_instances = false", "reusable = true"),
    ]
    .concat();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, base_config(&plugins)).unwrap();
    let out = std::process::Command::new(BIN).arg("check-config").arg(&path).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let line = |name: &str| stdout.lines().find(|l| l.starts_with(&format!("plugin {name:?}: "))).unwrap_or_default();
    assert!(line("old").contains("sluice:plugin@0.1.0, fresh per session (declared by the plugin)"), "{stdout}");
    assert!(line("old").contains("warning: sluice:plugin@0.1 is superseded by 0.2"), "{stdout}");
    assert!(line("new").contains("sluice:plugin@0.2.0, reused (declared by the plugin); grants"), "{stdout}");
    assert!(line("pinned").contains("sluice:plugin@0.2.0, fresh per session (reuse_instances); grants"), "{stdout}");
}
