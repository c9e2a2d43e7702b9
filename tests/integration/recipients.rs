//! Recipient verification at RCPT (`[route.recipients]`) against a real Postfix as the
//! mail server behind Sluice: callouts, the answer cache, an unreachable mail server,
//! directory-harvest attacks, the list file and its reload, and what plugins see.

use std::time::Duration;

use crate::support::postfix::Postfix;
use crate::support::{Client, Sluice};

const MAILBOXES: &[&str] = &["alice@example.com", "bob@example.com"];

/// Loopback clients are trusted by default (they relay out, unverified): these tests
/// are the outside world.
const UNTRUSTED: &str = "[relay]\ndomains = [\"example.com\"]\nnetworks = []\n\n";

/// A route to `postfix` for example.com, verifying recipients as `recipients` says.
fn route(postfix: &Postfix, recipients: &str) -> String {
    format!(
        "{UNTRUSTED}[[route]]\nname = \"mailstore\"\ndomains = [\"example.com\"]\nnext_hop = \"{}\"\ntls = \"none\"\n\
         [route.recipients]\n{recipients}\n",
        postfix.addr
    )
}

fn greeted(sluice: &Sluice) -> Client {
    let (mut client, greeting) = Client::connect(sluice.addr);
    assert_eq!(greeting.code, 220);
    assert_eq!(client.cmd("EHLO client.example").code, 250);
    assert_eq!(client.cmd("MAIL FROM:<sender@example.org>").code, 250);
    client
}

fn rcpt(sluice: &Sluice, address: &str) -> crate::support::client::Reply {
    let mut client = greeted(sluice);
    let reply = client.cmd(&format!("RCPT TO:<{address}>"));
    client.cmd("QUIT");
    reply
}

/// Postfix's log lines rejecting a RCPT for `address`.
fn postfix_rejects(postfix: &Postfix, address: &str, at_least: usize) -> usize {
    postfix.log_lines(&["reject: RCPT", &format!("<{address}>")], at_least).len()
}

#[test]
fn callout_accepts_known_refuses_unknown_with_5_1_1_and_queues_nothing() {
    let postfix = Postfix::start(&["example.com"], MAILBOXES);
    let sluice = Sluice::start(&route(&postfix, "verify = \"callout\""));

    let mut client = greeted(&sluice);
    let known = client.cmd("RCPT TO:<alice@example.com>");
    assert_eq!((known.code, known.status()), (250, "2.1.5"), "{known:?}");
    let unknown = client.cmd("RCPT TO:<nobody@example.com>");
    assert_eq!((unknown.code, unknown.status()), (550, "5.1.1"), "{unknown:?}");
    assert!(unknown.text.contains("User unknown"), "the mail server's words reach the client: {unknown:?}");
    assert!(unknown.text.contains("nobody@example.com"), "{unknown:?}");
    client.cmd("RSET");

    // A transaction whose only recipient is unknown never gets to DATA.
    assert_eq!(client.cmd("MAIL FROM:<sender@example.org>").code, 250);
    assert_eq!(client.cmd("RCPT TO:<nobody@example.com>").code, 550);
    let data = client.cmd("DATA");
    assert!(data.code >= 500, "{data:?}");
    client.cmd("QUIT");
    assert!(sluice.queue_list().is_empty(), "nothing was queued for an unknown recipient");
    assert_eq!(postfix_rejects(&postfix, "nobody@example.com", 1), 1, "{}", postfix.maillog());
}

#[test]
fn a_second_probe_is_answered_from_the_cache() {
    let mut postfix = Postfix::start(&["example.com"], MAILBOXES);
    let sluice = Sluice::start(&route(&postfix, "verify = \"callout\"\ncache_valid = \"1h\"\ncache_unknown = \"1h\""));
    for _ in 0..3 {
        assert_eq!(rcpt(&sluice, "nobody@example.com").code, 550);
        assert_eq!(rcpt(&sluice, "alice@example.com").code, 250);
    }
    // Postfix was asked once: one rejected RCPT in its log, not three.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(postfix_rejects(&postfix, "nobody@example.com", 1), 1, "{}", postfix.maillog());

    // With the mail server gone, both cached answers still hold; a new address cannot be asked.
    postfix.stop();
    let cached_no = rcpt(&sluice, "nobody@example.com");
    assert_eq!((cached_no.code, cached_no.status()), (550, "5.1.1"), "{cached_no:?}");
    assert!(cached_no.text.contains("User unknown"), "the cache keeps the server's words: {cached_no:?}");
    assert_eq!(rcpt(&sluice, "alice@example.com").code, 250);
    let unasked = rcpt(&sluice, "bob@example.com");
    assert_eq!((unasked.code, unasked.status()), (451, "4.4.3"), "{unasked:?}");
}

#[test]
fn an_unreachable_mail_server_tempfails_or_accepts_as_configured() {
    let mut postfix = Postfix::start(&["example.com"], MAILBOXES);
    postfix.stop();
    let tempfail =
        Sluice::start(&route(&postfix, "verify = \"callout\"\non_unavailable = \"tempfail\"\ntimeout = \"3s\""));
    let reply = rcpt(&tempfail, "alice@example.com");
    assert_eq!((reply.code, reply.status()), (451, "4.4.3"), "{reply:?}");

    let accept = Sluice::start(&route(&postfix, "verify = \"callout\"\non_unavailable = \"accept\"\ntimeout = \"3s\""));
    let reply = rcpt(&accept, "anyone@example.com");
    assert_eq!(reply.code, 250, "{reply:?}");

    // Not cached: once the server is back, the same address gets a real answer.
    postfix.start_again();
    assert_eq!(rcpt(&tempfail, "alice@example.com").code, 250);
    assert_eq!(rcpt(&accept, "anyone@example.com").code, 550);
}

#[test]
fn a_directory_harvest_is_cut_off_and_callouts_stay_within_the_pool() {
    let postfix = Postfix::start(&["example.com"], MAILBOXES);
    let sluice = Sluice::start(&format!(
        "{}[limits]\nmax_errors = 10\n",
        route(&postfix, "verify = \"callout\"\nconnections = 2")
    ));

    // One client guessing 200 addresses is cut after max_errors refusals.
    let mut client = greeted(&sluice);
    let (mut refused, mut closed) = (0, false);
    for guess in 0..200 {
        let reply = client.cmd(&format!("RCPT TO:<guess{guess}@example.com>"));
        match reply.code {
            550 => {
                assert_eq!(reply.status(), "5.1.1", "{reply:?}");
                refused += 1;
            }
            421 => {
                closed = true;
                break;
            }
            other => panic!("RCPT {guess}: unexpected {other}: {reply:?}"),
        }
    }
    assert!(closed, "the session was not cut off");
    assert!(refused < 10 + 1, "{refused} guesses answered before the cut");
    assert!(client.is_closed());

    // Eight harvesters at once share the route's two callout connections.
    let harvesters: Vec<_> = (0..8)
        .map(|h| {
            let addr = sluice.addr;
            std::thread::spawn(move || {
                let (mut client, _) = Client::connect(addr);
                client.cmd("EHLO client.example");
                client.cmd("MAIL FROM:<sender@example.org>");
                let mut answered = 0;
                for guess in 0..25 {
                    match client.cmd(&format!("RCPT TO:<h{h}-{guess}@example.com>")).code {
                        550 => answered += 1,
                        _ => break,
                    }
                }
                answered
            })
        })
        .collect();
    for harvester in harvesters {
        assert!(harvester.join().unwrap() <= 10);
    }
    let rejected = postfix.log_lines(&["reject: RCPT"], 9 * 9).len();
    assert!(rejected >= 9 * 9, "the probes reached Postfix: {rejected}");
    // Less the helper's own readiness probes, which connect and leave.
    let probes = postfix.log_lines(&["lost connection after CONNECT"], 0).len();
    let connections =
        postfix.log_lines(&["connect from"], 1).iter().filter(|l| !l.contains("disconnect")).count() - probes;
    assert!(
        (1..=2).contains(&connections),
        "{connections} callout connections for a pool of 2:\n{}",
        postfix.maillog()
    );
}

#[test]
fn the_list_knows_addresses_catch_alls_and_a_reload_removes_an_address() {
    let sluice_dir = tempfile::tempdir().unwrap();
    let list = sluice_dir.path().join("recipients.txt");
    std::fs::write(&list, "# mailboxes\nalice@example.com\n@sales.example.com   # the sales team's catch-all\n")
        .unwrap();
    let config = crate::support::server::base_config(
        "[relay]\ndomains = [\"example.com\", \"sales.example.com\"]\nnetworks = []\n\
         [[route]]\nname = \"mailstore\"\ndomains = [\"example.com\", \"sales.example.com\"]\nnext_hop = \"127.0.0.1:9\"\n\
         [route.recipients]\nverify = \"list\"\nlist = \"recipients.txt\"\n",
    );
    let sluice = Sluice::start_in(sluice_dir, &config);
    assert_eq!(rcpt(&sluice, "alice@example.com").code, 250);
    assert_eq!(rcpt(&sluice, "alice@EXAMPLE.Com").code, 250, "domains compare without case");
    assert_eq!(rcpt(&sluice, "anyone@sales.example.com").code, 250, "catch-all");
    assert_eq!(rcpt(&sluice, "anyone@Sales.Example.COM").code, 250);
    let unknown = rcpt(&sluice, "bob@example.com");
    assert_eq!((unknown.code, unknown.status()), (550, "5.1.1"), "{unknown:?}");

    std::fs::write(&list, "@sales.example.com\n").unwrap();
    let config_path = sluice.config_path.to_str().unwrap();
    let (code, out, err) = sluice.cli(&["reload", "--config", config_path]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(rcpt(&sluice, "alice@example.com").code, 550, "removed by the reload");
    assert_eq!(rcpt(&sluice, "anyone@sales.example.com").code, 250);

    // A malformed line: the reload is refused naming FILE:LINE, the running list stays.
    std::fs::write(&list, "@sales.example.com\nnot an address\n").unwrap();
    let (code, _, err) = sluice.cli(&["reload", "--config", config_path]);
    assert_ne!(code, 0);
    assert!(err.contains("recipients.txt:2:"), "{err}");
    let (code, _, err) = sluice.cli(&["check-config", config_path]);
    assert_ne!(code, 0);
    assert!(err.contains("recipients.txt:2:"), "{err}");
    assert_eq!(rcpt(&sluice, "anyone@sales.example.com").code, 250);
}

#[test]
fn trusted_clients_relaying_out_are_not_verified() {
    let mut postfix = Postfix::start(&["example.com"], MAILBOXES);
    postfix.stop();
    let config = route(&postfix, "verify = \"callout\"").replace("networks = []", "networks = [\"127.0.0.0/8\"]");
    let sluice = Sluice::start(&config);
    assert_eq!(rcpt(&sluice, "whoever@example.com").code, 250);
}

#[test]
fn plugins_see_the_outcome_and_the_message_reaches_the_mailbox() {
    let postfix = Postfix::start(&["example.com"], MAILBOXES);
    let plugin = crate::support::plugins::testing("inspector", "", "stage = \"data\"\naction = \"inspect\"\n");
    let sluice = Sluice::start(&format!("{plugin}\n{}", route(&postfix, "verify = \"callout\"")));
    let (mut client, _) = Client::connect(sluice.addr);
    let reply = client.send_mail("sender@example.org", &["alice@example.com"], "Subject: hi\r\n\r\nHello.");
    assert_eq!(reply.code, 250, "{reply:?}");
    client.cmd("QUIT");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while postfix.delivered("alice@example.com").is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let delivered = postfix.delivered("alice@example.com");
    assert_eq!(delivered.len(), 1, "{}", postfix.maillog());
    assert!(delivered[0].contains("X-Test-Tags: recipient-verify:valid"), "{}", delivered[0]);
}

#[test]
fn the_cli_says_where_the_answer_came_from() {
    let postfix = Postfix::start(&["example.com"], MAILBOXES);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, crate::support::server::base_config(&route(&postfix, "verify = \"callout\""))).unwrap();
    std::fs::create_dir_all(dir.path().join("queue")).unwrap();
    let check = |address: &str| {
        let out = std::process::Command::new(crate::support::server::BIN)
            .args(["recipients", "check", address, "--config"])
            .arg(&config)
            .output()
            .unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, out) = check("alice@example.com");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("alice@example.com: valid (route mailstore, from callout)"), "{out}");
    assert!(out.contains("mail server said: 250"), "{out}");
    let (code, out) = check("nobody@example.com");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("unknown (route mailstore, from callout)"), "{out}");
    assert!(out.contains("550 5.1.1") && out.contains("User unknown"), "{out}");
    // The answer was kept in the store the server uses.
    let (code, out) = check("nobody@example.com");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("from cache"), "{out}");
    let (code, out) = check("someone@example.org");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("not verified"), "{out}");
}

#[test]
fn the_offline_runner_can_be_given_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let eml = dir.path().join("m.eml");
    std::fs::write(&eml, "From: a@example.org\nSubject: hi\n\nBody.\n").unwrap();
    let cfg = dir.path().join("plugin.toml");
    std::fs::write(&cfg, "stage = \"data\"\naction = \"inspect\"\n").unwrap();
    let out = std::process::Command::new(crate::support::server::BIN)
        .args(["plugin", "test"])
        .arg(crate::support::plugins::wasm("testing"))
        .arg("--message")
        .arg(&eml)
        .args(["--from", "a@example.org", "--rcpt", "bob@example.com", "--recipient-verified", "unavailable", "--json"])
        .arg("--plugin-config")
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(report["tags"][0], "recipient-verify:unavailable", "{text}");
    assert!(text.contains("recipient-verify:unavailable"), "{text}");
}
