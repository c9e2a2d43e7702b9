//! Host-side bindings for every `sluice:plugin` version line the server serves
//! (`wit/v0.1.0/`, `wit/v0.2.0/`), generated at build time, and the conversions that
//! let the rest of the host work in one set of types.
//!
//! The chain works in the types of 0.1.0 (re-exported here as `sluice` and `exports`).
//! 0.2.0's `types` interface has the same shape as 0.1.0's (only `plugin-info` moved to
//! `hooks`), so its bindings take 0.1.0's Rust types as they are (`with`): sessions,
//! transactions and outcomes cross either version without a conversion, as wasmtime
//! checks records and variants by shape. What 0.2.0 defines itself (its hooks' results,
//! the records of its host interfaces) is converted field by field, by move.

/// The generator's options, the same for each version; `$with` maps what a version
/// shares with an earlier one.
macro_rules! versioned_bindings {
    ($path:tt, { $($with:tt)* }) => {
        wasmtime::component::bindgen!({
            path: $path,
            world: "plugin",
            imports: {
                "sluice:plugin/dns": async,
                "sluice:plugin/kv": async | trappable,
                "sluice:plugin/message": trappable,
                default: trappable,
            },
            exports: { default: async },
            with: {
                "sluice:plugin/message.message": crate::plugin::message::MessageView,
                $($with)*
            },
        });
    };
}

pub mod v0_1 {
    versioned_bindings!("wit/v0.1.0", {});
}

pub mod v0_2 {
    versioned_bindings!("wit/v0.2.0", {
        "sluice:plugin/types": crate::plugin::bindings::v0_1::sluice::plugin::types,
    });
}

/// The types the host works in.
pub use v0_1::{exports, sluice};

use v0_1::exports::sluice::plugin::hooks as hooks_v0_1;
use v0_2::exports::sluice::plugin::hooks as hooks_v0_2;

/// Conversions between records and variants of the same shape, case by case or field
/// by field (`.into()` on each payload, so nested ones convert too).
macro_rules! same_shape {
    (enum $m:ident::$from:ident => $to:ident { $($case:ident $(($x:ident))?),* $(,)? }) => {
        impl From<$m::$from> for $to {
            fn from(value: $m::$from) -> $to {
                match value {
                    $($m::$from::$case $(($x))? => $to::$case $(($x.into()))?),*
                }
            }
        }
    };
    (struct $m:ident::$from:ident => $to:ident { $($field:ident),* $(,)? }) => {
        impl From<$m::$from> for $to {
            fn from(value: $m::$from) -> $to {
                $to { $($field: value.$field.into()),* }
            }
        }
    };
}
pub(crate) use same_shape;

/// A 0.1.0 plugin never says it may be reused.
impl From<hooks_v0_1::PluginInfo> for hooks_v0_2::PluginInfo {
    fn from(info: hooks_v0_1::PluginInfo) -> Self {
        hooks_v0_2::PluginInfo { name: info.name, version: info.version, stages: info.stages, reuse_instances: false }
    }
}

mod from_v0_2 {
    use super::hooks_v0_1::{DataResult, HeaderChange, MailFromResult, RcptToResult, RecipientAction};
    use super::hooks_v0_2;

    same_shape!(enum hooks_v0_2::RecipientAction => RecipientAction { Keep, Rewrite(a), Drop });
    same_shape!(enum hooks_v0_2::HeaderChange => HeaderChange { Add(a), Set(a), Remove(a) });
    same_shape!(struct hooks_v0_2::MailFromResult => MailFromResult { outcome, new_sender });
    same_shape!(struct hooks_v0_2::RcptToResult => RcptToResult { outcome, action, add_recipients });

    impl From<hooks_v0_2::DataResult> for DataResult {
        fn from(r: hooks_v0_2::DataResult) -> Self {
            DataResult {
                outcome: r.outcome,
                // Same layout: collected in place, without a new allocation.
                header_changes: r.header_changes.into_iter().map(Into::into).collect(),
                new_body: r.new_body,
                add_recipients: r.add_recipients,
                remove_recipients: r.remove_recipients,
                route: r.route,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// Released WIT files, frozen: a change to one breaks every plugin built against
    /// it. A new version goes into a new directory instead. `wit/v0.2.0/` joins the
    /// list when a release ships it.
    const FROZEN: &[(&str, &str)] =
        &[("wit/v0.1.0/plugin.wit", "f2445d8cf6664fa977fb9d0c56ead22a8f23f5ac82831245462370353cf405df")];

    #[test]
    fn released_wit_files_are_unchanged() {
        for (path, expected) in FROZEN {
            let text = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
            let digest = ring::digest::digest(&ring::digest::SHA256, &text);
            let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(&hex, expected, "{path} was released and must not change");
        }
    }
}
