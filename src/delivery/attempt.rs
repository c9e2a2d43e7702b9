//! One delivery attempt for one message: its pending recipients grouped by
//! destination, each group sent over one connection in as few transactions as the
//! server allows, every recipient's result reported back to the scheduler.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::OnceCell;
use tokio::sync::mpsc::UnboundedSender;

use super::Engine;
use super::client::{ClientError, Message, Needs, SmtpClient, Target, Unsuitable, Verdict};
use super::mx;
use super::outcome::{Problem, RcptOutcome, local};
use super::pool::Site;
use super::routing::Destination;
use super::scheduler::Event;
use crate::config::TlsMode;
use crate::mail::params::Body;
use crate::queue::{Diagnostic, Entry, RecipientStatus};
use crate::wire::Status;

/// Messages larger than this are read off the runtime's threads.
const READ_INLINE_LIMIT: u64 = 1 << 20;
/// Fresh connections tried for one group before the rest waits for the next attempt.
const MAX_CONNECTIONS_PER_GROUP: usize = 3;

/// The message of an attempt; its bytes are read once, when the first connection is
/// ready, so messages waiting for a connection slot hold no memory.
pub struct Loaded {
    pub entry: Entry,
    content: OnceCell<Option<Arc<Vec<u8>>>>,
}

impl Loaded {
    async fn content(&self, engine: &Engine) -> Option<Arc<Vec<u8>>> {
        self.content
            .get_or_init(|| async {
                let id = self.entry.envelope.id;
                let read = if self.entry.location.body_len <= READ_INLINE_LIMIT {
                    engine.queue.read_message(id)
                } else {
                    let queue = Arc::clone(&engine.queue);
                    tokio::task::spawn_blocking(move || queue.read_message(id))
                        .await
                        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
                };
                match read {
                    Ok(bytes) => Some(Arc::new(bytes)),
                    Err(error) => {
                        tracing::error!(%id, %error, "cannot read a queued message");
                        None
                    }
                }
            })
            .await
            .clone()
    }
}

/// Runs the attempt and reports to the scheduler: one event per destination group as
/// it finishes (so delivered recipients are recorded at once), the last one marked.
pub async fn run(engine: Arc<Engine>, entry: Entry, events: UnboundedSender<Event>) {
    let id = entry.envelope.id;
    let pending: Vec<usize> = (0..entry.envelope.recipients.len())
        .filter(|&i| entry.state.recipient(i).status == RecipientStatus::Pending)
        .collect();
    let mut unrouted = Vec::new();
    let mut groups: Vec<(Destination, Vec<usize>)> = Vec::new();
    for index in pending {
        match engine.router.route(&entry.envelope, index) {
            Ok(destination) => match groups.iter_mut().find(|(d, _)| *d == destination) {
                Some((_, members)) => members.push(index),
                None => groups.push((destination, vec![index])),
            },
            Err(problem) => unrouted.push((index, problem.outcome())),
        }
    }
    let message = Arc::new(Loaded { entry, content: OnceCell::new() });
    if groups.len() > 1 {
        let mut running = tokio::task::JoinSet::new();
        for (destination, members) in groups {
            let (engine, message, events) = (Arc::clone(&engine), Arc::clone(&message), events.clone());
            running.spawn(async move { deliver_group(&engine, &destination, &message, members, &events).await });
        }
        while let Some(done) = running.join_next().await {
            match done {
                Ok(results) => {
                    let _ = events.send(Event::Outcomes { id, results, last: false });
                }
                Err(error) => tracing::error!(%id, %error, "a delivery task failed"),
            }
        }
    } else if let Some((destination, members)) = groups.pop() {
        unrouted.extend(deliver_group(&engine, &destination, &message, members, &events).await);
    }
    let _ = events.send(Event::Outcomes { id, results: unrouted, last: true });
}

/// Delivers `members` (recipient indexes) of the message to one destination. When it
/// takes several transactions, each one's results go to the scheduler as soon as it
/// ends, so a crash before the last never sends the first again; the rest is returned.
async fn deliver_group(
    engine: &Engine,
    destination: &Destination,
    message: &Loaded,
    members: Vec<usize>,
    events: &UnboundedSender<Event>,
) -> Vec<(usize, RcptOutcome)> {
    let results = deliver_group_inner(engine, destination, message, members, events).await;
    count(destination, &results);
    results
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

async fn deliver_group_inner(
    engine: &Engine,
    destination: &Destination,
    message: &Loaded,
    members: Vec<usize>,
    events: &UnboundedSender<Event>,
) -> Vec<(usize, RcptOutcome)> {
    let all = |outcome: RcptOutcome| members.iter().map(|&i| (i, outcome.clone())).collect::<Vec<_>>();
    let site = engine.pool.site(destination);
    if let Some(diagnostic) = site.down() {
        return all(RcptOutcome::Deferred(diagnostic));
    }
    let Some(_permit) = engine.pool.permit(&site).await else {
        return all(RcptOutcome::Deferred(local(Status(4, 3, 0), "delivery is shutting down")));
    };
    // The destination may have gone down while we waited for the slot.
    if let Some(diagnostic) = site.down() {
        return all(RcptOutcome::Deferred(diagnostic));
    }
    let Some(content) = message.content(engine).await else {
        return all(RcptOutcome::Deferred(local(Status(4, 3, 0), "cannot read the message from the queue")));
    };
    let envelope = &message.entry.envelope;
    let params = &envelope.mail_params;
    let needs = Needs {
        size: content.len() as u64,
        eight_bit: params.body == Some(Body::EightBitMime),
        smtputf8: params.smtputf8,
    };
    let outgoing = Message { sender: envelope.sender.as_ref(), params, content: &content, needs };
    let mut remaining: VecDeque<usize> = members.iter().copied().collect();
    let mut results = Vec::with_capacity(members.len());
    let mut verdicts = Vec::new();
    let mut fresh_connections = 0;
    let mut use_idle = true;
    while !remaining.is_empty() {
        let mut client = match use_idle.then(|| idle_client(engine, &site, &needs)).flatten() {
            Some(client) => client,
            None => {
                if fresh_connections == MAX_CONNECTIONS_PER_GROUP {
                    let diagnostic = local(Status(4, 4, 2), "too many connections failed during this attempt");
                    results.extend(remaining.drain(..).map(|i| (i, RcptOutcome::Deferred(diagnostic.clone()))));
                    break;
                }
                fresh_connections += 1;
                match connect(engine, destination, &site, &needs).await {
                    Ok(client) => client,
                    Err(problem) => {
                        let outcome = problem.outcome();
                        results.extend(remaining.drain(..).map(|i| (i, outcome.clone())));
                        break;
                    }
                }
            }
        };
        let reused = client.transactions > 0;
        let host = client.target.label();
        let mut first = true;
        while !remaining.is_empty() && client.is_reusable() {
            let batch: Vec<usize> =
                remaining.drain(..remaining.len().min(engine.max_recipients_per_transaction)).collect();
            let recipients: Vec<_> =
                batch.iter().map(|&i| (&envelope.recipients[i].address, &envelope.recipients[i].params)).collect();
            let sent = client.send(&outgoing, &recipients, &mut verdicts).await;
            if let Err(error) = &sent {
                // A pooled connection the server had already closed fails before
                // anything was accepted: try again on a fresh one, no harm done.
                let untouched = verdicts.iter().all(Option::is_none);
                if reused && first && untouched && early(error) {
                    tracing::debug!(%host, %error, "pooled connection was dead; reconnecting");
                    remaining.extend(batch);
                    use_idle = false;
                    break;
                }
            }
            first = false;
            let mut too_many = Vec::new();
            for (slot, &index) in batch.iter().enumerate() {
                let outcome = match (verdicts.get(slot).cloned().flatten(), &sent) {
                    (Some(Verdict::TooMany), _) => {
                        too_many.push(index);
                        continue;
                    }
                    (Some(verdict), _) => verdict_outcome(verdict, &host, client.caps.dsn),
                    (None, Err(error)) => RcptOutcome::Deferred(error.diagnostic(&host)),
                    (None, Ok(())) => RcptOutcome::Deferred(local(Status(4, 5, 0), "no reply for this recipient")),
                };
                results.push((index, outcome));
            }
            // Those the server could not take in this transaction go first in the next.
            for index in too_many.into_iter().rev() {
                remaining.push_front(index);
            }
            if let Err(error) = sent {
                tracing::info!(id = %envelope.id, %host, %error, "delivery interrupted");
                break;
            }
            if !remaining.is_empty() && !results.is_empty() {
                log_results(envelope.id, destination, &results);
                let done = std::mem::take(&mut results);
                count(destination, &done);
                let _ = events.send(Event::Outcomes { id: envelope.id, results: done, last: false });
            }
        }
        engine.pool.put_back(&site, client);
    }
    log_results(envelope.id, destination, &results);
    results
}

/// Errors at the very start of a transaction on a reused connection.
fn early(error: &ClientError) -> bool {
    use super::client::Stage;
    matches!(error.stage(), Stage::Rset | Stage::Mail)
        && matches!(error, ClientError::Closed(_) | ClientError::Io(..) | ClientError::Timeout(_))
}

fn verdict_outcome(verdict: Verdict, host: &str, dsn: bool) -> RcptOutcome {
    let diagnostic = |reply: &crate::wire::Reply| Diagnostic {
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

fn idle_client(engine: &Engine, site: &Site, needs: &Needs) -> Option<SmtpClient> {
    let client = engine.pool.take_idle(site)?;
    if client.check(needs).is_ok() {
        return Some(client);
    }
    engine.pool.put_back(site, client);
    None
}

/// Opens a connection to the first host of the destination that answers and can
/// take the message.
async fn connect(
    engine: &Engine,
    destination: &Destination,
    site: &Site,
    needs: &Needs,
) -> Result<SmtpClient, Problem> {
    let hosts = mx::plan(engine.resolver.as_ref(), destination).await?;
    let mut last: Option<Problem> = None;
    let mut unsuitable: Option<(Unsuitable, String)> = None;
    let mut reached_any = false;
    for planned in &hosts {
        let addrs = match mx::addresses(engine.resolver.as_ref(), planned).await {
            Ok(addrs) => addrs,
            Err(problem @ Problem::Permanent(_)) if hosts.len() == 1 => return Err(problem),
            Err(problem) => {
                last = Some(problem);
                continue;
            }
        };
        for addr in addrs {
            let target = Target { name: planned.name(), addr };
            let auth = destination.auth.as_deref();
            let opened = match SmtpClient::open(&target, destination.tls, auth, &engine.settings).await {
                // A server that offers STARTTLS but cannot finish the handshake still
                // gets the mail in clear under opportunistic TLS, as with Postfix.
                Err(error @ ClientError::Tls(_)) if destination.tls == TlsMode::Opportunistic => {
                    tracing::info!(host = %target.label(), %error, "TLS failed; retrying without TLS");
                    SmtpClient::open(&target, TlsMode::None, auth, &engine.settings).await
                }
                other => other,
            };
            match opened {
                Ok(client) => {
                    reached_any = true;
                    match client.check(needs) {
                        Ok(()) => {
                            site.mark_up();
                            return Ok(client);
                        }
                        Err(why) => {
                            unsuitable = Some((why, target.label()));
                            engine.pool.put_back(site, client);
                            // Another address of the same host is the same server.
                            break;
                        }
                    }
                }
                Err(error) => {
                    tracing::info!(host = %target.label(), %error, "cannot deliver to host");
                    last = Some(Problem::Temporary(error.diagnostic(&target.label())));
                }
            }
        }
    }
    match (unsuitable, last) {
        // Every host we reached said the message cannot go there, and none failed
        // in a way that might pass.
        (Some((why, host)), None) => Err(Problem::Permanent(why.diagnostic(&host))),
        (_, Some(problem)) => {
            if !reached_any && let Problem::Temporary(diagnostic) = &problem {
                site.mark_down(engine.pool.unreachable_backoff, diagnostic.clone());
            }
            Err(problem)
        }
        (None, None) => Err(Problem::temporary(Status(4, 4, 4), format!("no hosts to try for {destination}"))),
    }
}

fn log_results(id: crate::mail::QueueId, destination: &Destination, results: &[(usize, RcptOutcome)]) {
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
