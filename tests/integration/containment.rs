//! The penalty box: a client whose calls keep making a plugin fail loses that plugin at
//! that stage (its calls get the `on_error` reply at once) for a cool-down, while clients of other
//! networks keep it, and a plugin failing now and then for everyone boxes nobody.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::operations::{http_get, sample};
use crate::support::plugins::testing;
use crate::support::{Client, Sluice};

const METRICS: &str = "[metrics]\nlisten = \"127.0.0.1:0\"\n";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Counters of plugin `plugin`: penalties, short-circuited calls, trap failures.
fn counters(sluice: &Sluice, plugin: &str) -> (f64, f64, f64) {
    let address = sluice.logged_address("metrics listening").expect("metrics address");
    let (_, metrics) = http_get(address, "/metrics");
    let label = format!("plugin=\"{plugin}\"");
    let get = |name: &str, extra: &[&str]| {
        let labels: Vec<&str> = [&[label.as_str()][..], extra].concat();
        sample(&metrics, name, &labels).unwrap_or_else(|| panic!("{name} not in {metrics}"))
    };
    (
        get("sluice_plugin_penalties_total", &[]),
        get("sluice_plugin_short_circuited_total", &[]),
        get("sluice_plugin_failures_total", &["kind=\"trap\""]),
    )
}

/// One transaction from `source`: the replies to RCPT for each recipient, then to the
/// end of DATA (0 when no recipient was taken).
fn transaction(addr: SocketAddr, source: &str, sender: &str, recipients: &[String]) -> (Vec<u16>, u16) {
    let (mut c, greeting) = Client::connect_from(addr, ip(source));
    assert_eq!(greeting.code, 220, "{source}: {greeting:?}");
    assert_eq!(c.cmd("EHLO client.example").code, 250);
    assert_eq!(c.cmd(&format!("MAIL FROM:<{sender}>")).code, 250);
    let rcpt: Vec<u16> = recipients.iter().map(|r| c.cmd(&format!("RCPT TO:<{r}>")).code).collect();
    let data = if rcpt.contains(&250) {
        assert_eq!(c.cmd("DATA").code, 354);
        c.send(b"Subject: t\r\n\r\nhello\r\n.\r\n");
        c.read_reply().code
    } else {
        0
    };
    c.cmd("QUIT");
    (rcpt, data)
}

#[test]
fn a_client_that_keeps_making_a_plugin_fail_is_boxed_and_other_networks_are_not() {
    let plugin = testing("trapper", "", "stage = \"rcpt-to\"\naction = \"trap\"\nonly_for = \"hostile\"");
    // Each failure counts whole (no success forgives it): three hostile transactions.
    let settings = "[plugins.penalty_box]\nthreshold = 3\nforgive_after = 1000\n";
    let sluice = Sluice::start(&format!("{METRICS}{settings}{plugin}"));
    let addr = sluice.addr;
    let hostile = ["hostile@example.com".to_string()];
    for _ in 0..3 {
        assert_eq!(transaction(addr, "127.0.2.1", "hostile@example.org", &hostile), (vec![451], 0));
    }
    assert!(sluice.wait_for_log("client entered the penalty box", Duration::from_secs(5)), "{}", sluice.logs());
    assert!(sluice.logs().contains("127.0.2.0/24"), "the log names the network: {}", sluice.logs());
    assert_eq!(counters(&sluice, "trapper"), (1.0, 0.0, 3.0));

    // Another address of the boxed /24: the plugin is not called at that stage, its
    // on_error reply (tempfail) is given at once; the stages where it did not fail
    // still run it.
    assert_eq!(transaction(addr, "127.0.2.77", "hostile@example.org", &hostile), (vec![451], 0));
    assert_eq!(counters(&sluice, "trapper"), (1.0, 1.0, 3.0), "short-circuited, not failed");

    // A well-behaved client of another network keeps the plugin.
    for n in 0..10 {
        let recipients = [format!("bob{n}@example.com")];
        assert_eq!(transaction(addr, "127.0.1.1", "alice@example.org", &recipients), (vec![250], 250), "{n}");
    }
    assert_eq!(counters(&sluice, "trapper"), (1.0, 1.0, 3.0), "none of its calls short-circuited");
    assert_eq!(sluice.queued().len(), 10);
}

#[test]
fn a_plugin_failing_one_call_in_a_hundred_for_every_client_boxes_nobody() {
    let plugin = testing("flaky", "", "stage = \"rcpt-to\"\naction = \"trap\"\nonly_for = \"flaky\"");
    let sluice = Sluice::start(&format!("{METRICS}{plugin}"));
    let mut calls = 0;
    // Six failures per client: more than the default threshold of five, were successes
    // not forgiving them.
    for round in 0..12 {
        for source in ["127.0.1.1", "127.0.3.1"] {
            let recipients: Vec<String> = (calls..calls + 50)
                .map(|n| if n % 100 == 99 { format!("flaky{n}@example.com") } else { format!("r{n}@example.com") })
                .collect();
            let (rcpt, data) = transaction(sluice.addr, source, "alice@example.org", &recipients);
            let expected: Vec<u16> =
                recipients.iter().map(|r| if r.starts_with("flaky") { 451 } else { 250 }).collect();
            assert_eq!((rcpt, data), (expected, 250), "round {round} from {source}");
        }
        calls += 50;
    }
    assert_eq!(counters(&sluice, "flaky"), (0.0, 0.0, 12.0));
    assert!(!sluice.logs().contains("penalty box"), "{}", sluice.logs());
}

/// 1,000 header changes of 10 KB each: refused after the first megabyte copied out of
/// the guest, before the list is lifted whole (the check of its contents, "at most 100
/// header changes", never runs).
#[test]
fn oversized_output_is_refused_before_it_is_lifted() {
    let plugin = testing("huge", "", "stage = \"data\"\naction = \"huge-headers\"");
    let sluice = Sluice::start(&format!("{METRICS}{plugin}"));
    let (mut c, _) = Client::connect(sluice.addr);
    let reply = c.send_mail("alice@example.org", &["bob@example.com"], "Subject: t\r\n\r\nhello");
    assert_eq!((reply.code, reply.status()), (451, "4.3.0"), "{reply:?}");
    assert!(sluice.wait_for_log("plugin failed", Duration::from_secs(5)), "{}", sluice.logs());
    let logs = sluice.logs();
    assert!(logs.contains("more than 1048576 bytes of output (refused while it was copied)"), "{logs}");
    assert!(logs.contains("invalid-output"), "{logs}");
    assert!(!logs.contains("header changes"), "the list was lifted: {logs}");
    assert!(sluice.queued().is_empty());
}
