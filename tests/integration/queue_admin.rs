//! `sluice queue show|retry|hold|release|delete|bounce`, against a running server
//! (through its control directory) and a stopped one (straight to the queue).

use std::time::Duration;

use crate::delivery::wait_until;
use crate::support::client::queued_id;
use crate::support::sink::{Sink, SinkOptions};
use crate::support::{Client, Sluice};

fn cli(sluice: &Sluice, args: &[&str]) -> (i32, String, String) {
    let config = sluice.config_path.to_str().unwrap().to_string();
    let mut full: Vec<&str> = vec!["queue"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--config", &config]);
    sluice.cli(&full)
}

fn queue_one(sluice: &Sluice, subject: &str) -> String {
    let (mut c, _) = Client::connect(sluice.addr);
    let content = format!("Subject: {subject}\r\n\r\nbody");
    let reply = c.send_mail("alice@sender.test", &["bob@example.com"], &content);
    let id = queued_id(&reply).expect("queued as");
    // Wait for its first (refused) attempt.
    assert!(wait_until(Duration::from_secs(10), || {
        sluice.queue_list().iter().any(|m| m["id"] == id.as_str() && m["attempts"] == 1)
    }));
    id
}

fn setup() -> (Sluice, Sink, Sink) {
    let next_hop = Sink::start(SinkOptions::default());
    next_hop.pause(true);
    let senders = Sink::start(SinkOptions::default());
    let sluice = Sluice::start_with_queue(
        "retry = [\"1h\"]\n",
        &format!("{}{}", senders.route("senders", "\"sender.test\"", "none"), next_hop.route("rest", "\"*\"", "none")),
    );
    (sluice, next_hop, senders)
}

#[test]
fn admin_commands_reach_a_running_server_at_once() {
    let (sluice, next_hop, senders) = setup();
    let id = queue_one(&sluice, "admin");

    let (code, text, _) = cli(&sluice, &["show", &id]);
    assert_eq!(code, 0);
    for needle in ["sender:      <alice@sender.test>", "bob@example.com pending: 4.3.0", "Subject: admin"] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    let (code, table, _) = cli(&sluice, &["list"]);
    assert_eq!(code, 0);
    assert!(table.contains("1 attempt(s), next attempt in"), "{table}");
    assert!(table.contains("451 4.3.0 try again later"), "{table}");

    let (code, out, err) = cli(&sluice, &["hold", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("held"));
    assert_eq!(sluice.queue_list()[0]["hold"]["kind"], "held");
    let (code, _, err) = cli(&sluice, &["retry", &id]);
    assert_ne!(code, 0);
    assert!(err.contains("held"), "{err}");
    let (code, _, err) = cli(&sluice, &["release", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(sluice.queue_list()[0]["hold"].is_null());

    // Released messages are due at once; the next hop still refuses, so it waits an hour.
    assert!(wait_until(Duration::from_secs(10), || sluice.queue_list()[0]["attempts"] == 2));
    next_hop.pause(false);
    let (code, out, err) = cli(&sluice, &["retry", &id, "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json[0]["ok"], true);
    assert_eq!(next_hop.wait_for(1, Duration::from_secs(10)).len(), 1, "retry delivers now");
    assert!(wait_until(Duration::from_secs(5), || sluice.queued().is_empty()));

    // Delete and bounce.
    next_hop.pause(true);
    let doomed = queue_one(&sluice, "delete me");
    let (code, _, err) = cli(&sluice, &["delete", &doomed]);
    assert_eq!(code, 0, "{err}");
    assert!(sluice.queued().iter().all(|q| q.id != doomed), "deleted");
    let bounced = queue_one(&sluice, "bounce me");
    let (code, _, err) = cli(&sluice, &["bounce", &bounced]);
    assert_eq!(code, 0, "{err}");
    let notices = senders.wait_for(1, Duration::from_secs(10));
    assert_eq!(notices.len(), 1, "{}", sluice.logs());
    let text = String::from_utf8_lossy(&notices[0].content).into_owned();
    assert!(text.contains("Action: failed") && text.contains("Status: 5.0.0"), "{text}");
    assert!(text.contains("Subject: bounce me"), "{text}");
    assert!(wait_until(Duration::from_secs(5), || sluice.queued().is_empty()), "{:?}", sluice.queue_list());

    // Unknown ids are errors; --all retries what waits.
    let (code, _, err) = cli(&sluice, &["hold", "0000000000001"]);
    assert_ne!(code, 0);
    assert!(err.contains("no such message"), "{err}");
    let (code, _, _) = cli(&sluice, &["retry", "--all"]);
    assert_eq!(code, 0);
}

#[test]
fn admin_commands_work_on_a_stopped_server_and_take_effect_at_start() {
    let (mut sluice, next_hop, senders) = setup();
    let keep = queue_one(&sluice, "keep");
    let held = queue_one(&sluice, "held");
    let gone = queue_one(&sluice, "gone");
    let bounced = queue_one(&sluice, "bounced");
    sluice.kill();

    let (code, _, err) = cli(&sluice, &["hold", &held]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(&sluice, &["delete", &gone]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(&sluice, &["bounce", &bounced]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(&sluice, &["retry", &keep]);
    assert_eq!(code, 0, "{err}");
    let list = sluice.queue_list();
    let ids: Vec<&str> = list.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&keep.as_str()) && ids.contains(&held.as_str()));
    assert!(!ids.contains(&gone.as_str()) && !ids.contains(&bounced.as_str()));
    assert_eq!(list.len(), 3, "the bounce notice waits in the queue: {list:?}");
    let keep_row = list.iter().find(|m| m["id"] == keep.as_str()).unwrap();
    assert!(keep_row["next_attempt"].is_null(), "retry makes it due at start");

    next_hop.pause(false);
    sluice.restart();
    // The retried message goes at once (its schedule said an hour), the notice too;
    // the held one stays.
    assert_eq!(next_hop.wait_for(1, Duration::from_secs(10)).len(), 1, "{}", sluice.logs());
    assert_eq!(senders.wait_for(1, Duration::from_secs(10)).len(), 1, "{}", sluice.logs());
    assert!(wait_until(Duration::from_secs(5), || sluice.queue_list().len() == 1));
    assert_eq!(sluice.queue_list()[0]["id"], held.as_str());
    assert_eq!(sluice.queue_list()[0]["hold"]["kind"], "held");
}
