//! DKIM-signing the message as it will be stored: after the plugins' changes and our
//! Received field, so the signature covers exactly what is delivered.

use std::sync::Arc;

use super::super::replies;
use super::super::socket::Socket;
use super::Session;
use crate::mail::QueueId;
use crate::queue::{MessageBuffer, StoredBody};
use crate::wire::Reply;

/// The whole received content, the spilled rest read back from its file.
async fn whole_content(content: &MessageBuffer) -> std::io::Result<Vec<u8>> {
    let mut whole = content.head().to_vec();
    if let Some(spill) = content.spill_file() {
        whole.extend_from_slice(&tokio::fs::read(spill).await?);
    }
    Ok(whole)
}

/// The received content from `skip` (the body, when plugins rewrote the header section).
async fn received_body(content: &Arc<MessageBuffer>, skip: u64) -> std::io::Result<Vec<u8>> {
    let mut whole = whole_content(content).await?;
    whole.drain(..(skip as usize).min(whole.len()));
    Ok(whole)
}

impl<S: Socket> Session<S> {
    /// Puts a `DKIM-Signature` at the top of `prefix` when the message is ours (from a
    /// relay network or an authenticated user) and its From domain has a key. A failure
    /// answers 451: mail from a domain that signs must not leave unsigned (a DMARC
    /// `reject` policy would bounce it downstream), and the client keeps the message
    /// and retries.
    pub(super) async fn dkim_sign(
        &mut self,
        id: QueueId,
        prefix: Vec<u8>,
        body: &StoredBody,
    ) -> Result<Vec<u8>, Reply> {
        let signers = Arc::clone(&self.ctx.signers);
        if signers.is_empty() || !(self.trusted || self.client.auth_user.is_some()) {
            return Ok(prefix);
        }
        // A spilled message is signed whole, and its From field may lie past the part
        // kept in memory (a header section over the in-memory threshold).
        let whole = match body {
            StoredBody::Received { content, skip: 0 } if content.spill_file().is_some() => {
                match whole_content(content).await {
                    Ok(whole) => Some(whole),
                    Err(error) => return Err(self.signing_failed(id, &error)),
                }
            }
            _ => None,
        };
        // Where the header section is: in the received content unless plugins rewrote
        // it into the prefix.
        let header = match (body, &whole) {
            (_, Some(whole)) => whole.as_slice(),
            (StoredBody::Received { content, skip: 0 }, None) => content.head(),
            _ => prefix.as_slice(),
        };
        let Some(domain) = signers.domain_for(header) else { return Ok(prefix) };
        let signed = match (body, &whole) {
            (_, Some(whole)) => signers.sign(domain, &[&prefix, whole]),
            (StoredBody::Received { content, skip: 0 }, None) => signers.sign(domain, &[&prefix, content.head()]),
            (StoredBody::Received { content, skip }, None) => match received_body(content, *skip).await {
                Ok(rest) => signers.sign(domain, &[&[prefix.as_slice(), &rest].concat()]),
                Err(error) => return Err(self.signing_failed(id, &error)),
            },
            (StoredBody::Replaced(bytes), None) => signers.sign(domain, &[&[prefix.as_slice(), bytes].concat()]),
        };
        match signed {
            Ok(field) => {
                metrics::counter!("sluice_dkim_signed_total", "result" => "ok").increment(1);
                tracing::debug!(%id, %domain, "message signed");
                let mut signed = field.into_bytes();
                signed.extend_from_slice(&prefix);
                Ok(signed)
            }
            Err(error) => Err(self.signing_failed(id, &error)),
        }
    }

    fn signing_failed(&self, id: QueueId, error: &dyn std::fmt::Display) -> Reply {
        metrics::counter!("sluice_dkim_signed_total", "result" => "failed").increment(1);
        tracing::error!(%id, %error, "cannot DKIM-sign the message; answering 451");
        replies::SIGNING_FAILED
    }
}
