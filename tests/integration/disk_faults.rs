//! Disk faults under the queue: a file system that fills up, and one that stops taking
//! writes. The server must answer 451/452 (never 250) while it lasts, recover when it
//! clears, and leave a log that replays cleanly.
//!
//! The tests mount a small tmpfs or an ext4 image of their own, so they need root (and
//! CAP_SYS_ADMIN); elsewhere they are skipped with a message.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::delivery::wait_until;
use crate::support::client::Reply;
use crate::support::server::{base_config_with_queue, list_dir};
use crate::support::sink::{Sink, SinkOptions};
use crate::support::{Client, Sluice};

/// A file system mounted for one test; unmounted on drop (the server must be gone by
/// then: declare the mount before the server so that it drops after it).
struct Mount {
    point: PathBuf,
    /// Holds the mount point (and the image of a loop mount).
    dir: TempDir,
    image: Option<PathBuf>,
    options: String,
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    match Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!("{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim())),
        Err(e) => Err(format!("{program}: {e}")),
    }
}

fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why}");
}

impl Mount {
    fn can_mount(test: &str) -> bool {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            skip(test, "not running as root (mounting a test file system needs it)");
            return false;
        }
        true
    }

    fn tmpfs(test: &str, size: &str) -> Option<Mount> {
        if !Mount::can_mount(test) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let point = dir.path().join("fs");
        std::fs::create_dir(&point).unwrap();
        let options = format!("size={size},mode=0755");
        if let Err(e) = run("mount", &["-t", "tmpfs", "-o", &options, "tmpfs", point.to_str().unwrap()]) {
            skip(test, &format!("cannot mount a tmpfs: {e}"));
            return None;
        }
        Some(Mount { point, dir, image: None, options })
    }

    /// An ext4 image on a loop device; `errors=remount-ro` as production mounts often are.
    fn ext4(test: &str, size_mb: u64) -> Option<Mount> {
        if !Mount::can_mount(test) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fs.img");
        std::fs::File::create(&image).unwrap().set_len(size_mb << 20).unwrap();
        if let Err(e) = run("mkfs.ext4", &["-q", "-F", image.to_str().unwrap()]) {
            skip(test, &format!("cannot make an ext4 file system: {e}"));
            return None;
        }
        let point = dir.path().join("fs");
        std::fs::create_dir(&point).unwrap();
        let mount = Mount { point, dir, image: Some(image), options: "loop,errors=remount-ro".into() };
        if let Err(e) = mount.mount() {
            skip(test, &format!("cannot loop-mount an ext4 image: {e}"));
            return None;
        }
        Some(mount)
    }

    fn mount(&self) -> Result<(), String> {
        let image = self.image.as_ref().expect("an image").to_str().unwrap();
        run("mount", &["-t", "ext4", "-o", &self.options, image, self.point.to_str().unwrap()])
    }

    fn unmount(&self) -> Result<(), String> {
        let mut result = Ok(());
        for _ in 0..50 {
            result = run("umount", &[self.point.to_str().unwrap()]);
            if result.is_ok() {
                return result;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        result
    }

    /// The loop device's name, as under /sys/fs/ext4/.
    fn device(&self) -> Option<String> {
        let out = Command::new("findmnt").args(["-no", "SOURCE"]).arg(&self.point).output().ok()?;
        let source = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let name = Path::new(&source).file_name()?.to_str()?.to_string();
        name.starts_with("loop").then_some(name)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.unmount().is_err() {
            let _ = run("umount", &["-l", self.point.to_str().unwrap()]);
        }
        let _ = &self.dir;
    }
}

/// Sets or clears a flag on every file and directory under `root` (not on sockets,
/// which do not take flags).
fn chattr(root: &Path, flag: &str) -> Result<(), String> {
    let mut paths = vec![root.to_str().unwrap().to_string()];
    let mut i = 0;
    while i < paths.len() {
        let path = PathBuf::from(&paths[i]);
        if path.is_dir() && !path.is_symlink() {
            for entry in std::fs::read_dir(&path).map_err(|e| e.to_string())? {
                let entry = entry.map_err(|e| e.to_string())?;
                let kind = entry.file_type().map_err(|e| e.to_string())?;
                if kind.is_file() || kind.is_dir() {
                    paths.push(entry.path().to_str().unwrap().to_string());
                }
            }
        }
        i += 1;
    }
    let args: Vec<&str> = std::iter::once(flag).chain(paths.iter().map(String::as_str)).collect();
    run("chattr", &args)
}

/// A server whose queue directory is the mounted file system, delivering to `sink`.
fn server_on(mount: &Mount, sink: &Sink) -> Sluice {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&mount.point, dir.path().join("queue")).unwrap();
    let config = base_config_with_queue(
        "retry = [\"1s\"]\n",
        &format!("[delivery]\nunreachable_backoff = \"0s\"\n{}", sink.route("all", "\"*\"", "none")),
    );
    Sluice::start_in(dir, &config)
}

/// One message of about `size` bytes carrying `marker`; returns the final reply (or
/// the first refusal on the way).
fn send(sluice: &Sluice, marker: &str, size: usize) -> Reply {
    let (mut c, _) = Client::connect(sluice.addr);
    assert_eq!(c.cmd("EHLO client.example").code, 250);
    let mail = c.cmd("MAIL FROM:<alice@example.org>");
    if mail.code != 250 {
        return mail;
    }
    assert_eq!(c.cmd("RCPT TO:<bob@example.com>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    let line = format!("{}\r\n", "0123456789abcdef".repeat(4));
    let body = line.repeat(size / line.len() + 1);
    c.send(format!("Subject: {marker}\r\nX-Marker: {marker}\r\n\r\n{body}{marker}\r\n.\r\n").as_bytes());
    let reply = c.read_reply();
    // A refused message leaves the session usable.
    assert_eq!(c.cmd("RSET").code, 250, "session broken after {reply:?}");
    reply
}

fn markers(sink: &Sink) -> Vec<String> {
    sink.accepted()
        .iter()
        .map(|t| {
            let text = String::from_utf8_lossy(&t.content).into_owned();
            let marker = text.split("X-Marker: ").nth(1).and_then(|r| r.split("\r\n").next()).unwrap_or("").to_string();
            assert!(text.ends_with(&format!("{marker}\r\n")), "{marker} arrived incomplete");
            marker
        })
        .collect()
}

/// Refusals during a fault: 451 4.3.0 or 452 4.3.1, never a 250.
fn assert_refused(reply: &Reply, what: &str) {
    assert!(
        matches!((reply.code, reply.status()), (451, "4.3.0") | (452, "4.3.1")),
        "{what}: expected 451 4.3.0 or 452 4.3.1, got {reply:?}"
    );
}

/// Restarts the server on the same queue and checks the log replays cleanly.
fn restart_and_check_replay(sluice: &mut Sluice) {
    sluice.kill();
    sluice.start_again();
    let logs = sluice.logs();
    assert!(!logs.contains("damaged queue record"), "damage after the fault:\n{logs}");
    let ready = logs.lines().rfind(|l| l.contains("queue ready")).expect("queue ready");
    let ready: serde_json::Value = serde_json::from_str(ready).unwrap();
    assert_eq!(ready["torn_tail_bytes"], 0, "a partial record was left in the log: {ready}");
    // The read-only replay agrees (and asserts there is no damage).
    let _ = sluice.queued();
}

#[test]
fn a_full_disk_gets_452_never_250_and_the_queue_recovers_when_space_returns() {
    const TEST: &str = "disk_faults::a_full_disk";
    let Some(mount) = Mount::tmpfs(TEST, "8m") else { return };
    let sink = Sink::start(SinkOptions::default());
    let mut sluice = server_on(&mount, &sink);

    assert_eq!(send(&sluice, "before", 2_000).code, 250);
    assert!(wait_until(Duration::from_secs(20), || markers(&sink).contains(&"before".to_string())));

    // Fill the file system to the last page.
    let filler = mount.point.join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).unwrap();
        for block in [1 << 20, 4096, 1] {
            let chunk = vec![0u8; block];
            while file.write_all(&chunk).is_ok() {}
        }
        let _ = file.sync_all();
    }
    // Messages that need a new page of the log, and one big enough to spill to tmp/.
    let (mut refused, mut replies) = (Vec::new(), Vec::new());
    for (i, size) in [16_000, 60_000, 400_000, 16_000].into_iter().enumerate() {
        let marker = format!("full-{i}");
        let reply = send(&sluice, &marker, size);
        assert_refused(&reply, &format!("{size}-byte message on a full disk"));
        replies.push(format!("{size} B: {} {}", reply.code, reply.status()));
        refused.push(marker);
    }
    eprintln!("REPORT disk-full: while full: {}; recovered without a restart", replies.join(", "));

    // Space comes back: so does the service, without a restart.
    std::fs::remove_file(&filler).unwrap();
    for i in 0..3 {
        let reply = send(&sluice, &format!("after-{i}"), [16_000, 400_000, 100][i]);
        assert_eq!(reply.code, 250, "after the disk was freed: {reply:?}");
    }
    let wanted = ["before", "after-0", "after-1", "after-2"];
    assert!(
        wait_until(Duration::from_secs(20), || wanted.iter().all(|m| markers(&sink).contains(&m.to_string()))),
        "{:?}\n{}",
        markers(&sink),
        sluice.logs()
    );
    assert!(wait_until(Duration::from_secs(10), || sluice.queued().is_empty()));
    restart_and_check_replay(&mut sluice);
    assert_eq!(send(&sluice, "after-restart", 1_000).code, 250);
    assert!(wait_until(Duration::from_secs(20), || markers(&sink).contains(&"after-restart".to_string())));
    std::thread::sleep(Duration::from_millis(300));
    let got = markers(&sink);
    for m in &refused {
        assert!(!got.contains(m), "{m} was refused but delivered anyway");
    }
    for m in wanted.iter().chain(&["after-restart"]) {
        assert_eq!(got.iter().filter(|g| g == m).count(), 1, "{m}: {got:?}");
    }
    assert!(list_dir(&sluice.queue_dir().join("tmp")).is_empty(), "spill files left behind");
    drop(sluice);
}

#[test]
fn a_read_only_queue_gets_451_never_250_and_recovers() {
    const TEST: &str = "disk_faults::a_read_only_queue";
    let Some(mount) = Mount::ext4(TEST, 32) else { return };
    let sink = Sink::start(SinkOptions::default());
    let mut sluice = server_on(&mount, &sink);

    assert_eq!(send(&sluice, "before", 2_000).code, 250);
    assert!(wait_until(Duration::from_secs(20), || markers(&sink).contains(&"before".to_string())));

    // 1. Every file and directory of the queue becomes immutable: writes to the open log
    // fail (EPERM), and nothing can be created. (A plain `mount -o remount,ro` is refused
    // with EBUSY while the server holds the log open for writing.)
    if let Err(e) = chattr(&mount.point, "+i") {
        skip(TEST, &format!("chattr: {e}"));
        return;
    }
    let (mut refused, mut replies) = (Vec::new(), Vec::new());
    let mut wanted = vec!["before", "writable-0", "writable-1"];
    for (i, size) in [100, 16_000, 400_000].into_iter().enumerate() {
        let marker = format!("immutable-{i}");
        let reply = send(&sluice, &marker, size);
        assert_refused(&reply, &format!("{size}-byte message on an unwritable queue"));
        replies.push(format!("immutable {size} B: {} {}", reply.code, reply.status()));
        refused.push(marker);
    }
    chattr(&mount.point, "-i").unwrap();
    for i in 0..2 {
        let reply = send(&sluice, &format!("writable-{i}"), [100, 400_000][i]);
        assert_eq!(reply.code, 250, "after the queue was writable again: {reply:?}");
    }
    assert!(
        wait_until(Duration::from_secs(20), || ["writable-0", "writable-1"]
            .iter()
            .all(|m| markers(&sink).contains(&m.to_string()))),
        "{}",
        sluice.logs()
    );
    assert!(wait_until(Duration::from_secs(10), || sluice.queued().is_empty()));
    restart_and_check_replay(&mut sluice);

    // 2. The file system goes read-only as ext4 does on an error (errors=remount-ro):
    // EROFS for everything, until it is mounted again.
    let trigger = mount.device().map(|d| PathBuf::from(format!("/sys/fs/ext4/{d}/trigger_fs_error")));
    match trigger.filter(|t| t.exists()) {
        None => skip(TEST, "no /sys/fs/ext4/*/trigger_fs_error: the emergency read-only part is skipped"),
        Some(trigger) => {
            assert_eq!(send(&sluice, "before-ro", 100).code, 250);
            std::fs::write(&trigger, "1").unwrap();
            for (i, size) in [100, 16_000, 400_000].into_iter().enumerate() {
                let marker = format!("read-only-{i}");
                let reply = send(&sluice, &marker, size);
                assert_refused(&reply, &format!("{size}-byte message on a read-only file system"));
                replies.push(format!("EROFS {size} B: {} {}", reply.code, reply.status()));
                refused.push(marker);
            }
            // Clearing it takes a remount, so the server has to let go of its files.
            sluice.kill();
            mount.unmount().unwrap();
            mount.mount().unwrap();
            sluice.start_again();
            assert!(!sluice.logs().contains("damaged queue record"), "{}", sluice.logs());
            assert_eq!(send(&sluice, "remounted", 100).code, 250);
            wanted.extend(["before-ro", "remounted"]);
        }
    }
    assert!(
        wait_until(Duration::from_secs(20), || wanted.iter().all(|m| markers(&sink).contains(&m.to_string()))),
        "{:?}\n{}",
        markers(&sink),
        sluice.logs()
    );
    std::thread::sleep(Duration::from_millis(300));
    let got = markers(&sink);
    for m in &refused {
        assert!(!got.contains(m), "{m} was refused but delivered anyway");
    }
    eprintln!(
        "REPORT read-only-queue: {}; {} messages delivered around the faults, none of the refused",
        replies.join(", "),
        got.len()
    );
    drop(sluice);
}
