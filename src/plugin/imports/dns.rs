//! `sluice:plugin/dns`: lookups through the server's resolver (async on the host; the
//! plugin's wall-time budget bounds them).

use std::net::IpAddr;

use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::RData;

use crate::plugin::bindings::sluice::plugin::dns::{Error, Host, Mx};
use crate::plugin::state::PluginState;

/// Names longer than this are refused without a query.
const MAX_NAME: usize = 253;

fn classify(error: &NetError) -> Error {
    if error.is_no_records_found() {
        if error.is_nx_domain() { Error::NotFound } else { Error::NoRecords }
    } else if matches!(error, NetError::Timeout) {
        Error::Timeout
    } else {
        Error::Failed(error.to_string())
    }
}

impl PluginState {
    fn resolver(&self, name: &str) -> Result<&crate::dns::Resolver, Error> {
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(Error::Failed("invalid name".into()));
        }
        self.services.resolver.as_ref().ok_or_else(|| Error::Failed("no resolver".into()))
    }

    /// Until when a lookup may wait: the call's deadline, less a margin for the
    /// plugin to act on the timeout.
    fn lookup_deadline(&self) -> tokio::time::Instant {
        let margin = (self.plugin.wall_time / 10).min(std::time::Duration::from_millis(500));
        self.deadline.checked_sub(margin).unwrap_or(self.deadline)
    }

    async fn records(
        &mut self,
        name: String,
        kind: hickory_resolver::proto::rr::RecordType,
    ) -> Result<Vec<RData>, Error> {
        let resolver = self.resolver(&name)?.clone();
        // A trailing dot keeps search domains out of it.
        let fqdn = if name.ends_with('.') { name } else { format!("{name}.") };
        let lookup = tokio::time::timeout_at(self.lookup_deadline(), resolver.lookup(fqdn, kind))
            .await
            .map_err(|_| Error::Timeout)?
            .map_err(|e| classify(&e))?;
        Ok(lookup.answers().iter().map(|record| record.data.clone()).collect())
    }
}

impl Host for PluginState {
    async fn lookup_a(&mut self, name: String) -> Result<Vec<String>, Error> {
        let records = self.records(name, hickory_resolver::proto::rr::RecordType::A).await?;
        Ok(records.iter().filter_map(|r| if let RData::A(a) = r { Some(a.0.to_string()) } else { None }).collect())
    }

    async fn lookup_aaaa(&mut self, name: String) -> Result<Vec<String>, Error> {
        let records = self.records(name, hickory_resolver::proto::rr::RecordType::AAAA).await?;
        Ok(records.iter().filter_map(|r| if let RData::AAAA(a) = r { Some(a.0.to_string()) } else { None }).collect())
    }

    async fn lookup_mx(&mut self, name: String) -> Result<Vec<Mx>, Error> {
        let records = self.records(name, hickory_resolver::proto::rr::RecordType::MX).await?;
        Ok(records
            .iter()
            .filter_map(|r| match r {
                RData::MX(mx) => Some(Mx { preference: mx.preference, exchange: mx.exchange.to_utf8() }),
                _ => None,
            })
            .collect())
    }

    async fn lookup_txt(&mut self, name: String) -> Result<Vec<String>, Error> {
        let records = self.records(name, hickory_resolver::proto::rr::RecordType::TXT).await?;
        Ok(records
            .iter()
            .filter_map(|r| match r {
                RData::TXT(txt) => {
                    Some(txt.txt_data.iter().map(|part| String::from_utf8_lossy(part)).collect::<String>())
                }
                _ => None,
            })
            .collect())
    }

    async fn lookup_ptr(&mut self, address: String) -> Result<Vec<String>, Error> {
        let ip: IpAddr = address.parse().map_err(|_| Error::Failed("not an IP address".into()))?;
        let resolver = self.resolver(&address)?.clone();
        let lookup = tokio::time::timeout_at(self.lookup_deadline(), resolver.reverse_lookup(ip))
            .await
            .map_err(|_| Error::Timeout)?
            .map_err(|e| classify(&e))?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| if let RData::PTR(ptr) = &r.data { Some(ptr.0.to_utf8()) } else { None })
            .collect())
    }
}
