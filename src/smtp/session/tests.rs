//! Sessions driven over an in-memory socket: the whole command loop, the state machine
//! and queueing, without a listener or a client process.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::watch;

use super::Session;
use crate::config::{Config, ListenConfig, ListenTls};
use crate::mail::ClientInfo;
use crate::plugin::PluginHost;
use crate::queue::Queue;
use crate::smtp::SmtpContext;
use crate::smtp::socket::memory::{MemorySocket, pair};

struct Harness {
    queue: Arc<Queue>,
    client: DuplexStream,
    /// Everything the session has sent, not yet looked at.
    received: Vec<u8>,
    _dir: tempfile::TempDir,
}

/// Starts a session for a client at `ip` with `extra` config appended.
async fn start(ip: &str, extra: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nhostname = \"relay.example.test\"\nlisten = [\"127.0.0.1:0\"]\n{extra}\n[queue]\npath = \"{}\"\n[relay]\ndomains = [\"example.com\"]\n",
        dir.path().join("queue").display()
    );
    let config = Arc::new(Config::parse(&dir.path().join("sluice.toml"), &text).unwrap());
    let (queue, _) = Queue::open(&config.queue.path).unwrap();
    let queue = Arc::new(queue);
    let ctx = Arc::new(SmtpContext::new(Arc::clone(&config), None, Arc::clone(&queue), Arc::new(PluginHost::empty())));
    let (socket, client): (MemorySocket, DuplexStream) = pair();
    let info = ClientInfo {
        ip: ip.parse().unwrap(),
        port: 40000,
        reverse_name: None,
        helo: None,
        tls: None,
        auth_user: None,
        session_id: "t1".into(),
    };
    let listen = ListenConfig { address: "127.0.0.1:25".parse().unwrap(), tls: ListenTls::None, proxy_protocol: false };
    let (_stop, shutdown) = watch::channel(false);
    let session = Session::new(ctx, socket, info, listen, shutdown);
    tokio::spawn(async move {
        session.run().await;
        drop(_stop);
    });
    Harness { queue, client, received: Vec::new(), _dir: dir }
}

impl Harness {
    async fn send(&mut self, text: &str) {
        self.client.write_all(text.as_bytes()).await.unwrap();
    }

    /// Reads until `replies` complete replies (last lines) have arrived; returns them
    /// as text, one line each.
    async fn replies(&mut self, replies: usize) -> Vec<String> {
        let mut lines = Vec::new();
        let mut done = 0;
        while done < replies {
            while let Some(end) = self.received.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8(self.received.drain(..end + 2).collect()).unwrap();
                let line = line.trim_end().to_string();
                if line.as_bytes().get(3) != Some(&b'-') {
                    done += 1;
                }
                lines.push(line);
                if done == replies {
                    return lines;
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(10), self.client.read(&mut chunk))
                .await
                .expect("the session answers")
                .unwrap();
            assert!(n > 0, "the session closed the connection after {lines:?}");
            self.received.extend_from_slice(&chunk[..n]);
        }
        lines
    }

    async fn reply(&mut self) -> String {
        self.replies(1).await.pop().unwrap()
    }

    async fn command(&mut self, line: &str) -> String {
        self.send(&format!("{line}\r\n")).await;
        self.reply().await
    }

    /// Waits for the end of the connection, returning what came before it.
    async fn closed(&mut self) -> String {
        let mut rest = std::mem::take(&mut self.received);
        tokio::time::timeout(Duration::from_secs(10), self.client.read_to_end(&mut rest))
            .await
            .expect("the session closes")
            .unwrap();
        String::from_utf8(rest).unwrap()
    }
}

#[tokio::test]
async fn a_message_goes_from_the_wire_into_the_queue() {
    let mut s = start("192.0.2.1", "").await;
    assert_eq!(s.reply().await, "220 relay.example.test ESMTP Sluice");
    s.send("EHLO client.example\r\n").await;
    let ehlo = s.replies(1).await;
    assert_eq!(ehlo[0], "250-relay.example.test");
    for keyword in ["PIPELINING", "SIZE 25000000", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING", "DSN"] {
        assert!(ehlo.iter().any(|l| l[4..] == *keyword), "{keyword} in {ehlo:?}");
    }
    assert!(!ehlo.iter().any(|l| l.contains("STARTTLS") || l.contains("AUTH")), "nothing without TLS: {ehlo:?}");
    assert_eq!(s.command("MAIL FROM:<alice@example.org>").await, "250 2.1.0 Sender ok");
    assert_eq!(s.command("RCPT TO:<bob@example.com>").await, "250 2.1.5 Recipient ok");
    assert!(s.command("DATA").await.starts_with("354 "));
    s.send("Subject: hi\r\n\r\nline one\r\n..dot-stuffed\r\n.\r\n").await;
    let queued = s.reply().await;
    assert!(queued.starts_with("250 2.0.0 Ok: queued as "), "{queued}");

    assert_eq!(s.queue.len(), 1);
    let entry = s.queue.entries().pop().unwrap();
    assert_eq!(queued.rsplit(' ').next().unwrap(), entry.envelope.id.to_string());
    assert_eq!(entry.envelope.sender.as_ref().unwrap().to_string(), "alice@example.org");
    assert_eq!(entry.envelope.recipients[0].address.to_string(), "bob@example.com");
    let stored = String::from_utf8(s.queue.read_message(entry.envelope.id).unwrap()).unwrap();
    assert!(stored.starts_with("Received: from client.example"), "{stored}");
    assert!(stored.ends_with("Subject: hi\r\n\r\nline one\r\n.dot-stuffed\r\n"), "{stored}");
    assert_eq!(s.command("QUIT").await, "221 2.0.0 Bye");
    assert_eq!(s.closed().await, "");
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let mut s = start("192.0.2.1", "").await;
    s.reply().await;
    s.send("EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<x@example.com>\r\nRCPT TO:<y@elsewhere.example>\r\nRSET\r\nNOOP\r\n").await;
    let lines = s.replies(6).await;
    let last: Vec<&str> = lines.iter().filter(|l| l.as_bytes()[3] == b' ').map(String::as_str).collect();
    assert_eq!(
        last[1..],
        [
            "250 2.1.0 Sender ok",
            "250 2.1.5 Recipient ok",
            "554 5.7.1 Error: relay access denied",
            "250 2.0.0 Reset ok",
            "250 2.0.0 Ok"
        ]
    );
    assert!(s.queue.is_empty());
}

async fn send_with_bare_dots(extra: &str) -> (Harness, String) {
    let mut s = start("192.0.2.1", extra).await;
    s.reply().await;
    s.command("HELO c.example").await;
    s.command("MAIL FROM:<a@example.org>").await;
    s.command("RCPT TO:<x@example.com>").await;
    s.command("DATA").await;
    // A dot between bare LFs, or after CRLF but before a bare LF, is not the end.
    s.send("Subject: x\r\n\r\nbody\n.\nmore\r\n.\nlast\r\n.\r\n").await;
    let reply = s.reply().await;
    (s, reply)
}

#[tokio::test]
async fn only_crlf_dot_crlf_ends_the_data() {
    let (s, reply) = send_with_bare_dots("").await;
    assert!(reply.starts_with("250 2.0.0 Ok: queued as "), "{reply}");
    let entry = s.queue.entries().pop().unwrap();
    let stored = String::from_utf8(s.queue.read_message(entry.envelope.id).unwrap()).unwrap();
    // One message: the dots were content (a leading dot is taken as stuffing), and the
    // bare LFs became CRLF.
    assert!(stored.ends_with("Subject: x\r\n\r\nbody\r\n\r\nmore\r\n\r\nlast\r\n"), "{stored:?}");

    let (mut s, reply) = send_with_bare_dots("\n[limits]\nbare_newlines = \"reject\"\n").await;
    assert_eq!(reply, "550 5.6.0 Error: bare CR or LF in message; lines must end with CRLF");
    assert!(s.queue.is_empty());
    assert_eq!(s.command("NOOP").await, "250 2.0.0 Ok");
}

#[tokio::test]
async fn state_machine_and_help() {
    let mut s = start("192.0.2.1", "").await;
    s.reply().await;
    assert_eq!(s.command("MAIL FROM:<a@example.org>").await, "503 5.5.1 Error: send HELO/EHLO first");
    s.command("EHLO c.example").await;
    assert_eq!(s.command("RCPT TO:<x@example.com>").await, "503 5.5.1 Error: need MAIL command");
    assert_eq!(s.command("DATA").await, "503 5.5.1 Error: need MAIL command");
    s.send("HELP\r\n").await;
    let help = s.replies(1).await;
    assert_eq!(
        help[0],
        "214-2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY EXPN STARTTLS AUTH"
    );
    assert_eq!(help[1], "214 2.0.0 See RFC 5321");
    assert_eq!(s.command("FOO").await, "500 5.5.1 Error: command not recognized");
}

#[tokio::test]
async fn too_many_errors_close_the_session() {
    let mut s = start("192.0.2.1", "[limits]\nmax_errors = 3\n").await;
    s.reply().await;
    s.send("FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n").await;
    let rest = s.closed().await;
    assert_eq!(
        rest,
        "500 5.5.1 Error: command not recognized\r\n500 5.5.1 Error: command not recognized\r\n\
         500 5.5.1 Error: command not recognized\r\n421 4.7.0 Error: too many errors, closing connection\r\n"
    );
}

#[tokio::test]
async fn an_early_talker_is_refused_before_the_greeting() {
    let mut s = start("192.0.2.1", "greeting_delay = \"200ms\"\n").await;
    s.send("EHLO spambot\r\n").await;
    assert_eq!(s.closed().await, "554 5.5.0 Error: client talked before the greeting\r\n");
}

#[tokio::test]
async fn a_patient_client_is_greeted_after_the_delay() {
    let mut s = start("192.0.2.1", "greeting_delay = \"100ms\"\n").await;
    assert_eq!(s.reply().await, "220 relay.example.test ESMTP Sluice");
    assert_eq!(s.command("QUIT").await, "221 2.0.0 Bye");
}

#[tokio::test]
async fn trusted_networks_relay_anywhere() {
    let mut s = start("127.0.0.1", "").await;
    s.reply().await;
    s.command("EHLO c.example").await;
    s.command("MAIL FROM:<a@example.org>").await;
    assert_eq!(s.command("RCPT TO:<y@elsewhere.example>").await, "250 2.1.5 Recipient ok");
}
