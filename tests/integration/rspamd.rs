//! The rspamd plugin against a real rspamd (the test tree's config, started per test):
//! GTUBE is refused with 550, clean mail and mail scored for `add header` are delivered
//! with rspamd's verdict in their headers, and a stopped rspamd lets mail through (the
//! plugin's `on_error` is `continue`) with the failure counted.

use std::time::Duration;

use crate::operations::{http_get, sample};
use crate::support::plugins::wasm;
use crate::support::rspamd::{Rspamd, available, closed_port};
use crate::support::sink::{Sink, SinkOptions};
use crate::support::{Client, Sluice};

const WAIT: Duration = Duration::from_secs(20);

pub const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/// The plugin's entry, granted `http` to rspamd's normal worker at `port` only.
pub fn plugin(port: u16) -> String {
    format!(
        "[[plugin]]\nname = \"rspamd\"\npath = \"{}\"\ngrants = [\"http\", \"log\", \"config\"]\n\
         on_error = \"continue\"\n\
         http = {{ allow = [\"http://127.0.0.1:{port}\"], timeout = \"5s\", max_response = \"1MB\" }}\n\
         [plugin.config]\nurl = \"http://127.0.0.1:{port}\"\ntimeout = \"5s\"\n",
        wasm("rspamd").display()
    )
}

fn message(subject: &str, body: &str) -> String {
    format!(
        "From: alice@example.org\r\nTo: bob@example.com\r\nSubject: {subject}\r\n\
         Message-ID: <{}@example.org>\r\nDate: Thu, 03 Dec 2026 17:00:00 +0000\r\n\r\n{body}\r\n",
        subject.len()
    )
}

fn header<'a>(content: &'a str, name: &str) -> Option<&'a str> {
    content.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
}

fn start(port: u16) -> (Sluice, Sink) {
    let sink = Sink::start(SinkOptions::default());
    let metrics = "[metrics]\nlisten = \"127.0.0.1:0\"\n";
    let sluice = Sluice::start(&format!("{metrics}{}{}", sink.route("all", "\"*\"", "none"), plugin(port)));
    (sluice, sink)
}

fn send(sluice: &Sluice, content: &str) -> crate::support::client::Reply {
    let (mut c, _) = Client::connect(sluice.addr);
    c.send_mail("alice@example.org", &["bob@example.com"], content)
}

fn failures(sluice: &Sluice) -> f64 {
    let address = sluice.logged_address("metrics listening").expect("metrics address");
    let (_, metrics) = http_get(address, "/metrics");
    sample(&metrics, "sluice_plugin_failures_total", &["plugin=\"rspamd\"", "kind=\"trap\""]).unwrap_or(0.0)
}

#[test]
fn rspamd_rejects_gtube_marks_spam_and_when_stopped_stops_no_mail() {
    if !available() {
        eprintln!("SKIPPED rspamd: rspamd is not installed (scripts/test installs it)");
        return;
    }
    let mut rspamd = Rspamd::start();
    let (sluice, sink) = start(rspamd.port);

    let gtube = send(&sluice, &message("test", GTUBE));
    assert_eq!((gtube.code, gtube.status()), (550, "5.7.1"), "{gtube:?}\n{}", sluice.logs());
    assert!(gtube.text.contains("Gtube pattern"), "{gtube:?}");

    let clean = send(&sluice, &message("Lunch on Friday", "Shall we meet at noon?"));
    assert_eq!(clean.code, 250, "{clean:?}\n{}", sluice.logs());
    let got = sink.wait_for(1, WAIT);
    assert_eq!(got.len(), 1, "only the clean message: {}", sluice.logs());
    let content = String::from_utf8_lossy(&got[0].content).into_owned();
    let result = header(&content, "X-Spamd-Result").unwrap_or_else(|| panic!("no X-Spamd-Result:\n{content}"));
    assert!(result.starts_with("default: False ["), "{result}");
    assert_eq!(header(&content, "X-Spam"), None, "{content}");

    let marked = send(&sluice, &message("SLUICE-ADD-HEADER offer", "Buy now."));
    assert_eq!(marked.code, 250, "{marked:?}");
    let got = sink.wait_for(2, WAIT);
    assert_eq!(got.len(), 2, "{}", sluice.logs());
    let content = String::from_utf8_lossy(&got[1].content).into_owned();
    assert_eq!(header(&content, "X-Spam"), Some("Yes"), "{content}");
    let result = header(&content, "X-Spamd-Result").unwrap_or_default();
    assert!(result.starts_with("default: True [8.00 / 15.00]"), "{result}");
    assert!(result.contains("SLUICE_TEST_ADD_HEADER(8.00)"), "{result}");
    assert_eq!(failures(&sluice), 0.0, "{}", sluice.logs());

    rspamd.stop();
    let through = send(&sluice, &message("While rspamd is down", "Still here."));
    assert_eq!(through.code, 250, "a down rspamd refuses no mail: {through:?}");
    let got = sink.wait_for(3, WAIT);
    assert_eq!(got.len(), 3, "{}", sluice.logs());
    let content = String::from_utf8_lossy(&got[2].content).into_owned();
    assert_eq!(header(&content, "X-Spamd-Result"), None, "unscanned: {content}");
    assert_eq!(failures(&sluice), 1.0, "the failure is counted: {}", sluice.logs());
}

#[test]
fn rspamd_unreachable_from_the_start_lets_mail_through() {
    let (sluice, sink) = start(closed_port());
    let reply = send(&sluice, &message("Nobody scans this", "Hello."));
    assert_eq!(reply.code, 250, "{reply:?}\n{}", sluice.logs());
    assert_eq!(sink.wait_for(1, WAIT).len(), 1, "{}", sluice.logs());
    assert_eq!(failures(&sluice), 1.0, "{}", sluice.logs());
}
