//! `sluice_mail_auth_results_total{check, verdict}`: how the checks came out.

use super::results::{AuthResults, Verdict};

pub const CHECKS: [&str; 5] = ["spf", "dkim", "arc", "dmarc", "iprev"];
pub const VERDICTS: [Verdict; 8] = [
    Verdict::Pass,
    Verdict::Fail,
    Verdict::Softfail,
    Verdict::Neutral,
    Verdict::None,
    Verdict::Policy,
    Verdict::Temperror,
    Verdict::Permerror,
];

pub fn count(check: &'static str, verdict: Verdict) {
    metrics::counter!("sluice_mail_auth_results_total", "check" => check, "verdict" => verdict.name()).increment(1);
}

/// Counts the checks made at the end of DATA (SPF was counted at MAIL FROM).
pub fn count_message(results: &AuthResults) {
    for dkim in &results.dkim {
        count("dkim", dkim.verdict);
    }
    if let Some(arc) = &results.arc {
        count("arc", arc.verdict);
    }
    if let Some(dmarc) = &results.dmarc {
        count("dmarc", dmarc.verdict);
    }
    if let Some(iprev) = &results.iprev {
        count("iprev", iprev.verdict);
    }
}

/// Every series at zero, so dashboards see them before the first message.
pub fn register() {
    for check in CHECKS {
        for verdict in VERDICTS {
            metrics::counter!("sluice_mail_auth_results_total", "check" => check, "verdict" => verdict.name())
                .increment(0);
        }
    }
}
