//! The precedence rule of the WIT contract: plugins of a stage run in configuration
//! order until the first verdict other than `continue`, which ends the stage.
//! `discard` and `quarantine` end it too, and are kept in the notes to take effect at
//! the end of DATA (whichever stage said them).

use super::decision::Decision;
use super::notes::Notes;
use crate::plugin::output::Verdict;
use crate::plugin::stage::Stage;

/// What a plugin's verdict means for the stage: `None` lets the next plugin run.
pub(super) fn decide(plugin: &str, stage: Stage, verdict: Verdict, notes: &mut Notes) -> Option<Decision> {
    metrics::counter!("sluice_plugin_verdicts_total", "plugin" => plugin.to_string(), "stage" => stage.name(), "verdict" => verdict.name())
        .increment(1);
    match verdict {
        Verdict::Continue => None,
        Verdict::Accept => Some(Decision::Proceed),
        Verdict::Reject(reply) | Verdict::Tempfail(reply) => {
            tracing::info!(%plugin, %stage, %reply, "refused by plugin");
            Some(Decision::Refuse(reply))
        }
        Verdict::Disconnect(reply) => {
            tracing::info!(%plugin, %stage, %reply, "disconnected by plugin");
            Some(Decision::Disconnect(reply))
        }
        Verdict::Discard => {
            notes.discard = Some(plugin.to_string());
            Some(Decision::Proceed)
        }
        Verdict::Quarantine(reason) => {
            notes.quarantine = Some(format!("{plugin}: {reason}"));
            Some(Decision::Proceed)
        }
    }
}

/// A plugin's rewrites only count when its verdict lets the transaction go on.
pub(super) fn proceeds(verdict: &Verdict) -> bool {
    !matches!(verdict, Verdict::Reject(_) | Verdict::Tempfail(_) | Verdict::Disconnect(_))
}
