//! What differs between stages: what a plugin is called with, which hook is called,
//! and where what it may change goes.

use std::sync::Arc;

use wasmtime::component::Resource;

use super::caller::Caller;
use super::changes::DataChanges;
use super::notes::Notes;
use super::runner::StageCalls;
use super::wit_input::{TxnView, wit_recipient, wit_transaction};
use crate::mail::params::MailParams;
use crate::mail::{Mailbox, Recipient};
use crate::plugin::apply::rewrite_recipient;
use crate::plugin::bindings::exports::sluice::plugin::hooks::{DataResult, MailFromResult, RcptToResult};
use crate::plugin::bindings::sluice::plugin::types as wit;
use crate::plugin::instance::Failure;
use crate::plugin::message::{MessageShared, MessageView};
use crate::plugin::output::{self, Checked, RecipientFate};
use crate::plugin::stage::Stage;

/// `connect` and `helo`: nothing to change but the notes.
pub(super) struct SessionCalls<'a> {
    pub caller: &'a mut Caller,
    pub stage: Stage,
    pub session: wit::Session,
}

impl StageCalls for SessionCalls<'_> {
    type Changes = ();

    async fn call(&mut self, index: usize, _notes: &Notes) -> Option<Result<(Checked, ()), Failure>> {
        let (stage, session) = (self.stage, &self.session);
        let result = self
            .caller
            .run(index, stage, async |instance| {
                let outcome = instance
                    .call(async |p, s| match stage {
                        Stage::Connect => p.connect(s, session).await,
                        _ => p.helo(s, session).await,
                    })
                    .await?;
                Ok((output::check_outcome(outcome)?, ()))
            })
            .await;
        Some(result)
    }

    fn apply(&mut self, (): ()) {}
}

/// MAIL FROM: a plugin may replace the sender.
pub(super) struct MailFromCalls<'a> {
    pub caller: &'a mut Caller,
    pub session: wit::Session,
    pub sender: &'a mut Option<Mailbox>,
    pub params: &'a MailParams,
}

impl StageCalls for MailFromCalls<'_> {
    /// The new sender (`Some(None)`: the null sender).
    type Changes = Option<Option<Mailbox>>;

    async fn call(&mut self, index: usize, notes: &Notes) -> Option<Result<(Checked, Self::Changes), Failure>> {
        let view = TxnView { sender: Some(&*self.sender), params: Some(self.params), recipients: &[] };
        let (txn, session) = (wit_transaction(&view, notes), &self.session);
        let result = self
            .caller
            .run(index, Stage::MailFrom, async |instance| {
                let MailFromResult { outcome, new_sender } =
                    instance.call(async |p, s| p.mail_from(s, session, &txn).await).await?;
                let checked = output::check_outcome(outcome)?;
                let new_sender = new_sender.map(|text| output::check_address(&text, true)).transpose()?;
                Ok((checked, new_sender))
            })
            .await;
        Some(result)
    }

    fn apply(&mut self, new_sender: Self::Changes) {
        if let Some(new_sender) = new_sender {
            *self.sender = new_sender;
        }
    }
}

/// RCPT TO: a plugin may rewrite or drop the recipient and add others.
pub(super) struct RcptToCalls<'a> {
    pub caller: &'a mut Caller,
    pub session: wit::Session,
    pub view: TxnView<'a>,
    /// `None` once a plugin dropped it.
    pub recipient: &'a mut Option<Recipient>,
    pub added: Vec<Mailbox>,
}

impl StageCalls for RcptToCalls<'_> {
    type Changes = (RecipientFate, Vec<Mailbox>);

    async fn call(&mut self, index: usize, notes: &Notes) -> Option<Result<(Checked, Self::Changes), Failure>> {
        let wit_rcpt = wit_recipient(self.recipient.as_ref()?);
        let (txn, session) = (wit_transaction(&self.view, notes), &self.session);
        let result = self
            .caller
            .run(index, Stage::RcptTo, async |instance| {
                let RcptToResult { outcome, action, add_recipients } =
                    instance.call(async |p, s| p.rcpt_to(s, session, &txn, &wit_rcpt).await).await?;
                let checked = output::check_outcome(outcome)?;
                let fate = output::check_recipient_action(action)?;
                Ok((checked, (fate, output::check_recipients(&add_recipients)?)))
            })
            .await;
        Some(result)
    }

    fn apply(&mut self, (fate, more): Self::Changes) {
        rewrite_recipient(self.recipient, fate);
        self.added.extend(more);
    }
}

/// DATA: every plugin reads the message as received; the changes pile up in plugin
/// order, for the caller to apply.
pub(super) struct DataCalls<'a> {
    pub caller: &'a mut Caller,
    pub session: wit::Session,
    pub view: TxnView<'a>,
    pub message: &'a Arc<MessageShared>,
    pub max_body: u64,
    pub changes: DataChanges,
}

impl StageCalls for DataCalls<'_> {
    type Changes = DataChanges;

    async fn call(&mut self, index: usize, notes: &Notes) -> Option<Result<(Checked, DataChanges), Failure>> {
        let (txn, session, max_body) = (wit_transaction(&self.view, notes), &self.session, self.max_body);
        let shared = Arc::clone(self.message);
        let result = self
            .caller
            .run(index, Stage::Data, async |instance| {
                let handle = instance
                    .store_mut()
                    .data_mut()
                    .table
                    .push(MessageView { shared })
                    .map_err(|e| Failure::Unavailable(e.to_string()))?;
                let rep = handle.rep();
                let result = instance.call(async |p, s| p.data(s, session, &txn, handle).await).await;
                // The plugin only borrowed the message: its entry is ours to remove, or
                // it (and the message it holds) would outlive the call in a reused instance.
                let _ = instance.store_mut().data_mut().table.delete(Resource::<MessageView>::new_own(rep));
                let DataResult { outcome, header_changes, new_body, add_recipients, remove_recipients, route } =
                    result?;
                let checked = output::check_outcome(outcome)?;
                let header_edits = output::check_header_changes(header_changes)?;
                if new_body.as_ref().is_some_and(|b| b.len() as u64 > max_body) {
                    return Err(Failure::Invalid("new body exceeds the message size limit".into()));
                }
                let changes = DataChanges {
                    header_edits,
                    new_body,
                    add_recipients: output::check_recipients(&add_recipients)?,
                    remove_recipients: output::check_recipients(&remove_recipients)?,
                    route: route.map(output::check_route).transpose()?,
                };
                Ok((checked, changes))
            })
            .await;
        Some(result)
    }

    fn apply(&mut self, changes: DataChanges) {
        self.changes.merge(changes);
    }
}
