//! Asking a route's next hop whether it takes a recipient: a probe on a pooled
//! connection, the reply read as verify(8) reads it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::answer::{Answer, classify};
use super::pool::CalloutPool;
use crate::client::{ClientError, ClientSettings, SmtpClient, Target};
use crate::config::{Host, NextHop, RouteConfig, TlsMode};
use crate::dns::{SharedResolver, lookup_ip};
use crate::mail::Mailbox;

pub struct Callout {
    hops: Vec<NextHop>,
    port: u16,
    tls: TlsMode,
    timeout: Duration,
    pub pool: Arc<CalloutPool>,
    settings: Arc<ClientSettings>,
    resolver: SharedResolver,
}

impl Callout {
    /// The callout of `route`, which has next hops (checked when the config loaded).
    pub fn new(route: &RouteConfig, settings: Arc<ClientSettings>, resolver: SharedResolver) -> Callout {
        let r = &route.recipients;
        Callout {
            hops: route.next_hop.as_ref().map(|hops| hops.get_ref().0.clone()).unwrap_or_default(),
            port: route.port,
            tls: route.tls,
            timeout: r.timeout.get(),
            pool: CalloutPool::new(*r.connections.get_ref(), r.idle_timeout.get()),
            settings,
            resolver,
        }
    }

    pub async fn ask(&self, recipient: &Mailbox) -> Answer {
        match tokio::time::timeout(self.timeout, self.probe(recipient)).await {
            Ok(answer) => answer,
            Err(_) => Answer::Unavailable { why: "the next hop did not answer in time".into() },
        }
    }

    async fn probe(&self, recipient: &Mailbox) -> Answer {
        let Some(mut lease) = self.pool.lease().await else {
            return Answer::Unavailable { why: "the callout pool is closed".into() };
        };
        // A reused connection the server has since closed is retried on a new one.
        if let Some(mut client) = lease.client.take()
            && let Ok(reply) = client.probe(recipient).await
        {
            self.pool.give_back(lease, client);
            return classify(&reply);
        }
        let mut client = match self.connect().await {
            Ok(client) => client,
            Err(why) => return Answer::Unavailable { why },
        };
        match client.probe(recipient).await {
            Ok(reply) => {
                self.pool.give_back(lease, client);
                classify(&reply)
            }
            Err(error) => Answer::Unavailable { why: describe(&client.target, &error) },
        }
    }

    /// The first next hop (and address) that takes the connection.
    async fn connect(&self) -> Result<SmtpClient, String> {
        let mut last = String::from("the route has no next hop");
        for hop in &self.hops {
            let targets = match self.targets(hop).await {
                Ok(targets) => targets,
                Err(why) => {
                    last = why;
                    continue;
                }
            };
            for target in targets {
                match SmtpClient::open(&target, self.tls, None, &self.settings).await {
                    Ok(client) => return Ok(client),
                    Err(error) => last = describe(&target, &error),
                }
            }
        }
        Err(last)
    }

    async fn targets(&self, hop: &NextHop) -> Result<Vec<Target>, String> {
        let port = hop.port.unwrap_or(self.port);
        match &hop.host {
            Host::Ip(ip) => Ok(vec![Target { name: ip.to_string(), addr: SocketAddr::new(*ip, port) }]),
            Host::Name(name) => match lookup_ip(self.resolver.as_ref(), name).await {
                Ok(ips) => Ok(ips
                    .into_iter()
                    .map(|ip| Target { name: name.clone(), addr: SocketAddr::new(ip, port) })
                    .collect()),
                Err(error) => Err(format!("{name}: {error}")),
            },
        }
    }
}

fn describe(target: &Target, error: &ClientError) -> String {
    format!("{}: {error}", target.label())
}
