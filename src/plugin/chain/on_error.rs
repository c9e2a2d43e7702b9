//! A plugin's `on_error` policy: what the client is told when a call fails (trap,
//! timeout, memory, invalid output, no instance).

use super::decision::Decision;
use crate::config::OnError;
use crate::plugin::stage::Stage;
use crate::wire::{Reply, Status};

/// What a failed call means for the stage: `None` lets the next plugin run.
pub(super) fn failure_decision(policy: OnError, stage: Stage) -> Option<Decision> {
    let at_connect = stage == Stage::Connect;
    match policy {
        OnError::Continue => None,
        OnError::Tempfail if at_connect => Some(Decision::Disconnect(Reply::new(
            421,
            Status(4, 3, 0),
            "Service temporarily unavailable, try again later",
        ))),
        OnError::Tempfail => Some(Decision::Refuse(Reply::new(
            451,
            Status(4, 3, 0),
            "Temporary failure in message filter, try again later",
        ))),
        OnError::Reject if at_connect => {
            Some(Decision::Refuse(Reply::new(554, Status(5, 7, 0), "Service refused by policy")))
        }
        OnError::Reject => Some(Decision::Refuse(Reply::new(550, Status(5, 7, 0), "Refused by message filter"))),
    }
}
