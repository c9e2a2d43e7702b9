//! What a delivery attempt decided for one recipient, and why.

use crate::queue::Diagnostic;
use crate::wire::Status;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RcptOutcome {
    /// The next hop took it. `relayed_dsn`: it also took our RFC 3461 parameters, so
    /// any success notice is its job.
    Delivered { diagnostic: Diagnostic, relayed_dsn: bool },
    /// Try again later.
    Deferred(Diagnostic),
    /// Give up: the sender gets a bounce.
    Failed(Diagnostic),
}

/// A failure that concerns all recipients of a destination alike (routing, DNS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    Temporary(Diagnostic),
    Permanent(Diagnostic),
}

impl Problem {
    pub fn temporary(status: Status, text: impl Into<String>) -> Problem {
        Problem::Temporary(local(status, text))
    }
    pub fn permanent(status: Status, text: impl Into<String>) -> Problem {
        Problem::Permanent(local(status, text))
    }
    pub fn outcome(&self) -> RcptOutcome {
        match self {
            Problem::Temporary(d) => RcptOutcome::Deferred(d.clone()),
            Problem::Permanent(d) => RcptOutcome::Failed(d.clone()),
        }
    }
}

/// A diagnostic of our own making (not a remote server's reply).
pub fn local(status: Status, text: impl Into<String>) -> Diagnostic {
    Diagnostic { status, text: text.into(), smtp: false, remote_mta: None }
}
