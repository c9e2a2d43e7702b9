//! Recipient verification in the RCPT path: after relay control, before the RCPT
//! plugins, on the address as the client gave it.

use super::super::socket::Socket;
use super::super::state::Flow;
use super::{Session, count_refusal};
use crate::mail::Mailbox;
use crate::plugin::Stage;
use crate::recipients::{TAG_PREFIX, Verdict};

impl<S: Socket> Session<S> {
    /// `Err` with the flow after refusing the recipient (`550 5.1.1` counts towards
    /// `max_errors`, which cuts a directory-harvest attack off); otherwise tags the
    /// transaction with the outcome for the RCPT plugins.
    pub(super) async fn verify_recipient(&mut self, address: &Mailbox) -> Result<(), Flow> {
        // Trusted clients relay out: their recipients are not ours to know.
        if self.trusted {
            return Ok(());
        }
        let verifier = std::sync::Arc::clone(&self.ctx.recipients);
        let Some(check) = verifier.check(address).await else { return Ok(()) };
        match check.verdict() {
            Verdict::Accept { tag } => {
                if let Some(transaction) = self.state.transaction_mut() {
                    // Only the current recipient's outcome: the tag describes this RCPT.
                    transaction.notes.tags.retain(|t| !t.starts_with(TAG_PREFIX));
                    transaction.notes.tags.push(tag.to_string());
                }
                Ok(())
            }
            Verdict::Refuse(reply) => {
                tracing::info!(
                    recipient = %address,
                    client = %self.client.ip,
                    route = %check.route,
                    source = %check.source,
                    result = check.answer.name(),
                    "recipient refused"
                );
                count_refusal(Stage::RcptTo, &reply);
                Err(self.reply(reply))
            }
        }
    }
}
