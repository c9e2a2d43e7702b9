//! STARTTLS with a certificate generated at test time.

use std::sync::Arc;

use tokio_rustls::rustls::{ClientConnection, StreamOwned, pki_types::ServerName};

use crate::support::server::base_config;
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
