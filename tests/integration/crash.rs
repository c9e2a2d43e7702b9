//! Crash safety: whatever got 250 survives SIGKILL intact, and nothing half-written
//! is ever listed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::client::queued_id;
use crate::support::server::{list_dir, read_queue_file};
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
    assert!(corrupt.is_empty(), "a fully written file failed verification: {corrupt:?}");
    assert!(list_dir(&sluice.queue_dir().join("tmp")).is_empty(), "half-written files survived the restart");

    let listed = sluice.queue_list();
    let listed_ids: Vec<&str> = listed.iter().map(|m| m["id"].as_str().unwrap()).collect();
    for (id, marker) in &acknowledged {
        assert!(listed_ids.contains(&id.as_str()), "acknowledged {id} lost");
        let (_, message) = read_queue_file(&sluice.queue_dir().join("messages").join(id));
        assert!(String::from_utf8_lossy(&message).ends_with(&format!("{marker}\r\n")), "{id} incomplete");
    }
    // Anything else listed is complete too (acknowledged just as the kill landed).
    for file in sluice.queued_files() {
        let (_, message) = read_queue_file(&file);
        assert!(message.ends_with(b"\r\n"));
    }
    assert!(listed.iter().all(|m| m["error"].is_null()), "unreadable entries listed");
}

#[test]
fn corrupt_and_truncated_queue_files_are_moved_aside_at_start() {
    let mut sluice = Sluice::start("");
    for i in 0..3 {
        let (mut c, _) = Client::connect(sluice.addr);
        assert_eq!(c.send_mail("a@example.org", &["user@example.com"], &format!("Subject: {i}\r\n\r\nx")).code, 250);
    }
    sluice.kill();
    let files = sluice.queued_files();
    // Truncate one, flip a byte in another.
    let bytes = std::fs::read(&files[0]).unwrap();
    std::fs::write(&files[0], &bytes[..bytes.len() - 10]).unwrap();
    let mut bytes = std::fs::read(&files[1]).unwrap();
    let last = bytes.len() - 8;
    bytes[last] ^= 1;
    std::fs::write(&files[1], &bytes).unwrap();
    sluice.restart();
    assert_eq!(sluice.queued_files(), vec![files[2].clone()]);
    let corrupt = list_dir(&sluice.queue_dir().join("corrupt"));
    assert_eq!(corrupt.len(), 2);
    assert!(sluice.logs().contains("corrupt queue file moved aside"));
}
