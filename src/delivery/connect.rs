//! Where a group's connections come from: an idle pooled one while pooled ones can
//! be trusted, else a fresh one to the first host of the destination that answers
//! and can take the message, a few at most per attempt.

use super::diagnose::Diagnose;
use super::engine::Engine;
use super::mx;
use super::outcome::{Problem, RcptOutcome, local};
use super::plugin_hop;
use super::pool::Site;
use super::routing::Destination;
use crate::client::{ClientError, Needs, SmtpClient, Target, Unsuitable};
use crate::config::TlsMode;
use crate::wire::Status;

/// Fresh connections tried for one group before the rest waits for the next attempt.
const MAX_CONNECTIONS_PER_GROUP: usize = 3;

pub struct Connections<'a> {
    engine: &'a Engine,
    destination: &'a Destination,
    site: &'a Site,
    needs: Needs,
    fresh: usize,
    pooled: bool,
}

impl<'a> Connections<'a> {
    pub fn new(engine: &'a Engine, destination: &'a Destination, site: &'a Site, needs: Needs) -> Connections<'a> {
        Connections { engine, destination, site, needs, fresh: 0, pooled: true }
    }

    /// The next connection, or the outcome for every recipient still waiting.
    pub async fn next(&mut self) -> Result<SmtpClient, RcptOutcome> {
        if self.pooled
            && let Some(client) = self.idle()
        {
            return Ok(client);
        }
        if self.fresh == MAX_CONNECTIONS_PER_GROUP {
            return Err(RcptOutcome::Deferred(local(
                Status(4, 4, 2),
                "too many connections failed during this attempt",
            )));
        }
        self.fresh += 1;
        connect(self.engine, self.destination, self.site, &self.needs).await.map_err(|problem| problem.outcome())
    }

    /// A pooled connection was found dead: the server has likely closed the others
    /// too, so the rest of this group opens fresh ones.
    pub fn distrust_pooled(&mut self) {
        self.pooled = false;
    }

    fn idle(&self) -> Option<SmtpClient> {
        let client = self.engine.pool.take_idle(self.site)?;
        if client.check(&self.needs).is_ok() {
            return Some(client);
        }
        self.engine.pool.put_back(self.site, client);
        None
    }
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
            Ok(addrs) if destination.public_only => {
                plugin_hop::public_or_listed(&engine.config, &planned.name(), addrs)?
            }
            Ok(addrs) => addrs,
            Err(problem @ Problem::Permanent(_)) if hosts.len() == 1 => return Err(problem),
            Err(problem) => {
                last = Some(problem);
                continue;
            }
        };
        for addr in addrs {
            let target = Target { name: planned.name(), addr };
            match open(engine, destination, &target).await {
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

/// Opens one connection under the route's TLS mode.
async fn open(engine: &Engine, destination: &Destination, target: &Target) -> Result<SmtpClient, ClientError> {
    let auth = destination.auth.as_deref();
    match SmtpClient::open(target, destination.tls, auth, &engine.settings).await {
        // A server that offers STARTTLS but cannot finish the handshake still gets
        // the mail in clear under opportunistic TLS, as with Postfix.
        Err(error @ ClientError::Tls(_)) if destination.tls == TlsMode::Opportunistic => {
            tracing::info!(host = %target.label(), %error, "TLS failed; retrying without TLS");
            SmtpClient::open(target, TlsMode::None, auth, &engine.settings).await
        }
        other => other,
    }
}
