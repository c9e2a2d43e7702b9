//! The results of the checks of one transaction, in the server's own words: what the
//! `auth` interface hands plugins and the offline runner shows. mail-auth's types stay
//! inside `check.rs`.

use serde::Serialize;

/// The outcome of one check (RFC 8601 §2.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Softfail,
    Neutral,
    None,
    Policy,
    Temperror,
    Permerror,
}

impl Verdict {
    pub const fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Softfail => "softfail",
            Verdict::Neutral => "neutral",
            Verdict::None => "none",
            Verdict::Policy => "policy",
            Verdict::Temperror => "temperror",
            Verdict::Permerror => "permerror",
        }
    }
}

/// Which identity SPF checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpfIdentity {
    MailFrom,
    /// MAIL FROM was `<>` (RFC 7208 §2.4).
    Helo,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpfCheck {
    pub verdict: Verdict,
    pub identity: SpfIdentity,
    pub domain: String,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DkimCheck {
    pub verdict: Verdict,
    pub domain: String,
    pub selector: String,
    pub algorithm: String,
    /// Aligned with the From domain (see `dmarc-result` in the WIT).
    pub aligned: bool,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ArcCheck {
    pub verdict: Verdict,
    /// The ARC-Seal `d=` of each set, `i=1` first.
    pub sealers: Vec<String>,
    pub reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Disposition {
    None,
    Quarantine,
    Reject,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Alignment {
    Relaxed,
    Strict,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DmarcCheck {
    pub verdict: Verdict,
    pub from_domain: String,
    pub record_domain: Option<String>,
    pub policy: Option<Disposition>,
    pub subdomain_policy: Option<Disposition>,
    pub applied_policy: Option<Disposition>,
    pub pct: u8,
    pub dkim_alignment: Alignment,
    pub spf_alignment: Alignment,
    pub spf_aligned: bool,
    pub dkim_aligned: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IprevCheck {
    pub verdict: Verdict,
    pub name: Option<String>,
}

/// Everything known about the current transaction: SPF from MAIL on, the rest once
/// the content is in. A check that did not run is `None` (or empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AuthResults {
    pub spf: Option<SpfCheck>,
    pub dkim: Vec<DkimCheck>,
    pub arc: Option<ArcCheck>,
    pub dmarc: Option<DmarcCheck>,
    pub iprev: Option<IprevCheck>,
}
