//! Recipient aliases (one-to-many) and per-domain catch-all addresses.
//!
//! Order of decisions for one recipient:
//! 1. an alias (the address, else the address without its `+extension`) expands to its
//!    targets, recursively (targets that are aliases expand too; an alias that names
//!    itself delivers to its own mailbox; at most [`MAX_DEPTH`] levels);
//! 2. otherwise, if the recipient's domain has a catch-all and the address (without
//!    extension) is neither a known user, a known local part, an alias nor the
//!    catch-all address itself, it becomes the catch-all address;
//! 3. otherwise it is kept.

use crate::config::Config;
use crate::domain::split_address;

/// Deepest alias chain followed; deeper ones keep the address reached at this depth.
pub const MAX_DEPTH: usize = 8;
/// Most addresses one recipient may expand to (protects the host's recipient limits).
pub const MAX_TARGETS: usize = 100;

/// Why a recipient changed.
#[derive(Clone, Debug, PartialEq)]
pub enum Reason {
    Alias,
    CatchAll,
}

/// What to do with one recipient.
#[derive(Clone, Debug, PartialEq)]
pub struct Expansion {
    pub reason: Reason,
    /// The final addresses, deduplicated, in order (never empty).
    pub targets: Vec<String>,
}

/// Lower-cased lookup keys of an address: itself, then without its extension.
fn lookup_keys(config: &Config, address: &str) -> Vec<String> {
    let lower = address.to_ascii_lowercase();
    let mut keys = vec![lower.clone()];
    if let (Some(delim), Some((local, domain))) = (config.recipient_delimiter, split_address(&lower))
        && let Some((base, _extension)) = local.split_once(delim)
        && !base.is_empty()
    {
        keys.push(format!("{base}@{domain}"));
    }
    keys
}

fn alias_of<'c>(config: &'c Config, address: &str) -> Option<&'c [String]> {
    lookup_keys(config, address).iter().find_map(|k| config.aliases.get(k)).map(Vec::as_slice)
}

/// What happens to `address`, or `None` if it is kept as it is.
pub fn expand(config: &Config, address: &str) -> Option<Expansion> {
    if alias_of(config, address).is_some() {
        let mut targets = Vec::new();
        let mut stack = Vec::new();
        expand_alias(config, address, &mut stack, &mut targets);
        return Some(Expansion { reason: Reason::Alias, targets });
    }
    let (_, domain) = split_address(address)?;
    let catch_all = config.catch_all.get(domain)?;
    let known = lookup_keys(config, address).iter().any(|key| {
        config.known_users.contains(key)
            || key.eq_ignore_ascii_case(catch_all)
            || split_address(key).is_some_and(|(local, _)| config.known_local_parts.contains(local))
    });
    if known {
        return None;
    }
    Some(Expansion { reason: Reason::CatchAll, targets: vec![catch_all.clone()] })
}

fn expand_alias(config: &Config, address: &str, stack: &mut Vec<String>, out: &mut Vec<String>) {
    let key = address.to_ascii_lowercase();
    let targets = match alias_of(config, address) {
        Some(t) if stack.len() < MAX_DEPTH && !stack.contains(&key) => t,
        // Not an alias, too deep, or a loop back to an alias being expanded: deliver.
        _ => {
            if out.len() < MAX_TARGETS && !out.iter().any(|o| o.eq_ignore_ascii_case(address)) {
                out.push(address.to_string());
            }
            return;
        }
    };
    stack.push(key);
    for target in targets {
        expand_alias(config, target, stack, out);
    }
    stack.pop();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::config;

    fn cfg() -> Config {
        config(
            r#"
            aliases = { "sales@example.com" = ["alice@example.com", "bob@example.com"], "team@example.com" = ["sales@example.com", "carol@example.com", "Alice@example.com"], "loop-a@example.com" = "loop-b@example.com", "loop-b@example.com" = ["loop-a@example.com", "dave@example.com"], "self@example.com" = ["self@example.com", "erin@example.com"] }
            recipient_delimiter = "+"
            catch_all = { "example.com" = "postmaster@example.com", "*.example.org" = "catch@example.org" }
            known_users = ["alice@example.com", "bob@example.com", "carol@example.com", "abuse"]
            "#,
        )
    }

    /// The expansion of `address` as (reason, targets joined by ", ").
    fn targets(address: &str) -> Option<(Reason, String)> {
        expand(&cfg(), address).map(|e| (e.reason, e.targets.join(", ")))
    }

    fn alias(targets: &str) -> Option<(Reason, String)> {
        Some((Reason::Alias, targets.to_string()))
    }

    fn catch_all(target: &str) -> Option<(Reason, String)> {
        Some((Reason::CatchAll, target.to_string()))
    }

    #[test]
    fn alias_expands_one_to_many() {
        assert_eq!(targets("sales@example.com"), alias("alice@example.com, bob@example.com"));
        assert_eq!(targets("SALES@Example.com"), alias("alice@example.com, bob@example.com"), "case-insensitive");
    }

    #[test]
    fn nested_aliases_expand_and_deduplicate() {
        assert_eq!(targets("team@example.com"), alias("alice@example.com, bob@example.com, carol@example.com"));
    }

    #[test]
    fn loops_and_self_references_terminate() {
        assert_eq!(targets("loop-a@example.com"), alias("loop-a@example.com, dave@example.com"));
        assert_eq!(targets("self@example.com"), alias("self@example.com, erin@example.com"));
    }

    #[test]
    fn extensions_fall_back_to_the_base_address() {
        assert_eq!(targets("sales+eu@example.com"), alias("alice@example.com, bob@example.com"));
        // A known user with an extension is still known: no catch-all.
        assert_eq!(targets("alice+news@example.com"), None);
    }

    #[test]
    fn catch_all_takes_unknown_users_only() {
        assert_eq!(targets("nobody@example.com"), catch_all("postmaster@example.com"));
        assert_eq!(targets("alice@example.com"), None);
        assert_eq!(targets("abuse@example.com"), None, "known local part");
        assert_eq!(targets("postmaster@example.com"), None, "the catch-all itself");
        assert_eq!(targets("x@lists.example.org"), catch_all("catch@example.org"));
        assert_eq!(targets("x@example.org"), None, "*. means subdomains only");
        assert_eq!(targets("x@elsewhere.example"), None);
        assert_eq!(targets("postmaster"), None);
    }

    #[test]
    fn expansion_is_bounded() {
        let many: Vec<String> = (0..300).map(|i| format!("\"u{i}@example.net\"")).collect();
        let c = config(&format!("aliases = {{ \"all@example.com\" = [{}] }}", many.join(", ")));
        assert_eq!(expand(&c, "all@example.com").map(|e| e.targets.len()), Some(MAX_TARGETS));

        let chain: Vec<String> =
            (0..20).map(|i| format!("\"l{i}@example.com\" = \"l{}@example.com\"", i + 1)).collect();
        let c = config(&format!("aliases = {{ {} }}", chain.join(", ")));
        assert_eq!(expand(&c, "l0@example.com").map(|e| e.targets), Some(vec![format!("l{MAX_DEPTH}@example.com")]));
    }
}
