//! Crash safety: whatever got 250 survives SIGKILL intact, and nothing half-written
//! is ever listed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::client::queued_id;
use crate::support::server::list_dir;
use crate::support::{Client, Sluice};

#[test]
fn sigkill_while_clients_send_loses_nothing_acknowledged() {
    let mut sluice = Sluice::start("[limits]\nmax_connections_per_ip = 100\n");
    let addr = sluice.addr;
    let acknowledged: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..8)
        .map(|worker| {
            let acknowledged = Arc::clone(&acknowledged);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let marker = format!("worker {worker} message {n}");
                    // Big enough that kills land mid-transfer too.
                    let body = format!(
                        "Subject: {marker}\r\n\r\n{}{marker}",
                        format!("{}\r\n", "0123456789".repeat(7)).repeat(400)
                    );
                    let result = std::panic::catch_unwind(|| {
                        let (mut c, _) = Client::connect(addr);
                        c.send_mail("a@example.org", &["user@example.com"], &body)
                    });
                    match result {
                        Ok(reply) if reply.code == 250 => {
                            acknowledged.lock().unwrap().insert(queued_id(&reply).unwrap(), marker);
                        }
                        _ => break, // the server died mid-conversation
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    sluice.kill();
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        let _ = s.join();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() > 20, "too few messages before the kill: {}", acknowledged.len());

    sluice.restart();
    let corrupt = list_dir(&sluice.queue_dir().join("corrupt"));
    assert!(corrupt.is_empty(), "acknowledged data failed verification: {corrupt:?}");
    assert!(list_dir(&sluice.queue_dir().join("tmp")).is_empty(), "half-received messages survived the restart");

    let queued = sluice.queued();
    let listed = sluice.queue_list();
    assert_eq!(listed.len(), queued.len());
    for (id, marker) in &acknowledged {
        let message = queued.iter().find(|q| &q.id == id).unwrap_or_else(|| panic!("acknowledged {id} lost"));
        assert!(String::from_utf8_lossy(&message.message).ends_with(&format!("{marker}\r\n")), "{id} incomplete");
    }
    // Anything else listed is complete too (acknowledged just as the kill landed).
    for q in &queued {
        assert!(q.message.ends_with(b"\r\n"), "{} is incomplete", q.id);
    }
}

#[test]
fn damaged_and_torn_records_are_detected_at_start_and_never_listed() {
    let mut sluice = Sluice::start("");
    for i in 0..3 {
        let (mut c, _) = Client::connect(sluice.addr);
        assert_eq!(c.send_mail("a@example.org", &["user@example.com"], &format!("Subject: {i}\r\n\r\nx")).code, 250);
    }
    sluice.kill();
    let ids: Vec<String> = sluice.queued().iter().map(|q| q.id.clone()).collect();
    let segment = list_dir(&sluice.queue_dir().join("segments")).pop().unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    // Flip a byte inside the second message's record, and add half a record at the end.
    // (Message records are kind 1; delivery writes state records in between.)
    let second = bytes.windows(5).enumerate().filter(|(_, w)| w == b"SQRC\x01").nth(1).unwrap().0;
    bytes[second + 100] ^= 0x55;
    bytes.extend_from_slice(b"SQRC\x01\0\0\0\x40\0\0\0torn");
    std::fs::write(&segment, &bytes).unwrap();
    sluice.restart();
    let queued: Vec<String> = sluice.queued().iter().map(|q| q.id.clone()).collect();
    assert_eq!(queued, vec![ids[0].clone(), ids[2].clone()], "the damaged message is never delivered");
    assert_eq!(list_dir(&sluice.queue_dir().join("corrupt")).len(), 1, "the damaged segment is kept aside");
    assert!(sluice.logs().contains("damaged queue record skipped"));
    // (Delivery appends state records after the restart, so the file size says
    // nothing; the start-up report does.)
    let logs = sluice.logs();
    let ready = logs.lines().rfind(|l| l.contains("queue ready")).unwrap();
    let ready: serde_json::Value = serde_json::from_str(ready).unwrap();
    assert!(ready["torn_tail_bytes"].as_u64().unwrap() > 0, "torn tail cut: {ready}");
}
