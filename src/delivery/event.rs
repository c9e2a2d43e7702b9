//! What the scheduler hears about: results from attempts and notices, admin
//! requests, reloads and shutdown. Senders hold the scheduler's inbox only, not the
//! scheduler.

use std::io;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use super::admin::{AdminReply, AdminRequest};
use super::dsn::Action;
use super::engine::Engine;
use super::outcome::RcptOutcome;
use crate::mail::QueueId;

pub type Events = UnboundedSender<Event>;

pub enum Event {
    /// Results of one destination group; `last` ends the attempt.
    Outcomes {
        id: QueueId,
        results: Vec<(usize, RcptOutcome)>,
        last: bool,
    },
    /// The notices for these lines were queued (or not).
    Noticed {
        id: QueueId,
        lines: Vec<(usize, Action)>,
        result: Result<(), String>,
    },
    Removed {
        id: QueueId,
        result: io::Result<()>,
    },
    Admin {
        request: AdminRequest,
        reply: oneshot::Sender<AdminReply>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
    /// A reloaded configuration: attempts from now on use this engine; those under
    /// way finish with theirs.
    Reload {
        engine: Arc<Engine>,
    },
}
