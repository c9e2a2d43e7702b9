//! attachment-guard: walks the MIME tree at DATA (nested messages included) and
//! rejects or quarantines forbidden attachments: extensions (double ones too), content
//! types, executable content, sizes, and the names inside zip archives. See
//! `plugins/README.md` for the configuration.
//!
//! The checks live in plain modules tested on the host; this file reads the parts
//! through the host (bounded) and turns the findings into a hook result.

pub mod config;
pub mod inspect;
pub mod names;
pub mod zip;

use sluice_plugin::prelude::*;

use crate::config::{Settings, Severity};
use crate::inspect::{Finding, PartInfo, check_part, decisive, quarantine_reason, reply};
use crate::zip::ReadAt;

/// Read and checked once per instance; problems are logged then.
static SETTINGS: PluginConfig<Settings> = PluginConfig::new(config::parse);

/// A part's decoded content, read through the host on demand.
struct PartContent<'m> {
    message: &'m Message,
    index: u32,
}

impl ReadAt for PartContent<'_> {
    fn read_at(&self, offset: u64, max: u32) -> Vec<u8> {
        self.message.read_part(self.index, offset, max)
    }
}

pub struct AttachmentGuard;

impl Plugin for AttachmentGuard {
    fn describe() -> PluginInfo {
        sluice_plugin::plugin_info!(Stage::Data).reusable()
    }

    fn data(_session: &Session, _txn: &Transaction, message: &Message) -> DataResult {
        let settings = SETTINGS.get();
        let mut findings: Vec<Finding> = Vec::new();
        for part in message.parts() {
            let info = PartInfo {
                index: part.index,
                content_type: part.content_type,
                filename: part.filename,
                size: part.size,
                is_attachment: part.is_attachment,
            };
            findings.extend(check_part(settings, &info, &PartContent { message, index: part.index }));
        }
        for f in &findings {
            sluice_plugin::log::info(&format!("attachment \"{}\": {} ({:?})", f.name, f.detail, f.severity));
        }
        let Some(finding) = decisive(&findings) else { return Outcome::proceed().into() };
        let outcome = match finding.severity {
            Severity::Reject => {
                let (code, enhanced, text) = reply(finding);
                Outcome::reject(code, enhanced, text)
            }
            Severity::Quarantine => Outcome::quarantine(quarantine_reason(finding)),
        };
        let all: Vec<String> = findings.iter().map(|f| format!("{}: {}", f.name, f.detail)).collect();
        outcome
            .tag(match finding.severity {
                Severity::Reject => "attachment-guard:blocked",
                Severity::Quarantine => "attachment-guard:quarantined",
            })
            .annotate("attachment", finding.name.clone())
            .annotate("findings", all.join("; "))
            .into()
    }
}

sluice_plugin::export!(AttachmentGuard);
