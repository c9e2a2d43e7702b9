//! `[mail_auth]`: the SPF, DKIM, ARC, DMARC and iprev checks on incoming mail, and
//! the Authentication-Results field that reports them.

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MailAuthConfig {
    pub spf: bool,
    pub dkim: bool,
    pub arc: bool,
    pub dmarc: bool,
    /// The name in our Authentication-Results fields (RFC 8601 §2.5). Default:
    /// `server.hostname`; see [`MailAuthConfig::authserv_id`].
    #[serde(rename = "authserv_id", deserialize_with = "optional_hostname")]
    pub authserv_id_setting: Option<String>,
    /// Also check mail from `relay.networks` and authenticated users (ours, so not by
    /// default).
    pub check_trusted: bool,
    /// Prepend an Authentication-Results field to every checked message.
    pub add_header: bool,
}

impl Default for MailAuthConfig {
    fn default() -> Self {
        MailAuthConfig {
            spf: true,
            dkim: true,
            arc: true,
            dmarc: true,
            authserv_id_setting: None,
            check_trusted: false,
            add_header: true,
        }
    }
}

impl MailAuthConfig {
    /// The authserv-id in use: the configured one, or the server's hostname.
    pub fn authserv_id<'a>(&'a self, hostname: &'a str) -> &'a str {
        self.authserv_id_setting.as_deref().unwrap_or(hostname)
    }

    /// Whether any check runs at all.
    pub fn any(&self) -> bool {
        self.spf || self.dkim || self.arc || self.dmarc
    }
}

fn optional_hostname<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    super::server::hostname(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_is_on_by_default() {
        let config: MailAuthConfig = toml::from_str("").unwrap();
        assert_eq!(config, MailAuthConfig::default());
        assert!(config.spf && config.dkim && config.arc && config.dmarc && config.add_header);
        assert!(!config.check_trusted);
        assert_eq!(config.authserv_id("mx.example.test"), "mx.example.test");
        let config: MailAuthConfig = toml::from_str("authserv_id = \"mx1.example.com\"\ndmarc = false").unwrap();
        assert_eq!(config.authserv_id("mx.example.test"), "mx1.example.com");
        assert!(!config.dmarc);
        assert!(toml::from_str::<MailAuthConfig>("spff = true").is_err());
        assert!(toml::from_str::<MailAuthConfig>("authserv_id = \"not a name\"").is_err());
    }
}
