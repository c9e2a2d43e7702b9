//! Power cuts, not process kills: the queue and the kv store live on a filesystem that
//! forgets everything not fsynced (`support::lazyfs`). Under load from several clients,
//! with the next hop up, the power goes at random moments and right after a `250`; the
//! server starts again on what the disk kept, and at the end once more on the backing
//! directory mounted plainly. Checked: every message that got a `250` is delivered,
//! byte for byte; nothing corrupt is delivered; replay needs no help; a recipient whose
//! delivery was durably recorded is never delivered again (duplicates only from the
//! window between the next hop's `250` and our record being durable, counted); bounces
//! that were queued arrive.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::crash_loop::{fixed_port, send_marked_to};
use crate::delivery::wait_until;
use crate::lazyfs::{backing, fuse_available};
use crate::support::Sluice;
use crate::support::lazyfs::{LazyFs, Rng, Switch};
use crate::support::sink::{Sink, SinkOptions, Transaction};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// The queue directory exists before the first start.
    Existing,
    /// Sluice creates the queue and kv directories itself, as on a fresh install.
    Fresh,
}

impl Setup {
    fn queue(self, root: &Path) -> PathBuf {
        match self {
            Setup::Existing => root.join("queue"),
            Setup::Fresh => root.join("spool/sluice"),
        }
    }
    fn kv(self, root: &Path) -> PathBuf {
        match self {
            Setup::Existing => root.join("queue/kv.redb"),
            Setup::Fresh => root.join("state/kv/kv.redb"),
        }
    }
}

/// The content a marker's message carries (before our `Received:` line).
fn content(marker: &str, n: u64) -> (String, String) {
    let line = format!("{marker}-0123456789abcdefghijklmnopqrstuvwxyz\r\n");
    // Mostly small, some tens of kilobytes: big batches, long writes to tear.
    let lines = if n.is_multiple_of(9) { 600 } else { 1 + (n % 40) as usize };
    let body = line.repeat(lines);
    let full = format!("Subject: {marker}\r\nX-Marker: {marker}\r\n\r\n{body}{marker}\r\n");
    (body, full)
}

fn recipients(n: u64) -> Vec<String> {
    let mut r = vec!["bob@example.com".to_string()];
    if n.is_multiple_of(7) {
        r.push("carol@example.com".into());
    }
    if n.is_multiple_of(5) {
        // Refused by the next hop: a bounce is queued for alice@example.org.
        r.push(format!("reject-{n}@example.com"));
    }
    r
}

fn marker_in(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    Some(text.split("X-Marker: ").nth(1)?.split("\r\n").next()?.to_string())
}

#[derive(Clone)]
struct Sent {
    n: u64,
}

/// A recipient of a message, or the bounce of that message.
type Key = (String, String);
const BOUNCE: &str = "<bounce>";

struct Cut {
    at: Instant,
    /// When the next start began: what reached the next hop before it (bytes already
    /// on the wire at the cut) was still sent by the machine that lost power.
    restarted: Instant,
    after_250: bool,
    /// What the disk still had to deliver.
    pending: HashSet<Key>,
    /// Messages in the durable queue (markers).
    queued: HashSet<String>,
    /// Markers whose bounce was queued while the disk still says it is owed: it will
    /// be queued again.
    bounce_again: HashSet<String>,
    report: crate::support::lazyfs::CutReport,
}

#[derive(Default, Debug)]
pub struct Figures {
    pub acked: usize,
    pub delivered: usize,
    pub lost: Vec<String>,
    pub corrupt: Vec<String>,
    pub window_duplicates: usize,
    /// How long before the cut the next hop had said `250` for each duplicate, ms.
    pub window_ms: Vec<u64>,
    pub bad_duplicates: Vec<String>,
    pub bounces: usize,
    /// Bounces queued twice: once before a cut, again after it (the record that the
    /// first was queued was not durable yet).
    pub bounces_twice: usize,
    pub replays: Vec<String>,
    pub damaged: usize,
    /// Cuts after which the kv database file was gone.
    pub kv_missing: usize,
}

/// One run: `cuts` power cuts under load, then a plain restart to drain.
pub fn run(setup: Setup, cuts: usize, seed: u64) -> Figures {
    let m = backing(|disk| {
        if setup == Setup::Existing {
            std::fs::create_dir(disk.join("queue")).unwrap();
        }
    });
    let sink = Sink::start(SinkOptions { reject_rcpt_prefix: Some("reject".into()), ..SinkOptions::default() });
    let port = fixed_port();
    let config = |root: &Path| {
        format!(
            "[server]\nhostname = \"relay.example.test\"\nlisten = [\"127.0.0.1:{port}\"]\n\n\
             [queue]\npath = \"{}\"\nretry = [\"1s\"]\n\n[kv]\npath = \"{}\"\n\n\
             [relay]\ndomains = [\"example.com\"]\n\n[limits]\nmax_connections_per_ip = 200\n\n\
             [delivery]\nunreachable_backoff = \"0s\"\n\n{}",
            setup.queue(root).display(),
            setup.kv(root).display(),
            sink.route("all", "\"*\"", "none")
        )
    };
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();

    let stop = Arc::new(AtomicBool::new(false));
    let armed = Arc::new(AtomicBool::new(false));
    let switch: Arc<Mutex<Option<Switch>>> = Arc::default();
    let acked: Arc<Mutex<HashMap<String, Sent>>> = Arc::default();
    let attempts = Arc::new(AtomicUsize::new(0));
    // POWER_LOSS_PAUSE_MS=0: more than the next hop can take, the queue grows.
    let pause_ms: u64 = std::env::var("POWER_LOSS_PAUSE_MS").ok().and_then(|s| s.parse().ok()).unwrap_or(4);
    let senders: Vec<_> = (0..4)
        .map(|worker| {
            let (stop, armed, switch, acked, attempts) =
                (Arc::clone(&stop), Arc::clone(&armed), Arc::clone(&switch), Arc::clone(&acked), Arc::clone(&attempts));
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let marker = format!("w{worker}-m{n}");
                    let (body, _) = content(&marker, n);
                    let rcpts = recipients(n);
                    let rcpts: Vec<&str> = rcpts.iter().map(String::as_str).collect();
                    attempts.fetch_add(1, Ordering::Relaxed);
                    match send_marked_to(addr, &marker, &body, &rcpts) {
                        Ok(true) => {
                            // Right after a 250: the cut lands before anything else can.
                            if armed.swap(false, Ordering::AcqRel)
                                && let Some(s) = switch.lock().unwrap().as_ref()
                            {
                                s.cut();
                            }
                            acked.lock().unwrap().insert(marker, Sent { n });
                        }
                        Ok(false) => std::thread::sleep(Duration::from_millis(5)),
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                    // Load the next hop can keep up with, so deliveries and their
                    // records are under way at every cut.
                    std::thread::sleep(Duration::from_millis(pause_ms));
                }
            })
        })
        .collect();

    let mut rng = Rng(seed);
    let mut history: Vec<Cut> = Vec::new();
    let mut replays = Vec::new();
    let mut damaged = 0;
    let mut kv_missing = 0;
    let started = Instant::now();
    for k in 0..cuts {
        let fs = LazyFs::mount(&m.disk, &m.mnt).expect("mount the lazy filesystem");
        let mut sluice = Sluice::start_in(tempfile::tempdir().unwrap(), &config(&m.mnt));
        let (replay, damage) = replay_found(&sluice);
        damaged += damage;
        replays.push(replay);
        fs.switch().runs(sluice.pid());
        *switch.lock().unwrap() = Some(fs.switch());
        std::thread::sleep(Duration::from_millis(300 + rng.below(900)));
        let after_250 = k % 2 == 1;
        let at = if after_250 {
            armed.store(true, Ordering::Release);
            let s = fs.switch();
            let _ = wait_until(Duration::from_secs(3), || !armed.load(Ordering::Acquire));
            s.cut()
        } else {
            fs.switch().cut()
        };
        armed.store(false, Ordering::Release);
        sluice.kill();
        let report = fs.cut_power(if k % 3 == 2 { None } else { Some(&mut rng) });
        // The kv store's file (and the directory made for it) survives every cut.
        if !setup.kv(&m.disk).is_file() {
            kv_missing += 1;
        }
        let (pending, queued, bounce_again) = durable_work(&setup.queue(&m.disk));
        history.push(Cut { at, restarted: Instant::now(), after_250, pending, queued, bounce_again, report });
    }
    let cuts_took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    // The backing directory plainly, the next hop up: everything acknowledged arrives.
    let final_start = Instant::now();
    let sluice = Sluice::start_in(tempfile::tempdir().unwrap(), &config(&m.disk));
    let (replay, damage) = replay_found(&sluice);
    damaged += damage;
    replays.push(replay);
    let expected: HashSet<Key> = acked
        .iter()
        .flat_map(|(marker, sent)| {
            recipients(sent.n).into_iter().map(move |r| {
                let key = if r.starts_with("reject") { BOUNCE.to_string() } else { r };
                (marker.clone(), key)
            })
        })
        .collect();
    let all_there = wait_until(Duration::from_secs(90), || {
        let got = deliveries(&sink.accepted());
        expected.iter().all(|k| got.contains_key(k))
    });
    let drained = wait_until(Duration::from_secs(30), || {
        sluice::queue::snapshot(&setup.queue(&m.disk)).is_ok_and(|s| s.messages.is_empty())
    });
    let logs = sluice.logs();
    drop(sluice);

    let accepted = sink.accepted();
    let got = deliveries(&accepted);
    let mut figures = Figures { acked: acked.len(), replays, damaged, kv_missing, ..Figures::default() };
    let mut lost: Vec<String> = expected.iter().filter(|k| !got.contains_key(*k)).map(|k| format!("{k:?}")).collect();
    lost.sort();
    figures.lost = lost;
    figures.delivered = acked.keys().filter(|m| got.contains_key(&((*m).clone(), "bob@example.com".into()))).count();
    figures.bounces = got.keys().filter(|(_, r)| r == BOUNCE).count();
    for t in &accepted {
        let Some(marker) = marker_in(&t.content) else { continue };
        if t.sender.is_empty() {
            continue;
        }
        let n = marker.rsplit("-m").next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let (_, full) = content(&marker, n);
        let text = String::from_utf8_lossy(&t.content);
        if !(text.starts_with("Received: ") && t.content.ends_with(full.as_bytes())) {
            figures.corrupt.push(marker);
        }
    }
    // Every further delivery of a recipient must be explained by a cut that found it
    // still pending on disk although the next hop already had it.
    for (key, times) in &got {
        for pair in times.windows(2) {
            let (first, again) = (pair[0], pair[1]);
            let cut = history.iter().find(|c| first < c.restarted && c.at < again);
            if key.1 == BOUNCE && history.iter().any(|c| c.at < again && c.bounce_again.contains(&key.0)) {
                // Queued once before a cut and once after it.
                figures.window_duplicates += 1;
                figures.bounces_twice += 1;
                continue;
            }
            match cut {
                Some(cut) if cut.pending.contains(key) => {
                    figures.window_duplicates += 1;
                    figures.window_ms.push(cut.at.saturating_duration_since(first).as_millis() as u64);
                }
                Some(_) => figures.bad_duplicates.push(format!("{key:?}: recorded as done before the cut")),
                None => {
                    let since = |t: Instant| {
                        if t > final_start {
                            t.duration_since(final_start).as_millis() as i64
                        } else {
                            -(final_start.duration_since(t).as_millis() as i64)
                        }
                    };
                    figures.bad_duplicates.push(format!(
                        "{key:?}: twice without a cut between ({} and {} ms after the final start)",
                        since(first),
                        since(again)
                    ))
                }
            }
        }
    }
    figures.window_ms.sort_unstable();
    let cut_after = history.iter().filter(|c| c.after_250).count();
    let torn: usize = history.iter().map(|c| c.report.torn.iter().filter(|t| t.1 < t.2).count()).sum();
    let lost_bytes: u64 = history.iter().map(|c| c.report.unsynced_bytes).sum();
    eprintln!(
        "REPORT power-loss {setup:?} (seed {seed:#x}, pause {pause_ms} ms): {cuts} cuts ({cut_after} right after a 250) in {:.1}s; \
         {} sent, {} acknowledged, {} of them delivered, {} lost, {} corrupt; {} bounces; \
         {} duplicates from the window (next hop's 250 {:?} ms before the cut; {} bounces queued twice), {} other duplicates; \
         {torn} files torn, {lost_bytes} unsynced bytes dropped; replay damaged records: {damaged}; kv file lost in {kv_missing} cuts; \
         queue drained: {drained}; all there: {all_there}",
        cuts_took.as_secs_f64(),
        attempts.load(Ordering::Relaxed),
        figures.acked,
        figures.delivered,
        figures.lost.len(),
        figures.corrupt.len(),
        figures.bounces,
        figures.window_duplicates,
        figures.window_ms,
        figures.bounces_twice,
        figures.bad_duplicates.len(),
    );
    for (k, (cut, replay)) in history.iter().zip(&figures.replays[1..]).enumerate() {
        eprintln!(
            "  cut {k:2}: {} queued on disk, {} to deliver; torn {:?}; restart: {replay}",
            cut.queued.len(),
            cut.pending.len(),
            cut.report.torn.iter().map(|(p, kept, of)| format!("{}:{kept}/{of}", p.display())).collect::<Vec<_>>()
        );
    }
    assert!(!logs.contains("panicked"), "the server panicked:\n{logs}");
    figures
}

/// What the start's replay reported, and how many damaged records.
fn replay_found(sluice: &Sluice) -> (String, usize) {
    let logs = sluice.logs();
    let ready = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["message"] == "queue ready")
        .unwrap_or_default();
    let damaged = ready["damaged_records"].as_u64().unwrap_or(0) as usize;
    (
        format!(
            "{} messages in {} segments, torn tail {} bytes, {damaged} damaged records",
            ready["messages"], ready["segments"], ready["torn_tail_bytes"]
        ),
        damaged,
    )
}

/// The recipients (and owed bounces) the durable queue still has to deliver, the
/// markers of the messages in it, and those whose bounce is both queued and owed.
fn durable_work(queue: &Path) -> (HashSet<Key>, HashSet<String>, HashSet<String>) {
    let (mut pending, mut queued) = (HashSet::new(), HashSet::new());
    let (mut bounces, mut owed_bounces) = (HashSet::new(), HashSet::new());
    let Ok(snapshot) = sluice::queue::snapshot(queue) else { return (pending, queued, bounces) };
    for entry in &snapshot.messages {
        let Some(marker) = snapshot.read_message(entry).ok().and_then(|b| marker_in(&b)) else { continue };
        let bounce = entry.envelope.sender.is_none();
        for (i, r) in entry.envelope.recipients.iter().enumerate() {
            let state = entry.state.recipient(i);
            let address = r.address.to_string();
            let key = if bounce || address.starts_with("reject") { BOUNCE.to_string() } else { address };
            // A refused recipient owes its bounce until the disk says it was queued: the
            // bounce itself may be on disk before that (or before the failure is).
            let owed = key == BOUNCE && !bounce && !(state.is_final() && state.notified);
            if owed {
                owed_bounces.insert(marker.clone());
            }
            if !state.is_final() || owed {
                pending.insert((marker.clone(), key));
            }
        }
        if bounce {
            bounces.insert(marker.clone());
        }
        queued.insert(marker);
    }
    let bounce_again = bounces.intersection(&owed_bounces).cloned().collect();
    (pending, queued, bounce_again)
}

/// When each recipient (or bounce) of our messages reached the next hop, in order.
fn deliveries(accepted: &[Transaction]) -> HashMap<Key, Vec<Instant>> {
    let mut got: HashMap<Key, Vec<Instant>> = HashMap::new();
    for t in accepted {
        let Some(marker) = marker_in(&t.content) else { continue };
        if t.sender.is_empty() {
            got.entry((marker, BOUNCE.into())).or_default().push(t.at);
        } else {
            for r in &t.recipients {
                got.entry((marker.clone(), r.clone())).or_default().push(t.at);
            }
        }
    }
    got
}

fn assert_clean(f: &Figures) {
    assert!(f.acked > 0, "nothing was acknowledged");
    assert!(f.lost.is_empty(), "{} acknowledged deliveries lost: {:?}", f.lost.len(), f.lost);
    assert!(f.corrupt.is_empty(), "corrupt deliveries: {:?}", f.corrupt);
    assert!(f.bad_duplicates.is_empty(), "duplicates not explained by the window: {:?}", f.bad_duplicates);
    assert_eq!(f.damaged, 0, "replay found damaged records: {:?}", f.replays);
    assert_eq!(f.kv_missing, 0, "the kv store's file was lost in {} cuts", f.kv_missing);
}

fn seed() -> u64 {
    std::env::var("POWER_LOSS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1
    })
}

#[test]
fn power_cuts_with_an_existing_queue_directory_lose_nothing_acknowledged() {
    if fuse_available() {
        assert_clean(&run(Setup::Existing, 20, seed()));
    }
}

#[test]
fn power_cuts_on_a_fresh_install_lose_nothing_acknowledged() {
    if fuse_available() {
        assert_clean(&run(Setup::Fresh, 20, seed()));
    }
}

/// The full figures: `cargo test --test integration power_loss_full -- --ignored --nocapture`
/// (20 cuts, 3 runs, both setups; several minutes).
#[test]
#[ignore]
fn power_loss_full() {
    if !fuse_available() {
        return;
    }
    let runs: usize = std::env::var("POWER_LOSS_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let cuts: usize = std::env::var("POWER_LOSS_CUTS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let mut all = Vec::new();
    for setup in [Setup::Existing, Setup::Fresh] {
        for _ in 0..runs {
            all.push(run(setup, cuts, seed()));
        }
    }
    all.iter().for_each(assert_clean);
}
