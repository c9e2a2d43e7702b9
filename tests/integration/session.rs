//! The ordinary protocol: what a well-behaved client sees.

use crate::support::client::queued_id;
use crate::support::{Client, Sluice};

#[test]
fn greeting_ehlo_and_a_full_transaction_reach_the_queue() {
    let sluice = Sluice::start("");
    let (mut c, greeting) = Client::connect(sluice.addr);
    assert_eq!(greeting.code, 220);
    assert!(greeting.text.starts_with("relay.example.test "), "{greeting:?}");

    let ehlo = c.cmd("EHLO client.example");
    assert_eq!(ehlo.code, 250);
    assert_eq!(ehlo.lines[0], "250-relay.example.test");
    for ext in ["PIPELINING", "SIZE 25000000", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING", "DSN"] {
        assert!(ehlo.text.lines().any(|l| l == ext), "missing {ext} in {ehlo:?}");
    }
    assert!(!ehlo.text.contains("STARTTLS"), "no [tls] configured, so no STARTTLS");

    let mail = c.cmd("MAIL FROM:<sender@example.org> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=abc");
    assert_eq!((mail.code, mail.status()), (250, "2.1.0"));
    let rcpt = c.cmd("RCPT TO:<user@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;user+40example.com");
    assert_eq!((rcpt.code, rcpt.status()), (250, "2.1.5"));
    let data = c.cmd("DATA");
    assert_eq!(data.code, 354);
    c.send(b"Subject: hello\r\n\r\n..dot-stuffed line\r\nbody \xc3\xa9 8-bit\r\n.\r\n");
    let done = c.read_reply();
    assert_eq!((done.code, done.status()), (250, "2.0.0"), "{done:?}");
    let id = queued_id(&done).expect("queue id in reply");
    assert_eq!(c.cmd("QUIT").code, 221);

    let files = sluice.queued();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].id, id);
    let (envelope, message) = files[0].parts();
    assert_eq!(envelope["sender"], "sender@example.org");
    assert_eq!(envelope["recipients"][0]["address"], "user@example.com");
    assert_eq!(envelope["recipients"][0]["params"]["notify"]["success"], true);
    assert_eq!(envelope["recipients"][0]["params"]["orcpt"], "rfc822;user+40example.com");
    assert_eq!(envelope["mail_params"]["ret"], "HDRS");
    assert_eq!(envelope["mail_params"]["envid"], "abc");
    assert_eq!(envelope["client"]["helo"], "client.example");
    assert_eq!(envelope["client"]["ip"], "127.0.0.1");
    let text = String::from_utf8(message).unwrap();
    assert!(text.starts_with("Received: from client.example (unknown [127.0.0.1])\r\n"), "{text}");
    assert!(
        text.contains(&format!("by relay.example.test (Sluice) with ESMTP id {id}\r\n\tfor <user@example.com>;")),
        "{text}"
    );
    assert!(text.ends_with("Subject: hello\r\n\r\n.dot-stuffed line\r\nbody \u{e9} 8-bit\r\n"), "{text}");
}

#[test]
fn null_sender_postmaster_and_session_commands() {
    let sluice = Sluice::start("[relay]\nnetworks = []\ndomains = [\"example.com\"]\n");
    let (mut c, _) = Client::connect(sluice.addr);
    assert_eq!(c.cmd("HELO client.example").text, "relay.example.test");
    assert_eq!(c.cmd("NOOP").code, 250);
    let help = c.cmd("HELP");
    assert_eq!(help.code, 214);
    let vrfy = c.cmd("VRFY root");
    assert_eq!((vrfy.code, vrfy.status()), (252, "2.0.0"));
    assert_eq!(c.cmd("MAIL FROM:<>").code, 250);
    // Relaying is closed for this client, but postmaster always works.
    assert_eq!(c.cmd("RCPT TO:<Postmaster>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<postmaster@relay.example.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<someone@example.org>").code, 554);
    let rset = c.cmd("RSET");
    assert_eq!((rset.code, rset.status()), (250, "2.0.0"));
    assert_eq!(c.cmd("RCPT TO:<user@example.com>").code, 503, "RSET ended the transaction");
    assert_eq!(c.cmd("MAIL FROM:<>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<postmaster>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(b"Subject: bounce\r\n\r\nx\r\n.\r\n");
    assert_eq!(c.read_reply().code, 250);
    let (envelope, _) = sluice.queued()[0].parts();
    assert_eq!(envelope["sender"], serde_json::Value::Null);
    assert_eq!(envelope["recipients"][0]["address"], "postmaster");
}

#[test]
fn commands_out_of_sequence_get_503() {
    let sluice = Sluice::start("");
    let (mut c, _) = Client::connect(sluice.addr);
    for (line, code, status) in [
        ("MAIL FROM:<a@example.org>", 503, "5.5.1"),
        ("RCPT TO:<user@example.com>", 503, "5.5.1"),
        ("DATA", 503, "5.5.1"),
    ] {
        let r = c.cmd(line);
        assert_eq!((r.code, r.status()), (code, status), "{line}");
    }
    c.cmd("EHLO client.example");
    assert_eq!(c.cmd("DATA").code, 503);
    assert_eq!(c.cmd("MAIL FROM:<a@example.org>").code, 250);
    assert_eq!(c.cmd("MAIL FROM:<a@example.org>").code, 503, "nested MAIL");
    let r = c.cmd("DATA");
    assert_eq!((r.code, r.status()), (554, "5.5.1"), "no recipients yet");
    // A new EHLO resets the transaction.
    c.cmd("EHLO client.example");
    assert_eq!(c.cmd("RCPT TO:<user@example.com>").code, 503);
}

#[test]
fn pipelined_commands_get_one_reply_each_in_order() {
    let sluice = Sluice::start("[relay]\nnetworks = []\ndomains = [\"example.com\"]\n");
    let (mut c, _) = Client::connect(sluice.addr);
    c.send(b"EHLO client.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<user@example.com>\r\nRCPT TO:<bad@example.org>\r\nRCPT TO:<second@example.com>\r\nDATA\r\n");
    let codes: Vec<u16> = (0..6).map(|_| c.read_reply().code).collect();
    assert_eq!(codes, vec![250, 250, 250, 554, 250, 354]);
    // Content then further commands, pipelined after the end of data.
    c.send(b"Subject: p\r\n\r\nbody\r\n.\r\nMAIL FROM:<b@example.org>\r\nRCPT TO:<user@example.com>\r\nNOOP\r\nRSET\r\nQUIT\r\n");
    let codes: Vec<u16> = (0..6).map(|_| c.read_reply().code).collect();
    assert_eq!(codes, vec![250, 250, 250, 250, 250, 221]);
    let (envelope, _) = sluice.queued()[0].parts();
    assert_eq!(envelope["recipients"].as_array().unwrap().len(), 2);
}

#[test]
fn bdat_chunks_make_one_message() {
    let sluice = Sluice::start("");
    let (mut c, _) = Client::connect(sluice.addr);
    c.cmd("EHLO client.example");
    c.cmd("MAIL FROM:<a@example.org>");
    c.cmd("RCPT TO:<user@example.com>");
    // Chunks are raw: a leading dot and a lone "." line are content, not terminators.
    let first = b"Subject: chunked\r\n\r\n.\r\n";
    c.send(format!("BDAT {}\r\n", first.len()).as_bytes());
    c.send(first);
    let r = c.read_reply();
    assert_eq!((r.code, r.status()), (250, "2.0.0"), "{r:?}");
    let second = b"..second\r\n";
    c.send(format!("BDAT {} LAST\r\n", second.len()).as_bytes());
    c.send(second);
    let done = c.read_reply();
    assert_eq!(done.code, 250, "{done:?}");
    assert!(done.text.contains("queued as"));
    // BDAT without a transaction: the chunk is swallowed, not run as commands.
    c.send(b"BDAT 6 LAST\r\nNOOP\r\n");
    assert_eq!(c.read_reply().code, 503);
    assert_eq!(c.cmd("NOOP").code, 250);
    let (_, message) = sluice.queued()[0].parts();
    assert!(message.ends_with(b"Subject: chunked\r\n\r\n.\r\n..second\r\n"), "{}", String::from_utf8_lossy(&message));
}

#[test]
fn utf8_addresses_need_smtputf8() {
    let sluice = Sluice::start("[relay]\ndomains = [\"example.com\", \"例子.测试\"]\n");
    let (mut c, _) = Client::connect(sluice.addr);
    c.cmd("EHLO client.example");
    let r = c.cmd("MAIL FROM:<用户@例子.测试>");
    assert_eq!((r.code, r.status()), (553, "5.6.7"));
    assert_eq!(c.cmd("MAIL FROM:<用户@例子.测试> SMTPUTF8").code, 250);
    assert_eq!(c.cmd("RCPT TO:<收件人@例子.测试>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send("Subject: ünïcödé\r\n\r\nhi\r\n.\r\n".as_bytes());
    assert_eq!(c.read_reply().code, 250);
    let (envelope, message) = sluice.queued()[0].parts();
    assert_eq!(envelope["sender"], "用户@例子.测试");
    assert_eq!(envelope["mail_params"]["smtputf8"], true);
    assert!(String::from_utf8(message).unwrap().contains("with UTF8SMTP id"));
}
