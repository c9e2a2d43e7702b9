//! SIGKILL again and again under continuous load (Postfix's smtp-source plus senders
//! of our own whose messages are identifiable): every acknowledged message reaches the
//! next hop at least once. Duplicates are allowed (at-least-once) and reported.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::delivery::wait_until;
use crate::support::Sluice;
use crate::support::server::base_config_with_queue;
use crate::support::sink::{Sink, SinkOptions, Transaction};

const ROUNDS: usize = 20;

/// Where Postfix's load generator is, if installed.
fn smtp_source() -> Option<String> {
    if std::path::Path::new("/usr/sbin/smtp-source").exists() {
        return Some("/usr/sbin/smtp-source".into());
    }
    let out = Command::new("sh").args(["-c", "command -v smtp-source"]).output().ok()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!path.is_empty()).then_some(path)
}

/// One message with `marker`, tolerating a server that dies at any point. True only
/// if the final reply was 250.
fn send_marked(addr: SocketAddr, marker: &str, body: &str) -> std::io::Result<bool> {
    send_marked_to(addr, marker, body, &["bob@example.com"])
}

/// [`send_marked`] to these recipients (all must be accepted).
pub fn send_marked_to(addr: SocketAddr, marker: &str, body: &str, rcpts: &[&str]) -> std::io::Result<bool> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut reply = || -> std::io::Result<u16> {
        let mut code = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            code = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(code);
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(code);
            }
        }
    };
    let mut step = |line: &str, expected: u16, reply: &mut dyn FnMut() -> std::io::Result<u16>| {
        writer.write_all(line.as_bytes())?;
        Ok::<bool, std::io::Error>(reply()? == expected)
    };
    if reply()? != 220
        || !step("EHLO client.example\r\n", 250, &mut reply)?
        || !step("MAIL FROM:<alice@example.org>\r\n", 250, &mut reply)?
    {
        return Ok(false);
    }
    for rcpt in rcpts {
        if !step(&format!("RCPT TO:<{rcpt}>\r\n"), 250, &mut reply)? {
            return Ok(false);
        }
    }
    if !step("DATA\r\n", 354, &mut reply)? {
        return Ok(false);
    }
    let content = format!("Subject: {marker}\r\nX-Marker: {marker}\r\n\r\n{body}{marker}\r\n.\r\n");
    let acknowledged = step(&content, 250, &mut reply)?;
    let _ = writer.write_all(b"QUIT\r\n");
    Ok(acknowledged)
}

fn marker_of(t: &Transaction) -> Option<String> {
    let text = String::from_utf8_lossy(&t.content);
    let marker = text.split("X-Marker: ").nth(1)?.split("\r\n").next()?.to_string();
    assert!(text.ends_with(&format!("{marker}\r\n")), "{marker} arrived incomplete");
    Some(marker)
}

/// Runs smtp-source against `addr` until `stop`, starting it again whenever it gives up
/// (it exits when the server is down). Returns how many times it was started.
fn background_load(program: String, addr: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut starts = 0;
        while !stop.load(Ordering::Relaxed) {
            let child: std::io::Result<Child> = Command::new(&program)
                .args(["-s", "4", "-m", "1000000", "-l", "2000", "-f", "load@example.org", "-t", "load@example.com"])
                .arg(addr.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            let Ok(mut child) = child else { return starts };
            starts += 1;
            loop {
                if stop.load(Ordering::Relaxed) {
                    let _ = child.kill();
                    let _ = child.wait();
                    return starts;
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        starts
    })
}

/// A free port below the ephemeral range: while the server is down between a kill and
/// its restart, no outgoing connection of a parallel test can take it.
pub fn fixed_port() -> u16 {
    let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next().and_then(|p| p.parse().ok()))
        .unwrap_or(32768);
    let (first, span) = if low > 12_000 { (10_000, low - 10_000) } else { (low, 1000) };
    // Each call in this process starts elsewhere: tests run in parallel, and two that
    // were handed the same port would restart their servers onto each other's.
    static HANDED_OUT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let nth = HANDED_OUT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let start = (std::process::id() as u16).wrapping_add(nth.wrapping_mul(101)) % span;
    (0..span)
        .map(|i| first + (start + i) % span)
        .find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("a free port")
}

#[test]
fn twenty_sigkills_under_load_lose_no_acknowledged_message() {
    let Some(program) = smtp_source() else {
        eprintln!("SKIPPED crash_loop: smtp-source (Postfix) is not installed");
        return;
    };
    let sink = Sink::start(SinkOptions::default());
    // A fixed port, so that the load finds the server again after each restart.
    let port = fixed_port();
    let config = base_config_with_queue(
        "retry = [\"1s\"]\n",
        &format!(
            "[limits]\nmax_connections_per_ip = 200\n[delivery]\nunreachable_backoff = \"0s\"\n{}",
            sink.route("all", "\"*\"", "none")
        ),
    )
    .replace("listen = [\"127.0.0.1:0\"]", &format!("listen = [\"127.0.0.1:{port}\"]"));
    let mut sluice = Sluice::start_in(tempfile::tempdir().unwrap(), &config);
    let addr = sluice.addr;

    let stop = Arc::new(AtomicBool::new(false));
    let load = background_load(program, addr, Arc::clone(&stop));
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let attempts = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..3)
        .map(|worker| {
            let (acknowledged, attempts, stop) = (Arc::clone(&acknowledged), Arc::clone(&attempts), Arc::clone(&stop));
            std::thread::spawn(move || {
                // Some messages big enough for a kill to land mid-transfer or mid-write.
                let small = "x\r\n".to_string();
                let big = format!("{}\r\n", "0123456789".repeat(7)).repeat(600);
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let marker = format!("w{worker}-m{n}");
                    attempts.fetch_add(1, Ordering::Relaxed);
                    match send_marked(addr, &marker, if n % 4 == 0 { &big } else { &small }) {
                        Ok(true) => acknowledged.lock().unwrap().push(marker),
                        Ok(false) => {}
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                    // Steady load, not a benchmark: the queue has to drain afterwards.
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();

    // Kill at irregular moments: 200-600 ms apart (a fixed-seed xorshift, printed).
    let started = Instant::now();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15 ^ u64::from(port);
    let seed0 = seed;
    let mut acked_at_kill = Vec::new();
    for _ in 0..ROUNDS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(200 + seed % 400));
        acked_at_kill.push(acknowledged.lock().unwrap().len());
        sluice.kill();
        sluice.start_again();
        assert_eq!(sluice.addr, addr);
    }
    let rounds_took = started.elapsed();
    // Some load after the last restart too, then stop it.
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    let smtp_source_starts = load.join().unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();
    let progressed = acked_at_kill.windows(2).filter(|w| w[1] > w[0]).count();
    assert!(
        progressed >= ROUNDS / 2,
        "the load did not get through between kills: {acked_at_kill:?}\n{}",
        sluice.logs()
    );

    // Everything acknowledged arrives, at least once.
    let delivered = || -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for t in sink.accepted() {
            if let Some(marker) = marker_of(&t) {
                *counts.entry(marker).or_insert(0) += 1;
            }
        }
        counts
    };
    let all_there = wait_until(Duration::from_secs(60), || {
        let got = delivered();
        acknowledged.iter().all(|m| got.contains_key(m))
    });
    let got = delivered();
    let missing: Vec<&String> = acknowledged.iter().filter(|m| !got.contains_key(*m)).collect();
    assert!(all_there, "{} acknowledged messages never delivered: {missing:?}", missing.len());
    assert!(wait_until(Duration::from_secs(30), || sluice.queued().is_empty()), "the queue did not drain");
    let logs = sluice.logs();
    assert!(!logs.contains("damaged queue record"), "a kill damaged the queue");
    assert!(!logs.contains("panicked"), "the server panicked");

    let ours: usize = acknowledged.iter().map(|m| got[m]).sum();
    let duplicates = ours - acknowledged.len();
    let unacknowledged_delivered = got.len() - acknowledged.len();
    let background = sink.accepted().iter().filter(|t| t.sender == "load@example.org").count();
    eprintln!(
        "REPORT crash-loop: {ROUNDS} SIGKILL rounds in {:.1}s (seed {seed0:#x}); {} of {} own messages acknowledged, all delivered, {duplicates} duplicate deliveries ({:.2}%), {unacknowledged_delivered} unacknowledged also delivered; smtp-source started {smtp_source_starts} times, {background} of its messages delivered",
        rounds_took.as_secs_f64(),
        acknowledged.len(),
        attempts.load(Ordering::Relaxed),
        100.0 * duplicates as f64 / acknowledged.len().max(1) as f64,
    );
}
