//! How many bytes a plugin may hand the host in one go: what one call returns, or what
//! one host call is given. The host copies ("lifts") a returned list out of the guest
//! before any check of its contents could run, and that copy is host CPU the call's
//! budget does not see; wasmtime counts the bytes it lifts against the store's hostcall
//! fuel: a list whose length alone exceeds it is refused before any element is copied,
//! and strings are counted as they are copied, so the host stops at the limit.

use super::shared::PluginShared;
use crate::config::Grant;

/// Far more than any valid output (100 header changes within 64 KiB, 100 recipients,
/// 32 tags and annotations), far less than a flood of them.
pub const OUTPUT_LIMIT: usize = 1 << 20;

/// The limit for `plugin`: a plugin granted `body` may return a new body, which cannot
/// be larger than its linear memory.
pub fn lift_limit(plugin: &PluginShared) -> usize {
    if plugin.grants.contains(&Grant::Body) { OUTPUT_LIMIT.saturating_add(plugin.memory_limit) } else { OUTPUT_LIMIT }
}

/// Whether `error` is wasmtime refusing to lift more than the limit. Its error type is
/// private, so its message is what identifies it (the integration test
/// `oversized_output_is_refused_before_it_is_lifted` notices if that changes).
pub fn exceeded(error: &wasmtime::Error) -> bool {
    format!("{error:#}").contains("fuel allocated for hostcalls has been exhausted")
}
