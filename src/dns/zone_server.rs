//! A zone served over loopback UDP: the suite's DNS server, and what the offline runner
//! points mail-auth's hickory resolver at, so the checks make real DNS queries (with
//! real NXDOMAIN, NODATA, SERVFAIL and timeouts) against a records file.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA, MX, PTR, TXT};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};

use super::resolver::{Record as ZoneRecord, RecordKind};
use super::zone::{Zone, ZoneAnswer};

/// Serves a zone on 127.0.0.1 until dropped.
pub struct ZoneServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    queries: Arc<AtomicUsize>,
}

impl ZoneServer {
    pub fn start(zone: Zone) -> std::io::Result<ZoneServer> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(AtomicUsize::new(0));
        let (stopped, counted) = (Arc::clone(&stop), Arc::clone(&queries));
        std::thread::Builder::new().name("zone-dns".into()).spawn(move || {
            let mut buf = [0u8; 4096];
            while !stopped.load(Ordering::Relaxed) {
                let Ok((len, from)) = socket.recv_from(&mut buf) else { continue };
                let Ok(query) = Message::from_vec(&buf[..len]) else { continue };
                counted.fetch_add(1, Ordering::Relaxed);
                if let Some(response) = answer(&zone, &query) {
                    let _ = socket.send_to(&response, from);
                }
            }
        })?;
        Ok(ZoneServer { addr, stop, queries })
    }

    /// Queries received so far.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::Relaxed)
    }
}

impl Drop for ZoneServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The response to one query, or `None` for a dropped name.
fn answer(zone: &Zone, query: &Message) -> Option<Vec<u8>> {
    let question = query.queries.first()?;
    let name = question.name().to_ascii();
    let mut response = Message::new(query.metadata.id, MessageType::Response, query.metadata.op_code);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.add_query(question.clone());
    let kind = match question.query_type() {
        RecordType::A => Some(RecordKind::A),
        RecordType::AAAA => Some(RecordKind::Aaaa),
        RecordType::MX => Some(RecordKind::Mx),
        RecordType::TXT => Some(RecordKind::Txt),
        RecordType::PTR => Some(RecordKind::Ptr),
        _ => None,
    };
    // Other types get what the name's existence says, with no records.
    let records =
        match kind.map(|kind| zone.answer(&name, kind)).unwrap_or_else(|| match zone.answer(&name, RecordKind::A) {
            ZoneAnswer::Records(_) => ZoneAnswer::Records(Vec::new()),
            other => other,
        }) {
            ZoneAnswer::Drop => return None,
            ZoneAnswer::ServFail => {
                response.metadata.response_code = ResponseCode::ServFail;
                return response.to_vec().ok();
            }
            ZoneAnswer::NxDomain => {
                response.metadata.response_code = ResponseCode::NXDomain;
                return response.to_vec().ok();
            }
            ZoneAnswer::Records(records) => records,
        };
    let owner = question.name().clone();
    let host = |h: &str| if h.is_empty() { Some(Name::root()) } else { Name::from_ascii(format!("{h}.")).ok() };
    for record in records {
        let rdata = match record {
            ZoneRecord::Mx(preference, exchange) => RData::MX(MX::new(preference, host(&exchange)?)),
            ZoneRecord::A(ip) => RData::A(A(ip)),
            ZoneRecord::Aaaa(ip) => RData::AAAA(AAAA(ip)),
            // One TXT record holds strings of at most 255 bytes each (RFC 1035 §3.3.14);
            // DKIM keys and long SPF records span several.
            ZoneRecord::Txt(text) => RData::TXT(TXT::new(
                text.as_bytes().chunks(255).map(|c| String::from_utf8_lossy(c).into_owned()).collect(),
            )),
            ZoneRecord::Ptr(target) => RData::PTR(PTR(host(&target)?)),
        };
        response.add_answer(Record::from_rdata(owner.clone(), 60, rdata));
    }
    response.to_vec().ok()
}
