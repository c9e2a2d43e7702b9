//! DKIM-signing the message as it will be stored: after the plugins' changes and our
//! Received field, so the signature covers exactly what is delivered.

use std::borrow::Cow;
use std::sync::Arc;

use super::super::replies;
use super::super::socket::Socket;
use super::Session;
use crate::mail::QueueId;
use crate::queue::StoredBody;
use crate::wire::Reply;

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
        // The header section is in the received content when nothing of it was
        // skipped, otherwise in the prefix (plugins rewrote it): then whether to sign is
        // known before anything is read back.
        let header_in_rest = matches!(body, StoredBody::Received { skip: 0, .. });
        let prefix_domain = match header_in_rest {
            true => None,
            false => match signers.domain_for(&prefix) {
                Some(domain) => Some(domain),
                None => return Ok(prefix),
            },
        };
        // What follows the prefix: the received content from `skip` (its spilled part
        // read back; a From field may lie past the part kept in memory), or the
        // plugins' replacement.
        let rest = match body {
            StoredBody::Received { content, skip } => match content.contents().await {
                Ok(whole) => slice_from(whole, *skip as usize),
                Err(error) => return Err(self.signing_failed(id, &error)),
            },
            StoredBody::Replaced(bytes) => Cow::Borrowed(bytes.as_slice()),
        };
        let Some(domain) = prefix_domain.or_else(|| signers.domain_for(&rest)) else { return Ok(prefix) };
        let signed = if header_in_rest {
            signers.sign(domain, &[&prefix, &rest])
        } else {
            signers.sign(domain, &[&[prefix.as_slice(), &rest].concat()])
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

/// `bytes` from `start` (all of them past the end: empty).
fn slice_from(bytes: Cow<'_, [u8]>, start: usize) -> Cow<'_, [u8]> {
    match bytes {
        Cow::Borrowed(b) => Cow::Borrowed(b.get(start..).unwrap_or_default()),
        Cow::Owned(mut v) => {
            v.drain(..start.min(v.len()));
            Cow::Owned(v)
        }
    }
}
