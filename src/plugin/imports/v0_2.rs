//! The host interfaces of `sluice:plugin@0.2.0`: the same as 0.1.0's, so each function
//! hands over to the 0.1.0 implementation, converting the records and variants 0.2.0
//! defines itself (same shape, moved field by field).

use wasmtime::component::Resource;

use crate::plugin::bindings::{same_shape, v0_1, v0_2};
use crate::plugin::message::MessageView;
use crate::plugin::state::PluginState;

use v0_1::sluice::plugin as old;
use v0_2::sluice::plugin as new;

type Wasm<T> = wasmtime::Result<T>;

mod conversions {
    use super::{new, old, same_shape};
    use new::config::Value;
    use new::dns::{Error as DnsError, Mx};
    use new::kv::Error as KvError;
    use new::log as new_log;
    use new::message::{Header, Part};
    use old::log::Level;
    use old::{config, dns, kv, message};

    same_shape!(enum new_log::Level => Level { Debug, Info, Warn, Error });
    same_shape!(enum config::Value => Value {
        Text(x), Integer(x), Float(x), Boolean(x), Datetime(x), Array(x), Table(x)
    });
    same_shape!(enum dns::Error => DnsError { NotFound, NoRecords, Timeout, Failed(x) });
    same_shape!(struct dns::Mx => Mx { preference, exchange });
    same_shape!(enum kv::Error => KvError { Unavailable(x), Invalid(x) });
    same_shape!(struct message::Header => Header { name, value });
    same_shape!(struct message::Part => Part { index, content_type, filename, size, depth, is_attachment });
}

/// `Vec<A>` to `Vec<B>` for same-shape `A` and `B`: collected in place.
fn list<A, B: From<A>>(items: Vec<A>) -> Vec<B> {
    items.into_iter().map(B::from).collect()
}

impl new::log::Host for PluginState {
    fn write(&mut self, level: new::log::Level, message: String) -> Wasm<()> {
        old::log::Host::write(self, level.into(), message)
    }
}

impl new::config::Host for PluginState {
    fn get(&mut self, path: Vec<String>) -> Wasm<Option<new::config::Value>> {
        Ok(old::config::Host::get(self, path)?.map(Into::into))
    }
}

impl new::dns::Host for PluginState {
    async fn lookup_a(&mut self, name: String) -> Result<Vec<String>, new::dns::Error> {
        old::dns::Host::lookup_a(self, name).await.map_err(Into::into)
    }
    async fn lookup_aaaa(&mut self, name: String) -> Result<Vec<String>, new::dns::Error> {
        old::dns::Host::lookup_aaaa(self, name).await.map_err(Into::into)
    }
    async fn lookup_mx(&mut self, name: String) -> Result<Vec<new::dns::Mx>, new::dns::Error> {
        old::dns::Host::lookup_mx(self, name).await.map(list).map_err(Into::into)
    }
    async fn lookup_txt(&mut self, name: String) -> Result<Vec<String>, new::dns::Error> {
        old::dns::Host::lookup_txt(self, name).await.map_err(Into::into)
    }
    async fn lookup_ptr(&mut self, address: String) -> Result<Vec<String>, new::dns::Error> {
        old::dns::Host::lookup_ptr(self, address).await.map_err(Into::into)
    }
}

impl new::kv::Host for PluginState {
    async fn get(&mut self, key: String) -> Wasm<Result<Option<Vec<u8>>, new::kv::Error>> {
        Ok(old::kv::Host::get(self, key).await?.map_err(Into::into))
    }
    async fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: Option<u64>) -> Wasm<Result<(), new::kv::Error>> {
        Ok(old::kv::Host::set(self, key, value, ttl_ms).await?.map_err(Into::into))
    }
    async fn increment(&mut self, key: String, delta: i64, ttl_ms: Option<u64>) -> Wasm<Result<i64, new::kv::Error>> {
        Ok(old::kv::Host::increment(self, key, delta, ttl_ms).await?.map_err(Into::into))
    }
    async fn delete(&mut self, key: String) -> Wasm<Result<bool, new::kv::Error>> {
        Ok(old::kv::Host::delete(self, key).await?.map_err(Into::into))
    }
}

impl new::message::Host for PluginState {}

impl new::message::HostMessage for PluginState {
    fn size(&mut self, message: Resource<MessageView>) -> Wasm<u64> {
        old::message::HostMessage::size(self, message)
    }
    fn headers(&mut self, message: Resource<MessageView>) -> Wasm<Vec<new::message::Header>> {
        old::message::HostMessage::headers(self, message).map(list)
    }
    fn header(&mut self, message: Resource<MessageView>, name: String) -> Wasm<Vec<String>> {
        old::message::HostMessage::header(self, message, name)
    }
    fn body_size(&mut self, message: Resource<MessageView>) -> Wasm<u64> {
        old::message::HostMessage::body_size(self, message)
    }
    fn read_body(&mut self, message: Resource<MessageView>, offset: u64, max: u32) -> Wasm<Vec<u8>> {
        old::message::HostMessage::read_body(self, message, offset, max)
    }
    fn parts(&mut self, message: Resource<MessageView>) -> Wasm<Vec<new::message::Part>> {
        old::message::HostMessage::parts(self, message).map(list)
    }
    fn read_part(&mut self, message: Resource<MessageView>, index: u32, offset: u64, max: u32) -> Wasm<Vec<u8>> {
        old::message::HostMessage::read_part(self, message, index, offset, max)
    }
    fn drop(&mut self, message: Resource<MessageView>) -> Wasm<()> {
        old::message::HostMessage::drop(self, message)
    }
}

/// The results of the current transaction: SPF from MAIL FROM on, the rest at DATA.
impl new::auth::Host for PluginState {
    fn spf(&mut self) -> Wasm<Option<new::auth::SpfResult>> {
        Ok(self.auth.spf.as_ref().map(auth::spf))
    }
    fn dkim(&mut self) -> Wasm<Vec<new::auth::DkimSignature>> {
        Ok(self.auth.dkim.iter().map(auth::dkim).collect())
    }
    fn arc(&mut self) -> Wasm<Option<new::auth::ArcResult>> {
        Ok(self.auth.arc.as_ref().map(auth::arc))
    }
    fn dmarc(&mut self) -> Wasm<Option<new::auth::DmarcResult>> {
        Ok(self.auth.dmarc.as_ref().map(auth::dmarc))
    }
    fn iprev(&mut self) -> Wasm<Option<new::auth::IprevResult>> {
        Ok(self
            .auth
            .iprev
            .as_ref()
            .map(|i| new::auth::IprevResult { verdict: auth::verdict(i.verdict), name: i.name.clone() }))
    }
}

/// The server's results in the WIT's records.
mod auth {
    use super::new::auth as wit;
    use crate::mail_auth::results as ours;

    pub fn verdict(verdict: ours::Verdict) -> wit::Verdict {
        match verdict {
            ours::Verdict::Pass => wit::Verdict::Pass,
            ours::Verdict::Fail => wit::Verdict::Fail,
            ours::Verdict::Softfail => wit::Verdict::Softfail,
            ours::Verdict::Neutral => wit::Verdict::Neutral,
            ours::Verdict::None => wit::Verdict::None,
            ours::Verdict::Policy => wit::Verdict::Policy,
            ours::Verdict::Temperror => wit::Verdict::Temperror,
            ours::Verdict::Permerror => wit::Verdict::Permerror,
        }
    }

    pub fn spf(spf: &ours::SpfCheck) -> wit::SpfResult {
        wit::SpfResult {
            verdict: verdict(spf.verdict),
            identity: match spf.identity {
                ours::SpfIdentity::MailFrom => wit::SpfIdentity::MailFrom,
                ours::SpfIdentity::Helo => wit::SpfIdentity::Helo,
            },
            domain: spf.domain.clone(),
            reason: spf.reason.clone(),
        }
    }

    pub fn dkim(dkim: &ours::DkimCheck) -> wit::DkimSignature {
        wit::DkimSignature {
            verdict: verdict(dkim.verdict),
            domain: dkim.domain.clone(),
            selector: dkim.selector.clone(),
            algorithm: dkim.algorithm.clone(),
            aligned: dkim.aligned,
            reason: dkim.reason.clone(),
        }
    }

    pub fn arc(arc: &ours::ArcCheck) -> wit::ArcResult {
        wit::ArcResult { verdict: verdict(arc.verdict), sealers: arc.sealers.clone(), reason: arc.reason.clone() }
    }

    fn disposition(disposition: ours::Disposition) -> wit::DmarcDisposition {
        match disposition {
            ours::Disposition::None => wit::DmarcDisposition::None,
            ours::Disposition::Quarantine => wit::DmarcDisposition::Quarantine,
            ours::Disposition::Reject => wit::DmarcDisposition::Reject,
        }
    }

    fn alignment(alignment: ours::Alignment) -> wit::Alignment {
        match alignment {
            ours::Alignment::Relaxed => wit::Alignment::Relaxed,
            ours::Alignment::Strict => wit::Alignment::Strict,
        }
    }

    pub fn dmarc(dmarc: &ours::DmarcCheck) -> wit::DmarcResult {
        wit::DmarcResult {
            verdict: verdict(dmarc.verdict),
            from_domain: dmarc.from_domain.clone(),
            record_domain: dmarc.record_domain.clone(),
            policy: dmarc.policy.map(disposition),
            subdomain_policy: dmarc.subdomain_policy.map(disposition),
            applied_policy: dmarc.applied_policy.map(disposition),
            pct: dmarc.pct,
            dkim_alignment: alignment(dmarc.dkim_alignment),
            spf_alignment: alignment(dmarc.spf_alignment),
            spf_aligned: dmarc.spf_aligned,
            dkim_aligned: dmarc.dkim_aligned,
        }
    }
}
