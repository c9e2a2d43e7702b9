//! The end of DATA/BDAT: the server's own checks, the plugins' DATA stage and its
//! changes, then the queue. Only a durable write earns the 250.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::super::data::DataDecoder;
use super::super::received::{count_received, protocol, received_header};
use super::super::replies;
use super::super::socket::Socket;
use super::super::state::{Flow, Transaction};
use super::Session;
use crate::config::{BareNewlines, LimitsConfig};
use crate::mail::QueueId;
use crate::mail::{Envelope, Recipient};
use crate::plugin::message::{MessageShared, header_section_len};
use crate::plugin::rewrite::apply_header_edits;
use crate::plugin::{DataChanges, Stage, TxnView};
use crate::queue::{BufferStatus, Hold, MessageBuffer, MessageState, StoreError, StoredBody};
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
        let content = Arc::new(buffer);
        let mut changes = DataChanges::default();
        if self.ctx.plugins.hooks(Stage::Data) {
            let shared = Arc::new(MessageShared::new(Arc::clone(&content)));
            let mut notes = std::mem::take(&mut transaction.notes);
            let view = TxnView {
                sender: Some(&transaction.sender),
                params: Some(&transaction.params),
                recipients: &transaction.recipients,
            };
            let max_body = self.ctx.config.limits.max_message_size.bytes();
            let (decision, data_changes) = self.plugins.data(&self.client, &view, &shared, max_body, &mut notes).await;
            transaction.notes = notes;
            if let Some(flow) = self.refusal(Stage::Data, decision) {
                return flow;
            }
            changes = data_changes;
        }
        self.queue_message(id, transaction, content, changes).await
    }

    async fn queue_message(
        &mut self,
        id: QueueId,
        transaction: Box<Transaction>,
        content: Arc<MessageBuffer>,
        changes: DataChanges,
    ) -> Flow {
        let Transaction { sender, params, mut recipients, notes, .. } = *transaction;
        recipients.retain(|r| !changes.remove_recipients.iter().any(|gone| gone == &r.address));
        for address in changes.add_recipients {
            if !recipients.iter().any(|r| r.address == address) {
                recipients.push(Recipient { address, params: Default::default(), route: None });
            }
        }
        let accepted = Reply::owned(250, Status(2, 0, 0), format!("Ok: queued as {id}"));
        if let Some(plugin) = &notes.discard {
            tracing::info!(%id, %plugin, "message discarded by plugin");
            metrics::counter!("sluice_messages_total", "stage" => "data", "result" => "discarded").increment(1);
            return self.reply(accepted);
        }
        if recipients.is_empty() {
            tracing::info!(%id, "plugins removed every recipient; message dropped");
            return self.reply(accepted);
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
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
        let extended = self.state.helo().is_some_and(|h| h.extended);
        let proto =
            protocol(extended, self.tls_active(), self.client.auth_user.is_some(), envelope.mail_params.smtputf8);
        let single = match envelope.recipients.as_slice() {
            [only] => Some(&only.address),
            _ => None,
        };
        let mut prefix =
            received_header(self.ctx.hostname(), &self.client, &proto, id, single, now as i64).into_bytes();
        let body = if changes.header_edits.is_empty() && changes.new_body.is_none() {
            StoredBody::Received { content, skip: 0 }
        } else {
            let section_len = header_section_len(content.head());
            let section = &content.head()[..section_len];
            match apply_header_edits(section, &changes.header_edits) {
                Ok(edited) => prefix.extend_from_slice(&edited),
                Err(error) => {
                    tracing::warn!(%id, %error, "cannot apply header changes");
                    return self.reply(replies::LOCAL_ERROR);
                }
            }
            match changes.new_body {
                Some(bytes) => StoredBody::Replaced(bytes),
                None => StoredBody::Received { content, skip: section_len as u64 },
            }
        };
        let state = MessageState {
            hold: notes.quarantine.clone().map(|reason| Hold::Quarantined { reason }),
            ..MessageState::default()
        };
        let size = prefix.len() as u64 + body.len();
        let sender = envelope.sender_path();
        let recipients = envelope.recipients.len();
        let tags = envelope.tags.join(",");
        let score = envelope.score;
        match self.ctx.queue.store(envelope, state, prefix, body).await {
            Ok(()) => {
                let result = if notes.quarantine.is_some() { "quarantined" } else { "accepted" };
                metrics::counter!("sluice_messages_total", "stage" => "data", "result" => result).increment(1);
                match &notes.quarantine {
                    Some(reason) => tracing::info!(%id, %sender, recipients, size, %reason, "message quarantined"),
                    None => tracing::info!(%id, %sender, recipients, size, %tags, score, "message queued"),
                }
                self.reply(accepted)
            }
            Err(error) => {
                tracing::error!(%id, %error, "cannot queue message");
                self.reply(match error {
                    StoreError::NoSpace(_) => replies::QUEUE_FULL,
                    StoreError::Io(_) => replies::QUEUE_IO_ERROR,
                })
            }
        }
    }
}
