//! For delivery's unit tests: an engine on a temporary queue with a manual clock, and
//! a scripted SMTP peer on a loopback port.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::engine::Engine;
use crate::clock::ManualClock;
use crate::config::Config;
use crate::dns::{Zone, ZoneResolver};
use crate::mail::envelope::test_envelope;
use crate::mail::{Mailbox, Recipient};
use crate::queue::{Entry, MessageState, Queue, StoredBody};

/// Where the tests' clocks start: 2023-11-14T22:13:20Z.
pub const T0_MS: u64 = 1_700_000_000_000;

pub struct TestEngine {
    pub engine: Arc<Engine>,
    pub clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

/// An engine whose every route goes to `peer`, with `extra` appended to the config.
pub fn engine(peer: SocketAddr, extra: &str) -> TestEngine {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nhostname = \"relay.test\"\nlisten = [\"127.0.0.1:2525\"]\n\
         [queue]\npath = \"queue\"\nretry = [\"1m\", \"5m\"]\nmax_age = \"1h\"\ndelay_warning = \"30m\"\n\
         [dns]\nservers = [\"127.0.0.1:9\"]\n\
         [delivery]\nidle_timeout = \"1h\"\n{extra}\n\
         [[route]]\nname = \"peer\"\ndomains = [\"*\"]\nnext_hop = [\"{peer}\"]\ntls = \"none\"\n"
    );
    let config = Arc::new(Config::parse(&dir.path().join("sluice.toml"), &text).unwrap());
    let (queue, _) = Queue::open(&dir.path().join("queue")).unwrap();
    let clock = ManualClock::at_ms(T0_MS);
    let engine =
        Engine::build(config, Arc::new(queue), Arc::new(ZoneResolver::new(Zone::default())), clock.clone()).unwrap();
    TestEngine { engine, clock, _dir: dir }
}

/// Stores a message from `a@example.org` to `recipients` (`local@domain`), arrived
/// at the clock's time.
pub async fn store(test: &TestEngine, recipients: &[&str]) -> Entry {
    let queue = &test.engine.queue;
    let id = queue.next_id();
    let mut envelope = test_envelope(id);
    envelope.arrived = crate::clock::Clock::now_secs(&*test.clock);
    envelope.recipients = recipients
        .iter()
        .map(|r| {
            let (local, domain) = r.split_once('@').unwrap();
            Recipient { address: Mailbox::new(local, domain), params: Default::default(), route: None }
        })
        .collect();
    let body = StoredBody::Replaced(b"Subject: test\r\n\r\nhello\r\n".to_vec());
    queue.store(envelope, MessageState::default(), Vec::new(), body).await.unwrap();
    queue.get(id).unwrap()
}

/// The messages in the queue other than `id`: the notices it caused.
pub fn notices(queue: &Queue, id: crate::mail::QueueId) -> Vec<String> {
    let mut notices = Vec::new();
    for entry in queue.entries().into_iter().filter(|e| e.envelope.id != id) {
        assert_eq!(entry.envelope.sender, None, "notices come from <>");
        notices.push(String::from_utf8_lossy(&queue.read_message(entry.envelope.id).unwrap()).into_owned());
    }
    notices
}

/// How the peer answers.
#[derive(Clone, Debug)]
pub struct Script {
    pub pipelining: bool,
    /// Recipients per transaction before `452 4.5.3`.
    pub rcpt_limit: usize,
    /// Local parts answered `550 5.1.1`.
    pub unknown: &'static [&'static str],
    /// Transactions per connection, after which the peer hangs up without a word.
    pub hang_up_after: Option<usize>,
}

impl Default for Script {
    fn default() -> Self {
        Script { pipelining: true, rcpt_limit: 100, unknown: &[], hang_up_after: None }
    }
}

/// A scripted SMTP server.
pub struct Peer {
    pub addr: SocketAddr,
    /// Accepted recipients of every finished transaction, in order.
    pub transactions: Arc<Mutex<Vec<Vec<String>>>>,
    /// Connections accepted and connections ended.
    pub connections: watch::Receiver<(usize, usize)>,
}

impl Peer {
    pub async fn start(script: Script) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let transactions = Arc::new(Mutex::new(Vec::new()));
        let (count, connections) = watch::channel((0, 0));
        let log = Arc::clone(&transactions);
        tokio::spawn(async move {
            let count = Arc::new(count);
            while let Ok((socket, _)) = listener.accept().await {
                count.send_modify(|(opened, _)| *opened += 1);
                let (script, log, count) = (script.clone(), Arc::clone(&log), Arc::clone(&count));
                tokio::spawn(async move {
                    let _ = converse(socket, &script, &log).await;
                    count.send_modify(|(_, ended)| *ended += 1);
                });
            }
        });
        Peer { addr, transactions, connections }
    }

    pub fn transactions(&self) -> Vec<Vec<String>> {
        self.transactions.lock().unwrap().clone()
    }

    /// Waits until `n` connections have ended.
    pub async fn ended(&mut self, n: usize) {
        self.connections.wait_for(|&(_, ended)| ended >= n).await.unwrap();
    }

    pub fn opened(&self) -> usize {
        self.connections.borrow().0
    }
}

async fn converse(
    socket: tokio::net::TcpStream,
    script: &Script,
    log: &Mutex<Vec<Vec<String>>>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 peer.test ESMTP\r\n").await?;
    let mut accepted: Vec<String> = Vec::new();
    let mut done = 0;
    while let Some(line) = lines.next_line().await? {
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let reply: String = match verb.as_str() {
            "EHLO" if script.pipelining => "250-peer.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n".into(),
            "EHLO" => "250-peer.test\r\n250 8BITMIME\r\n".into(),
            "MAIL" | "RSET" => {
                accepted.clear();
                "250 2.0.0 ok\r\n".into()
            }
            "RCPT" => {
                let address = line.split_once('<').and_then(|(_, rest)| rest.split_once('>')).map_or("", |(a, _)| a);
                let local = address.split('@').next().unwrap_or("");
                if script.unknown.contains(&local) {
                    "550 5.1.1 no such user\r\n".into()
                } else if accepted.len() >= script.rcpt_limit {
                    "452 4.5.3 too many recipients\r\n".into()
                } else {
                    accepted.push(address.to_string());
                    "250 2.1.5 ok\r\n".into()
                }
            }
            "DATA" if accepted.is_empty() => "554 5.5.1 no valid recipients\r\n".into(),
            "DATA" => {
                write.write_all(b"354 go ahead\r\n").await?;
                while lines.next_line().await?.is_some_and(|l| l != ".") {}
                log.lock().unwrap().push(std::mem::take(&mut accepted));
                done += 1;
                if script.hang_up_after == Some(done) {
                    write.write_all(b"250 2.0.0 queued\r\n").await?;
                    return Ok(());
                }
                "250 2.0.0 queued\r\n".into()
            }
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => "500 5.5.2 what?\r\n".into(),
        };
        write.write_all(reply.as_bytes()).await?;
    }
    Ok(())
}

/// A peer address nothing listens on, for tests that never connect.
pub fn nowhere() -> SocketAddr {
    "127.0.0.1:9".parse().unwrap()
}
