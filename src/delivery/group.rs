//! Delivering one destination group of a message: the recipients sent over as few
//! connections and transactions as the server allows, recipients the server could
//! not take yet (452) moved to the next transaction, and the results of each finished
//! transaction handed to the scheduler when more follow.

use std::collections::VecDeque;
use std::sync::Arc;

use super::connect::Connections;
use super::diagnose::Diagnose;
use super::engine::Engine;
use super::event::{Event, Events};
use super::loaded::Loaded;
use super::outcome::{RcptOutcome, local};
use super::pool::{Permit, Site};
use super::routing::Destination;
use crate::client::{ClientError, Message, Needs, SmtpClient, Stage, Verdict};
use crate::mail::Envelope;
use crate::mail::QueueId;
use crate::mail::params::Body;
use crate::queue::Diagnostic;
use crate::wire::Reply;
use crate::wire::Status;

/// Delivers `members` (recipient indexes) of the message to one destination and
/// returns the results not yet reported.
pub async fn deliver(
    engine: &Engine,
    destination: &Destination,
    message: &Loaded,
    members: Vec<usize>,
    events: &Events,
) -> Vec<(usize, RcptOutcome)> {
    let results = match prepare(engine, destination, message).await {
        Ok((site, _permit, content)) => send(engine, destination, &site, message, &content, members, events).await,
        Err(diagnostic) => members.into_iter().map(|i| (i, RcptOutcome::Deferred(diagnostic.clone()))).collect(),
    };
    count(destination, &results);
    results
}

/// The pool's say: a connection slot for the destination (unless it is down) and the
/// message's bytes.
async fn prepare(
    engine: &Engine,
    destination: &Destination,
    message: &Loaded,
) -> Result<(Arc<Site>, Permit, Arc<Vec<u8>>), Diagnostic> {
    let site = engine.pool.site(destination);
    if let Some(diagnostic) = site.down() {
        return Err(diagnostic);
    }
    let permit = engine.pool.permit(&site).await.ok_or_else(|| local(Status(4, 3, 0), "delivery is shutting down"))?;
    // The destination may have gone down while we waited for the slot.
    if let Some(diagnostic) = site.down() {
        return Err(diagnostic);
    }
    let content = message
        .content(engine)
        .await
        .ok_or_else(|| local(Status(4, 3, 0), "cannot read the message from the queue"))?;
    Ok((site, permit, content))
}

async fn send(
    engine: &Engine,
    destination: &Destination,
    site: &Site,
    message: &Loaded,
    content: &[u8],
    members: Vec<usize>,
    events: &Events,
) -> Vec<(usize, RcptOutcome)> {
    let envelope = &message.entry.envelope;
    let params = &envelope.mail_params;
    let needs = Needs {
        size: content.len() as u64,
        eight_bit: params.body == Some(Body::EightBitMime),
        smtputf8: params.smtputf8,
    };
    let outgoing = Message { sender: envelope.sender.as_ref(), params, content, needs };
    let mut connections = Connections::new(engine, destination, site, needs);
    let mut progress = Progress::new(engine, destination, envelope, &outgoing, members, events);
    while !progress.remaining.is_empty() {
        match connections.next().await {
            Ok(mut client) => {
                if progress.carry(&mut client).await == Carried::DeadPooled {
                    connections.distrust_pooled();
                }
                engine.pool.put_back(site, client);
            }
            Err(outcome) => progress.settle_rest(outcome),
        }
    }
    log_results(envelope.id, destination, &progress.results);
    progress.results
}

/// How a connection's share of the work ended.
#[derive(Debug, PartialEq, Eq)]
enum Carried {
    /// Nothing left, or the connection cannot carry more.
    Done,
    /// A pooled connection the server had already closed: nothing was sent on it.
    DeadPooled,
}

/// One group on its way: who is left and what was decided for the others.
struct Progress<'a> {
    engine: &'a Engine,
    destination: &'a Destination,
    envelope: &'a Envelope,
    message: &'a Message<'a>,
    events: &'a Events,
    remaining: VecDeque<usize>,
    results: Vec<(usize, RcptOutcome)>,
    /// Reused by every transaction.
    verdicts: Vec<Option<Verdict>>,
}

impl<'a> Progress<'a> {
    fn new(
        engine: &'a Engine,
        destination: &'a Destination,
        envelope: &'a Envelope,
        message: &'a Message<'a>,
        members: Vec<usize>,
        events: &'a Events,
    ) -> Progress<'a> {
        let results = Vec::with_capacity(members.len());
        Progress {
            engine,
            destination,
            envelope,
            message,
            events,
            remaining: members.into(),
            results,
            verdicts: Vec::new(),
        }
    }

    /// Every recipient still waiting gets `outcome`.
    fn settle_rest(&mut self, outcome: RcptOutcome) {
        self.results.extend(self.remaining.drain(..).map(|i| (i, outcome.clone())));
    }

    /// Runs transactions on `client` while recipients remain and it can carry them.
    async fn carry(&mut self, client: &mut SmtpClient) -> Carried {
        let reused = client.transactions > 0;
        let host = client.target.label();
        let mut first = true;
        while !self.remaining.is_empty() && client.is_reusable() {
            let take = self.remaining.len().min(self.engine.max_recipients_per_transaction);
            let batch: Vec<usize> = self.remaining.drain(..take).collect();
            let recipients: Vec<_> = batch
                .iter()
                .map(|&i| (&self.envelope.recipients[i].address, &self.envelope.recipients[i].params))
                .collect();
            let sent = client.send(self.message, &recipients, &mut self.verdicts).await;
            if let Err(error) = &sent
                && reused
                && first
                && self.verdicts.iter().all(Option::is_none)
                && early(error)
            {
                tracing::debug!(%host, %error, "pooled connection was dead; reconnecting");
                self.remaining.extend(batch);
                return Carried::DeadPooled;
            }
            first = false;
            self.record(&batch, &sent, &host, client.caps.dsn);
            if let Err(error) = sent {
                tracing::info!(id = %self.envelope.id, %host, %error, "delivery interrupted");
                return Carried::Done;
            }
            self.report_partial();
        }
        Carried::Done
    }

    /// Files each recipient of the batch under its verdict. Those the server could
    /// not take in this transaction go first in the next, in their order.
    fn record(&mut self, batch: &[usize], sent: &Result<(), ClientError>, host: &str, dsn: bool) {
        let verdict = |slot: usize| self.verdicts.get(slot).cloned().flatten();
        for (slot, &index) in batch.iter().enumerate() {
            let outcome = match (verdict(slot), sent) {
                (Some(Verdict::TooMany), _) => continue,
                (Some(verdict), _) => verdict_outcome(verdict, host, dsn),
                (None, Err(error)) => RcptOutcome::Deferred(error.diagnostic(host)),
                (None, Ok(())) => RcptOutcome::Deferred(local(Status(4, 5, 0), "no reply for this recipient")),
            };
            self.results.push((index, outcome));
        }
        for (slot, &index) in batch.iter().enumerate().rev() {
            if matches!(self.verdicts.get(slot), Some(Some(Verdict::TooMany))) {
                self.remaining.push_front(index);
            }
        }
    }

    /// With more transactions to come, hands the results so far to the scheduler: a
    /// crash before the last never sends these again.
    fn report_partial(&mut self) {
        if self.remaining.is_empty() || self.results.is_empty() {
            return;
        }
        let done = std::mem::take(&mut self.results);
        log_results(self.envelope.id, self.destination, &done);
        count(self.destination, &done);
        let _ = self.events.send(Event::Outcomes { id: self.envelope.id, results: done, last: false });
    }
}

/// Errors at the very start of a transaction on a reused connection.
fn early(error: &ClientError) -> bool {
    matches!(error.stage(), Stage::Rset | Stage::Mail)
        && matches!(error, ClientError::Closed(_) | ClientError::Io(..) | ClientError::Timeout(_))
}

fn verdict_outcome(verdict: Verdict, host: &str, dsn: bool) -> RcptOutcome {
    let diagnostic = |reply: &Reply| Diagnostic {
        status: reply.effective_status(),
        text: reply.to_string(),
        smtp: true,
        remote_mta: Some(host.to_string()),
    };
    match verdict {
        Verdict::Delivered(reply) => RcptOutcome::Delivered { diagnostic: diagnostic(&reply), relayed_dsn: dsn },
        Verdict::Transient(reply) => RcptOutcome::Deferred(diagnostic(&reply)),
        Verdict::Permanent(reply) => RcptOutcome::Failed(diagnostic(&reply)),
        Verdict::TooMany => RcptOutcome::Deferred(local(Status(4, 5, 3), "too many recipients")),
    }
}

/// Per-recipient results by route, for the metrics.
fn count(destination: &Destination, results: &[(usize, RcptOutcome)]) {
    for (_, outcome) in results {
        let result = match outcome {
            RcptOutcome::Delivered { .. } => "delivered",
            RcptOutcome::Deferred(_) => "deferred",
            RcptOutcome::Failed(_) => "failed",
        };
        metrics::counter!("sluice_delivery_attempts_total", "route" => destination.route.clone(), "result" => result)
            .increment(1);
    }
}

fn log_results(id: QueueId, destination: &Destination, results: &[(usize, RcptOutcome)]) {
    for (index, outcome) in results {
        match outcome {
            RcptOutcome::Delivered { diagnostic, .. } => {
                tracing::debug!(%id, recipient = index, %destination, reply = %diagnostic, "delivered");
            }
            RcptOutcome::Deferred(diagnostic) => {
                tracing::info!(%id, recipient = index, %destination, error = %diagnostic, "deferred");
            }
            RcptOutcome::Failed(diagnostic) => {
                tracing::info!(%id, recipient = index, %destination, error = %diagnostic, "failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;
    use crate::delivery::test_support::{self, Peer, Script, TestEngine};

    /// Delivers every recipient of `entry` as one group; returns the results of
    /// the partial reports, then the rest.
    async fn deliver_all(
        test: &TestEngine,
        entry: crate::queue::Entry,
    ) -> (Vec<Vec<(usize, RcptOutcome)>>, Vec<(usize, RcptOutcome)>) {
        let engine = &test.engine;
        let destination = engine.router.route(&entry.envelope, 0).unwrap();
        let members = (0..entry.envelope.recipients.len()).collect();
        let (events, mut inbox) = mpsc::unbounded_channel();
        let rest = deliver(engine, &destination, &Loaded::new(entry), members, &events).await;
        let mut partial = Vec::new();
        while let Ok(event) = inbox.try_recv() {
            match event {
                Event::Outcomes { results, last: false, .. } => partial.push(results),
                _ => panic!("only partial outcomes are reported"),
            }
        }
        (partial, rest)
    }

    fn summary(results: &[(usize, RcptOutcome)]) -> Vec<(usize, &'static str, String)> {
        results
            .iter()
            .map(|(i, outcome)| match outcome {
                RcptOutcome::Delivered { diagnostic, .. } => (*i, "delivered", diagnostic.status.to_string()),
                RcptOutcome::Deferred(diagnostic) => (*i, "deferred", diagnostic.status.to_string()),
                RcptOutcome::Failed(diagnostic) => (*i, "failed", diagnostic.status.to_string()),
            })
            .collect()
    }

    #[tokio::test]
    async fn recipients_refused_with_452_go_first_in_the_next_transaction_on_the_same_connection() {
        for pipelining in [true, false] {
            let peer = Peer::start(Script { pipelining, rcpt_limit: 2, ..Script::default() }).await;
            let test = test_support::engine(peer.addr, "max_recipients_per_transaction = 3");
            let entry =
                test_support::store(&test, &["r0@a.test", "r1@a.test", "r2@a.test", "r3@a.test", "r4@a.test"]).await;
            let (partial, rest) = deliver_all(&test, entry).await;
            let transactions = peer.transactions();
            let sent: Vec<Vec<&str>> = transactions.iter().map(|t| t.iter().map(|r| &r[..2]).collect()).collect();
            // r2 is refused in the first and leads the second, ahead of r3 and r4.
            assert_eq!(sent, [vec!["r0", "r1"], vec!["r2", "r3"], vec!["r4"]], "pipelining {pipelining}");
            assert_eq!(peer.opened(), 1, "one connection carries every transaction");
            // Each transaction's results are reported before the next starts.
            let delivered =
                |from: usize, to: usize| (from..to).map(|i| (i, "delivered", "2.0.0".into())).collect::<Vec<_>>();
            assert_eq!(partial.iter().map(|p| summary(p)).collect::<Vec<_>>(), [delivered(0, 2), delivered(2, 4)]);
            assert_eq!(summary(&rest), delivered(4, 5));
        }
    }

    #[tokio::test]
    async fn each_recipient_gets_its_own_verdict() {
        for pipelining in [true, false] {
            let peer = Peer::start(Script { pipelining, unknown: &["nobody"], ..Script::default() }).await;
            let test = test_support::engine(peer.addr, "");
            let entry = test_support::store(&test, &["r0@a.test", "nobody@a.test", "r2@a.test"]).await;
            let (partial, rest) = deliver_all(&test, entry).await;
            assert!(partial.is_empty(), "one transaction: nothing to report early");
            assert_eq!(
                summary(&rest),
                [(0, "delivered", "2.0.0".into()), (1, "failed", "5.1.1".into()), (2, "delivered", "2.0.0".into())],
                "pipelining {pipelining}"
            );
            let RcptOutcome::Failed(diagnostic) = &rest[1].1 else { unreachable!() };
            assert!(diagnostic.smtp && diagnostic.text.contains("no such user"), "{diagnostic:?}");
            assert_eq!(diagnostic.remote_mta.as_deref(), Some(peer.addr.to_string().as_str()));
            assert_eq!(peer.transactions(), [vec!["r0@a.test".to_string(), "r2@a.test".into()]]);
        }
    }

    #[tokio::test]
    async fn only_rejected_recipients_fail_without_content() {
        let peer = Peer::start(Script { unknown: &["x", "y"], ..Script::default() }).await;
        let test = test_support::engine(peer.addr, "");
        let entry = test_support::store(&test, &["x@a.test", "y@a.test"]).await;
        let (_, rest) = deliver_all(&test, entry).await;
        assert_eq!(summary(&rest), [(0, "failed", "5.1.1".into()), (1, "failed", "5.1.1".into())]);
        assert!(peer.transactions().is_empty(), "no content went out");
    }

    #[tokio::test]
    async fn a_pooled_connection_the_server_closed_is_replaced_without_a_deferral() {
        let mut peer = Peer::start(Script { hang_up_after: Some(1), ..Script::default() }).await;
        let test = test_support::engine(peer.addr, "");
        let first = test_support::store(&test, &["r0@a.test"]).await;
        let (_, rest) = deliver_all(&test, first).await;
        assert_eq!(summary(&rest), [(0, "delivered", "2.0.0".into())]);
        // The connection went back to the pool; the server has since hung up.
        peer.ended(1).await;
        let second = test_support::store(&test, &["r1@a.test"]).await;
        let (_, rest) = deliver_all(&test, second).await;
        assert_eq!(summary(&rest), [(0, "delivered", "2.0.0".into())], "retried on a fresh connection");
        assert_eq!(peer.opened(), 2);
        assert_eq!(peer.transactions(), [vec!["r0@a.test".to_string()], vec!["r1@a.test".into()]]);
    }

    #[tokio::test]
    async fn batches_follow_max_recipients_per_transaction() {
        let peer = Peer::start(Script::default()).await;
        let test = test_support::engine(peer.addr, "max_recipients_per_transaction = 2");
        let entry = test_support::store(&test, &["r0@a.test", "r1@a.test", "r2@a.test"]).await;
        let (partial, rest) = deliver_all(&test, entry).await;
        assert_eq!(peer.transactions().iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(partial.iter().map(Vec::len).collect::<Vec<_>>(), [2]);
        assert_eq!(summary(&rest), [(2, "delivered", "2.0.0".into())]);
    }

    #[tokio::test]
    async fn a_destination_that_cannot_be_reached_defers_everyone_and_is_left_alone() {
        let test = test_support::engine(test_support::nowhere(), "");
        let entry = test_support::store(&test, &["r0@a.test", "r1@a.test"]).await;
        let (_, rest) = deliver_all(&test, entry.clone()).await;
        assert_eq!(
            rest.iter().map(|(i, o)| (*i, matches!(o, RcptOutcome::Deferred(_)))).collect::<Vec<_>>(),
            [(0, true), (1, true)]
        );
        // Marked down: the next message is deferred without a connection attempt.
        let destination = test.engine.router.route(&entry.envelope, 0).unwrap();
        assert!(test.engine.pool.site(&destination).down().is_some());
    }
}
