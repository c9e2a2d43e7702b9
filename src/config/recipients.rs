//! `[route.recipients]`: what the relay knows about valid recipients at a route's
//! domains, so unknown ones are refused at RCPT instead of bounced later.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::units::TimeSpan;

/// Where the answer to "does this recipient exist?" comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum VerifyMode {
    /// Every address at the route's domains is accepted.
    #[default]
    #[serde(rename = "none")]
    None,
    /// Only the addresses (and `@domain` catch-alls) in the list.
    #[serde(rename = "list")]
    List,
    /// Ask the route's next hop (RCPT TO without a message).
    #[serde(rename = "callout")]
    Callout,
    /// The list first; a callout for addresses it does not name.
    #[serde(rename = "list+callout")]
    ListThenCallout,
}

impl VerifyMode {
    pub fn uses_list(self) -> bool {
        matches!(self, VerifyMode::List | VerifyMode::ListThenCallout)
    }

    pub fn uses_callout(self) -> bool {
        matches!(self, VerifyMode::Callout | VerifyMode::ListThenCallout)
    }
}

/// What to do when the next hop cannot be asked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnUnavailable {
    /// `451 4.4.3`: the client tries again later.
    #[default]
    Tempfail,
    /// Accept, and let delivery find out.
    Accept,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientsConfig {
    #[serde(default = "verify_none")]
    pub verify: Spanned<VerifyMode>,
    /// One address or `@domain` per line, `#` comments; relative to the config file.
    #[serde(default)]
    pub list: Option<Spanned<PathBuf>>,
    /// How long a yes from the next hop is trusted.
    #[serde(default = "cache_valid")]
    pub cache_valid: TimeSpan,
    /// How long a no is trusted.
    #[serde(default = "cache_unknown")]
    pub cache_unknown: TimeSpan,
    #[serde(default)]
    pub on_unavailable: OnUnavailable,
    /// Open callout connections to the route at most (idle ones are kept for reuse).
    #[serde(default = "spanned_pool_size")]
    pub connections: Spanned<usize>,
    /// A callout connection idle this long is closed with QUIT.
    #[serde(default = "idle_timeout")]
    pub idle_timeout: TimeSpan,
    /// The whole probe (connect, EHLO, STARTTLS, MAIL, RCPT) must finish within this.
    #[serde(default = "probe_timeout")]
    pub timeout: TimeSpan,
}

impl Default for RecipientsConfig {
    fn default() -> Self {
        RecipientsConfig {
            verify: verify_none(),
            list: None,
            cache_valid: cache_valid(),
            cache_unknown: cache_unknown(),
            on_unavailable: OnUnavailable::default(),
            connections: spanned_pool_size(),
            idle_timeout: idle_timeout(),
            timeout: probe_timeout(),
        }
    }
}

fn cache_valid() -> TimeSpan {
    TimeSpan::secs(24 * 3600)
}

fn cache_unknown() -> TimeSpan {
    TimeSpan::secs(3600)
}

fn verify_none() -> Spanned<VerifyMode> {
    Spanned::new(0..0, VerifyMode::None)
}

fn spanned_pool_size() -> Spanned<usize> {
    Spanned::new(0..0, 2)
}

fn idle_timeout() -> TimeSpan {
    TimeSpan::secs(30)
}

fn probe_timeout() -> TimeSpan {
    TimeSpan::secs(10)
}
