//! The mutable part of a queued message, kept beside its immutable envelope and body.

use serde::{Deserialize, Serialize};

/// Why a message waits instead of being delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Hold {
    /// Put on hold by an administrator.
    Held,
    /// Held by a plugin's verdict, for an administrator to look at.
    Quarantined { reason: String },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<Hold>,
}
