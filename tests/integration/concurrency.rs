//! Many sessions at once, and misbehaving sessions that must not hurt the others.

use std::time::Duration;

use crate::support::client::queued_id;
use crate::support::{Client, Sluice};

#[test]
fn five_hundred_concurrent_connections_are_all_served() {
    let sluice = Sluice::start("[limits]\nmax_connections_per_ip = 1000\n");
    let addr = sluice.addr;
    // Open them all first, so they really are concurrent.
    let clients: Vec<(Client, u16)> = (0..500)
        .map(|_| {
            let (c, greeting) = Client::connect(addr);
            (c, greeting.code)
        })
        .collect();
    assert!(clients.iter().all(|(_, code)| *code == 220));
    let handles: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, (mut c, _))| {
            std::thread::spawn(move || {
                let reply =
                    c.send_mail("a@example.org", &["user@example.com"], &format!("Subject: n{i}\r\n\r\nbody {i}"));
                assert_eq!(reply.code, 250, "{reply:?}");
                queued_id(&reply).unwrap()
            })
        })
        .collect();
    let mut ids: Vec<String> = handles.into_iter().map(|h| h.join().expect("client thread")).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 500, "every message has its own id");
    assert_eq!(sluice.queued().len(), 500);
}

#[test]
fn a_stalled_client_holds_only_its_own_connection() {
    let sluice = Sluice::start("");
    // A client stuck mid-command and one stuck mid-DATA.
    let mut stuck = Client::connect(sluice.addr).0;
    stuck.send(b"EHLO slow");
    let mut stuck_data = Client::connect(sluice.addr).0;
    stuck_data.cmd("EHLO slow.example");
    stuck_data.cmd("MAIL FROM:<a@example.org>");
    stuck_data.cmd("RCPT TO:<user@example.com>");
    stuck_data.cmd("DATA");
    stuck_data.send(b"Subject: never ending");
    for _ in 0..20 {
        let (mut c, _) = Client::connect(sluice.addr);
        let r = c.send_mail("a@example.org", &["user@example.com"], "Subject: fine\r\n\r\nfine");
        assert_eq!(r.code, 250);
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(sluice.queued().len(), 20);
}
