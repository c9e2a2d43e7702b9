//! The plugins of one SMTP session: one entry point per stage, each running the
//! stage's chain through the one runner.

use std::sync::Arc;

use super::caller::{CallRecord, Caller, chain};
use super::changes::DataChanges;
use super::decision::Decision;
use super::notes::Notes;
use super::runner::{StageCalls, run_chain};
use super::stages::{DataCalls, MailFromCalls, RcptToCalls, SessionCalls};
use super::wit_input::{TxnView, wit_session};
use crate::mail::params::MailParams;
use crate::mail::{ClientInfo, Mailbox, Recipient};
use crate::mail_auth::AuthResults;
use crate::plugin::host::PluginHost;
use crate::plugin::message::MessageShared;
use crate::plugin::stage::Stage;

/// The plugins of one SMTP session. Instances are created on first use (or taken from
/// the plugin's idle instances, with `reuse_instances`) and kept for the session; one
/// that fails is dropped and replaced on the next call.
pub struct PluginSession {
    caller: Caller,
    hostname: String,
    /// Notes from `connect` and `helo`, copied into every transaction.
    pub notes: Notes,
}

impl PluginSession {
    pub fn new(host: Arc<PluginHost>, hostname: &str) -> PluginSession {
        PluginSession { caller: Caller::new(host), hostname: hostname.to_string(), notes: Notes::default() }
    }

    pub fn is_active(&self) -> bool {
        !self.caller.host().is_empty()
    }

    /// Records every call from now on (for the offline runner's report).
    pub fn trace_calls(&mut self) {
        self.caller.trace = Some(Vec::new());
    }

    /// The mail-authentication results the plugins see from now on (the transaction's).
    pub fn set_auth(&mut self, results: Arc<AuthResults>) {
        self.caller.auth = results;
    }

    /// The calls recorded since `trace_calls`.
    pub fn take_trace(&mut self) -> Vec<CallRecord> {
        self.caller.trace.take().unwrap_or_default()
    }

    /// Runs `stage`'s chain. The host is held apart from the calls, which borrow the
    /// session's instances.
    async fn run<C: StageCalls>(host: &PluginHost, stage: Stage, calls: &mut C, notes: &mut Notes) -> Decision {
        run_chain(stage, chain(host, stage), calls, notes).await
    }

    /// A client connected.
    pub async fn connect(&mut self, client: &ClientInfo) -> Decision {
        self.session_stage(Stage::Connect, client).await
    }

    /// The client said HELO or EHLO (already in `client.helo`).
    pub async fn helo(&mut self, client: &ClientInfo) -> Decision {
        self.session_stage(Stage::Helo, client).await
    }

    async fn session_stage(&mut self, stage: Stage, client: &ClientInfo) -> Decision {
        let host = Arc::clone(self.caller.host());
        let session = wit_session(client, &self.hostname);
        let mut notes = std::mem::take(&mut self.notes);
        let mut calls = SessionCalls { caller: &mut self.caller, stage, session };
        let decision = Self::run(&host, stage, &mut calls, &mut notes).await;
        self.notes = notes;
        decision
    }

    /// MAIL FROM: plugins may replace the sender (in place).
    pub async fn mail_from(
        &mut self,
        client: &ClientInfo,
        sender: &mut Option<Mailbox>,
        params: &MailParams,
        notes: &mut Notes,
    ) -> Decision {
        let host = Arc::clone(self.caller.host());
        let session = wit_session(client, &self.hostname);
        let mut calls = MailFromCalls { caller: &mut self.caller, session, sender, params };
        Self::run(&host, Stage::MailFrom, &mut calls, notes).await
    }

    /// RCPT TO: plugins may rewrite or drop the recipient (in place: `None` is dropped)
    /// and add others (returned).
    pub async fn rcpt_to(
        &mut self,
        client: &ClientInfo,
        view: &TxnView<'_>,
        recipient: &mut Option<Recipient>,
        notes: &mut Notes,
    ) -> (Decision, Vec<Mailbox>) {
        let host = Arc::clone(self.caller.host());
        let session = wit_session(client, &self.hostname);
        let mut calls = RcptToCalls { caller: &mut self.caller, session, view: *view, recipient, added: Vec::new() };
        let decision = Self::run(&host, Stage::RcptTo, &mut calls, notes).await;
        (decision, calls.added)
    }

    /// DATA: every plugin reads the message as received; their changes are returned in
    /// plugin order for the caller to apply (see `plugin::apply`).
    pub async fn data(
        &mut self,
        client: &ClientInfo,
        view: &TxnView<'_>,
        message: &Arc<MessageShared>,
        max_body: u64,
        notes: &mut Notes,
    ) -> (Decision, DataChanges) {
        let host = Arc::clone(self.caller.host());
        let session = wit_session(client, &self.hostname);
        let changes = DataChanges::default();
        let mut calls = DataCalls { caller: &mut self.caller, session, view: *view, message, max_body, changes };
        let decision = Self::run(&host, Stage::Data, &mut calls, notes).await;
        (decision, calls.changes)
    }
}
