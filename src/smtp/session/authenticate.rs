//! Mail authentication in the session: SPF at MAIL FROM, the other checks when the
//! content is in, and our Authentication-Results field put in before the DATA
//! plugins read the message (forged ones with our authserv-id taken out).

use std::sync::Arc;

use super::super::replies;
use super::super::socket::Socket;
use super::Session;
use crate::mail::Mailbox;
use crate::mail_auth::{AuthResults, RESULTS_FIELD, SpfOutcome};
use crate::plugin::message::header_section_len;
use crate::queue::MessageBuffer;

use crate::wire::Reply;

impl<S: Socket> Session<S> {
    /// SPF for a new transaction, and what its plugins see of it. A client of ours
    /// is not checked unless `check_trusted` says so.
    pub(super) async fn check_sender(&mut self, sender: Option<&Mailbox>) -> Option<SpfOutcome> {
        let checker = Arc::clone(&self.ctx.mail_auth);
        let spf = match self.state.helo() {
            Some(helo) if checker.applies(self.trusted) => checker.spf(self.client.ip, &helo.name, sender).await,
            _ => None,
        };
        let results = AuthResults { spf: spf.as_ref().map(|s| s.check.clone()), ..AuthResults::default() };
        self.plugins.set_auth(Arc::new(results));
        spf
    }

    /// The checks of finished content; the message gets our field and loses forged
    /// ones, in the whole header section, however far past the in-memory head it runs.
    /// A read error of a spilled message leaves the checks out; the reply is for a
    /// header that could not be rewritten.
    pub(super) async fn check_content(
        &mut self,
        spf: Option<&SpfOutcome>,
        buffer: &mut MessageBuffer,
    ) -> Option<Reply> {
        let checker = Arc::clone(&self.ctx.mail_auth);
        let mut ours = None;
        if checker.applies(self.trusted) {
            let helo = self.state.helo().map(|h| h.name.clone()).unwrap_or_default();
            let outcome = match buffer.contents().await {
                Ok(content) => checker.message(self.client.ip, &helo, spf, &content).await,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the message back for mail authentication");
                    return None;
                }
            };
            ours = outcome.header;
            self.plugins.set_auth(Arc::new(outcome.results));
        }
        let section = header_section_len(buffer.head());
        let past_head = buffer.spill_file().is_some() && section >= buffer.head().len();
        if past_head && checker.strips_forged() {
            let top = ours.unwrap_or_default();
            if let Err(error) =
                buffer.rewrite_header(top.as_bytes(), RESULTS_FIELD, |field| !checker.forged(field)).await
            {
                tracing::warn!(%error, "cannot rewrite the header section of a spilled message");
                return Some(replies::QUEUE_IO_ERROR);
            }
        } else if let Some((len, start)) = checker.header_edit(&buffer.head()[..section], ours) {
            buffer.replace_start(len, start);
        }
        None
    }
}
