//! A real SMTP next hop for the delivery tests, with faults to order: it records
//! every accepted transaction (envelope, the exact bytes on the wire, whether TLS
//! was on) and can refuse, fail or hang up where a test needs it to.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_rustls::rustls::{self, ServerConfig, ServerConnection, StreamOwned};

use super::tls::TestPki;

#[derive(Clone)]
pub struct SinkOptions {
    pub ip: IpAddr,
    /// Answer `451 4.3.0` to every RCPT in the first N transactions.
    pub tempfail_rcpt_transactions: usize,
    /// Answer `550 5.1.1` to RCPT for addresses starting with this.
    pub reject_rcpt_prefix: Option<String>,
    /// Answer `554 5.6.0` to the end of data in the first N transactions.
    pub fail_data_transactions: usize,
    /// Hang up after the first line of content in the first N transactions.
    pub drop_mid_data_transactions: usize,
    /// Offer STARTTLS with this certificate.
    pub starttls: Option<Arc<TestPki>>,
    /// Sent in clear right after the `220` to STARTTLS, in the same write: a
    /// man-in-the-middle's injected replies, which the client must not take as
    /// coming through TLS.
    pub starttls_injection: Option<String>,
    pub pipelining: bool,
    pub eight_bit_mime: bool,
    pub smtputf8: bool,
    pub dsn: bool,
    /// Advertise `SIZE n`.
    pub size: Option<u64>,
    /// Refuse EHLO with 502, so clients fall back to HELO.
    pub refuse_ehlo: bool,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            ip: IpAddr::from([127, 0, 0, 1]),
            tempfail_rcpt_transactions: 0,
            reject_rcpt_prefix: None,
            fail_data_transactions: 0,
            drop_mid_data_transactions: 0,
            starttls: None,
            starttls_injection: None,
            pipelining: true,
            eight_bit_mime: true,
            smtputf8: true,
            dsn: false,
            size: None,
            refuse_ehlo: false,
        }
    }
}

/// One accepted transaction.
#[derive(Clone, Debug)]
pub struct Transaction {
    pub mail: String,
    pub rcpts: Vec<String>,
    /// Sender and recipients as addresses (without brackets and parameters).
    pub sender: String,
    pub recipients: Vec<String>,
    /// The content as sent, dot-stuffed, without the final `.` line.
    pub wire: Vec<u8>,
    /// The content with dot-stuffing undone.
    pub content: Vec<u8>,
    pub tls: bool,
    pub helo: String,
    /// When the end of data was accepted (just before the `250`).
    pub at: Instant,
}

pub struct Sink {
    pub addr: SocketAddr,
    accepted: Arc<Mutex<Vec<Transaction>>>,
    /// Every MAIL seen, accepted or not.
    pub transactions: Arc<AtomicUsize>,
    pub connections: Arc<AtomicUsize>,
    /// Commands in the order seen, across connections.
    pub commands: Arc<Mutex<Vec<String>>>,
    /// While set, every RCPT gets `451 4.3.0`.
    pub paused: Arc<AtomicBool>,
    /// Every byte each connection sent us, in order (the plaintext after STARTTLS).
    raw: Arc<Mutex<Vec<RawLog>>>,
    stop: Arc<AtomicBool>,
}

impl Sink {
    pub fn start(options: SinkOptions) -> Sink {
        let listener = TcpListener::bind((options.ip, 0)).expect("bind sink");
        Sink::serve(listener, options)
    }

    /// Listens on a given address (for MX tests that need a known port).
    pub fn start_at(addr: SocketAddr, options: SinkOptions) -> Sink {
        let listener = TcpListener::bind(addr).expect("bind sink");
        Sink::serve(listener, options)
    }

    fn serve(listener: TcpListener, options: SinkOptions) -> Sink {
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let sink = Sink {
            addr,
            accepted: Arc::default(),
            transactions: Arc::default(),
            connections: Arc::default(),
            commands: Arc::default(),
            paused: Arc::default(),
            raw: Arc::default(),
            stop: Arc::default(),
        };
        let shared = Shared {
            options: Arc::new(options),
            accepted: Arc::clone(&sink.accepted),
            transactions: Arc::clone(&sink.transactions),
            commands: Arc::clone(&sink.commands),
            paused: Arc::clone(&sink.paused),
            raw: Arc::clone(&sink.raw),
        };
        let (stop, connections) = (Arc::clone(&sink.stop), Arc::clone(&sink.connections));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        connections.fetch_add(1, Ordering::Relaxed);
                        let shared = shared.clone();
                        std::thread::spawn(move || {
                            let _ = stream.set_nonblocking(false);
                            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                            shared.session(stream);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        sink
    }

    pub fn pause(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }

    pub fn accepted(&self) -> Vec<Transaction> {
        self.accepted.lock().unwrap().clone()
    }

    /// Waits until `n` transactions were accepted (or the timeout passed).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Transaction> {
        let deadline = Instant::now() + timeout;
        loop {
            let accepted = self.accepted();
            if accepted.len() >= n || Instant::now() >= deadline {
                return accepted;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What each connection sent, byte for byte as read (after STARTTLS: the plaintext
    /// inside TLS), in the order the connections were accepted.
    pub fn raw_sessions(&self) -> Vec<Vec<u8>> {
        self.raw.lock().unwrap().iter().map(|r| r.lock().unwrap().clone()).collect()
    }

    /// Recipients accepted, over all transactions.
    pub fn recipients(&self) -> Vec<String> {
        self.accepted().into_iter().flat_map(|t| t.recipients).collect()
    }

    /// `[[route]]` sending everything here.
    pub fn route(&self, name: &str, domains: &str, tls: &str) -> String {
        format!("[[route]]\nname = \"{name}\"\ndomains = [{domains}]\nnext_hop = \"{}\"\ntls = \"{tls}\"\n", self.addr)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[derive(Clone)]
struct Shared {
    options: Arc<SinkOptions>,
    accepted: Arc<Mutex<Vec<Transaction>>>,
    transactions: Arc<AtomicUsize>,
    commands: Arc<Mutex<Vec<String>>>,
    paused: Arc<AtomicBool>,
    raw: Arc<Mutex<Vec<RawLog>>>,
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// The bytes one connection sent.
type RawLog = Arc<Mutex<Vec<u8>>>;

/// Records what is read through it.
struct Tee<S> {
    inner: S,
    log: RawLog,
}

impl<S: Read> Read for Tee<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.log.lock().unwrap().extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

impl<S: Write> Write for Tee<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

struct Conn {
    reader: BufReader<Box<dyn Stream>>,
    tls: bool,
}

impl Conn {
    fn send(&mut self, text: &str) -> bool {
        let stream = self.reader.get_mut();
        stream.write_all(text.as_bytes()).is_ok() && stream.flush().is_ok()
    }

    fn line(&mut self) -> Option<Vec<u8>> {
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line),
        }
    }
}

fn address(arg: &str) -> String {
    let start = arg.find('<').map_or(0, |i| i + 1);
    let end = arg[start..].find('>').map_or(arg.len(), |i| start + i);
    arg[start..end].to_string()
}

impl Shared {
    fn session(&self, stream: TcpStream) {
        let o = &self.options;
        let log = Arc::new(Mutex::new(Vec::new()));
        self.raw.lock().unwrap().push(Arc::clone(&log));
        let tee = Tee { inner: stream.try_clone().unwrap(), log: Arc::clone(&log) };
        let mut conn = Conn { reader: BufReader::new(Box::new(tee)), tls: false };
        let mut raw = Some(stream);
        conn.send("220 sink.test ESMTP test sink\r\n");
        let mut helo = String::new();
        let mut mail: Option<String> = None;
        let mut rcpts: Vec<String> = Vec::new();
        let mut transaction = 0;
        while let Some(line) = conn.line() {
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            self.commands.lock().unwrap().push(text.clone());
            let upper = text.to_ascii_uppercase();
            let verb = upper.split(' ').next().unwrap_or("").to_string();
            match verb.as_str() {
                "EHLO" if o.refuse_ehlo => {
                    conn.send("502 5.5.1 EHLO not supported\r\n");
                }
                "EHLO" => {
                    helo = text[4..].trim().to_string();
                    let mut lines = vec!["sink.test".to_string()];
                    if o.pipelining {
                        lines.push("PIPELINING".into());
                    }
                    if let Some(size) = o.size {
                        lines.push(format!("SIZE {size}"));
                    }
                    if o.eight_bit_mime {
                        lines.push("8BITMIME".into());
                    }
                    if o.smtputf8 {
                        lines.push("SMTPUTF8".into());
                    }
                    if o.dsn {
                        lines.push("DSN".into());
                    }
                    if o.starttls.is_some() && !conn.tls {
                        lines.push("STARTTLS".into());
                    }
                    lines.push("ENHANCEDSTATUSCODES".into());
                    let last = lines.len() - 1;
                    let reply: String = lines
                        .iter()
                        .enumerate()
                        .map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' }))
                        .collect();
                    conn.send(&reply);
                }
                "HELO" => {
                    helo = text[4..].trim().to_string();
                    conn.send("250 sink.test\r\n");
                }
                "STARTTLS" => {
                    let (Some(pki), Some(tcp)) = (&o.starttls, raw.take()) else {
                        conn.send("502 5.5.1 no TLS\r\n");
                        continue;
                    };
                    conn.send(&format!("220 2.0.0 go ahead\r\n{}", o.starttls_injection.as_deref().unwrap_or("")));
                    let config = server_config(pki);
                    let Ok(server) = ServerConnection::new(config) else { return };
                    let tls = Tee { inner: StreamOwned::new(server, tcp), log: Arc::clone(&log) };
                    conn = Conn { reader: BufReader::new(Box::new(tls)), tls: true };
                    helo.clear();
                    mail = None;
                    rcpts.clear();
                }
                "MAIL" => {
                    transaction = self.transactions.fetch_add(1, Ordering::SeqCst) + 1;
                    mail = Some(text.clone());
                    rcpts.clear();
                    conn.send("250 2.1.0 ok\r\n");
                }
                "RCPT" => {
                    let addr = address(&text);
                    if transaction <= o.tempfail_rcpt_transactions || self.paused.load(Ordering::SeqCst) {
                        conn.send("451 4.3.0 try again later\r\n");
                    } else if o.reject_rcpt_prefix.as_ref().is_some_and(|p| addr.starts_with(p.as_str())) {
                        conn.send("550 5.1.1 no such user here\r\n");
                    } else {
                        rcpts.push(text.clone());
                        conn.send("250 2.1.5 ok\r\n");
                    }
                }
                "DATA" => {
                    if mail.is_none() || rcpts.is_empty() {
                        conn.send("554 5.5.1 no valid recipients\r\n");
                        continue;
                    }
                    conn.send("354 go ahead\r\n");
                    let mut wire = Vec::new();
                    let mut complete = false;
                    let mut lines_read = 0;
                    while let Some(line) = conn.line() {
                        if line == b".\r\n" {
                            complete = true;
                            break;
                        }
                        lines_read += 1;
                        wire.extend_from_slice(&line);
                        if transaction <= o.drop_mid_data_transactions && lines_read == 1 {
                            return; // hang up mid-data
                        }
                    }
                    if !complete {
                        return;
                    }
                    if transaction <= o.fail_data_transactions {
                        conn.send("554 5.6.0 message content rejected\r\n");
                    } else {
                        let mut content = Vec::with_capacity(wire.len());
                        for line in wire.split_inclusive(|&b| b == b'\n') {
                            content.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
                        }
                        let mail_line = mail.clone().unwrap_or_default();
                        self.accepted.lock().unwrap().push(Transaction {
                            sender: address(&mail_line),
                            recipients: rcpts.iter().map(|r| address(r)).collect(),
                            mail: mail_line,
                            rcpts: rcpts.clone(),
                            wire,
                            content,
                            tls: conn.tls,
                            helo: helo.clone(),
                            at: Instant::now(),
                        });
                        conn.send("250 2.0.0 queued\r\n");
                    }
                    mail = None;
                    rcpts.clear();
                }
                "RSET" => {
                    mail = None;
                    rcpts.clear();
                    conn.send("250 2.0.0 ok\r\n");
                }
                "NOOP" => {
                    conn.send("250 2.0.0 ok\r\n");
                }
                "QUIT" => {
                    conn.send("221 2.0.0 bye\r\n");
                    return;
                }
                _ => {
                    conn.send("502 5.5.2 unknown command\r\n");
                }
            }
        }
    }
}

fn server_config(pki: &TestPki) -> Arc<ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pki.cert_pem.as_bytes()).map(|c| c.unwrap()).collect();
    let key = PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    )
}
