//! The command line: check-config, --help, queue list.

use std::process::Command;

use crate::support::server::{BIN, base_config};

fn check_config(text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(BIN).arg("check-config").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).replace(path.to_str().unwrap(), "FILE");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

#[test]
fn check_config_accepts_valid_and_points_at_mistakes() {
    let (code, stdout, _) = check_config(&base_config(""));
    assert_eq!(code, 0);
    assert!(stdout.ends_with(": ok\n"));

    let cases = [
        (base_config("[limits]\nmax_mesage_size = \"1MB\"\n"), "FILE:12:1: ", "unknown field `max_mesage_size`"),
        (base_config("[limits]\nmax_message_size = \"1ZB\"\n"), "FILE:12:20: ", "size unit"),
        (base_config("[limits]\ncommand_timeout = \"soon\"\n"), "FILE:12:19: ", "invalid duration"),
        (base_config("[limits]\nmax_recipients = 5\n"), "FILE:12:18: ", "at least 100"),
        (base_config("[relay]\nnetworks = [\"10.0.0.0/99\"]\n"), "FILE:9:12: ", "invalid network"),
        (
            base_config("[tls]\ncert = \"missing.pem\"\nkey = \"missing.key\"\n"),
            "FILE:12:8: ",
            "cannot read certificate",
        ),
        (
            "[server]\nhostname = \"bad host\"\nlisten = []\n[queue]\npath = \"q\"\n".to_string(),
            "FILE:2:12: ",
            "invalid hostname",
        ),
        (
            "[server]\nhostname = \"a.test\"\nlisten = []\n[queue]\npath = \"q\"\n".to_string(),
            "FILE:3:10: ",
            "at least one address",
        ),
        ("[server]\nhostname = \"a.test\"\nlisten = [\"127.0.0.1:0\"]\n".to_string(), "FILE", "missing field `queue`"),
        ("[server\n".to_string(), "FILE:1:", ""),
        (base_config("[[route]]\nname = \"r\"\ndomains = [\"*\"]\n"), "FILE:12:8: ", "needs next_hop or mx"),
        (base_config("[[route]]\nname = \"r\"\nmx = true\ntls = \"sometimes\"\n"), "FILE:14:7: ", "unknown variant"),
        (base_config("[[route]]\nname = \"r\"\nnext_hop = \"a.test:99999\"\n"), "FILE:13:12: ", "invalid next hop"),
        (base_config("[delivery]\ntls_ca_file = \"missing.pem\"\n"), "FILE:12:15: ", "cannot read CA file"),
        (base_config("[plugins.penalty_box]\nthreshold = 0\n"), "FILE:12:13: ", "threshold must be at least 1"),
        (base_config("[plugins.penalty_box]\nipv4_prefix = 33\n"), "FILE:12:15: ", "ipv4_prefix must be 0 to 32"),
    ];
    for (text, position, message) in cases {
        let (code, _, stderr) = check_config(&text);
        assert_ne!(code, 0, "{text}");
        assert!(stderr.starts_with(position), "expected {position} in {stderr:?} for\n{text}");
        assert!(stderr.contains(message), "expected {message:?} in {stderr:?}");
    }
}

#[test]
fn help_lists_the_commands() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for command in ["serve", "check-config", "queue", "--log-format"] {
        assert!(text.contains(command), "{command} missing from --help:\n{text}");
    }
}

#[test]
fn queue_list_shows_messages_as_table_and_json() {
    let sluice = crate::support::Sluice::start("");
    let (mut c, _) = crate::support::Client::connect(sluice.addr);
    c.send_mail("alice@example.org", &["bob@example.com", "carol@example.com"], "Subject: q\r\n\r\nx");
    let config = sluice.config_path.to_str().unwrap();
    let (code, table, _) = sluice.cli(&["queue", "list", "--config", config]);
    assert_eq!(code, 0);
    assert!(table.contains("<alice@example.org>"), "{table}");
    assert!(table.contains("bob@example.com, carol@example.com"), "{table}");
    assert!(table.contains("1 message(s)"));
    let json = sluice.queue_list();
    assert_eq!(json.len(), 1);
    assert_eq!(json[0]["sender"], "<alice@example.org>");
}
