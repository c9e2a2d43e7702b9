//! Starts and stops the real server binary.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_sluice");

/// A running server with its own directory (config, queue, certificates).
pub struct Sluice {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub addrs: Vec<SocketAddr>,
    pub dir: TempDir,
    pub config_path: PathBuf,
    logs: Arc<Mutex<String>>,
}

/// A config listening on an ephemeral port with its queue in the test directory.
/// `extra` is appended; it may add sections and keys of sections not given here.
pub fn base_config(extra: &str) -> String {
    base_config_with_queue("", extra)
}

/// [`base_config`] with more `[queue]` keys (retry schedule, max_age...).
pub fn base_config_with_queue(queue: &str, extra: &str) -> String {
    let mut config = format!(
        "[server]\nhostname = \"relay.example.test\"\nlisten = [\"127.0.0.1:0\"]\n\n[queue]\npath = \"queue\"\n{queue}\n"
    );
    if !extra.contains("[relay]") {
        config.push_str("[relay]\ndomains = [\"example.com\"]\n\n");
    }
    config.push_str(extra);
    config
}

impl Sluice {
    /// Starts a server with [`base_config`] plus `extra`.
    pub fn start(extra: &str) -> Sluice {
        let dir = tempfile::tempdir().expect("tempdir");
        Sluice::start_in(dir, &base_config(extra))
    }

    /// Starts a server with [`base_config_with_queue`].
    pub fn start_with_queue(queue: &str, extra: &str) -> Sluice {
        let dir = tempfile::tempdir().expect("tempdir");
        Sluice::start_in(dir, &base_config_with_queue(queue, extra))
    }

    /// Starts a server with exactly this config text, written into `dir`.
    pub fn start_in(dir: TempDir, config: &str) -> Sluice {
        let config_path = dir.path().join("sluice.toml");
        std::fs::write(&config_path, config).expect("write config");
        let mut sluice = Sluice {
            child: None,
            addr: "127.0.0.1:0".parse().unwrap(),
            addrs: Vec::new(),
            dir,
            config_path,
            logs: Arc::new(Mutex::new(String::new())),
        };
        sluice.launch();
        sluice
    }

    fn launch(&mut self) {
        let mut child = Command::new(BIN)
            .args(["--log-format", "json", "serve", "--config"])
            .arg(&self.config_path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sluice");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        let logs = Arc::clone(&self.logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Logged first, so a test that saw the server ready also sees its logs.
                logs.lock().unwrap().push_str(&line);
                logs.lock().unwrap().push('\n');
                if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) {
                    if event["message"] == "listening"
                        && let Some(addr) = event["address"].as_str().and_then(|a| a.parse::<SocketAddr>().ok())
                    {
                        let _ = tx.send(Some(addr));
                    }
                    if event["message"] == "queue ready" {
                        let _ = tx.send(None);
                    }
                }
            }
        });
        self.child = Some(child);
        self.addrs.clear();
        // Collect every "listening" line; they follow "queue ready" in one burst.
        let mut ready = false;
        loop {
            match rx.recv_timeout(if self.addrs.is_empty() {
                Duration::from_secs(60)
            } else {
                Duration::from_millis(200)
            }) {
                Ok(Some(addr)) => self.addrs.push(addr),
                Ok(None) => ready = true,
                Err(_) => break,
            }
        }
        assert!(ready && !self.addrs.is_empty(), "sluice did not start:\n{}", self.logs());
        self.addr = self.addrs[0];
    }

    /// Everything the server logged so far (JSON lines).
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.logs().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The server's resident memory now (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS:")
    }

    /// The most resident memory the server has had (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmHWM:")
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends a signal (SIGTERM, SIGHUP, ...) to the server.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.pid() as libc::pid_t, signal);
        }
    }

    /// SIGTERM, then waits for the process to exit; returns its exit code.
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        self.signal(libc::SIGTERM);
        let mut child = self.child.take()?;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again (after `kill` or `terminate`) on the same config and queue.
    pub fn start_again(&mut self) {
        self.launch();
    }

    /// The address a JSON log line with `message` reported in its `address` field.
    pub fn logged_address(&self, message: &str) -> Option<SocketAddr> {
        assert!(self.wait_for_log(message, Duration::from_secs(10)), "no {message:?} in the log");
        self.logs().lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).find_map(|event| {
            (event["message"] == message).then(|| event["address"].as_str().and_then(|a| a.parse().ok())).flatten()
        })
    }

    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    pub fn queue_dir(&self) -> PathBuf {
        self.dir.path().join("queue")
    }

    /// The queued messages, read with the library's own read-only replay.
    pub fn queued(&self) -> Vec<Queued> {
        let snapshot = sluice::queue::snapshot(&self.queue_dir()).expect("read the queue");
        assert!(snapshot.damage.is_empty(), "damaged queue records: {:?}", snapshot.damage);
        snapshot
            .messages
            .iter()
            .map(|entry| Queued {
                id: entry.envelope.id.to_string(),
                envelope: serde_json::to_value(&*entry.envelope).unwrap(),
                state: serde_json::to_value(&entry.state).unwrap(),
                message: snapshot.read_message(entry).expect("read message"),
            })
            .collect()
    }

    /// Runs `sluice ARGS...` against this server's config and returns (status, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(BIN).args(args).output().expect("run sluice");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `sluice queue list --json` parsed.
    pub fn queue_list(&self) -> Vec<serde_json::Value> {
        let config = self.config_path.to_str().unwrap();
        let (status, stdout, stderr) = self.cli(&["queue", "list", "--config", config, "--json"]);
        assert_eq!(status, 0, "queue list failed: {stderr}");
        serde_json::from_str::<Vec<serde_json::Value>>(&stdout).expect("queue list JSON")
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `kB` field of `/proc/PID/status`.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

pub fn list_dir(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// One queued message: its envelope and state as JSON, and its bytes.
#[derive(Debug, Clone)]
pub struct Queued {
    pub id: String,
    pub envelope: serde_json::Value,
    pub state: serde_json::Value,
    pub message: Vec<u8>,
}

impl Queued {
    pub fn parts(&self) -> (serde_json::Value, Vec<u8>) {
        (self.envelope.clone(), self.message.clone())
    }
}
