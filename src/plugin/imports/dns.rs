//! `sluice:plugin/dns`: lookups through the server's resolver (async on the host; the
//! plugin's wall-time budget bounds them).

use std::net::IpAddr;

use crate::dns::{DnsError, Record, RecordKind, SharedResolver, reverse_name};
use crate::plugin::bindings::sluice::plugin::dns::{Error, Host, Mx};
use crate::plugin::state::PluginState;

/// Names longer than this are refused without a query.
const MAX_NAME: usize = 253;

fn classify(error: DnsError) -> Error {
    match error {
        DnsError::NotFound => Error::NotFound,
        DnsError::NoRecords => Error::NoRecords,
        DnsError::Timeout => Error::Timeout,
        DnsError::Failed(why) => Error::Failed(why),
    }
}

impl PluginState {
    fn resolver(&self, name: &str) -> Result<SharedResolver, Error> {
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(Error::Failed("invalid name".into()));
        }
        self.services.resolver.clone().ok_or_else(|| Error::Failed("no resolver".into()))
    }

    async fn records(&mut self, name: String, kind: RecordKind) -> Result<Vec<Record>, Error> {
        let resolver = self.resolver(&name)?;
        if !self.dns_budget.take() {
            let why = format!("at most {} DNS lookups per call", self.plugin.quotas.dns_lookups);
            self.plugin.quota_hits.hit(&self.plugin.name, "dns", &why);
            return Err(Error::Failed(why));
        }
        let lookup = tokio::time::timeout_at(self.host_call_deadline(), resolver.lookup(&name, kind))
            .await
            .map_err(|_| Error::Timeout)?;
        lookup.map_err(classify)
    }
}

impl Host for PluginState {
    async fn lookup_a(&mut self, name: String) -> Result<Vec<String>, Error> {
        let records = self.records(name, RecordKind::A).await?;
        Ok(records.iter().filter_map(|r| if let Record::A(a) = r { Some(a.to_string()) } else { None }).collect())
    }

    async fn lookup_aaaa(&mut self, name: String) -> Result<Vec<String>, Error> {
        let records = self.records(name, RecordKind::Aaaa).await?;
        Ok(records.iter().filter_map(|r| if let Record::Aaaa(a) = r { Some(a.to_string()) } else { None }).collect())
    }

    async fn lookup_mx(&mut self, name: String) -> Result<Vec<Mx>, Error> {
        let records = self.records(name, RecordKind::Mx).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| match r {
                Record::Mx(preference, exchange) => Some(Mx { preference, exchange }),
                _ => None,
            })
            .collect())
    }

    async fn lookup_txt(&mut self, name: String) -> Result<Vec<String>, Error> {
        let records = self.records(name, RecordKind::Txt).await?;
        Ok(records.into_iter().filter_map(|r| if let Record::Txt(txt) = r { Some(txt) } else { None }).collect())
    }

    async fn lookup_ptr(&mut self, address: String) -> Result<Vec<String>, Error> {
        let ip: IpAddr = address.parse().map_err(|_| Error::Failed("not an IP address".into()))?;
        let records = self.records(reverse_name(ip), RecordKind::Ptr).await?;
        Ok(records.into_iter().filter_map(|r| if let Record::Ptr(name) = r { Some(name) } else { None }).collect())
    }
}
