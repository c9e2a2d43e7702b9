//! What a `[[plugin]]` entry allows beyond its grants: the next hops it may send mail
//! to (`next_hops`, with the `route` grant) and its quotas (kv, DNS).

use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::route::{NextHop, TlsMode};
use super::units::ByteSize;

/// One entry of `next_hops`: `"10.0.0.7:25"` (TLS as a `[[route]]` without `tls`:
/// opportunistic) or `{ host = "10.0.0.7:25", tls = "required" }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedHop {
    pub hop: NextHop,
    pub tls: TlsMode,
}

impl<'de> Deserialize<'de> for AllowedHop {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Plain(String),
            Table(Entry),
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Entry {
            host: String,
            #[serde(default)]
            tls: TlsMode,
        }
        let (host, tls) = match Written::deserialize(deserializer)? {
            Written::Plain(host) => (host, TlsMode::default()),
            Written::Table(entry) => (entry.host, entry.tls),
        };
        Ok(AllowedHop { hop: host.parse().map_err(de::Error::custom)?, tls })
    }
}

/// The entry of `allowed` that a plugin's next hop (as the plugin wrote it) names.
pub fn allowed_hop<'a>(allowed: &'a [AllowedHop], text: &str) -> Option<&'a AllowedHop> {
    let hop: NextHop = text.parse().ok()?;
    allowed.iter().find(|entry| entry.hop == hop)
}

/// A plugin's quotas; `[plugins]` holds the defaults, a `[[plugin]]` entry may
/// override each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quotas {
    /// Keys in its kv namespace.
    pub kv_keys: u64,
    /// Bytes in its kv namespace (keys and values).
    pub kv_bytes: u64,
    /// DNS lookups per call.
    pub dns_lookups: u32,
}

impl std::fmt::Display for Quotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "kv {} keys, {} bytes; dns {} lookups per call", self.kv_keys, self.kv_bytes, self.dns_lookups)
    }
}

/// What a plugin may do, in one line: grants, next hops, quotas (for `check-config`
/// and the load-time log).
pub fn permissions(grants: &[&str], next_hops: &[AllowedHop], quotas: Quotas) -> String {
    let grants = if grants.is_empty() { "none".to_string() } else { grants.join(", ") };
    let hops: Vec<String> = next_hops.iter().map(|h| format!("{} (tls {})", h.hop, h.tls)).collect();
    let hops = if hops.is_empty() { String::new() } else { format!("; next_hops {}", hops.join(", ")) };
    format!("grants {grants}{hops}; quotas {quotas}")
}

pub const DEFAULT_KV_KEYS: u64 = 100_000;
pub const DEFAULT_KV_BYTES: ByteSize = ByteSize(64 << 20);
pub const DEFAULT_DNS_LOOKUPS: u32 = 20;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Host;

    #[derive(Deserialize)]
    struct T {
        next_hops: Vec<AllowedHop>,
    }

    fn parse(plugins: &str) -> Result<crate::config::Config, crate::config::ConfigError> {
        let text = format!(
            "[server]\nhostname = \"relay.test\"\nlisten = [\"127.0.0.1:25\"]\n[queue]\npath = \"q\"\n{plugins}"
        );
        crate::config::Config::parse(std::path::Path::new("/x/s.toml"), &text)
    }

    #[test]
    fn quotas_default_to_plugins_and_a_plugin_may_override_each() {
        let config = parse(
            "[plugins]\ndns_lookups = 7\n[[plugin]]\nname = \"a\"\npath = \"a.wasm\"\nkv_max_bytes = \"1MiB\"\n\
             [[plugin]]\nname = \"b\"\npath = \"b.wasm\"\nkv_max_keys = 5\ndns_lookups = 0\n",
        )
        .unwrap();
        let quotas: Vec<Quotas> = config.plugin.iter().map(|p| p.quotas(&config.plugins)).collect();
        assert_eq!(quotas[0], Quotas { kv_keys: DEFAULT_KV_KEYS, kv_bytes: 1 << 20, dns_lookups: 7 });
        assert_eq!(quotas[1], Quotas { kv_keys: 5, kv_bytes: DEFAULT_KV_BYTES.bytes(), dns_lookups: 0 });
        assert_eq!(
            config.plugin[1].permissions(&config.plugins),
            "grants none; quotas kv 5 keys, 67108864 bytes; dns 0 lookups per call"
        );
    }

    #[test]
    fn next_hops_without_the_route_grant_is_an_error_at_the_plugin() {
        let error =
            parse("[[plugin]]\nname = \"a\"\npath = \"a.wasm\"\ngrants = [\"log\"]\nnext_hops = [\"10.0.0.7\"]\n")
                .unwrap_err();
        assert_eq!((error.line, error.message.contains("not granted \"route\"")), (7, true), "{error:?}");
        let unknown = parse("[[plugin]]\nname = \"a\"\npath = \"a.wasm\"\ngrants = [\"routes\"]\n").unwrap_err();
        assert!(unknown.message.contains("recipients, route, body"), "{unknown:?}");
    }

    #[test]
    fn entries_are_strings_or_tables_with_a_tls_policy() {
        let t: T =
            toml::from_str(r#"next_hops = ["10.0.0.7:25", { host = "MX.Partner.example", tls = "verify" }]"#).unwrap();
        assert_eq!(t.next_hops[0].tls, TlsMode::Opportunistic);
        assert_eq!(t.next_hops[1].hop.host, Host::Name("mx.partner.example".into()));
        assert_eq!(t.next_hops[1].tls, TlsMode::Verify);
        assert!(allowed_hop(&t.next_hops, "10.0.0.7:25").is_some());
        assert!(allowed_hop(&t.next_hops, "mx.partner.example").is_some(), "names compare without case");
        assert!(allowed_hop(&t.next_hops, "10.0.0.7").is_none(), "the port is part of the entry");
        assert!(allowed_hop(&t.next_hops, "127.0.0.1:25").is_none());
        assert!(toml::from_str::<T>(r#"next_hops = ["not a host!"]"#).is_err());
        assert!(toml::from_str::<T>(r#"next_hops = [{ host = "a.example", tls = "sometimes" }]"#).is_err());
    }
}
