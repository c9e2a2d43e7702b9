//! Outbound through a smarthost that wants SMTP AUTH: one Sluice relays to another,
//! which requires TLS and credentials.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::delivery::wait_until;
use crate::support::server::{BIN, base_config};
use crate::support::tls::make_pki;
use crate::support::{Client, Sluice};

fn hash(password: &str) -> String {
    let mut child =
        Command::new(BIN).arg("hash-password").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(password.as_bytes()).unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap().trim().to_string()
}

/// A smarthost: TLS, one user, and relaying only for authenticated clients.
fn smarthost() -> Sluice {
    let dir = tempfile::tempdir().unwrap();
    let tls = make_pki(&["smarthost.example.test"]).write_to(dir.path());
    let config = base_config(&format!(
        "[relay]\nnetworks = []\ndomains = []\n{tls}[auth]\nfailure_delay = \"10ms\"\n[[auth.users]]\nname = \"edge\"\npassword_hash = \"{}\"\n",
        hash("edge-secret")
    ));
    Sluice::start_in(dir, &config)
}

fn edge(smarthost: &Sluice, password: &str) -> Sluice {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("smarthost.pass"), format!("{password}\n")).unwrap();
    let config = base_config(&format!(
        "[[route]]\nname = \"smarthost\"\ndomains = [\"*\"]\nnext_hop = \"{}\"\ntls = \"required\"\nauth = {{ user = \"edge\", password_file = \"smarthost.pass\", required = true }}\n",
        smarthost.addr
    ))
    .replace("[queue]\npath = \"queue\"\n", "[queue]\npath = \"queue\"\nretry = [\"1s\"]\n");
    Sluice::start_in(dir, &config)
}

#[test]
fn delivery_authenticates_to_a_smarthost_over_tls() {
    let smarthost = smarthost();
    let edge = edge(&smarthost, "edge-secret");
    let (mut c, _) = Client::connect(edge.addr);
    assert_eq!(
        c.send_mail("alice@example.com", &["friend@elsewhere.test"], "Subject: via smarthost\r\n\r\nx").code,
        250
    );
    assert!(wait_until(Duration::from_secs(15), || smarthost.queued().len() == 1), "{:?}", edge.queue_list());
    let (envelope, message) = smarthost.queued()[0].parts();
    assert_eq!(envelope["client"]["auth_user"], "edge", "relayed as the authenticated user");
    assert!(envelope["client"]["tls"]["version"].as_str().is_some());
    assert!(String::from_utf8(message).unwrap().contains("with ESMTPSA id"));
    assert!(wait_until(Duration::from_secs(10), || edge.queued().is_empty()), "{:?}", edge.queue_list());
}

#[test]
fn refused_credentials_defer_instead_of_bouncing() {
    let smarthost = smarthost();
    let edge = edge(&smarthost, "wrong");
    let (mut c, _) = Client::connect(edge.addr);
    assert_eq!(c.send_mail("alice@example.com", &["friend@elsewhere.test"], "Subject: x\r\n\r\nx").code, 250);
    assert!(
        wait_until(Duration::from_secs(15), || {
            edge.queue_list()
                .first()
                .is_some_and(|m| m["last_error"].as_str().is_some_and(|e| e.contains("authentication")))
        }),
        "{:?}",
        edge.queue_list()
    );
    assert!(smarthost.queued().is_empty());
    assert_eq!(edge.queued().len(), 1, "still queued, waiting for a fixed password");
}
