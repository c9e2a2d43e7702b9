//! The sandbox's effects and quotas, against hostile plugins: a plugin's output may
//! only do what its grants allow (`recipients`, `route` with `next_hops`, `body`), kv
//! and DNS stop at the plugin's quota, and the offline runner enforces the same.

use std::time::Duration;

use crate::support::dns::DnsServer;
use crate::support::plugins::{testing, testing_granted, wasm};
use crate::support::sink::{Sink, SinkOptions};
use crate::support::{Client, Sluice};

const WAIT: Duration = Duration::from_secs(20);

fn header<'a>(content: &'a str, name: &str) -> Option<&'a str> {
    content.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
}

fn send(sluice: &Sluice, rcpts: &[&str]) -> u16 {
    let (mut c, _) = Client::connect(sluice.addr);
    c.send_mail("alice@example.org", rcpts, "Subject: sandbox\r\n\r\nHello.").code
}

/// A server with `sections` and a route to a sink; one message through it, and what
/// the sink received of it.
fn one_message(sections: &str) -> (Sluice, Sink, String) {
    let sink = Sink::start(SinkOptions::default());
    let sluice = Sluice::start(&format!("{}{sections}", sink.route("all", "\"*\"", "none")));
    assert_eq!(send(&sluice, &["bob@example.com"]), 250);
    let got = sink.wait_for(1, WAIT);
    assert_eq!(got.len(), 1, "{}", sluice.logs());
    let content = String::from_utf8_lossy(&got[0].content).into_owned();
    (sluice, sink, content)
}

#[test]
fn a_next_hop_not_listed_reaches_no_listener_and_no_name_server() {
    let attacker = Sink::start(SinkOptions::default());
    let name_server = DnsServer::start("");
    let legit = Sink::start(SinkOptions::default());
    let routes = format!("{}{}", legit.route("all", "\"*\"", "none"), name_server.config());

    // Granted `route`, but the hop is not in its next_hops: the call fails, and with
    // `continue` the message goes where the routes say.
    let exfil = testing_granted(
        "exfil",
        &["route"],
        "on_error = \"continue\"\nnext_hops = [\"10.0.0.7:25\"]",
        &format!("stage = \"data\"\naction = \"next-hop\"\nvalue = \"{}\"", attacker.addr),
    );
    let sluice = Sluice::start(&format!("{routes}{exfil}"));
    assert_eq!(send(&sluice, &["bob@example.com"]), 250);
    assert_eq!(legit.wait_for(1, WAIT).len(), 1, "{}", sluice.logs());
    assert!(sluice.wait_for_log("s next_hops", WAIT), "{}", sluice.logs());

    // Without `route`, a host name as the next hop: refused before anyone resolves it.
    let leak =
        testing("leak", "", "stage = \"data\"\naction = \"next-hop\"\nvalue = \"secret-label.attacker.test:25\"");
    let sluice = Sluice::start(&format!("{routes}{leak}"));
    assert_eq!(send(&sluice, &["bob@example.com"]), 451, "on_error = tempfail");
    assert!(sluice.wait_for_log("choosing a next hop needs the", WAIT), "{}", sluice.logs());
    assert!(sluice.logs().contains("invalid-output"), "{}", sluice.logs());

    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(attacker.connections.load(std::sync::atomic::Ordering::Relaxed), 0, "no connection to the attacker");
    assert_eq!(name_server.queries(), 0, "no lookup of the attacker's name");
    assert_eq!(legit.accepted().len(), 1);
}

#[test]
fn with_route_and_a_listed_next_hop_the_explicit_hop_works() {
    let routed = Sink::start(SinkOptions::default());
    let default = Sink::start(SinkOptions::default());
    let plugin = testing_granted(
        "router",
        &["route"],
        &format!("next_hops = [{{ host = \"{}\", tls = \"none\" }}]", routed.addr),
        &format!("stage = \"data\"\naction = \"next-hop\"\nvalue = \"{}\"", routed.addr),
    );
    let sluice = Sluice::start(&format!("{}{plugin}", default.route("all", "\"*\"", "none")));
    assert_eq!(send(&sluice, &["bob@example.com"]), 250);
    let got = routed.wait_for(1, WAIT);
    assert_eq!(got.len(), 1, "{}", sluice.logs());
    assert_eq!(got[0].recipients, ["bob@example.com"]);
    assert!(default.accepted().is_empty(), "the plugin's hop, not the route's");
}

#[test]
fn an_extra_recipient_without_the_grant_never_reaches_the_next_hop() {
    let sink = Sink::start(SinkOptions::default());
    let spy = |stage: &str, on_error: &str| {
        testing(
            &format!("spy-{stage}"),
            &format!("on_error = \"{on_error}\""),
            &format!("stage = \"{stage}\"\naction = \"add-recipient\"\nvalue = \"spy@attacker.example\""),
        )
    };
    let plugins =
        format!("{}{}{}", sink.route("all", "\"*\"", "none"), spy("rcpt-to", "continue"), spy("data", "continue"));
    let sluice = Sluice::start(&plugins);
    assert_eq!(send(&sluice, &["bob@example.com"]), 250);
    let got = sink.wait_for(1, WAIT);
    assert_eq!(got.len(), 1, "{}", sluice.logs());
    assert_eq!(got[0].recipients, ["bob@example.com"], "the spy is not among them");
    assert!(sluice.wait_for_log("adding recipients needs the", WAIT), "{}", sluice.logs());

    // Under the default policy the failure is the client's answer.
    let sluice = Sluice::start(&format!("{}{}", sink.route("all", "\"*\"", "none"), spy("data", "tempfail")));
    assert_eq!(send(&sluice, &["bob@example.com"]), 451);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.recipients(), ["bob@example.com"]);
}

#[test]
fn with_recipients_granted_aliases_still_work() {
    let sink = Sink::start(SinkOptions::default());
    let alias = testing_granted(
        "alias",
        &["recipients"],
        "",
        "stage = \"rcpt-to\"\naction = \"rewrite-recipient\"\nonly_for = \"sales\"\nvalue = \"team@example.com\"",
    );
    let sluice = Sluice::start(&format!("{}{alias}", sink.route("all", "\"*\"", "none")));
    assert_eq!(send(&sluice, &["sales@example.com", "bob@example.com"]), 250);
    let got = sink.wait_for(1, WAIT);
    assert_eq!(got.len(), 1, "{}", sluice.logs());
    assert_eq!(got[0].recipients, ["team@example.com", "bob@example.com"]);
}

/// A plugin filling its kv namespace, beside one counting messages in its own, with
/// this `[kv]` section; returns the server (for more checks).
fn kv_flood(kv: &str) -> Sluice {
    let sink = Sink::start(SinkOptions::default());
    // Ten keys: its call counter and nine 64 KiB values.
    let hog = testing("hog", "kv_max_keys = 10\non_error = \"continue\"", "action = \"kv-flood\"\nvalue = \"1000\"");
    let counter = testing("counter", "", "action = \"count\"\nvalue = \"messages\"");
    let sluice = Sluice::start(&format!("{kv}{}{hog}{counter}", sink.route("all", "\"*\"", "none")));
    for _ in 0..3 {
        assert_eq!(send(&sluice, &["bob@example.com"]), 250);
    }
    let got = sink.wait_for(3, WAIT);
    assert_eq!(got.len(), 3, "{}", sluice.logs());
    let mut contents: Vec<String> = got.iter().map(|t| String::from_utf8_lossy(&t.content).into_owned()).collect();
    // Delivered in any order: in the order of the calls, which the counter gives.
    contents.sort_by_key(|c| header(c, "X-Test-Count").and_then(|n| n.parse::<u32>().ok()));
    let floods: Vec<&str> = contents.iter().map(|c| header(c, "X-Test-Kv").unwrap_or("missing")).collect();
    assert!(floods[0].starts_with("9 1 Error::Invalid(\"kv quota exceeded"), "{floods:?}");
    assert!(floods[1].starts_with("0 2 Error::Invalid(\"kv quota exceeded"), "later calls write nothing: {floods:?}");
    let counts: Vec<&str> = contents.iter().map(|c| header(c, "X-Test-Count").unwrap_or("missing")).collect();
    assert_eq!(counts, ["1", "2", "3"], "the other plugin's kv keeps working");
    assert!(sluice.wait_for_log("plugin hit its quota", WAIT), "{}", sluice.logs());
    sluice
}

#[test]
fn kv_stops_at_its_quota_while_the_store_stays_usable_for_the_others() {
    let sluice = kv_flood("");
    let store = std::fs::metadata(sluice.queue_dir().join("kv.redb")).map(|m| m.len()).unwrap_or(0);
    assert!(store < 8 << 20, "the store did not grow past the quota: {store} bytes");
}

#[test]
fn the_kv_quota_holds_in_redis_too_and_a_new_node_counts_what_is_there() {
    let redis = crate::operations::start_redis();
    let kv = format!("[kv]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:{}/0\"\n", redis.1);
    drop(kv_flood(&kv));
    // A node that never wrote counts the namespace in Redis before its first write.
    let hog = testing("hog", "kv_max_keys = 10", "action = \"kv-flood\"\nvalue = \"1000\"");
    let (_, _, content) = one_message(&format!("{kv}{hog}"));
    let flood = header(&content, "X-Test-Kv").unwrap_or("missing");
    assert!(flood.starts_with("0 4 Error::Invalid(\"kv quota exceeded: 10 keys"), "{flood}");
}

#[test]
fn the_name_server_sees_at_most_the_lookups_a_call_may_make() {
    let name_server = DnsServer::start("");
    let flood = testing("flood", "dns_lookups = 5", "action = \"dns-flood\"\nvalue = \"100\"");
    let metrics = "[metrics]\nlisten = \"127.0.0.1:0\"\n";
    let (sluice, sink, content) = one_message(&format!("{metrics}{}{flood}", name_server.config()));
    let dns = header(&content, "X-Test-Dns").unwrap_or("missing");
    assert!(dns.starts_with("100 Error::Failed(\"at most 5 DNS lookups per call\")"), "{dns}");
    let first = name_server.queries();
    assert!((1..=5).contains(&first), "{first} queries for one call");
    assert_eq!(send(&sluice, &["bob@example.com"]), 250);
    assert_eq!(sink.wait_for(2, WAIT).len(), 2);
    assert!(name_server.queries() - first <= 5, "each call gets its own budget");
    let address = sluice.logged_address("metrics listening").expect("metrics address");
    let (_, metrics) = crate::operations::http_get(address, "/metrics");
    let hits = |quota: &str| {
        let labels = ["plugin=\"flood\"".to_string(), format!("quota=\"{quota}\"")];
        crate::operations::sample(&metrics, "sluice_plugin_quota_hits_total", &[&labels[0], &labels[1]])
    };
    assert_eq!(hits("dns"), Some(190.0), "95 refused lookups per call: {metrics}");
    assert_eq!(hits("kv"), Some(0.0), "registered at zero: {metrics}");
}

/// The offline runner: what the server would refuse, the runner reports.
#[test]
fn the_offline_runner_enforces_the_same_grants_and_quotas() {
    let dir = tempfile::tempdir().unwrap();
    let eml = dir.path().join("m.eml");
    std::fs::write(&eml, "Subject: hi\n\nBody.\n").unwrap();
    // The testing plugin imports these; the effects come on top.
    let grants = |effects: &[&'static str]| [&["--grant", "config", "log", "dns", "kv"][..], effects].concat();
    let run = |plugin_config: &str, flags: &[&str]| {
        let cfg = dir.path().join("plugin.toml");
        std::fs::write(&cfg, plugin_config).unwrap();
        let out = std::process::Command::new(crate::support::server::BIN)
            .args(["plugin", "test"])
            .arg(wasm("testing"))
            .arg("--message")
            .arg(&eml)
            .args(["--from", "alice@example.org", "--rcpt", "bob@example.com", "--json", "--plugin-config"])
            .arg(&cfg)
            .args(flags)
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        report
    };
    let spy = "stage = \"rcpt-to\"\naction = \"add-recipient\"\nvalue = \"spy@attacker.example\"\n";
    let report = run(spy, &grants(&[]));
    assert_eq!(report["fate"], "tempfailed", "{report:#}");
    assert!(report.to_string().contains(r#"needs the \"recipients\" grant"#), "{report:#}");
    let report = run(spy, &grants(&["recipients"]));
    assert_eq!(report["fate"], "accepted", "{report:#}");
    assert_eq!(report["recipients_after"], serde_json::json!(["bob@example.com", "spy@attacker.example"]));

    let hop = "stage = \"data\"\naction = \"next-hop\"\nvalue = \"mx.partner.example:2525\"\n";
    let report = run(hop, &grants(&["route"]));
    assert_eq!(report["fate"], "tempfailed", "not in next_hops: {report:#}");
    let report = run(hop, &grants(&["route", "--next-hop", "mx.partner.example:2525"]));
    assert_eq!(report["fate"], "accepted", "{report:#}");

    let flood = "stage = \"data\"\naction = \"kv-flood\"\nvalue = \"100\"\n";
    let report = run(flood, &grants(&["--kv-max-keys", "4"]));
    assert!(report["headers_added"].to_string().contains("X-Test-Kv: 3 1 Error::Invalid"), "{report:#}");
}

#[test]
fn check_config_lists_what_each_plugin_may_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    let check = |plugins: &str| {
        std::fs::write(&path, crate::support::server::base_config(plugins)).unwrap();
        let out =
            std::process::Command::new(crate::support::server::BIN).arg("check-config").arg(&path).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let router = testing_granted(
        "router",
        &["route", "recipients"],
        "next_hops = [{ host = \"10.0.0.7:25\", tls = \"required\" }]\nkv_max_keys = 50",
        "",
    );
    let (ok, stdout, stderr) = check(&format!("{router}{}", testing("plain", "", "")));
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(
            "; grants config, log, dns, kv, route, recipients; next_hops 10.0.0.7:25 (tls required); \
             quotas kv 50 keys, 67108864 bytes; dns 20 lookups per call"
        ),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("plugin \"plain\": ") && l.contains("; grants config, log, dns, kv; quotas")),
        "{stdout}"
    );

    let (ok, _, stderr) = check(&testing("sneaky", "next_hops = [\"10.0.0.7:25\"]", ""));
    assert!(!ok);
    assert!(stderr.contains("lists next_hops but is not granted \"route\""), "{stderr}");
}

#[test]
fn a_listed_name_reaches_a_private_address_only_when_that_address_is_listed_too() {
    let sink = Sink::start(SinkOptions::default());
    let name_server = DnsServer::start("inside.partner.test A 127.0.0.1\n");
    let hop = format!("inside.partner.test:{}", sink.addr.port());
    let router = |hops: String| {
        testing_granted(
            "router",
            &["route"],
            &format!("next_hops = [{{ host = \"{hop}\", tls = \"none\" }}{hops}]"),
            &format!("stage = \"data\"\naction = \"next-hop\"\nvalue = \"{hop}\""),
        )
    };
    let sluice = Sluice::start(&format!("{}{}", name_server.config(), router(String::new())));
    assert_eq!(send(&sluice, &["bob@example.com"]), 250);
    assert!(sluice.wait_for_log("only private addresses", WAIT), "{}", sluice.logs());
    assert_eq!(sink.connections.load(std::sync::atomic::Ordering::Relaxed), 0, "no connection to 127.0.0.1");
    assert!(name_server.queries() >= 1, "a listed name may be looked up");

    let sluice = Sluice::start(&format!("{}{}", name_server.config(), router(format!(", \"{}\"", sink.addr))));
    assert_eq!(send(&sluice, &["bob@example.com"]), 250);
    assert_eq!(sink.wait_for(1, WAIT).len(), 1, "{}", sluice.logs());
}

#[test]
fn a_new_body_needs_the_body_grant() {
    let replace = "stage = \"data\"\naction = \"replace-body\"\nvalue = \"[replaced]\"";
    let (sluice, _, content) = one_message(&testing("rewriter", "on_error = \"continue\"", replace));
    assert!(content.ends_with("\r\n\r\nHello.\r\n"), "the body as sent: {content}");
    assert!(sluice.wait_for_log("replacing the body needs the", WAIT), "{}", sluice.logs());
    let (_, _, content) = one_message(&testing_granted("rewriter", &["body"], "", replace));
    assert!(content.ends_with("\r\n\r\n[replaced]\r\n"), "{content}");
}
