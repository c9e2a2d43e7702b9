//! `[auth]`: SMTP AUTH (RFC 4954) users. PLAIN and LOGIN are offered only once the
//! session is encrypted (after STARTTLS, or on an implicit-TLS listener).

use serde::{Deserialize, Deserializer, de};

use super::units::TimeSpan;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub users: Vec<AuthUser>,
    /// Wait this long before answering a failed attempt, to slow down guessing.
    pub failure_delay: TimeSpan,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig { users: Vec::new(), failure_delay: TimeSpan::secs(1) }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthUser {
    pub name: String,
    /// An Argon2 hash in PHC form, as printed by `sluice hash-password`.
    #[serde(deserialize_with = "phc_hash")]
    pub password_hash: String,
}

fn phc_hash<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let hash = String::deserialize(deserializer)?;
    argon2::PasswordHash::new(&hash).map_err(|e| {
        de::Error::custom(format!("not an Argon2 PHC hash ({e}); make one with `sluice hash-password`"))
    })?;
    if !hash.starts_with("$argon2") {
        return Err(de::Error::custom("only Argon2 hashes are accepted; make one with `sluice hash-password`"));
    }
    Ok(hash)
}
