//! Running the checks with mail-auth, through the server's own hickory resolver, and
//! turning its outputs into [`AuthResults`] and an Authentication-Results field.

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{DkimError, Signature};
use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    ArcOutput, AuthenticatedMessage, AuthenticationResults, DkimOutput, DkimResult, DmarcOutput, DmarcResult,
    IprevResult, MessageAuthenticator, SpfOutput, SpfResult,
};

use super::dmarc_record::{PublishedRecord, aligned, published_record};
use super::header::{is_ours, without_ours};
use super::results::{
    Alignment, ArcCheck, AuthResults, Disposition, DkimCheck, DmarcCheck, IprevCheck, SpfCheck, SpfIdentity, Verdict,
};
use super::spf_voids::{MAX_VOID_LOOKUPS, VoidLookups};
use crate::config::MailAuthConfig;
use crate::dns::Resolver;
use crate::mail::Mailbox;

/// Signatures verified per message; the rest are answered `permerror` unchecked, so
/// a message stuffed with signatures costs no more than this many key lookups.
pub const MAX_SIGNATURES: usize = 10;
/// The longest any one check may take, whatever the DNS does; past it, `temperror`.
const CHECK_TIME: Duration = Duration::from_secs(20);

/// The checks of one configuration.
pub struct Checker {
    config: MailAuthConfig,
    authserv_id: String,
    authenticator: Option<MessageAuthenticator>,
}

/// SPF at MAIL FROM: mail-auth's output (DMARC needs it at DATA) and ours.
#[derive(Clone, Debug)]
pub struct SpfOutcome {
    output: SpfOutput,
    pub check: SpfCheck,
    /// MAIL FROM as given (`""` for `<>`) and the HELO name, for the header.
    mail_from: String,
    helo: String,
}

/// The checks at the end of DATA.
#[derive(Clone, Debug, Default)]
pub struct MessageOutcome {
    pub results: AuthResults,
    /// Our Authentication-Results field, CRLF-terminated, when `add_header` is on.
    pub header: Option<String>,
}

impl Checker {
    /// The checks `config` asks for, asking DNS through `resolver`.
    pub fn new(config: &MailAuthConfig, hostname: &str, resolver: &dyn Resolver) -> Checker {
        let authenticator = if config.any() { resolver.hickory().map(MessageAuthenticator) } else { None };
        Checker { authserv_id: config.authserv_id(hostname).to_string(), config: config.clone(), authenticator }
    }

    /// No checks at all.
    pub fn disabled() -> Checker {
        let config = MailAuthConfig { spf: false, dkim: false, arc: false, dmarc: false, ..MailAuthConfig::default() };
        Checker { authserv_id: String::new(), config, authenticator: None }
    }

    pub fn authserv_id(&self) -> &str {
        &self.authserv_id
    }

    /// Whether mail from this client is checked: any check is on, and the client is
    /// not ours (or `check_trusted` says to check ours too).
    pub fn applies(&self, trusted: bool) -> bool {
        self.authenticator.is_some() && (!trusted || self.config.check_trusted)
    }

    /// Whether a forged field of ours is removed: whenever checks run and report.
    pub fn strips_forged(&self) -> bool {
        self.authenticator.is_some() && self.config.add_header
    }

    /// Whether a header field (with its line ends) is a forged one of ours, to be removed.
    pub fn forged(&self, field: &[u8]) -> bool {
        self.strips_forged() && is_ours(field, &self.authserv_id)
    }

    /// How a message's header section (`section`) changes: `ours` (our field, if any)
    /// on top, and the forged fields with our authserv-id out. The bytes replace the
    /// first `len` of the section; `None` when nothing changes.
    pub fn header_edit(&self, section: &[u8], ours: Option<String>) -> Option<(usize, Vec<u8>)> {
        let mut start = ours.map(String::into_bytes).unwrap_or_default();
        match self.strips_forged().then(|| without_ours(section, &self.authserv_id)).flatten() {
            Some(kept) => {
                start.extend_from_slice(&kept);
                Some((section.len(), start))
            }
            None if start.is_empty() => None,
            None => Some((0, start)),
        }
    }

    /// SPF for MAIL FROM, or for the HELO name when MAIL FROM is `<>`.
    pub async fn spf(&self, ip: IpAddr, helo: &str, sender: Option<&Mailbox>) -> Option<SpfOutcome> {
        let authenticator = self.authenticator.as_ref().filter(|_| self.config.spf)?;
        let mail_from = sender.map(ToString::to_string).unwrap_or_default();
        let (identity, domain) = match sender {
            Some(sender) => (SpfIdentity::MailFrom, sender.domain.to_ascii_lowercase()),
            None => (SpfIdentity::Helo, helo.to_string()),
        };
        let params = match sender {
            Some(_) => SpfParameters::verify_mail_from(ip, helo, &self.authserv_id, &mail_from),
            None => SpfParameters::verify_ehlo(ip, helo, &self.authserv_id),
        };
        let voids = VoidLookups::default();
        let output = bounded(authenticator.verify_spf(voids.watching(params))).await;
        let errored = output.as_ref().is_none_or(|o| o.result() == SpfResult::TempError);
        let mut output = output.unwrap_or_else(|| SpfOutput::new(domain.clone()).with_result(SpfResult::TempError));
        let mut reason = match output.result() {
            SpfResult::TempError if output.explanation().is_none() => Some("DNS lookup failed or timed out".into()),
            _ => output.explanation().map(str::to_string),
        };
        let exceeded = bounded(voids.exceeded(authenticator, ip, errored));
        if output.result() != SpfResult::PermError && exceeded.await == Some(true) {
            output = output.with_result(SpfResult::PermError);
            reason = Some(format!("more than {MAX_VOID_LOOKUPS} void DNS lookups (RFC 7208 section 4.6.4)"));
        }
        let check = SpfCheck { verdict: spf_verdict(output.result()), identity, domain, reason };
        super::metrics::count("spf", check.verdict);
        Some(SpfOutcome { output, check, mail_from, helo: helo.to_string() })
    }

    /// DKIM, ARC, DMARC and iprev for a received message (all of it: header and body).
    pub async fn message(&self, ip: IpAddr, helo: &str, spf: Option<&SpfOutcome>, content: &[u8]) -> MessageOutcome {
        let Some(authenticator) = &self.authenticator else { return MessageOutcome::default() };
        let mut results = AuthResults { spf: spf.map(|s| s.check.clone()), ..AuthResults::default() };
        let mut header = AuthenticationResults::new(&self.authserv_id);
        if let Some(spf) = spf {
            header = match spf.check.identity {
                SpfIdentity::MailFrom => header.with_spf_mailfrom_result(&spf.output, ip, &spf.mail_from, &spf.helo),
                SpfIdentity::Helo => header.with_spf_ehlo_result(&spf.output, ip, &spf.helo),
            };
        }
        if let Some(mut message) = AuthenticatedMessage::parse(content) {
            let unchecked = message.dkim_headers.len().saturating_sub(MAX_SIGNATURES);
            message.dkim_headers.truncate(MAX_SIGNATURES);
            let from_domain = message.from().rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
            let dkim: Vec<DkimOutput<'_>> = if self.config.dkim || self.config.dmarc {
                let outputs = bounded(authenticator.verify_dkim(&message)).await.unwrap_or_default();
                outputs.into_iter().map(|output| body_hash_fails(output, &message)).collect()
            } else {
                Vec::new()
            };
            let record = if from_domain.is_empty() || !self.config.dmarc {
                None
            } else {
                published_record(authenticator, &from_domain).await
            };
            if self.config.dkim {
                header = header.with_dkim_results(&dkim, message.from());
                results.dkim = dkim.iter().map(|o| dkim_check(o, &from_domain, record.as_ref())).collect();
                results.dkim.extend((0..unchecked).map(|_| too_many_signatures()));
            }
            if self.config.arc {
                let arc = bounded(authenticator.verify_arc(&message)).await.unwrap_or_default();
                header = header.with_arc_result(&arc, ip);
                results.arc = Some(arc_check(&arc));
            }
            if self.config.dmarc && !from_domain.is_empty() {
                let mail_from_domain = spf.map_or(helo, |s| s.check.domain.as_str());
                let no_spf = SpfOutput::default();
                let spf_output = spf.map_or(&no_spf, |s| &s.output);
                let params = DmarcParameters::new(&message, &dkim, mail_from_domain, spf_output);
                let dmarc = bounded(authenticator.verify_dmarc(params))
                    .await
                    .unwrap_or_else(|| DmarcOutput::new(from_domain.clone()).with_spf_result(dns_timeout()));
                header = header.with_dmarc_result(&dmarc);
                results.dmarc = Some(dmarc_check(&dmarc, &from_domain, record));
            }
        }
        let iprev = bounded(authenticator.verify_iprev(ip)).await;
        if let Some(iprev) = &iprev {
            header = header.with_iprev_result(iprev, ip);
        }
        results.iprev = Some(match iprev {
            Some(iprev) => IprevCheck {
                verdict: iprev_verdict(&iprev.result),
                name: matches!(iprev.result, IprevResult::Pass)
                    .then(|| iprev.ptr.as_ref().and_then(|p| p.first()).map(|n| n.trim_end_matches('.').to_string()))
                    .flatten(),
            },
            None => IprevCheck { verdict: Verdict::Temperror, name: None },
        });
        super::metrics::count_message(&results);
        MessageOutcome { results, header: self.config.add_header.then(|| header.to_header()) }
    }
}

/// A check cut off at [`CHECK_TIME`]: `None`.
async fn bounded<T>(check: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(CHECK_TIME, check).await.ok()
}

fn dns_timeout() -> DmarcResult {
    DmarcResult::TempError(mail_auth::Error::Dns(mail_auth::DnsError::Resolver("timed out".into())))
}

fn spf_verdict(result: SpfResult) -> Verdict {
    match result {
        SpfResult::Pass => Verdict::Pass,
        SpfResult::Fail => Verdict::Fail,
        SpfResult::SoftFail => Verdict::Softfail,
        SpfResult::Neutral => Verdict::Neutral,
        SpfResult::TempError => Verdict::Temperror,
        SpfResult::PermError => Verdict::Permerror,
        SpfResult::None => Verdict::None,
    }
}

/// The verdict and, for anything but a pass, why.
fn dkim_verdict(result: &DkimResult) -> (Verdict, Option<String>) {
    match result {
        DkimResult::Pass => (Verdict::Pass, None),
        DkimResult::None => (Verdict::None, None),
        DkimResult::Neutral(e) => (Verdict::Neutral, Some(e.to_string())),
        DkimResult::Fail(e) => (Verdict::Fail, Some(e.to_string())),
        DkimResult::PermError(e) => (Verdict::Permerror, Some(e.to_string())),
        DkimResult::TempError(e) => (Verdict::Temperror, Some(e.to_string())),
    }
}

/// RFC 6376 §6.1.3: a body hash that does not match is PERMFAIL, which RFC 8601
/// §2.7.1 reports as `fail`; mail-auth 0.13 says `neutral`.
fn body_hash_fails<'x>(output: DkimOutput<'x>, message: &'x AuthenticatedMessage<'x>) -> DkimOutput<'x> {
    let body_hash = mail_auth::Error::Dkim(DkimError::FailedBodyHashMatch);
    if *output.result() != DkimResult::Neutral(body_hash.clone()) {
        return output;
    }
    let signed = output.signature().and_then(|s| message.dkim_headers.iter().find(|h| h.header.b == s.b));
    match signed {
        Some(header) => DkimOutput::fail(body_hash).with_signature(&header.header),
        None => output,
    }
}

fn algorithm(signature: &Signature) -> &'static str {
    match signature.a {
        mail_auth::common::crypto::Algorithm::RsaSha256 => "rsa-sha256",
        mail_auth::common::crypto::Algorithm::RsaSha1 => "rsa-sha1",
        mail_auth::common::crypto::Algorithm::Ed25519Sha256 => "ed25519-sha256",
    }
}

fn dkim_check(output: &DkimOutput<'_>, from_domain: &str, record: Option<&PublishedRecord>) -> DkimCheck {
    let (verdict, reason) = dkim_verdict(output.result());
    let strict = record.is_some_and(|r| r.dkim_alignment == Alignment::Strict);
    let (domain, selector, algorithm) = output
        .signature()
        .map_or((String::new(), String::new(), ""), |s| (s.d.to_ascii_lowercase(), s.s.clone(), algorithm(s)));
    let aligned = !domain.is_empty() && aligned(&domain, from_domain, strict, record);
    DkimCheck { verdict, domain, selector, algorithm: algorithm.to_string(), aligned, reason }
}

fn too_many_signatures() -> DkimCheck {
    DkimCheck {
        verdict: Verdict::Permerror,
        domain: String::new(),
        selector: String::new(),
        algorithm: String::new(),
        aligned: false,
        reason: Some(format!("not checked: more than {MAX_SIGNATURES} signatures")),
    }
}

fn arc_check(output: &ArcOutput<'_>) -> ArcCheck {
    let (verdict, reason) = match dkim_verdict(output.result()) {
        // RFC 8617 §5.2: a chain validates or it does not.
        (Verdict::Neutral | Verdict::Permerror | Verdict::Policy | Verdict::Softfail, reason) => {
            (Verdict::Fail, reason)
        }
        other => other,
    };
    let sealers = output.sets().iter().map(|set| set.seal.header.d.to_ascii_lowercase()).collect();
    ArcCheck { verdict, sealers, reason }
}

fn disposition(policy: Policy) -> Option<Disposition> {
    match policy {
        Policy::None => Some(Disposition::None),
        Policy::Quarantine => Some(Disposition::Quarantine),
        Policy::Reject => Some(Disposition::Reject),
        Policy::Unspecified => None,
    }
}

fn dmarc_check(output: &DmarcOutput, from_domain: &str, record: Option<PublishedRecord>) -> DmarcCheck {
    let verdict = match output.result() {
        DmarcResult::Pass => Verdict::Pass,
        DmarcResult::Fail(_) => Verdict::Fail,
        DmarcResult::TempError(_) => Verdict::Temperror,
        DmarcResult::PermError(_) => Verdict::Permerror,
        DmarcResult::None => Verdict::None,
    };
    let applies = output.dmarc_record().is_some();
    DmarcCheck {
        verdict,
        from_domain: from_domain.to_string(),
        policy: record.as_ref().and_then(|r| r.p),
        subdomain_policy: record.as_ref().and_then(|r| r.sp),
        applied_policy: if applies { disposition(output.policy()) } else { None },
        pct: record.as_ref().map_or(100, |r| r.pct),
        dkim_alignment: record.as_ref().map_or(Alignment::Relaxed, |r| r.dkim_alignment),
        spf_alignment: record.as_ref().map_or(Alignment::Relaxed, |r| r.spf_alignment),
        spf_aligned: *output.spf_result() == DmarcResult::Pass,
        dkim_aligned: *output.dkim_result() == DmarcResult::Pass,
        record_domain: record.map(|r| r.domain),
    }
}

fn iprev_verdict(result: &IprevResult) -> Verdict {
    match result {
        IprevResult::Pass => Verdict::Pass,
        IprevResult::Fail(_) => Verdict::Fail,
        IprevResult::TempError(_) => Verdict::Temperror,
        IprevResult::PermError(_) => Verdict::Permerror,
        IprevResult::None => Verdict::None,
    }
}
