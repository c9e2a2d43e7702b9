//! The real resolver: hickory, built from `[dns]`, with its cache.

use std::sync::Arc;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};

use super::resolver::{DnsError, Lookup, Record, RecordKind, Resolver, SharedResolver};
use crate::config::DnsConfig;

pub struct HickoryResolver {
    inner: TokioResolver,
}

impl HickoryResolver {
    /// Builds the resolver. With no servers configured, the system configuration is used.
    pub fn new(config: &DnsConfig) -> anyhow::Result<HickoryResolver> {
        let mut builder = if config.servers.is_empty() {
            TokioResolver::builder_tokio()
                .map_err(|e| anyhow::anyhow!("cannot read the system resolver configuration: {e}"))?
        } else {
            let servers = config
                .servers
                .iter()
                .map(|server| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = server.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = server.port();
                    NameServerConfig::new(server.ip(), true, vec![udp, tcp])
                })
                .collect();
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(servers),
                TokioRuntimeProvider::default(),
            )
        };
        let options: &mut ResolverOpts = builder.options_mut();
        options.timeout = config.timeout.get();
        options.attempts = config.attempts;
        options.cache_size = config.cache_size;
        // Mail routing needs what DNS says, not what a local hosts file says.
        options.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
        let inner = builder.build().map_err(|e| anyhow::anyhow!("cannot build the DNS resolver: {e}"))?;
        Ok(HickoryResolver { inner })
    }
}

/// The resolver a configuration runs with: one per load of the config, shared by
/// delivery, the plugins and the mail-authentication checks (one cache, one set of
/// timeouts).
pub fn shared_resolver(config: &DnsConfig) -> anyhow::Result<SharedResolver> {
    Ok(Arc::new(HickoryResolver::new(config)?))
}

impl Resolver for HickoryResolver {
    fn hickory(&self) -> Option<TokioResolver> {
        // A clone shares the cache and the connections.
        Some(self.inner.clone())
    }

    fn lookup<'a>(&'a self, name: &'a str, kind: RecordKind) -> Lookup<'a> {
        Box::pin(async move {
            // A trailing dot keeps search domains out of it.
            let fqdn = if name.ends_with('.') { name.to_string() } else { format!("{name}.") };
            let lookup = self.inner.lookup(fqdn, record_type(kind)).await.map_err(|e| classify(&e))?;
            let records: Vec<Record> = lookup.answers().iter().filter_map(|r| convert(&r.data)).collect();
            if records.is_empty() { Err(DnsError::NoRecords) } else { Ok(records) }
        })
    }
}

fn record_type(kind: RecordKind) -> RecordType {
    match kind {
        RecordKind::A => RecordType::A,
        RecordKind::Aaaa => RecordType::AAAA,
        RecordKind::Mx => RecordType::MX,
        RecordKind::Txt => RecordType::TXT,
        RecordKind::Ptr => RecordType::PTR,
    }
}

/// Records of other types (a CNAME on the way) are left out.
fn convert(data: &RData) -> Option<Record> {
    let name = |n: &hickory_resolver::proto::rr::Name| n.to_utf8().trim_end_matches('.').to_string();
    Some(match data {
        RData::A(a) => Record::A(a.0),
        RData::AAAA(a) => Record::Aaaa(a.0),
        RData::MX(mx) => Record::Mx(mx.preference, mx.exchange.to_ascii().trim_end_matches('.').to_string()),
        RData::TXT(txt) => Record::Txt(txt.txt_data.iter().map(|part| String::from_utf8_lossy(part)).collect()),
        RData::PTR(ptr) => Record::Ptr(name(&ptr.0)),
        _ => return None,
    })
}

fn classify(error: &NetError) -> DnsError {
    // The same words for a failed answer as the records-file resolver uses, so a
    // plugin's fixtures read alike against either.
    if let NetError::Dns(hickory_resolver::net::DnsError::ResponseCode(code)) = error {
        let name = match code {
            ResponseCode::ServFail => "SERVFAIL".to_string(),
            ResponseCode::Refused => "REFUSED".to_string(),
            ResponseCode::FormErr => "FORMERR".to_string(),
            ResponseCode::NotImp => "NOTIMP".to_string(),
            other => format!("response code {}", u16::from(*other)),
        };
        return DnsError::Failed(name);
    }
    if error.is_no_records_found() {
        if error.is_nx_domain() { DnsError::NotFound } else { DnsError::NoRecords }
    } else if matches!(error, NetError::Timeout) {
        DnsError::Timeout
    } else {
        DnsError::Failed(error.to_string())
    }
}
