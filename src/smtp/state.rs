//! The session state machine in types: what a session knows at each point.

use crate::mail::QueueId;
use crate::mail::params::MailParams;
use crate::mail::{Mailbox, Recipient};
use crate::mail_auth::SpfOutcome;
use crate::plugin::Notes;
use crate::queue::MessageBuffer;

use super::data::DataDecoder;

/// The client's HELO or EHLO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Helo {
    pub name: String,
    /// EHLO rather than HELO: the ESMTP extensions are in use.
    pub extended: bool,
}

/// A message being received in BDAT chunks.
#[derive(Debug)]
pub struct ChunkedBody {
    pub id: QueueId,
    pub buffer: MessageBuffer,
    pub decoder: DataDecoder,
}

/// One mail transaction, from MAIL to the end of its content.
#[derive(Debug)]
pub struct Transaction {
    /// `None` is the null reverse path.
    pub sender: Option<Mailbox>,
    pub params: MailParams,
    pub recipients: Vec<Recipient>,
    /// Set once the first BDAT chunk arrived.
    pub chunked: Option<Box<ChunkedBody>>,
    /// What plugins attached so far (starting with the session's notes).
    pub notes: Notes,
    /// SPF, checked at MAIL FROM (when the client is checked at all).
    pub spf: Option<SpfOutcome>,
}

impl Transaction {
    pub fn new(sender: Option<Mailbox>, params: MailParams) -> Self {
        Transaction { sender, params, recipients: Vec::new(), chunked: None, notes: Notes::default(), spf: None }
    }
}

#[derive(Debug, Default)]
pub enum SessionState {
    /// Connected (or just switched to TLS): HELO/EHLO comes first.
    #[default]
    AwaitingHelo,
    /// Greeted, and possibly inside a mail transaction.
    Greeted { helo: Helo, transaction: Option<Box<Transaction>> },
}

impl SessionState {
    pub fn helo(&self) -> Option<&Helo> {
        match self {
            SessionState::AwaitingHelo => None,
            SessionState::Greeted { helo, .. } => Some(helo),
        }
    }

    pub fn transaction_mut(&mut self) -> Option<&mut Transaction> {
        match self {
            SessionState::Greeted { transaction, .. } => transaction.as_deref_mut(),
            SessionState::AwaitingHelo => None,
        }
    }

    /// Ends the current transaction, if any (RSET, end of DATA, a new EHLO).
    pub fn take_transaction(&mut self) -> Option<Box<Transaction>> {
        match self {
            SessionState::Greeted { transaction, .. } => transaction.take(),
            SessionState::AwaitingHelo => None,
        }
    }
}

/// What the session loop does after a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Send what is pending and close.
    Close,
}
