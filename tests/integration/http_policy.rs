//! The http-policy plugin against a policy service the test runs: every action at RCPT
//! and DATA, the document the service receives, a malformed answer (a plugin failure:
//! `on_error` applies) and a slow answer cut at the timeout.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::operations::{http_get, sample};
use crate::support::plugins::wasm;
use crate::support::policy::{Answer, PolicyServer};
use crate::support::sink::{Sink, SinkOptions};
use crate::support::{Client, Sluice};

const WAIT: Duration = Duration::from_secs(20);

/// At RCPT the recipient's local part names the answer, at DATA the subject does.
fn policy(document: &Value) -> Answer {
    let local = document["recipient"]["address"].as_str().and_then(|a| a.split('@').next()).unwrap_or("");
    let subject = document["message"]["headers"]
        .as_array()
        .and_then(|headers| headers.iter().find(|h| h["name"] == "Subject"))
        .and_then(|h| h["value"].as_str())
        .unwrap_or("");
    let json = match (document["stage"].as_str(), local, subject) {
        (Some("rcpt-to"), "reject", _) => {
            r#"{"action":"reject","code":550,"enhanced":"5.7.1","text":"Policy says no"}"#
        }
        (Some("rcpt-to"), "tempfail", _) => {
            r#"{"action":"tempfail","code":452,"enhanced":"4.2.2","text":"Over quota"}"#
        }
        (Some("rcpt-to"), "disconnect", _) => r#"{"action":"disconnect","text":"Go away"}"#,
        (Some("rcpt-to"), "accept", _) => r#"{"action":"accept","tags":["vip"]}"#,
        (Some("rcpt-to"), "malformed", _) => r#"{"action": "reject", "code": 5"#,
        (Some("rcpt-to"), "slow", _) => {
            return Answer { delay: Duration::from_secs(4), ..Answer::json(r#"{"action":"continue"}"#) };
        }
        (Some("data"), _, "discard") => r#"{"action":"discard"}"#,
        (Some("data"), _, "quarantine") => r#"{"action":"quarantine","text":"held by policy"}"#,
        (Some("data"), _, "reject") => r#"{"action":"reject","code":554,"enhanced":"5.7.0","text":"Content refused"}"#,
        (Some("data"), _, _) => {
            r#"{"action":"continue","add_headers":[{"name":"X-Policy","value":"checked"}],"tags":["policy-ok"],"score":1.5}"#
        }
        _ => r#"{"action":"continue"}"#,
    };
    Answer::json(json)
}

fn plugin(service: &PolicyServer, on_error: &str) -> String {
    format!(
        "[[plugin]]\nname = \"policy\"\npath = \"{}\"\ngrants = [\"http\", \"log\", \"config\"]\n\
         on_error = \"{on_error}\"\n\
         http = {{ allow = [\"{url}\"], timeout = \"1s\", max_response = \"64KB\" }}\n\
         [plugin.config]\nurl = \"{url}/policy\"\nstages = [\"rcpt-to\", \"data\"]\ntimeout = \"1s\"\nbody_bytes = 10\n",
        wasm("http_policy").display(),
        url = service.url(),
    )
}

fn start(service: &PolicyServer, on_error: &str) -> (Sluice, Sink) {
    let sink = Sink::start(SinkOptions::default());
    let metrics = "[metrics]\nlisten = \"127.0.0.1:0\"\n";
    let config = format!("{metrics}{}{}", sink.route("all", "\"*\"", "none"), plugin(service, on_error));
    (Sluice::start(&config), sink)
}

fn rcpt(sluice: &Sluice, address: &str) -> (Client, crate::support::client::Reply) {
    let (mut c, _) = Client::connect(sluice.addr);
    assert_eq!(c.cmd("EHLO client.example").code, 250);
    assert_eq!(c.cmd("MAIL FROM:<alice@example.org>").code, 250);
    let reply = c.cmd(&format!("RCPT TO:<{address}>"));
    (c, reply)
}

fn send(sluice: &Sluice, subject: &str) -> crate::support::client::Reply {
    let (mut c, _) = Client::connect(sluice.addr);
    c.send_mail("alice@example.org", &["bob@example.com"], &format!("Subject: {subject}\r\n\r\nHello there, policy."))
}

fn failures(sluice: &Sluice) -> f64 {
    let address = sluice.logged_address("metrics listening").expect("metrics address");
    let (_, metrics) = http_get(address, "/metrics");
    sample(&metrics, "sluice_plugin_failures_total", &["plugin=\"policy\"", "kind=\"trap\""]).unwrap_or(0.0)
}

#[test]
fn http_policy_applies_every_action_at_rcpt_and_data() {
    let service = PolicyServer::start(policy);
    let (sluice, sink) = start(&service, "tempfail");

    let (_, reply) = rcpt(&sluice, "reject@example.com");
    assert_eq!((reply.code, reply.text.as_str()), (550, "5.7.1 Policy says no"), "{}", sluice.logs());
    let (_, reply) = rcpt(&sluice, "tempfail@example.com");
    assert_eq!((reply.code, reply.text.as_str()), (452, "4.2.2 Over quota"));
    let (_, reply) = rcpt(&sluice, "accept@example.com");
    assert_eq!(reply.code, 250, "{reply:?}");
    let (mut c, reply) = rcpt(&sluice, "disconnect@example.com");
    assert_eq!((reply.code, reply.text.as_str()), (421, "4.7.0 Go away"));
    assert!(c.is_closed(), "disconnect closes the connection");

    let reply = send(&sluice, "hello");
    assert_eq!(reply.code, 250, "{reply:?}");
    let got = sink.wait_for(1, WAIT);
    assert_eq!(got.len(), 1, "{}", sluice.logs());
    let content = String::from_utf8_lossy(&got[0].content).into_owned();
    assert!(content.contains("X-Policy: checked\r\n"), "{content}");

    let reply = send(&sluice, "reject");
    assert_eq!((reply.code, reply.text.as_str()), (554, "5.7.0 Content refused"));
    assert_eq!(send(&sluice, "discard").code, 250, "discard looks like acceptance");
    assert_eq!(send(&sluice, "quarantine").code, 250);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.accepted().len(), 1, "neither the discarded nor the held message is delivered");
    let held = sluice.queue_list();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["hold"]["kind"], "quarantined");
    assert_eq!(held[0]["hold"]["reason"], "policy: held by policy");
    assert_eq!(failures(&sluice), 0.0, "{}", sluice.logs());

    // What the service saw: the recipient at RCPT, headers and the first 10 bytes of
    // the body at DATA.
    let documents = service.documents();
    let at_rcpt = documents.iter().find(|d| d["recipient"]["address"] == "reject@example.com").expect("RCPT document");
    assert_eq!(at_rcpt["stage"], "rcpt-to");
    assert_eq!(at_rcpt["transaction"]["sender"], "alice@example.org");
    assert_eq!(at_rcpt["session"]["helo"], "client.example");
    let at_data = documents.iter().find(|d| d["stage"] == "data").expect("DATA document");
    assert_eq!(at_data["message"]["body"], "Hello ther");
    assert_eq!(at_data["message"]["body_truncated"], true);
    assert_eq!(at_data["transaction"]["recipients"][0]["address"], "bob@example.com");
}

#[test]
fn http_policy_malformed_answer_is_a_plugin_failure() {
    let service = PolicyServer::start(policy);
    let (sluice, _sink) = start(&service, "tempfail");
    let (_, reply) = rcpt(&sluice, "malformed@example.com");
    assert_eq!((reply.code, reply.status()), (451, "4.3.0"), "on_error = tempfail: {reply:?}\n{}", sluice.logs());
    assert_eq!(failures(&sluice), 1.0, "{}", sluice.logs());

    let (sluice, _sink) = start(&service, "continue");
    let (_, reply) = rcpt(&sluice, "malformed@example.com");
    assert_eq!(reply.code, 250, "on_error = continue: {reply:?}");
}

#[test]
fn http_policy_slow_answer_is_cut_at_the_timeout() {
    let service = PolicyServer::start(policy);
    let (sluice, _sink) = start(&service, "tempfail");
    let started = Instant::now();
    let (_, reply) = rcpt(&sluice, "slow@example.com");
    let took = started.elapsed();
    assert_eq!(reply.code, 451, "{reply:?}\n{}", sluice.logs());
    assert!(took < Duration::from_millis(3500), "cut at the 1 s timeout, not after the 4 s answer: {took:?}");
    assert_eq!(failures(&sluice), 1.0, "{}", sluice.logs());
}
