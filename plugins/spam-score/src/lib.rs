//! spam-score: scores a message at DATA with configurable rules, reports the score in
//! `X-Spam-*` headers, adds it to the transaction's score, and quarantines or rejects
//! above thresholds. See `plugins/README.md` for the configuration.
//!
//! The checks live in plain modules tested on the host; this file reads the message
//! through the host (bounded) and turns the verdict into a hook result.

pub mod config;
pub mod date;
pub mod prefilter;
pub mod score;
pub mod text;

use sluice_plugin::prelude::*;

use crate::config::Settings;
use crate::score::{Action, TextBody, Verdict, decide, evaluate, format_score};

/// Read and checked once per instance; problems are logged then.
static SETTINGS: PluginConfig<Settings> = PluginConfig::new(config::parse);

/// Reads the text parts (not attachments), decoded, at most `budget` bytes in all. A
/// message without parts is read raw from the body.
fn read_texts(message: &Message, mut budget: u64) -> Vec<TextBody> {
    let mut bodies = Vec::new();
    let parts = message.parts();
    for part in &parts {
        let html = match part.content_type.as_str() {
            "text/plain" => false,
            "text/html" => true,
            _ => continue,
        };
        if part.is_attachment || budget == 0 {
            continue;
        }
        let bytes = message.read_part_prefix(part.index, budget.min(part.size));
        budget = budget.saturating_sub(bytes.len() as u64);
        bodies.push(TextBody { html, content: text(bytes) });
    }
    if parts.is_empty() && budget > 0 {
        bodies.push(TextBody { html: false, content: text(message.read_body_prefix(budget)) });
    }
    bodies
}

/// The bytes as text, without a copy when they are valid UTF-8 (the usual case).
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn outcome(settings: &Settings, verdict: &Verdict) -> Outcome {
    let rules = verdict.rule_names();
    let mut outcome = match verdict.action {
        Action::Reject => Outcome::reject(
            550,
            "5.7.1",
            format!(
                "Message rejected as spam (score {} >= {})",
                format_score(verdict.total),
                format_score(settings.reject_threshold.unwrap_or_default())
            ),
        ),
        Action::Quarantine => Outcome::quarantine(format!(
            "spam score {} >= {} ({rules})",
            format_score(verdict.total),
            format_score(settings.quarantine_threshold.unwrap_or_default())
        )),
        Action::Continue => Outcome::proceed(),
    };
    if verdict.spam {
        outcome = outcome.tag("spam");
    }
    for hit in &verdict.hits {
        outcome = outcome.tag(format!("spam-score:{}", hit.name));
    }
    outcome.score(verdict.own).annotate("score", format_score(verdict.total)).annotate("rules", rules)
}

pub struct SpamScore;

impl Plugin for SpamScore {
    fn describe() -> PluginInfo {
        sluice_plugin::plugin_info!(Stage::Data).reusable()
    }

    fn data(_session: &Session, txn: &Transaction, message: &Message) -> DataResult {
        let settings = SETTINGS.get();
        let headers: Vec<(String, String)> = message.headers().into_iter().map(|h| (h.name, h.value)).collect();
        let bodies = read_texts(message, settings.max_body_scan);
        let verdict = decide(settings, evaluate(settings, &headers, &bodies), txn.score);
        sluice_plugin::log::info(&format!(
            "score {} ({}): {:?}",
            format_score(verdict.total),
            verdict.report(),
            verdict.action
        ));
        // `set` replaces any X-Spam-* fields the sender put there.
        DataResult::from(outcome(settings, &verdict))
            .set_header("X-Spam-Score", format_score(verdict.total))
            .set_header("X-Spam-Status", verdict.status(settings))
            .set_header("X-Spam-Report", verdict.report())
    }
}

sluice_plugin::export!(SpamScore);
