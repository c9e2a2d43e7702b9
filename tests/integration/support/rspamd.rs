//! A real rspamd for the tests: the test tree's self-contained config
//! (`tests/fixtures/rspamd/`: no modules that touch the network, no Redis), run as the
//! current user with its pid, database and log under a temporary directory, on
//! loopback ports of its own.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub struct Rspamd {
    child: Child,
    dir: TempDir,
    /// The normal worker (`/checkv2`).
    pub port: u16,
    /// The `rspamd_proxy` worker in milter mode, scanning itself.
    pub milter_port: u16,
}

/// A port nothing listens on (and nothing will, for a while: ephemeral ports rotate).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rspamd")
}

/// Whether rspamd is installed (the test command installs it).
pub fn available() -> bool {
    Command::new("rspamd").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// The body of `GET /ping`, if the worker answers.
fn ping(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(b"GET /ping HTTP/1.0\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

impl Rspamd {
    /// Starts rspamd and waits until the normal worker answers `/ping` (its start-up
    /// takes seconds on a busy machine).
    pub fn start() -> Rspamd {
        let dir = tempfile::tempdir().expect("tempdir");
        let (port, milter_port) = (closed_port(), closed_port());
        let var = |name: &str, value: &str| format!("--var={name}={value}");
        let child = Command::new("rspamd")
            .args(["-f", "-i", "-c"])
            .arg(fixtures().join("rspamd.conf"))
            .arg(var("RUNDIR", dir.path().to_str().unwrap()))
            .arg(var("RULES", fixtures().to_str().unwrap()))
            .arg(var("NORMAL", &port.to_string()))
            .arg(var("PROXY", &milter_port.to_string()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rspamd (the test command installs it)");
        let rspamd = Rspamd { child, dir, port, milter_port };
        let deadline = Instant::now() + Duration::from_secs(180);
        while !ping(rspamd.port).is_some_and(|body| body.starts_with("pong")) {
            assert!(Instant::now() < deadline, "rspamd did not start: {}", rspamd.log());
            std::thread::sleep(Duration::from_millis(200));
        }
        while TcpStream::connect(("127.0.0.1", rspamd.milter_port)).is_err() {
            assert!(Instant::now() < deadline, "rspamd's milter did not start: {}", rspamd.log());
            std::thread::sleep(Duration::from_millis(200));
        }
        rspamd
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("rspamd.log")).unwrap_or_default()
    }

    /// Stops it (SIGTERM: the main process takes its workers down) and waits.
    pub fn stop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Rspamd {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}
