//! Mail-authentication results from a table.

use crate::auth::{
    Alignment, ArcResult, Auth, AuthVerdict, DkimSignature, DmarcDisposition, DmarcResult, IprevResult, SpfResult,
};

/// Answers with the results set in its fields (nothing checked, by default).
#[derive(Clone, Debug, Default)]
pub struct FakeAuth {
    pub spf: Option<SpfResult>,
    pub dkim: Vec<DkimSignature>,
    pub arc: Option<ArcResult>,
    pub dmarc: Option<DmarcResult>,
    pub iprev: Option<IprevResult>,
}

impl FakeAuth {
    /// A DMARC result for `from_domain` with the published policy `policy` (applied as
    /// published, `pct=100`, relaxed alignment, nothing aligned unless it passes).
    pub fn with_dmarc(mut self, verdict: AuthVerdict, from_domain: &str, policy: DmarcDisposition) -> FakeAuth {
        let pass = verdict == AuthVerdict::Pass;
        self.dmarc = Some(DmarcResult {
            verdict,
            from_domain: from_domain.to_string(),
            record_domain: Some(from_domain.to_string()),
            policy: Some(policy),
            subdomain_policy: None,
            applied_policy: Some(policy),
            pct: 100,
            dkim_alignment: Alignment::Relaxed,
            spf_alignment: Alignment::Relaxed,
            spf_aligned: false,
            dkim_aligned: pass,
        });
        self
    }

    /// Sets `pct=` of the DMARC result (after [`Self::with_dmarc`]).
    pub fn with_pct(mut self, pct: u8) -> FakeAuth {
        if let Some(dmarc) = &mut self.dmarc {
            dmarc.pct = pct;
        }
        self
    }

    /// An ARC chain with this verdict, sealed by `sealers` (`i=1` first).
    pub fn with_arc(mut self, verdict: AuthVerdict, sealers: &[&str]) -> FakeAuth {
        self.arc = Some(ArcResult { verdict, sealers: sealers.iter().map(|s| s.to_string()).collect(), reason: None });
        self
    }
}

impl Auth for FakeAuth {
    fn spf(&mut self) -> Option<SpfResult> {
        self.spf.clone()
    }
    fn dkim(&mut self) -> Vec<DkimSignature> {
        self.dkim.clone()
    }
    fn arc(&mut self) -> Option<ArcResult> {
        self.arc.clone()
    }
    fn dmarc(&mut self) -> Option<DmarcResult> {
        self.dmarc.clone()
    }
    fn iprev(&mut self) -> Option<IprevResult> {
        self.iprev.clone()
    }
}
