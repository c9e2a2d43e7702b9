//! `[server]`: identity and listeners.

use std::fmt;
use std::net::SocketAddr;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use toml::Spanned;

use super::matchers::NetworkList;
use super::units::TimeSpan;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Our name in the greeting, the EHLO reply and `Received:` headers.
    #[serde(deserialize_with = "hostname")]
    pub hostname: String,
    pub listen: Spanned<Vec<ListenConfig>>,
    /// How long to wait before the greeting; a client that talks during the wait is an
    /// early talker (typical of spam bots) and gets 554. Zero still catches input that is
    /// already waiting when the connection is accepted.
    #[serde(default = "no_delay")]
    pub greeting_delay: TimeSpan,
    /// Load balancers allowed to send PROXY protocol headers on listeners that expect
    /// them; a connection from anywhere else to such a listener is refused.
    #[serde(default)]
    pub proxy_networks: NetworkList,
    /// At shutdown, how long sessions in the middle of a transaction may take to
    /// finish. Idle sessions are told 421 at once.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: TimeSpan,
}

fn default_shutdown_timeout() -> TimeSpan {
    TimeSpan::secs(30)
}

fn no_delay() -> TimeSpan {
    TimeSpan::secs(0)
}

pub(super) fn hostname<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let name = String::deserialize(deserializer)?;
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if valid {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(de::Error::custom(format!("invalid hostname {name:?}: expected a fully qualified domain name")))
    }
}

/// How a listener handles TLS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenTls {
    /// Plain SMTP that offers STARTTLS when `[tls]` is configured.
    #[default]
    Starttls,
    /// TLS from the first byte (port-465 style submissions).
    Implicit,
    /// Plain SMTP without STARTTLS, even when `[tls]` is configured.
    None,
}

/// One listener: written as `"127.0.0.1:2525"` or as a table
/// `{ address = "0.0.0.0:465", tls = "implicit" }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenConfig {
    pub address: SocketAddr,
    pub tls: ListenTls,
    /// Expect a PROXY protocol (v1 or v2) header from a load balancer first.
    pub proxy_protocol: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenTable {
    address: String,
    #[serde(default)]
    tls: ListenTls,
    #[serde(default)]
    proxy_protocol: bool,
}

fn parse_socket_addr<E: de::Error>(text: &str) -> Result<SocketAddr, E> {
    text.parse().map_err(|_| {
        E::custom(format!(
            "invalid listen address {text:?}: expected IP:PORT such as \"127.0.0.1:2525\" or \"[::1]:2525\""
        ))
    })
}

impl<'de> Deserialize<'de> for ListenConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListenVisitor;
        impl<'de> Visitor<'de> for ListenVisitor {
            type Value = ListenConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an address such as \"127.0.0.1:2525\" or a table with `address` and `tls`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ListenConfig, E> {
                Ok(ListenConfig { address: parse_socket_addr(v)?, tls: ListenTls::default(), proxy_protocol: false })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ListenConfig, A::Error> {
                let table = ListenTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ListenConfig {
                    address: parse_socket_addr(&table.address)?,
                    tls: table.tls,
                    proxy_protocol: table.proxy_protocol,
                })
            }
        }
        deserializer.deserialize_any(ListenVisitor)
    }
}
