//! A private Postfix instance as the mail server behind Sluice: its own directory,
//! an ephemeral loopback port, a few virtual mailboxes, stopped on drop. Needs root
//! (Postfix drops privileges itself) and Debian's `postfix`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub struct Postfix {
    pub addr: SocketAddr,
    dir: TempDir,
    running: bool,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

impl Postfix {
    /// Starts an instance that accepts mail for `mailboxes` (all `@example.com`
    /// addresses, say) and refuses every other address at its `domains` with
    /// `550 5.1.1 ... User unknown in virtual mailbox table`.
    pub fn start(domains: &[&str], mailboxes: &[&str]) -> Postfix {
        let dir = tempfile::Builder::new().prefix("postfix-").tempdir_in("/tmp").expect("tempdir");
        let base = dir.path();
        for sub in ["etc", "spool", "data", "mail"] {
            std::fs::create_dir_all(base.join(sub)).unwrap();
        }
        let chown = |path: &Path| {
            let ok =
                Command::new("chown").args(["-R", "postfix:postfix"]).arg(path).status().is_ok_and(|s| s.success());
            assert!(ok, "chown {}", path.display());
        };
        chown(&base.join("data"));
        chown(&base.join("mail"));
        for file in ["master.cf", "postfix-files", "dynamicmaps.cf"] {
            let _ = std::fs::copy(Path::new("/etc/postfix").join(file), base.join("etc").join(file));
        }
        let _ = Command::new("cp")
            .args(["-r", "/etc/postfix/postfix-files.d", "/etc/postfix/dynamicmaps.cf.d"])
            .arg(base.join("etc"))
            .status();
        let vmailbox: String = mailboxes.iter().map(|m| format!("{m} {m}/\n")).collect();
        std::fs::write(base.join("etc/vmailbox"), vmailbox).unwrap();
        let port = free_port();
        let b = base.display();
        let main_cf = format!(
            "compatibility_level = 3.6\nqueue_directory = {b}/spool\ndata_directory = {b}/data\n\
             myhostname = mailstore.example.test\nmydestination =\nrelay_domains =\nmynetworks = 127.0.0.0/8\n\
             inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n\
             virtual_mailbox_domains = {domains}\nvirtual_mailbox_maps = texthash:{b}/etc/vmailbox\n\
             virtual_mailbox_base = {b}/mail\nvirtual_uid_maps = static:102\nvirtual_gid_maps = static:105\n\
             smtpd_relay_restrictions = permit_mynetworks, reject\nsmtp_tls_security_level = none\n\
             smtpd_tls_security_level = none\nsmtpd_client_restrictions =\n\
             smtpd_soft_error_limit = 1000\nsmtpd_hard_error_limit = 1000\nsmtpd_junk_command_limit = 100000\n\
             smtpd_client_connection_rate_limit = 0\nanvil_rate_time_unit = 60s\n\
             maillog_file_prefixes = /var, /dev/stdout, /tmp\nmaillog_file = {b}/maillog\n",
            domains = domains.join(" ")
        );
        std::fs::write(base.join("etc/main.cf"), main_cf).unwrap();
        let master = std::fs::read_to_string(base.join("etc/master.cf")).expect("master.cf");
        let master: String = master
            .lines()
            .map(|line| {
                if line.starts_with("smtp      inet") {
                    format!("127.0.0.1:{port} inet n - n - - smtpd")
                } else {
                    line.to_string()
                }
            })
            .map(|l| l + "\n")
            .collect();
        std::fs::write(base.join("etc/master.cf"), master).unwrap();
        let _ = Command::new("postconf").arg("-c").arg(base.join("etc")).args(["-F", "*/*/chroot = n"]).status();
        let mut postfix = Postfix { addr: SocketAddr::from(([127, 0, 0, 1], port)), dir, running: false };
        postfix.start_again();
        postfix
    }

    fn etc(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    fn postfix(&self, action: &str) -> std::process::Output {
        Command::new("postfix").arg("-c").arg(self.etc()).arg(action).output().expect("run postfix")
    }

    /// Starts it (again) and waits until it takes connections.
    pub fn start_again(&mut self) {
        let out = self.postfix("start");
        self.running = true;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(self.addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "postfix did not start on {}: {}{}\n{}",
            self.addr,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.maillog()
        );
    }

    /// Stops it and waits until its port refuses connections.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        let _ = self.postfix("stop");
        self.running = false;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && TcpStream::connect(self.addr).is_ok() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn maillog(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// Lines of the maillog containing every one of `needles`, waiting up to a few
    /// seconds for at least `at_least` of them (postlogd writes asynchronously).
    pub fn log_lines(&self, needles: &[&str], at_least: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let lines: Vec<String> = self
                .maillog()
                .lines()
                .filter(|line| needles.iter().all(|n| line.contains(n)))
                .map(str::to_string)
                .collect();
            if lines.len() >= at_least || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Mail delivered to `mailbox` (one file per message, maildir `new/`).
    pub fn delivered(&self, mailbox: &str) -> Vec<String> {
        let dir = self.dir.path().join("mail").join(mailbox).join("new");
        let mut messages: Vec<String> = std::fs::read_dir(&dir)
            .map(|entries| entries.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok()).collect())
            .unwrap_or_default();
        messages.sort();
        messages
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        self.stop();
    }
}
