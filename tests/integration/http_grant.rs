//! The `http` grant: a plugin reaches the origins its `http.allow` lists and nothing
//! else (no unlisted host or port, no listed name leading inside the network, no
//! redirect target), each request is cut at its timeout and its response at
//! `max_response`, every request is counted, and a plugin importing `wasi:http`
//! without the grant is refused at load.

use std::time::Duration;

use crate::support::dns::DnsServer;
use crate::support::http_listener::{HttpListener, Reply};
use crate::support::plugins::wasm;
use crate::support::sink::{Sink, SinkOptions};
use crate::support::{Client, Sluice};

const WAIT: Duration = Duration::from_secs(20);
const METRICS: &str = "[metrics]\nlisten = \"127.0.0.1:0\"\n";

/// A `[[plugin]]` entry for the probe: `http` is the inline table, `url` what it asks for.
fn probe(name: &str, http: &str, url: &str) -> String {
    format!(
        "[[plugin]]\nname = \"{name}\"\npath = \"{}\"\ngrants = [\"config\", \"http\"]\nhttp = {http}\n[plugin.config]\nurl = \"{url}\"\nheader = \"X-{name}\"\n",
        wasm("http_probe").display()
    )
}

/// Sends one message through a server with these sections; the delivered content.
fn one_message(sections: &str) -> (Sluice, String) {
    let sink = Sink::start(SinkOptions::default());
    let sluice = Sluice::start(&format!("{METRICS}{}{sections}", sink.route("all", "\"*\"", "none")));
    let (mut client, _) = Client::connect(sluice.addr);
    let reply = client.send_mail("alice@example.org", &["bob@example.com"], "Subject: http\r\n\r\nHello.");
    assert_eq!(reply.code, 250, "{}", sluice.logs());
    let got = sink.wait_for(1, WAIT);
    assert_eq!(got.len(), 1, "{}", sluice.logs());
    (sluice, String::from_utf8_lossy(&got[0].content).into_owned())
}

fn header<'a>(content: &'a str, name: &str) -> &'a str {
    content.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(": ")).unwrap_or("missing")
}

fn requests(sluice: &Sluice, plugin: &str, result: &str) -> Option<f64> {
    let address = sluice.logged_address("metrics listening").expect("metrics address");
    let (_, metrics) = crate::operations::http_get(address, "/metrics");
    let labels = [format!("plugin=\"{plugin}\""), format!("result=\"{result}\"")];
    crate::operations::sample(&metrics, "sluice_plugin_http_requests_total", &[&labels[0], &labels[1]])
}

#[test]
fn a_listed_origin_answers_and_the_request_is_counted() {
    let service = HttpListener::start(Reply::Body("hello"));
    let origin = service.origin();
    let entry = probe("ok", &format!("{{ allow = [\"{origin}\"] }}"), &format!("{origin}/check?x=1"));
    let (sluice, content) = one_message(&entry);
    assert_eq!(header(&content, "X-ok"), "status=200 bytes=5 body=hello", "{}", sluice.logs());
    assert_eq!(service.accepted(), 1);
    assert_eq!(requests(&sluice, "ok", "ok"), Some(1.0));
    for result in ["denied", "timeout", "too_large", "error"] {
        assert_eq!(requests(&sluice, "ok", result), Some(0.0), "{result} registered at zero");
    }
}

#[test]
fn requests_outside_the_allow_list_reach_no_listener() {
    let target = HttpListener::start(Reply::Body("secret"));
    let named = HttpListener::start(Reply::Body("named"));
    let redirector = HttpListener::start(Reply::Redirect(format!("{}/", target.origin())));
    let (port, named_port) = (target.addr.port(), named.addr.port());
    let dns = DnsServer::start("svc.test A 127.0.0.1\nmeta.test A 169.254.169.254\nboth.test A 127.0.0.1\n");
    let target_url = format!("{}/", target.origin());
    let plugins = [
        probe("host", &format!("{{ allow = [\"http://127.0.0.3:{port}\"] }}"), &target_url),
        probe("port", &format!("{{ allow = [\"http://127.0.0.1:{}\"] }}", port ^ 1), &target_url),
        probe("scheme", &format!("{{ allow = [\"https://127.0.0.1:{port}\"] }}"), &target_url),
        probe("loopback", &format!("{{ allow = [\"http://svc.test:{port}\"] }}"), &format!("http://svc.test:{port}/")),
        probe(
            "metadata",
            &format!("{{ allow = [\"http://meta.test:{port}\"] }}"),
            &format!("http://meta.test:{port}/"),
        ),
        probe(
            "redirect",
            &format!("{{ allow = [\"{}\"] }}", redirector.origin()),
            &format!("{}/", redirector.origin()),
        ),
        // A name leading to loopback passes when that address is listed too.
        probe(
            "listed",
            &format!("{{ allow = [\"http://both.test:{named_port}\", \"http://127.0.0.1:{named_port}\"] }}"),
            &format!("http://both.test:{named_port}/"),
        ),
    ];
    let (sluice, content) = one_message(&format!("{}{}", dns.config(), plugins.concat()));
    for plugin in ["host", "port", "scheme", "loopback", "metadata"] {
        assert_eq!(header(&content, &format!("X-{plugin}")), "error=HttpRequestDenied", "{plugin}: {content}");
        assert_eq!(requests(&sluice, plugin, "denied"), Some(1.0), "{plugin}");
    }
    assert_eq!(header(&content, "X-redirect"), "status=302 bytes=0 body=", "not followed");
    assert_eq!(header(&content, "X-listed"), "status=200 bytes=5 body=named");
    assert_eq!(target.accepted(), 0, "nothing reached the unlisted target");
    assert_eq!((redirector.accepted(), named.accepted()), (1, 1));
}

#[test]
fn a_slow_server_is_cut_at_the_timeout_and_a_large_response_at_max_response() {
    let slow = HttpListener::start(Reply::Slow(Duration::from_secs(4), "late"));
    let sized = HttpListener::start(Reply::Sized(2_000_000));
    let chunked = HttpListener::start(Reply::Chunked(2_000_000));
    let fits = HttpListener::start(Reply::Sized(100_000));
    let limits = |listener: &HttpListener| {
        format!("{{ allow = [\"{}\"], timeout = \"500ms\", max_response = \"100KB\" }}", listener.origin())
    };
    let url = |listener: &HttpListener| format!("{}/", listener.origin());
    let plugins = [
        probe("slow", &limits(&slow), &url(&slow)),
        probe("sized", &limits(&sized), &url(&sized)),
        probe("chunked", &limits(&chunked), &url(&chunked)),
        probe("fits", &limits(&fits), &url(&fits)),
    ];
    let started = std::time::Instant::now();
    let (sluice, content) = one_message(&plugins.concat());
    assert!(started.elapsed() < Duration::from_secs(4), "the slow reply was not waited for");
    assert_eq!(header(&content, "X-slow"), "error=HttpResponseTimeout");
    assert_eq!(requests(&sluice, "slow", "timeout"), Some(1.0));
    // Over max_response by its Content-Length: refused with the response; while
    // streaming: the read that crosses it fails.
    assert_eq!(header(&content, "X-sized"), "error=HttpResponseBodySize");
    let chunked = header(&content, "X-chunked");
    assert!(chunked.starts_with("error=") && chunked.contains("body size"), "{chunked}");
    for plugin in ["sized", "chunked"] {
        assert_eq!(requests(&sluice, plugin, "too_large"), Some(1.0), "{plugin}");
    }
    assert!(header(&content, "X-fits").starts_with("status=200 bytes=100000"), "{content}");
}

#[test]
fn http_without_the_grant_is_refused_at_load_and_in_the_config() {
    let probe_path = wasm("http_probe");
    let path = probe_path.to_str().unwrap();
    let entry = |grants: &str, http: &str| {
        let mut text = crate::plugins::plugin_entry("nosy", path, grants);
        text.push_str(http);
        text
    };
    let cases = [
        (entry("[\"config\"]", ""), "plugin \"nosy\": imports wasi:http/"),
        (entry("[\"config\"]", ""), "but is not granted \"http\""),
        (
            entry("[\"config\"]", "http = { allow = [\"http://127.0.0.1:8080\"] }\n"),
            "FILE:15:8: plugin \"nosy\" has an http table but is not granted \"http\"",
        ),
        (entry("[\"config\", \"http\"]", ""), "FILE:14:21: plugin \"nosy\" is granted \"http\" but has no http"),
        (entry("[\"config\", \"http\"]", "http = { allow = [] }\n"), "plugin \"nosy\": http.allow lists no origin"),
        (
            entry("[\"config\", \"http\"]", "http = { allow = [\"https://policy.example.net/v1\"] }\n"),
            "no path, query or fragment",
        ),
    ];
    for (text, expected) in cases {
        let (code, stderr) = crate::plugins::check_config(&text);
        assert_ne!(code, 0, "{expected}");
        assert!(stderr.contains(expected), "expected {expected:?} in {stderr:?}");
        assert!(stderr.starts_with("FILE:"), "{stderr}");
    }
    let granted = entry("[\"config\", \"http\"]", "http = { allow = [\"http://127.0.0.1:8080\"] }\n");
    let (code, stderr) = crate::plugins::check_config(&granted);
    assert_eq!(code, 0, "{stderr}");
}

/// Runs the probe through the offline runner against `url` with `--http-allow allow`
/// and these environment variables; the headers it added.
fn offline_probe(url: &str, allow: &[&str], env: &[(&str, &std::path::Path)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let eml = dir.path().join("m.eml");
    std::fs::write(&eml, "Subject: hi\n\nBody.\n").unwrap();
    let cfg = dir.path().join("probe.toml");
    std::fs::write(&cfg, format!("url = \"{url}\"\n")).unwrap();
    let mut cmd = std::process::Command::new(crate::support::server::BIN);
    cmd.args(["plugin", "test"]).arg(wasm("http_probe")).arg("--message").arg(&eml);
    cmd.args(["--from", "a@example.org", "--rcpt", "b@example.com", "--json", "--plugin-config"]).arg(&cfg);
    if !allow.is_empty() {
        cmd.arg("--http-allow").args(allow);
    }
    for (name, value) in env {
        cmd.env(name, value);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    report["headers_added"].to_string()
}

#[test]
fn https_is_verified_against_the_systems_trust_store() {
    let pki = crate::support::tls::make_pki(&["127.0.0.1"]);
    let service = HttpListener::start_tls(Reply::Body("secure"), &pki);
    let origin = format!("https://{}", service.addr);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    // The test CA is in no store the machine has: the handshake fails, nothing is read.
    let untrusted = offline_probe(&format!("{origin}/"), &[&origin], &[]);
    assert!(untrusted.contains("X-Test-Http: error="), "{untrusted}");
    assert!(!untrusted.contains("status=200"), "{untrusted}");
    // The system store as OpenSSL-style tools see it (SSL_CERT_FILE) is the one used.
    let trusted = offline_probe(&format!("{origin}/"), &[&origin], &[("SSL_CERT_FILE", &ca)]);
    assert!(trusted.contains("X-Test-Http: status=200 bytes=6 body=secure"), "{trusted}");
}

#[test]
fn the_offline_runner_holds_requests_to_http_allow() {
    let service = HttpListener::start(Reply::Body("hello"));
    let url = format!("{}/", service.origin());
    let denied = offline_probe(&url, &[], &[]);
    assert!(denied.contains("X-Test-Http: error=HttpRequestDenied"), "{denied}");
    assert_eq!(service.accepted(), 0);
    let origin = service.origin();
    let allowed = offline_probe(&url, &[&origin], &[]);
    assert!(allowed.contains("X-Test-Http: status=200 bytes=5 body=hello"), "{allowed}");
    assert_eq!(service.accepted(), 1);
}
