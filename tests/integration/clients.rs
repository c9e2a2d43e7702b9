//! Real clients: Python's smtplib and swaks.

use std::process::Command;

use crate::support::Sluice;
use crate::support::server::base_config;
use crate::support::tls::make_pki;

fn python(script: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("python3").arg("-c").arg(script).args(args).output().expect("python3");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

const SMTPLIB_SEND: &str = r#"
import smtplib, ssl, sys
from email.message import EmailMessage
host, port, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
msg = EmailMessage()
msg["From"] = "alice@example.org"
msg["To"] = "bob@example.com, carol@example.com"
msg["Subject"] = "smtplib test"
msg.set_content("Hello from smtplib.\n.leading dot line\n")
with smtplib.SMTP(host, port, local_hostname="client.example") as s:
    s.ehlo()
    if cafile != "-":
        s.starttls(context=ssl.create_default_context(cafile=cafile))
        s.ehlo()
    refused = s.send_message(msg)
    print("refused", refused)
    code, text = s.noop()
    print("noop", code)
    try:
        s.sendmail("alice@example.org", ["nobody@elsewhere.test"], "Subject: x\r\n\r\nx\r\n")
    except smtplib.SMTPRecipientsRefused as e:
        print("relay refused", e.recipients["nobody@elsewhere.test"][0])
"#;

#[test]
fn python_smtplib_sends_plain_and_over_starttls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(&["localhost"]);
    let tls = pki.write_to(dir.path());
    let ca = dir.path().join("ca.pem");
    let sluice =
        Sluice::start_in(dir, &base_config(&format!("[relay]\nnetworks = []\ndomains = [\"example.com\"]\n{tls}")));
    let port = sluice.addr.port().to_string();
    for cafile in ["-", ca.to_str().unwrap()] {
        let (ok, out) = python(SMTPLIB_SEND, &["localhost", &port, cafile]);
        assert!(ok, "{out}");
        assert!(out.contains("refused {}"), "{out}");
        assert!(out.contains("noop 250"), "{out}");
        assert!(out.contains("relay refused 554"), "{out}");
    }
    let files = sluice.queued();
    assert_eq!(files.len(), 2);
    let (envelope, message) = files[1].parts();
    assert_eq!(envelope["recipients"].as_array().unwrap().len(), 2);
    assert_eq!(envelope["client"]["tls"]["version"], "TLSv1.3");
    let text = String::from_utf8(message).unwrap();
    assert!(text.contains("\r\n.leading dot line\r\n"), "dot-stuffing undone: {text}");
    assert!(text.contains("with ESMTPS id"));
}

fn swaks(server: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("swaks")
        .args(["--server", server, "--helo", "client.example", "--from", "alice@example.org"])
        .args(args)
        .output()
        .expect("swaks (the test command installs it)");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn swaks_sends_with_and_without_pipelining() {
    let sluice = Sluice::start("[relay]\nnetworks = []\ndomains = [\"example.com\"]\n");
    let server = sluice.addr.to_string();
    for extra in [&["--pipeline"][..], &[]] {
        let mut args = vec!["--to", "bob@example.com", "--header", "Subject: swaks"];
        args.extend_from_slice(extra);
        let (ok, text) = swaks(&server, &args);
        assert!(ok, "{text}");
        assert!(text.contains("<-  250 2.0.0 Ok: queued as"), "{text}");
    }
    let (ok, text) = swaks(&server, &["--to", "nobody@elsewhere.test"]);
    assert!(!ok);
    assert!(text.contains("<** 554 5.7.1"), "{text}");
    assert_eq!(sluice.queued().len(), 2);
}
