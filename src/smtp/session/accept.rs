//! The end of DATA/BDAT: the server's own checks, the plugins' DATA stage and its
//! changes, then the queue. Only a durable write earns the 250.

use std::sync::Arc;

use super::super::data::DataDecoder;
use super::super::received::{count_received, protocol, received_header};
use super::super::replies;
use super::super::socket::Socket;
use super::super::state::{Flow, Transaction};
use super::Session;
use crate::config::{BareNewlines, LimitsConfig};
use crate::mail::QueueId;
use crate::mail::{Envelope, Recipient};
use crate::plugin::apply::{BodySource, Content, change_recipients, edit_content};
use crate::plugin::message::MessageShared;
use crate::plugin::output::{HeaderEdit, Invalid};
use crate::plugin::{DataChanges, Notes, Stage, TxnView};
use crate::queue::{BufferStatus, Hold, MessageBuffer, MessageState, Queue, StoreError, StoredBody};
use crate::wire::{Reply, Status};

/// The server's own checks of finished content; the reply if it is refused.
async fn check_content(limits: &LimitsConfig, buffer: &mut MessageBuffer, decoder: &DataDecoder) -> Option<Reply> {
    match buffer.finish().await {
        BufferStatus::TooBig => Some(replies::MESSAGE_TOO_BIG),
        BufferStatus::IoError => Some(replies::QUEUE_IO_ERROR),
        BufferStatus::NoSpace => Some(replies::QUEUE_FULL),
        BufferStatus::Ok if decoder.saw_bare_newline && limits.bare_newlines == BareNewlines::Reject => {
            Some(replies::BARE_NEWLINE)
        }
        BufferStatus::Ok if decoder.saw_long_line => Some(replies::TEXT_LINE_TOO_LONG),
        BufferStatus::Ok if count_received(buffer.head()) > limits.max_received_headers => Some(replies::LOOP_DETECTED),
        BufferStatus::Ok => None,
    }
}

/// Writes the message to the queue, held when quarantined; the error is the reply
/// for a write that did not become durable.
async fn store(
    queue: &Queue,
    envelope: Envelope,
    quarantine: Option<String>,
    prefix: Vec<u8>,
    body: StoredBody,
) -> Result<(), Reply> {
    let id = envelope.id;
    let size = prefix.len() as u64 + body.len();
    let sender = envelope.sender_path();
    let recipients = envelope.recipients.len();
    let tags = envelope.tags.join(",");
    let score = envelope.score;
    let hold = quarantine.clone().map(|reason| Hold::Quarantined { reason });
    let state = MessageState { hold, ..MessageState::default() };
    match queue.store(envelope, state, prefix, body).await {
        Ok(()) => {
            let result = if quarantine.is_some() { "quarantined" } else { "accepted" };
            metrics::counter!("sluice_messages_total", "stage" => "data", "result" => result).increment(1);
            match &quarantine {
                Some(reason) => tracing::info!(%id, %sender, recipients, size, %reason, "message quarantined"),
                None => tracing::info!(%id, %sender, recipients, size, %tags, score, "message queued"),
            }
            Ok(())
        }
        Err(error) => {
            tracing::error!(%id, %error, "cannot queue message");
            Err(match error {
                StoreError::NoSpace(_) => replies::QUEUE_FULL,
                StoreError::Io(_) => replies::QUEUE_IO_ERROR,
            })
        }
    }
}

/// Whether the message is answered 250 without being stored: a plugin discarded it, or
/// plugins removed every recipient.
fn dropped(id: QueueId, notes: &Notes, recipients: &[Recipient]) -> bool {
    if let Some(plugin) = &notes.discard {
        tracing::info!(%id, %plugin, "message discarded by plugin");
        metrics::counter!("sluice_messages_total", "stage" => "data", "result" => "discarded").increment(1);
        return true;
    }
    if recipients.is_empty() {
        tracing::info!(%id, "plugins removed every recipient; message dropped");
        return true;
    }
    false
}

impl<S: Socket> Session<S> {
    pub(super) async fn accept_message(
        &mut self,
        id: QueueId,
        mut buffer: MessageBuffer,
        decoder: &DataDecoder,
    ) -> Flow {
        let Some(mut transaction) = self.state.take_transaction() else { return Flow::Close };
        if let Some(reply) = check_content(&self.ctx.config.limits, &mut buffer, decoder).await {
            tracing::info!(%id, reply = %reply, "message refused");
            super::count_refusal(Stage::Data, &reply);
            return self.reply(reply);
        }
        if let Some(reply) = self.check_content(transaction.spf.as_ref(), &mut buffer).await {
            tracing::warn!(%id, reply = %reply, "message refused");
            return self.reply(reply);
        }
        let content = Arc::new(buffer);
        match self.data_stage(&mut transaction, &content).await {
            Ok(changes) => self.queue_message(id, *transaction, content, changes).await,
            Err(flow) => flow,
        }
    }

    /// Runs the DATA plugins: their changes, or how the session goes on after they refused.
    async fn data_stage(
        &mut self,
        transaction: &mut Transaction,
        content: &Arc<MessageBuffer>,
    ) -> Result<DataChanges, Flow> {
        if !self.ctx.plugins.hooks(Stage::Data) {
            return Ok(DataChanges::default());
        }
        let shared = Arc::new(MessageShared::new(Arc::clone(content)));
        let mut notes = std::mem::take(&mut transaction.notes);
        let view = TxnView {
            sender: Some(&transaction.sender),
            params: Some(&transaction.params),
            recipients: &transaction.recipients,
        };
        let max_body = self.ctx.config.limits.max_message_size.bytes();
        let (decision, changes) = self.plugins.data(&self.client, &view, &shared, max_body, &mut notes).await;
        transaction.notes = notes;
        match self.refusal(Stage::Data, decision) {
            Some(flow) => Err(flow),
            None => Ok(changes),
        }
    }

    /// Applies the plugins' changes and queues the message.
    async fn queue_message(
        &mut self,
        id: QueueId,
        transaction: Transaction,
        content: Arc<MessageBuffer>,
        changes: DataChanges,
    ) -> Flow {
        let Transaction { sender, params, mut recipients, notes, .. } = transaction;
        change_recipients(&mut recipients, &changes.remove_recipients, changes.add_recipients);
        let accepted = Reply::owned(250, Status(2, 0, 0), format!("Ok: queued as {id}"));
        if dropped(id, &notes, &recipients) {
            return self.reply(accepted);
        }
        let now = self.ctx.clock.now_secs();
        let envelope = Envelope {
            id,
            arrived: now,
            sender,
            mail_params: params,
            recipients,
            client: self.client.clone(),
            route: changes.route,
            tags: notes.tags,
            score: notes.score,
        };
        let (prefix, body) = match self.stored_form(&envelope, content, &changes.header_edits, changes.new_body) {
            Ok(stored) => stored,
            Err(error) => {
                tracing::warn!(%id, %error, "cannot apply header changes");
                return self.reply(replies::LOCAL_ERROR);
            }
        };
        let prefix = match self.dkim_sign(id, prefix, &body).await {
            Ok(prefix) => prefix,
            Err(reply) => return self.reply(reply),
        };
        match store(&self.ctx.queue, envelope, notes.quarantine, prefix, body).await {
            Ok(()) => self.reply(accepted),
            Err(reply) => self.reply(reply),
        }
    }

    /// What is stored before the body: our Received field, then the header section as
    /// plugins edited it (when they did); and the body.
    fn stored_form(
        &self,
        envelope: &Envelope,
        content: Arc<MessageBuffer>,
        header_edits: &[HeaderEdit],
        new_body: Option<Vec<u8>>,
    ) -> Result<(Vec<u8>, StoredBody), Invalid> {
        let mut prefix = self.received(envelope).into_bytes();
        let body = match edit_content(content.head(), header_edits, new_body)? {
            Content::Unchanged => StoredBody::Received { content, skip: 0 },
            Content::Edited { header, body } => {
                prefix.extend_from_slice(&header);
                match body {
                    BodySource::Received { skip } => StoredBody::Received { content, skip },
                    BodySource::Replaced(bytes) => StoredBody::Replaced(bytes),
                }
            }
        };
        Ok((prefix, body))
    }

    /// Our Received field for the message.
    fn received(&self, envelope: &Envelope) -> String {
        let extended = self.state.helo().is_some_and(|h| h.extended);
        let proto =
            protocol(extended, self.tls_active(), self.client.auth_user.is_some(), envelope.mail_params.smtputf8);
        let single = match envelope.recipients.as_slice() {
            [only] => Some(&only.address),
            _ => None,
        };
        received_header(self.ctx.hostname(), &self.client, &proto, envelope.id, single, envelope.arrived as i64)
    }
}
