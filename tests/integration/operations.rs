//! Running it in production: AUTH, metrics and health, live reload, graceful shutdown,
//! the PROXY protocol, and kv state that survives restarts and spans nodes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_rustls::rustls::{ClientConnection, StreamOwned, pki_types::ServerName};

use crate::support::client::queued_id;
use crate::support::plugins::{testing, wasm};
use crate::support::server::{BIN, base_config};
use crate::support::tls::make_pki;
use crate::support::{Client, Sluice};

pub(crate) fn hash_password(password: &str) -> String {
    let mut child =
        Command::new(BIN).arg("hash-password").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let n = group.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= group.len() { ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

pub(crate) fn tls_upgrade(client: Client, config: Arc<tokio_rustls::rustls::ClientConfig>) -> Client {
    let raw = client.into_inner();
    let conn = ClientConnection::new(config, ServerName::try_from("relay.example.test").unwrap()).unwrap();
    Client::from_stream(Box::new(StreamOwned::new(conn, raw)))
}

#[test]
fn auth_plain_and_login_only_inside_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(&["relay.example.test"]);
    let tls = pki.write_to(dir.path());
    let hash = hash_password("correct horse");
    let config = base_config(&format!(
        "[relay]\nnetworks = []\ndomains = [\"example.com\"]\n[limits]\nmax_errors = 6\n{tls}[auth]\nfailure_delay = \"200ms\"\n[[auth.users]]\nname = \"alice\"\npassword_hash = \"{hash}\"\n"
    ));
    let sluice = Sluice::start_in(dir, &config);
    let (mut c, _) = Client::connect(sluice.addr);
    let ehlo = c.cmd("EHLO client.example");
    assert!(!ehlo.text.contains("AUTH"), "never offered in clear: {ehlo:?}");
    let r = c.cmd(&format!("AUTH PLAIN {}", b64(b"\0alice\0correct horse")));
    assert_eq!((r.code, r.status()), (538, "5.7.11"), "{r:?}");
    assert_eq!(c.cmd("STARTTLS").code, 220);
    let mut c = tls_upgrade(c, pki.client_config());
    let ehlo = c.cmd("EHLO client.example");
    assert!(ehlo.text.lines().any(|l| l == "AUTH PLAIN LOGIN"), "{ehlo:?}");
    // Wrong password: 535 after the delay.
    let started = Instant::now();
    let r = c.cmd(&format!("AUTH PLAIN {}", b64(b"\0alice\0wrong")));
    assert_eq!((r.code, r.status()), (535, "5.7.8"));
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(c.cmd("AUTH CRAM-MD5").code, 504);
    assert_eq!(c.cmd("MAIL FROM:<alice@example.org>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<friend@example.org>").code, 554, "not authenticated: no relaying");
    assert_eq!(c.cmd("RSET").code, 250);
    // LOGIN, challenge by challenge; then relaying is allowed.
    let r = c.cmd("AUTH LOGIN");
    assert_eq!((r.code, r.text.as_str()), (334, "VXNlcm5hbWU6"));
    assert_eq!(c.cmd(&b64(b"alice")).code, 334);
    let r = c.cmd(&b64(b"correct horse"));
    assert_eq!((r.code, r.status()), (235, "2.7.0"), "{r:?}");
    assert_eq!(c.cmd("AUTH PLAIN").code, 503, "already authenticated");
    assert_eq!(c.cmd("MAIL FROM:<alice@example.org> AUTH=alice@example.org").code, 250);
    assert_eq!(c.cmd("RCPT TO:<friend@example.org>").code, 250, "authenticated clients relay");
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(b"Subject: authenticated\r\n\r\nx\r\n.\r\n");
    assert_eq!(c.read_reply().code, 250);
    let (envelope, message) = sluice.queued()[0].parts();
    assert_eq!(envelope["client"]["auth_user"], "alice");
    assert!(String::from_utf8(message).unwrap().contains("with ESMTPSA id"));

    // Failures count against max_errors.
    let (c2, _) = Client::connect(sluice.addr);
    let mut c2 = c2;
    c2.cmd("EHLO client.example");
    c2.cmd("STARTTLS");
    let mut c2 = tls_upgrade(c2, pki.client_config());
    c2.cmd("EHLO client.example");
    for _ in 0..5 {
        assert_eq!(c2.cmd(&format!("AUTH PLAIN {}", b64(b"\0alice\0guess"))).code, 535);
    }
    let r = c2.cmd(&format!("AUTH PLAIN {}", b64(b"\0alice\0guess")));
    assert_eq!(r.code, 535);
    assert_eq!(c2.read_reply().code, 421, "dropped after max_errors");
}

#[test]
fn python_smtplib_logs_in_over_starttls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(&["localhost"]);
    let tls = pki.write_to(dir.path());
    let ca = dir.path().join("ca.pem");
    let hash = hash_password("s3cret");
    let config = base_config(&format!(
        "[relay]\nnetworks = []\ndomains = [\"example.com\"]\n{tls}[auth]\n[[auth.users]]\nname = \"bob\"\npassword_hash = \"{hash}\"\n"
    ));
    let sluice = Sluice::start_in(dir, &config);
    let script = r#"
import smtplib, ssl, sys
with smtplib.SMTP("localhost", int(sys.argv[1])) as s:
    s.starttls(context=ssl.create_default_context(cafile=sys.argv[2]))
    s.login("bob", "s3cret")
    s.sendmail("bob@example.org", ["someone@elsewhere.test"], "Subject: hi\r\n\r\nx\r\n")
    print("sent")
"#;
    let out =
        Command::new("python3").arg("-c").arg(script).arg(sluice.addr.port().to_string()).arg(&ca).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sluice.queued().len(), 1);
}

pub(crate) fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// The value of the first sample of `metric` whose labels contain every `labels` item.
pub(crate) fn sample(metrics: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with(metric) && (l.len() == metric.len() || matches!(l.as_bytes()[metric.len()], b'{' | b' '))
        })
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_move_after_a_message_and_health_endpoints_answer() {
    let config = format!(
        "[metrics]\nlisten = \"127.0.0.1:0\"\n{}",
        testing("tagger", "", "stage = \"rcpt-to\"\naction = \"continue\"")
    );
    let sluice = Sluice::start(&config);
    let metrics = sluice.logged_address("metrics listening").expect("metrics address");
    assert_eq!(http_get(metrics, "/healthz"), (200, "ok\n".to_string()));
    assert_eq!(http_get(metrics, "/readyz"), (200, "ready\n".to_string()));
    let (_, before) = http_get(metrics, "/metrics");
    let accepted_before = sample(&before, "sluice_messages_total", &["result=\"accepted\""]).unwrap_or(0.0);

    let (mut c, _) = Client::connect(sluice.addr);
    assert_eq!(c.send_mail("alice@example.org", &["bob@example.com"], "Subject: m\r\n\r\nx").code, 250);
    c.cmd("QUIT");
    let (status, after) = http_get(metrics, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(
        sample(&after, "sluice_messages_total", &["result=\"accepted\"", "stage=\"data\""]),
        Some(accepted_before + 1.0),
        "{after}"
    );
    assert!(sample(&after, "sluice_connections_total", &[]).unwrap_or(0.0) >= 1.0, "{after}");
    assert!(
        sample(
            &after,
            "sluice_plugin_verdicts_total",
            &["plugin=\"tagger\"", "stage=\"rcpt-to\"", "verdict=\"continue\""]
        )
        .is_some(),
        "{after}"
    );
    assert_eq!(
        sample(&after, "sluice_plugin_call_seconds_count", &["plugin=\"tagger\"", "stage=\"data\""]),
        Some(1.0),
        "{after}"
    );
    assert!(sample(&after, "sluice_plugin_memory_bytes", &["plugin=\"tagger\""]).unwrap_or(0.0) > 0.0, "{after}");
    assert!(sample(&after, "sluice_queue_messages", &["state=\"waiting\""]).is_some(), "{after}");
    assert_eq!(http_get(metrics, "/nope").0, 404);
}

fn generation_header(message: &[u8]) -> String {
    String::from_utf8_lossy(message)
        .lines()
        .find_map(|l| l.strip_prefix("X-Generation: ").map(str::to_string))
        .unwrap_or_default()
}

fn generation_config(generation: &str) -> String {
    base_config(&testing(
        "stamp",
        "",
        &format!("stage = \"data\"\naction = \"add-header\"\nvalue = \"X-Generation: {generation}\""),
    ))
}

#[test]
fn reload_swaps_plugins_for_new_sessions_while_open_ones_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let mut sluice = Sluice::start_in(dir, &generation_config("one"));
    let config = sluice.config_path.clone();
    let (mut open_before, _) = Client::connect(sluice.addr);
    assert_eq!(open_before.cmd("EHLO client.example").code, 250);

    std::fs::write(&config, generation_config("two")).unwrap();
    let (code, stdout, stderr) = sluice.cli(&["reload", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("reloaded"));

    let (mut fresh, _) = Client::connect(sluice.addr);
    let id_two = queued_id(&fresh.send_mail("a@example.org", &["b@example.com"], "Subject: new\r\n\r\nx")).unwrap();
    assert_eq!(open_before.cmd("MAIL FROM:<a@example.org>").code, 250);
    assert_eq!(open_before.cmd("RCPT TO:<b@example.com>").code, 250);
    assert_eq!(open_before.cmd("DATA").code, 354);
    open_before.send(b"Subject: old\r\n\r\nx\r\n.\r\n");
    let id_one = queued_id(&open_before.read_reply()).unwrap();
    let queued = sluice.queued();
    let by_id = |id: &str| generation_header(&queued.iter().find(|q| q.id == id).unwrap().message);
    assert_eq!(by_id(&id_two), "two", "new sessions use the new plugins");
    assert_eq!(by_id(&id_one), "one", "the open session kept the old ones");

    // A config that does not load leaves the running set alone.
    std::fs::write(&config, generation_config("three").replace(wasm("testing").to_str().unwrap(), "/nonexistent.wasm"))
        .unwrap();
    let (code, _, stderr) = sluice.cli(&["reload", "--config", config.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(stderr.contains("cannot read /nonexistent.wasm"), "{stderr}");
    let (mut c, _) = Client::connect(sluice.addr);
    let id = queued_id(&c.send_mail("a@example.org", &["b@example.com"], "Subject: still\r\n\r\nx")).unwrap();
    assert_eq!(generation_header(&sluice.queued().iter().find(|q| q.id == id).unwrap().message), "two");

    // SIGHUP does the same.
    std::fs::write(&config, generation_config("four")).unwrap();
    sluice.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(20);
    while sluice.logs().matches("configuration reloaded").count() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (mut c, _) = Client::connect(sluice.addr);
    let id = queued_id(&c.send_mail("a@example.org", &["b@example.com"], "Subject: hup\r\n\r\nx")).unwrap();
    assert_eq!(generation_header(&sluice.queued().iter().find(|q| q.id == id).unwrap().message), "four");
    assert_eq!(sluice.terminate(Duration::from_secs(10)), Some(0));
}

#[test]
fn sigterm_lets_a_transaction_finish_and_refuses_late_commands() {
    let config = base_config("")
        .replace("listen = [\"127.0.0.1:0\"]\n", "listen = [\"127.0.0.1:0\"]\nshutdown_timeout = \"10s\"\n");
    let mut sluice = Sluice::start_in(tempfile::tempdir().unwrap(), &config);

    let (mut busy, _) = Client::connect(sluice.addr);
    busy.cmd("EHLO client.example");
    busy.cmd("MAIL FROM:<a@example.org>");
    busy.cmd("RCPT TO:<b@example.com>");
    assert_eq!(busy.cmd("DATA").code, 354);
    busy.send(b"Subject: in flight\r\n\r\nfirst half\r\n");
    let (mut idle, _) = Client::connect(sluice.addr);
    assert_eq!(idle.cmd("EHLO client.example").code, 250);

    sluice.signal(libc::SIGTERM);
    let r = idle.read_reply();
    assert_eq!((r.code, r.status()), (421, "4.3.2"), "idle sessions are told at once: {r:?}");
    assert!(idle.is_closed());
    // New connections are no longer taken.
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(sluice.addr).is_ok() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(TcpStream::connect(sluice.addr).is_err(), "still accepting after SIGTERM");

    // The transaction in flight completes and is acknowledged; the next command is late.
    busy.send(b"second half\r\n.\r\n");
    let done = busy.read_reply();
    assert_eq!(done.code, 250, "{done:?}");
    let id = queued_id(&done).unwrap();
    let r = busy.cmd("MAIL FROM:<a@example.org>");
    assert_eq!((r.code, r.status()), (421, "4.3.2"));
    assert_eq!(sluice.terminate(Duration::from_secs(15)), Some(0), "exits once the sessions are done");

    sluice.start_again();
    let queued = sluice.queued();
    assert!(queued.iter().any(|q| q.id == id), "the acknowledged message survived the shutdown");
    assert!(String::from_utf8_lossy(&queued[0].message).ends_with("first half\r\nsecond half\r\n"));
}

fn proxy_server(trusted: &str) -> Sluice {
    let dir = tempfile::tempdir().unwrap();
    let config = base_config("[relay]\nnetworks = [\"127.0.0.0/8\"]\ndomains = [\"example.com\"]\n").replace(
        "listen = [\"127.0.0.1:0\"]\n",
        &format!(
            "listen = [{{ address = \"127.0.0.1:0\", proxy_protocol = true }}]\nproxy_networks = [\"{trusted}\"]\n"
        ),
    );
    Sluice::start_in(dir, &config)
}

#[test]
fn proxy_protocol_v1_and_v2_set_the_client_address() {
    let sluice = proxy_server("127.0.0.1/32");
    // v1: the balancer's client is 192.0.2.7, an outsider for relay control.
    let mut c = Client::connect_silent(sluice.addr);
    c.send(b"PROXY TCP4 192.0.2.7 127.0.0.1 40001 25\r\n");
    assert_eq!(c.read_reply().code, 220);
    c.cmd("EHLO client.example");
    c.cmd("MAIL FROM:<a@example.org>");
    assert_eq!(c.cmd("RCPT TO:<someone@example.org>").code, 554, "relay control sees the real client");
    assert_eq!(c.cmd("RCPT TO:<b@example.com>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(b"Subject: v1\r\n\r\nx\r\n.\r\n");
    assert_eq!(c.read_reply().code, 250);

    // v2, IPv6.
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.extend_from_slice(&[0x21, 0x21, 0, 36]);
    header.extend_from_slice(&"2001:db8::7".parse::<std::net::Ipv6Addr>().unwrap().octets());
    header.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    header.extend_from_slice(&40002u16.to_be_bytes());
    header.extend_from_slice(&25u16.to_be_bytes());
    let mut c = Client::connect_silent(sluice.addr);
    c.send(&header);
    assert_eq!(c.read_reply().code, 220);
    assert_eq!(c.send_mail("a@example.org", &["b@example.com"], "Subject: v2\r\n\r\nx").code, 250);

    let ips: Vec<String> =
        sluice.queued().iter().map(|q| q.envelope["client"]["ip"].as_str().unwrap().to_string()).collect();
    assert_eq!(ips, ["192.0.2.7", "2001:db8::7"]);
    assert!(String::from_utf8_lossy(&sluice.queued()[0].message).contains("[192.0.2.7]"));

    // A connection without a valid header is dropped without a greeting.
    let mut c = Client::connect_silent(sluice.addr);
    c.send(b"EHLO sneaky.example\r\n");
    assert!(c.try_read_reply().is_none());
}

#[test]
fn proxy_headers_from_untrusted_addresses_are_refused() {
    let sluice = proxy_server("10.0.0.0/8");
    let mut c = Client::connect_silent(sluice.addr);
    c.send(b"PROXY TCP4 192.0.2.7 127.0.0.1 40001 25\r\n");
    assert!(c.try_read_reply().is_none(), "no greeting for an untrusted balancer");
    assert!(sluice.wait_for_log("untrusted address refused", Duration::from_secs(5)));
}

fn greylist(extra: &str) -> String {
    format!(
        "{extra}[[plugin]]\nname = \"greylist\"\npath = \"{}\"\ngrants = [\"kv\", \"clock\", \"log\", \"config\"]\n[plugin.config]\ndelay = \"1s\"\nallow_networks = []\n",
        wasm("greylist").display()
    )
}

fn attempt(addr: SocketAddr) -> u16 {
    let (mut c, _) = Client::connect(addr);
    c.cmd("EHLO client.example");
    c.cmd("MAIL FROM:<alice@example.org>");
    let r = c.cmd("RCPT TO:<bob@example.com>");
    if r.code != 250 {
        return r.code;
    }
    c.cmd("DATA");
    c.send(b"Subject: greylist\r\n\r\nx\r\n.\r\n");
    c.read_reply().code
}

#[test]
fn the_embedded_kv_keeps_greylist_data_across_a_restart() {
    let mut sluice = Sluice::start(&greylist(""));
    assert_eq!(attempt(sluice.addr), 451, "first sight is greylisted");
    assert_eq!(sluice.terminate(Duration::from_secs(10)), Some(0));
    std::thread::sleep(Duration::from_millis(1200));
    sluice.start_again();
    assert_eq!(attempt(sluice.addr), 250, "the retry after the delay passes: the triplet survived the restart");
}

/// A redis-server on a free loopback port, killed when dropped.
pub(crate) struct Redis(std::process::Child, pub(crate) u16);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn start_redis() -> Redis {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (the test command installs it)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Redis(child, port)
}

#[test]
fn two_nodes_sharing_redis_greylist_consistently() {
    let redis = start_redis();
    let kv = format!("[kv]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:{}/0\"\n", redis.1);
    let node_a = Sluice::start(&greylist(&kv));
    let node_b = Sluice::start(&greylist(&kv));
    assert_eq!(attempt(node_a.addr), 451, "first try at node A is greylisted");
    assert_eq!(attempt(node_b.addr), 451, "an immediate retry at node B is too early");
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(attempt(node_b.addr), 250, "node B sees node A's record once the delay passed");

    // Redis down: the plugin's on_error policy (tempfail) applies, promptly.
    drop(redis);
    let started = Instant::now();
    let (mut c, _) = Client::connect(node_a.addr);
    c.cmd("EHLO client.example");
    c.cmd("MAIL FROM:<carol@example.org>");
    let r = c.cmd("RCPT TO:<dave@example.com>");
    assert_eq!((r.code, r.status()), (451, "4.3.0"), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(6), "{:?}", started.elapsed());
}
