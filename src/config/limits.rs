//! `[limits]`: protocol limits and timeouts. Defaults follow RFC 5321 §4.5.3.

use serde::{Deserialize, Deserializer, de};

use super::units::{ByteSize, TimeSpan};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub max_message_size: ByteSize,
    #[serde(deserialize_with = "at_least_100")]
    pub max_recipients: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub max_errors: u32,
    pub command_timeout: TimeSpan,
    pub data_timeout: TimeSpan,
    pub bare_newlines: BareNewlines,
    /// Longest text line in DATA, CRLF included. RFC 5321 says 1000; raising it tolerates
    /// senders that break the rule.
    #[serde(deserialize_with = "at_least_1000")]
    pub max_line_length: usize,
    /// Messages with more `Received:` headers than this are looping (554 5.4.6).
    pub max_received_headers: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_size: ByteSize(25_000_000),
            max_recipients: 1000,
            max_connections: 10_000,
            max_connections_per_ip: 50,
            max_errors: 20,
            command_timeout: TimeSpan::secs(300),
            data_timeout: TimeSpan::secs(600),
            bare_newlines: BareNewlines::Normalize,
            max_line_length: 1000,
            max_received_headers: 50,
        }
    }
}

/// What to do with a CR or LF that is not part of a CRLF pair in message content.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BareNewlines {
    /// Store it as CRLF. It never ends the message.
    #[default]
    Normalize,
    /// Refuse the message with 550.
    Reject,
}

fn at_least_100<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    let n = usize::deserialize(deserializer)?;
    if n < 100 {
        return Err(de::Error::custom("max_recipients must be at least 100 (RFC 5321 §4.5.3.1.8)"));
    }
    Ok(n)
}

fn at_least_1000<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    let n = usize::deserialize(deserializer)?;
    if n < 1000 {
        return Err(de::Error::custom("max_line_length must be at least 1000 (RFC 5321 §4.5.3.1.6)"));
    }
    Ok(n)
}
