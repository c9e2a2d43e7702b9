//! STARTTLS with a certificate generated at test time.

use std::sync::Arc;

use tokio_rustls::rustls::{ClientConnection, StreamOwned, pki_types::ServerName};

use crate::support::server::base_config;
use crate::support::sink::{Sink, SinkOptions};
use crate::support::tls::make_pki;
use crate::support::{Client, Sluice};

fn tls_server() -> (Sluice, Arc<tokio_rustls::rustls::ClientConfig>) {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(&["relay.example.test"]);
    let tls_section = pki.write_to(dir.path());
    let sluice = Sluice::start_in(dir, &base_config(&tls_section));
    (sluice, pki.client_config())
}

/// Wraps the client's TCP stream in TLS (after the 220 to STARTTLS).
fn upgrade(client: Client, config: Arc<tokio_rustls::rustls::ClientConfig>) -> Client {
    let raw = client.into_inner();
    let name = ServerName::try_from("relay.example.test").unwrap();
    let conn = ClientConnection::new(config, name).unwrap();
    Client::from_stream(Box::new(StreamOwned::new(conn, raw)))
}

#[test]
fn starttls_resets_the_session_and_is_recorded_in_received() {
    let (sluice, config) = tls_server();
    let (mut c, _) = Client::connect(sluice.addr);
    assert_eq!(c.cmd("STARTTLS").code, 503, "EHLO first");
    let ehlo = c.cmd("EHLO client.example");
    assert!(ehlo.text.lines().any(|l| l == "STARTTLS"), "{ehlo:?}");
    assert_eq!(c.cmd("MAIL FROM:<a@example.org>").code, 250);
    let r = c.cmd("STARTTLS");
    assert_eq!((r.code, r.status()), (220, "2.0.0"));
    let mut c = upgrade(c, config);
    // All state is gone: the transaction and the EHLO.
    assert_eq!(c.cmd("MAIL FROM:<a@example.org>").code, 503);
    let ehlo = c.cmd("EHLO client.example");
    assert!(!ehlo.text.contains("STARTTLS"), "not offered twice: {ehlo:?}");
    let again = c.cmd("STARTTLS");
    assert_eq!((again.code, again.status()), (503, "5.5.1"));
    assert_eq!(c.cmd("MAIL FROM:<a@example.org>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<user@example.com>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(b"Subject: secret\r\n\r\nx\r\n.\r\n");
    assert_eq!(c.read_reply().code, 250);
    let (envelope, message) = sluice.queued()[0].parts();
    assert_eq!(envelope["client"]["tls"]["version"], "TLSv1.3");
    let text = String::from_utf8(message).unwrap();
    assert!(text.contains("(using TLSv1.3 with cipher TLS13_"), "{text}");
    assert!(text.contains("with ESMTPS id"), "{text}");
}

#[test]
fn commands_pipelined_after_starttls_are_discarded() {
    let (sluice, config) = tls_server();
    let (mut c, _) = Client::connect(sluice.addr);
    c.cmd("EHLO client.example");
    // The injection: plaintext commands in the same write as STARTTLS.
    c.send(b"STARTTLS\r\nMAIL FROM:<injected@attacker.test>\r\nRCPT TO:<user@example.com>\r\n");
    assert_eq!(c.read_reply().code, 220);
    let mut c = upgrade(c, config);
    // Had the injected commands survived, their replies would come first.
    let r = c.cmd("NOOP");
    assert_eq!((r.code, r.status()), (250, "2.0.0"), "{r:?}");
    assert_eq!(c.cmd("RCPT TO:<user@example.com>").code, 503, "injected MAIL was dropped");
    assert_eq!(c.cmd("EHLO client.example").code, 250);
}

#[test]
fn implicit_tls_listener() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(&["relay.example.test"]);
    let tls_section = pki.write_to(dir.path());
    let config = base_config(&tls_section).replace(
        "listen = [\"127.0.0.1:0\"]",
        "listen = [\"127.0.0.1:0\", { address = \"127.0.0.1:0\", tls = \"implicit\" }]",
    );
    let sluice = Sluice::start_in(dir, &config);
    assert_eq!(sluice.addrs.len(), 2);
    let tcp = std::net::TcpStream::connect(sluice.addrs[1]).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let name = ServerName::try_from("relay.example.test").unwrap();
    let conn = ClientConnection::new(pki.client_config(), name).unwrap();
    let mut c = Client::from_stream(Box::new(StreamOwned::new(conn, tcp)));
    assert_eq!(c.read_reply().code, 220);
    let ehlo = c.cmd("EHLO client.example");
    assert!(!ehlo.text.contains("STARTTLS"));
    assert_eq!(c.cmd("STARTTLS").code, 503);
}

/// The injection as published: `STARTTLS\r\nEHLO x\r\n` in one write. The EHLO must not
/// be answered in plain text before the handshake, nor inside TLS after it (where it
/// would count as the client's own EHLO and let MAIL through without one).
#[test]
fn starttls_and_ehlo_in_one_write_gets_no_answer_inside_tls() {
    let (sluice, config) = tls_server();
    for injected in [&b"STARTTLS\r\nEHLO x\r\n"[..], b"STARTTLS\r\nEHLO x\r\nMAIL FROM:<injected@attacker.test>\r\n"] {
        let (mut c, _) = Client::connect(sluice.addr);
        assert_eq!(c.cmd("EHLO client.example").code, 250);
        c.send(injected);
        let r = c.read_reply();
        assert_eq!((r.code, r.status()), (220, "2.0.0"), "{r:?}");
        // Nothing else came in plain text (into_inner checks that nothing is buffered;
        // anything arriving later would break the handshake).
        let mut c = upgrade(c, config.clone());
        // The first reply inside TLS answers our NOOP, not the injected EHLO...
        let noop = c.cmd("NOOP");
        assert_eq!(noop.lines, ["250 2.0.0 Ok"], "an injected command was answered inside TLS");
        // ...and the session is back to before EHLO: the injected one did not count.
        let mail = c.cmd("MAIL FROM:<a@example.org>");
        assert_eq!((mail.code, mail.status()), (503, "5.5.1"), "{mail:?}");
        let ehlo = c.cmd("EHLO client.example");
        assert_eq!(ehlo.code, 250);
        assert!(ehlo.lines[0].contains("relay.example.test"), "{ehlo:?}");
        assert_eq!(c.cmd("MAIL FROM:<a@example.org>").code, 250);
        assert_eq!(c.cmd("QUIT").code, 221);
    }
    assert!(sluice.queued().is_empty());
}

/// The other direction: a next hop (or someone in the path) answers STARTTLS with the
/// `220` and forged replies in the same clear-text write. Our client must not read them
/// as the replies to what it sends inside TLS.
#[test]
fn delivery_ignores_replies_injected_in_clear_after_starttls() {
    let pki = Arc::new(make_pki(&["sink.test"]));
    let sink = Sink::start(SinkOptions {
        starttls: Some(pki),
        starttls_injection: Some("250-sink.test\r\n250 AUTH PLAIN\r\n250 2.1.0 ok\r\n554 5.7.1 injected\r\n".into()),
        ..SinkOptions::default()
    });
    let sluice = Sluice::start(&sink.route("all", "\"*\"", "required"));
    let (mut c, _) = Client::connect(sluice.addr);
    let reply = c.send_mail("alice@example.org", &["bob@example.com"], "Subject: injected\r\n\r\nover TLS only");
    assert_eq!(reply.code, 250);
    let got = sink.wait_for(1, std::time::Duration::from_secs(20));
    assert_eq!(got.len(), 1, "{}", sluice.logs());
    assert!(got[0].tls, "delivered inside TLS");
    assert_eq!(got[0].sender, "alice@example.org");
    assert!(String::from_utf8_lossy(&got[0].content).ends_with("\r\n\r\nover TLS only\r\n"));
    assert!(sluice.wait_for_log("discarded plaintext sent after STARTTLS", std::time::Duration::from_secs(5)));
    // Inside TLS the client started over with EHLO, as RFC 3207 requires.
    let commands = sink.commands.lock().unwrap().clone();
    let starttls = commands.iter().position(|c| c == "STARTTLS").expect("STARTTLS sent");
    assert!(commands[starttls + 1].starts_with("EHLO "), "{commands:?}");
}
