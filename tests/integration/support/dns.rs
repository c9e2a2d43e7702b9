//! A tiny authoritative DNS server on loopback UDP, so no test touches the public DNS.
//! It is the server's own `sluice::dns::ZoneServer`, answering from a records file in
//! the format the offline runner's `--dns FILE` reads, so both give the same answers.

use std::net::SocketAddr;
use std::path::Path;

use sluice::dns::{Zone, ZoneServer};

pub struct DnsServer {
    pub addr: SocketAddr,
    server: ZoneServer,
}

impl DnsServer {
    /// Serves records written as in a records file (`NAME TYPE VALUE` a line).
    pub fn start(records: &str) -> DnsServer {
        Self::serve(Zone::parse(records).unwrap_or_else(|(line, e)| panic!("records line {line}: {e}")))
    }

    /// Serves a records file.
    pub fn from_records(path: &Path) -> DnsServer {
        Self::serve(Zone::load(path).unwrap_or_else(|e| panic!("{e}")))
    }

    fn serve(zone: Zone) -> DnsServer {
        let server = ZoneServer::start(zone).expect("bind DNS");
        DnsServer { addr: server.addr, server }
    }

    /// The `[dns]` section pointing the server at us.
    pub fn config(&self) -> String {
        format!("[dns]\nservers = [\"{}\"]\ntimeout = \"2s\"\nattempts = 1\n", self.addr)
    }

    /// Queries received so far.
    pub fn queries(&self) -> usize {
        self.server.queries()
    }
}
