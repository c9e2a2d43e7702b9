//! A tiny authoritative DNS server on loopback UDP for the MX tests: it answers
//! from a fixed table, NXDOMAIN for names it does not know, and an empty answer
//! (NODATA) for known names without records of the asked type.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, MX};
use hickory_proto::rr::{Name, RData, Record, RecordType};

#[derive(Clone, Debug)]
pub enum Answer {
    /// Preference and exchange; an exchange of "." is a null MX.
    Mx(u16, String),
    A(Ipv4Addr),
}

pub struct DnsServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl DnsServer {
    /// Serves `zone`: (name, answer) pairs, names without the final dot.
    pub fn start(zone: Vec<(&str, Answer)>) -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind DNS");
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let zone: Vec<(String, Answer)> = zone.into_iter().map(|(n, a)| (n.to_ascii_lowercase(), a)).collect();
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
    let known: Vec<&Answer> = zone.iter().filter(|(n, _)| *n == name).map(|(_, a)| a).collect();
    if known.is_empty() {
        response.metadata.response_code = ResponseCode::NXDomain;
    }
    let owner = Name::from_ascii(format!("{name}.")).ok()?;
    for answer in known {
        let rdata = match (answer, question.query_type()) {
            (Answer::Mx(preference, exchange), RecordType::MX) => {
                let exchange =
                    if exchange == "." { Name::root() } else { Name::from_ascii(format!("{exchange}.")).ok()? };
                RData::MX(MX::new(*preference, exchange))
            }
            (Answer::A(ip), RecordType::A) => RData::A(A(*ip)),
            _ => continue,
        };
        response.add_answer(Record::from_rdata(owner.clone(), 60, rdata));
    }
    response.to_vec().ok()
}
