//! End to end: the corpus in tests/corpus/ through a server running the whole example
//! chain (examples/sluice.toml) plus the JavaScript external-tagger, each message from
//! its own client address, with the fate `corpus.toml` expects: delivered to the sink
//! with the expected headers, quarantined in the queue, or refused at the expected stage
//! with the expected reply. Greylisted first tries are retried after the delay, as a
//! real MTA would.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::support::Client;
use crate::support::client::Reply;
use crate::support::dns::DnsServer;
use crate::support::plugins::{compile_cache, external_tagger_js, wasm};
use crate::support::server::Sluice;
use crate::support::sink::{Sink, SinkOptions};

const GREYLIST_DELAY: Duration = Duration::from_secs(2);

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// examples/sluice.toml with only what a test must change: addresses, paths, the DNS
/// server, the greylisting delay and a per-sender limit small enough to reach.
fn corpus_config(sink: &Sink, dns: &DnsServer) -> String {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/sluice.toml");
    let mut config: toml::Table = toml::from_str(&std::fs::read_to_string(example).unwrap()).unwrap();
    let table = |config: &mut toml::Table, key: &str| -> toml::Table {
        config.get(key).and_then(|v| v.as_table()).cloned().unwrap_or_default()
    };

    let mut server = table(&mut config, "server");
    let mut listener = toml::Table::new();
    listener.insert("address".into(), "127.0.0.1:0".into());
    listener.insert("proxy_protocol".into(), true.into());
    server.insert("listen".into(), toml::Value::Array(vec![listener.into()]));
    server.insert("proxy_networks".into(), toml::Value::Array(vec!["127.0.0.0/8".into()]));
    config.insert("server".into(), server.into());

    let mut queue = table(&mut config, "queue");
    queue.insert("path".into(), "queue".into());
    config.insert("queue".into(), queue.into());

    let mut dns_section = toml::Table::new();
    dns_section.insert("servers".into(), toml::Value::Array(vec![dns.addr.to_string().into()]));
    dns_section.insert("timeout".into(), "1s".into());
    dns_section.insert("attempts".into(), 1.into());
    config.insert("dns".into(), dns_section.into());

    let mut plugins = table(&mut config, "plugins");
    plugins.insert("cache_dir".into(), compile_cache().display().to_string().into());
    config.insert("plugins".into(), plugins.into());

    for route in config.get_mut("route").and_then(|r| r.as_array_mut()).unwrap() {
        let route = route.as_table_mut().unwrap();
        if route["name"].as_str() == Some("internal") {
            route.insert("next_hop".into(), sink.addr.to_string().into());
        }
    }

    let chain = config.get_mut("plugin").and_then(|p| p.as_array_mut()).unwrap();
    for plugin in chain.iter_mut() {
        let plugin = plugin.as_table_mut().unwrap();
        let file = plugin["path"].as_str().unwrap().rsplit('/').next().unwrap().trim_end_matches(".wasm").to_string();
        plugin.insert("path".into(), wasm(&file).display().to_string().into());
        let name = plugin["name"].as_str().unwrap().to_string();
        let settings = plugin.get_mut("config").and_then(|c| c.as_table_mut()).unwrap();
        match name.as_str() {
            "greylist" => {
                settings.insert("delay".into(), format!("{}s", GREYLIST_DELAY.as_secs()).into());
            }
            "rate-limit" => {
                let mut limit = toml::Table::new();
                limit.insert("count".into(), 3.into());
                limit.insert("window".into(), "1h".into());
                settings.insert("per_sender".into(), limit.into());
            }
            _ => {}
        }
    }
    // The example's commented-out JavaScript plugin, switched on.
    let tagger: toml::Table = toml::from_str(&format!(
        "name = \"external-tagger\"\npath = {:?}\ngrants = [\"config\", \"log\"]\non_error = \"continue\"\n\
         memory = \"32MB\"\n[config]\ninternal_domains = [\"example.com\", \"*.example.com\"]\n",
        external_tagger_js().display().to_string()
    ))
    .unwrap();
    chain.push(tagger.into());
    toml::to_string(&config).unwrap()
}

/// What one attempt to send a message came to.
#[derive(Debug)]
enum Outcome {
    Accepted,
    Greylisted,
    Refused { stage: &'static str, reply: Reply },
}

struct Message {
    id: String,
    spec: toml::Table,
    content: Vec<u8>,
}

impl Message {
    fn text(&self, key: &str) -> Option<&str> {
        self.spec.get(key).and_then(|v| v.as_str())
    }

    fn list(&self, key: &str) -> Option<Vec<String>> {
        self.spec.get(key)?.as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
    }
}

fn proxy_header(client: IpAddr) -> String {
    match client {
        IpAddr::V4(ip) => format!("PROXY TCP4 {ip} 127.0.0.1 40000 25\r\n"),
        IpAddr::V6(ip) => format!("PROXY TCP6 {ip} ::1 40000 25\r\n"),
    }
}

fn dot_stuffed(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 16);
    for line in content.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn attempt(sluice: &Sluice, message: &Message, helo: &str) -> Outcome {
    let client: IpAddr = message.text("client").unwrap().parse().unwrap();
    let mut c = Client::connect_silent(sluice.addr);
    c.send(proxy_header(client).as_bytes());
    let greeting = c.read_reply();
    if greeting.code != 220 {
        return Outcome::Refused { stage: "connect", reply: greeting };
    }
    let ehlo = c.cmd(&format!("EHLO {helo}"));
    if ehlo.code != 250 {
        return Outcome::Refused { stage: "helo", reply: ehlo };
    }
    let mail = c.cmd(&format!("MAIL FROM:<{}>", message.text("from").unwrap()));
    if mail.code != 250 {
        return Outcome::Refused { stage: "mail", reply: mail };
    }
    let mut refused = None;
    let mut accepted = 0;
    for rcpt in message.list("rcpt").unwrap() {
        let reply = c.cmd(&format!("RCPT TO:<{rcpt}>"));
        if reply.code == 250 {
            accepted += 1;
        } else if reply.code == 451 && reply.text.contains("Greylisted") {
            c.cmd("QUIT");
            return Outcome::Greylisted;
        } else {
            refused.get_or_insert(reply);
        }
    }
    if accepted == 0 {
        return Outcome::Refused { stage: "rcpt", reply: refused.unwrap() };
    }
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(&dot_stuffed(&message.content));
    c.send(b".\r\n");
    let end = c.read_reply();
    c.cmd("QUIT");
    if end.code == 250 { Outcome::Accepted } else { Outcome::Refused { stage: "data", reply: end } }
}

/// The header section of a message, unfolded, one field a line.
fn header_lines(content: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(content);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    head.replace("\r\n ", " ").replace("\r\n\t", " ").split("\r\n").map(str::to_string).collect()
}

fn corpus_id(content: &[u8]) -> Option<String> {
    header_lines(content).iter().find_map(|l| l.strip_prefix("X-Corpus-Id: ").map(str::to_string))
}

#[test]
fn corpus_through_the_whole_example_chain() {
    let sink = Sink::start(SinkOptions::default());
    let dns = DnsServer::from_records(&corpus_dir().join("dns-records.txt"));
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start_in(dir, &corpus_config(&sink, &dns));

    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(corpus_dir().join("corpus.toml")).unwrap()).unwrap();
    let default_helo = manifest["helo"].as_str().unwrap().to_string();
    let messages: Vec<Message> = manifest["message"]
        .as_array()
        .unwrap()
        .iter()
        .map(|spec| {
            let spec = spec.as_table().unwrap().clone();
            let file = spec["file"].as_str().unwrap();
            let content = std::fs::read(corpus_dir().join(file)).unwrap();
            let id = corpus_id(&content).unwrap_or_else(|| panic!("{file} has no X-Corpus-Id"));
            Message { id, spec, content }
        })
        .collect();
    assert!(messages.len() >= 20, "the corpus must have at least 20 messages");
    let helo = |m: &Message| m.text("helo").unwrap_or(&default_helo).to_string();

    // The first message opens its network's greylisting (and is expected to be
    // greylisted); the rest follow, then the greylisted ones are retried once.
    let mut outcomes: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut greylisted = BTreeSet::new();
    let mut retry = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let outcome = attempt(&sluice, message, &helo(message));
        if matches!(outcome, Outcome::Greylisted) {
            greylisted.insert(message.id.clone());
            if i == 0 {
                std::thread::sleep(GREYLIST_DELAY + Duration::from_millis(300));
                outcomes.insert(message.id.clone(), attempt(&sluice, message, &helo(message)));
            } else {
                retry.push(message);
            }
        } else {
            outcomes.insert(message.id.clone(), outcome);
        }
    }
    if !retry.is_empty() {
        std::thread::sleep(GREYLIST_DELAY + Duration::from_millis(300));
        for message in retry {
            outcomes.insert(message.id.clone(), attempt(&sluice, message, &helo(message)));
        }
    }

    let expected_deliveries = messages.iter().filter(|m| m.text("fate") == Some("delivered")).count();
    let delivered = sink.wait_for(expected_deliveries, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300)); // anything unexpected arrives too
    let delivered = if sink.accepted().len() > delivered.len() { sink.accepted() } else { delivered };
    let queued = sluice.queued();

    let mut problems = Vec::new();
    for message in &messages {
        let id = &message.id;
        let fate = message.text("fate").unwrap();
        let mut problem = |what: String| problems.push(format!("{} ({fate}): {what}", message.text("file").unwrap()));
        let outcome = &outcomes[id];
        let expect_greylisted = message.spec.get("greylisted").and_then(|v| v.as_bool()).unwrap_or(false);
        if greylisted.contains(id) != expect_greylisted {
            problem(format!("greylisted: {}, expected {expect_greylisted}", greylisted.contains(id)));
        }
        let copies: Vec<_> = delivered.iter().filter(|t| corpus_id(&t.content).as_deref() == Some(id)).collect();
        let held: Vec<_> = queued.iter().filter(|q| corpus_id(&q.message).as_deref() == Some(id)).collect();
        match fate {
            "delivered" | "quarantined" => {
                if !matches!(outcome, Outcome::Accepted) {
                    problem(format!("not accepted: {outcome:?}"));
                    continue;
                }
            }
            _ => match outcome {
                Outcome::Refused { stage, reply } => {
                    let line = format!("{} {}", reply.code, reply.text);
                    if Some(*stage) != message.text("stage") {
                        problem(format!("refused at {stage}, expected {:?}: {line}", message.text("stage")));
                    }
                    if !line.starts_with(message.text("reply").unwrap()) {
                        problem(format!("reply {line:?}, expected {:?}", message.text("reply").unwrap()));
                    }
                    let class = if fate == "rejected" { 5 } else { 4 };
                    if reply.code / 100 != class {
                        problem(format!("reply class {}, expected {class}xx", reply.code));
                    }
                }
                other => problem(format!("expected a refusal, got {other:?}")),
            },
        }
        if fate == "delivered" {
            if copies.len() != 1 {
                problem(format!("{} copies at the next hop", copies.len()));
                continue;
            }
            let copy = copies[0];
            let to = message.list("delivered_to").unwrap_or_else(|| message.list("rcpt").unwrap());
            let mut got = copy.recipients.clone();
            got.sort();
            if got != to {
                problem(format!("delivered to {got:?}, expected {to:?}"));
            }
            let from = message.text("delivered_from").or(message.text("from")).unwrap();
            if copy.sender != from {
                problem(format!("delivered from {:?}, expected {from:?}", copy.sender));
            }
            let headers = header_lines(&copy.content);
            for line in message.list("headers").unwrap_or_default() {
                if !headers.iter().any(|h| h == &line) {
                    problem(format!("header {line:?} missing; header section:\n  {}", headers.join("\n  ")));
                }
            }
            if !headers.iter().any(|h| h.starts_with("Received: from ") && h.contains("by relay.example.test")) {
                problem("no Received header of ours".into());
            }
        } else if !copies.is_empty() {
            problem(format!("{} copies reached the next hop", copies.len()));
        }
        if fate == "quarantined" {
            match held.as_slice() {
                [q] => {
                    let hold = &q.state["hold"];
                    let reason = hold["reason"].as_str().unwrap_or_default();
                    if hold["kind"] != "quarantined" || !reason.starts_with(message.text("reason").unwrap()) {
                        problem(format!("held as {hold}"));
                    }
                }
                other => problem(format!("{} copies in the queue", other.len())),
            }
        } else if fate != "delivered" && !held.is_empty() {
            problem("refused, yet queued".into());
        }
    }
    assert!(problems.is_empty(), "{} corpus messages went wrong:\n{}", problems.len(), problems.join("\n"));
    let stray: Vec<_> = delivered.iter().filter(|t| corpus_id(&t.content).is_none()).collect();
    assert!(stray.is_empty(), "unexpected deliveries: {stray:?}");
}
