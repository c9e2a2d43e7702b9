//! A session and a transaction to call hooks with in host tests.

use crate::{Recipient, Session, Transaction};

/// A client at 192.0.2.7 that said `EHLO client.example.org` to `mx.example.com`, in
/// session `s1`, without TLS or AUTH.
pub fn session() -> Session {
    Session {
        id: "s1".into(),
        client_ip: "192.0.2.7".into(),
        client_port: 40000,
        reverse_name: None,
        helo: Some("client.example.org".into()),
        tls: None,
        auth_user: None,
        server_hostname: "mx.example.com".into(),
    }
}

/// A transaction from `sender` to `recipients`, no parameters, tags or score yet.
pub fn transaction(sender: &str, recipients: &[&str]) -> Transaction {
    Transaction {
        sender: Some(sender.into()),
        sender_params: Vec::new(),
        recipients: recipients.iter().map(|r| Recipient { address: r.to_string(), params: Vec::new() }).collect(),
        tags: Vec::new(),
        score: 0.0,
        annotations: Vec::new(),
    }
}
