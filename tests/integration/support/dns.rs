//! A tiny authoritative DNS server on loopback UDP, so no test touches the public DNS:
//! it answers from a fixed table, NXDOMAIN for names it does not know, and an empty
//! answer (NODATA) for known names without records of the asked type. `ServFail` and
//! `Drop` (never answer) apply to the name and every name under it.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, MX, PTR, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

#[derive(Clone, Debug)]
pub enum Answer {
    /// Preference and exchange; an exchange of "." is a null MX.
    Mx(u16, String),
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Txt(String),
    Ptr(String),
    ServFail,
    Drop,
}

pub struct DnsServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl DnsServer {
    /// Serves `zone`: (name, answer) pairs, names without the final dot.
    pub fn start(zone: Vec<(&str, Answer)>) -> DnsServer {
        Self::serve(zone.into_iter().map(|(n, a)| (n.to_ascii_lowercase(), a)).collect())
    }

    /// Serves a records file in the format of `plugins/tools/loopback-dns.py`: one
    /// `NAME TYPE VALUE` a line (A, AAAA, TXT, PTR, MX `PREF HOST`, SERVFAIL, DROP),
    /// `#` comments.
    pub fn from_records(path: &Path) -> DnsServer {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut zone = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let line = line.split_once(" #").map_or(line, |(record, _)| record);
            let fields: Vec<&str> = line.split_whitespace().collect();
            let name = fields.first().copied().unwrap_or_default().trim_end_matches('.').to_ascii_lowercase();
            let kind = fields.get(1).copied().unwrap_or_default().to_ascii_uppercase();
            let value = fields.get(2..).unwrap_or_default().join(" ");
            let value = value.as_str();
            let answer = match kind.as_str() {
                "A" => Answer::A(value.parse().unwrap_or_else(|_| bad(path, line))),
                "AAAA" => Answer::Aaaa(value.parse().unwrap_or_else(|_| bad(path, line))),
                "TXT" => Answer::Txt(value.to_string()),
                "PTR" => Answer::Ptr(value.to_string()),
                "MX" => {
                    let (pref, host) = value.split_once(char::is_whitespace).unwrap_or_else(|| bad(path, line));
                    Answer::Mx(pref.parse().unwrap_or_else(|_| bad(path, line)), host.trim().to_string())
                }
                "SERVFAIL" => Answer::ServFail,
                "DROP" => Answer::Drop,
                _ => bad(path, line),
            };
            zone.push((name, answer));
        }
        Self::serve(zone)
    }

    fn serve(zone: Vec<(String, Answer)>) -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind DNS");
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stopped.load(Ordering::Relaxed) {
                let Ok((len, from)) = socket.recv_from(&mut buf) else { continue };
                let Ok(query) = Message::from_vec(&buf[..len]) else { continue };
                if let Some(response) = answer(&zone, &query) {
                    let _ = socket.send_to(&response, from);
                }
            }
        });
        DnsServer { addr, stop }
    }

    /// The `[dns]` section pointing the server at us.
    pub fn config(&self) -> String {
        format!("[dns]\nservers = [\"{}\"]\ntimeout = \"2s\"\nattempts = 1\n", self.addr)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn answer(zone: &[(String, Answer)], query: &Message) -> Option<Vec<u8>> {
    let question = query.queries.first()?;
    let name = question.name().to_ascii().trim_end_matches('.').to_ascii_lowercase();
    let mut response = Message::new(query.metadata.id, MessageType::Response, query.metadata.op_code);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.add_query(question.clone());
    let covers = |n: &str| name == n || name.ends_with(&format!(".{n}"));
    for (n, a) in zone {
        match a {
            Answer::Drop if covers(n) => return None,
            Answer::ServFail if covers(n) => {
                response.metadata.response_code = ResponseCode::ServFail;
                return response.to_vec().ok();
            }
            _ => {}
        }
    }
    let known: Vec<&Answer> = zone.iter().filter(|(n, _)| *n == name).map(|(_, a)| a).collect();
    if known.is_empty() {
        response.metadata.response_code = ResponseCode::NXDomain;
    }
    let owner = Name::from_ascii(format!("{name}.")).ok()?;
    let host = |h: &str| if h == "." { Some(Name::root()) } else { Name::from_ascii(format!("{h}.")).ok() };
    for answer in known {
        let rdata = match (answer, question.query_type()) {
            (Answer::Mx(preference, exchange), RecordType::MX) => RData::MX(MX::new(*preference, host(exchange)?)),
            (Answer::A(ip), RecordType::A) => RData::A(A(*ip)),
            (Answer::Aaaa(ip), RecordType::AAAA) => RData::AAAA(AAAA(*ip)),
            (Answer::Txt(text), RecordType::TXT) => RData::TXT(TXT::new(vec![text.clone()])),
            (Answer::Ptr(target), RecordType::PTR) => RData::PTR(PTR(host(target)?)),
            _ => continue,
        };
        response.add_answer(Record::from_rdata(owner.clone(), 60, rdata));
    }
    response.to_vec().ok()
}

fn bad<T>(path: &Path, line: &str) -> T {
    panic!("{}: bad record {line:?}", path.display())
}
