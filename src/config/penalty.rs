//! `[plugins.penalty_box]`: how failures a client causes in a plugin are charged to it.

use serde::Deserialize;
use toml::Spanned;

use super::units::TimeSpan;

/// Failures a client address (or network) causes in a plugin raise its penalty; at
/// `threshold` its calls to that plugin are not made for `cool_down`, and the plugin's
/// `on_error` reply is given at once.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PenaltyBoxConfig {
    pub enabled: bool,
    /// Penalty at which a client is boxed: one point per failed call.
    pub threshold: Spanned<u32>,
    /// Successful calls that take one point off, so a plugin failing now and then for
    /// everyone never boxes anyone.
    pub forgive_after: Spanned<u32>,
    /// How long a boxed client's calls to the plugin are short-circuited.
    pub cool_down: TimeSpan,
    /// The network one penalty covers: clients in the same /24 (IPv4) or /64 (IPv6)
    /// are one client.
    pub ipv4_prefix: Spanned<u8>,
    pub ipv6_prefix: Spanned<u8>,
    /// Clients tracked per plugin; past it, new clients are not charged.
    pub max_clients: Spanned<usize>,
}

impl Default for PenaltyBoxConfig {
    fn default() -> Self {
        PenaltyBoxConfig {
            enabled: true,
            threshold: Spanned::new(0..0, 5),
            forgive_after: Spanned::new(0..0, 10),
            cool_down: TimeSpan::secs(60),
            ipv4_prefix: Spanned::new(0..0, 24),
            ipv6_prefix: Spanned::new(0..0, 64),
            max_clients: Spanned::new(0..0, 10_000),
        }
    }
}

impl PenaltyBoxConfig {
    /// The first value out of range, with its span, for the loader to report.
    pub(super) fn problem(&self) -> Option<(std::ops::Range<usize>, String)> {
        let at_least_one = [("threshold", &self.threshold), ("forgive_after", &self.forgive_after)];
        for (key, value) in at_least_one {
            if *value.get_ref() == 0 {
                return Some((value.span(), format!("[plugins.penalty_box] {key} must be at least 1")));
            }
        }
        if *self.max_clients.get_ref() == 0 {
            return Some((self.max_clients.span(), "[plugins.penalty_box] max_clients must be at least 1".into()));
        }
        for (key, value, max) in [("ipv4_prefix", &self.ipv4_prefix, 32), ("ipv6_prefix", &self.ipv6_prefix, 128)] {
            if *value.get_ref() > max {
                return Some((value.span(), format!("[plugins.penalty_box] {key} must be 0 to {max}")));
            }
        }
        None
    }
}
