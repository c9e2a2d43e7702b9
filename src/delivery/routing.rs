//! Deciding where each recipient goes: a plugin's choice for the recipient, then
//! for the message, then the first `[[route]]` whose domains match.

use std::collections::HashMap;
use std::sync::Arc;

use super::outcome::Problem;
use crate::client::Credentials;
use crate::config::{Config, NextHop, RouteConfig, TlsMode};
use crate::mail::{Envelope, RouteChoice};
use crate::wire::Status;

/// Where a group of recipients goes. Recipients with equal destinations share
/// connections and, within one message, transactions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Destination {
    /// The route's name (`plugin` for a next hop a plugin chose), for metrics and logs.
    pub route: String,
    /// SMTP AUTH towards the next hops, if the route has credentials.
    pub auth: Option<Arc<Credentials>>,
    pub hosts: Hosts,
    /// For MX hosts and next hops written without a port.
    pub port: u16,
    pub tls: TlsMode,
    /// Connections at once to this destination.
    pub max_connections: usize,
    /// A plugin chose it: only public addresses, or ones a plugin lists.
    pub public_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Hosts {
    /// The MX hosts of this domain (lowercase), or the domain itself without MX.
    Mx(String),
    /// Fixed next hops, in order.
    Fixed(Vec<NextHop>),
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.hosts {
            Hosts::Mx(domain) => write!(f, "MX of {domain}"),
            Hosts::Fixed(hops) => {
                let names: Vec<String> = hops.iter().map(ToString::to_string).collect();
                write!(f, "{}", names.join(","))
            }
        }
    }
}

pub struct Router {
    config: Arc<Config>,
    /// AUTH credentials by route name, password files read once per configuration.
    credentials: HashMap<String, Arc<Credentials>>,
}

impl Router {
    pub fn new(config: Arc<Config>) -> anyhow::Result<Router> {
        let mut credentials = HashMap::new();
        for route in &config.routes {
            let Some(auth) = &route.auth else { continue };
            let auth = auth.get_ref();
            let password = match (&auth.password, &auth.password_file) {
                (Some(password), _) => password.clone(),
                (None, Some(file)) => std::fs::read_to_string(file)
                    .map_err(|e| {
                        anyhow::anyhow!("route {:?}: cannot read {}: {e}", route.name.get_ref(), file.display())
                    })?
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                (None, None) => continue,
            };
            if password.is_empty() {
                anyhow::bail!("route {:?}: the AUTH password is empty", route.name.get_ref());
            }
            let creds = Credentials { user: auth.user.clone(), password, required: auth.required };
            credentials.insert(route.name.get_ref().clone(), Arc::new(creds));
        }
        Ok(Router { config, credentials })
    }

    /// The destination of recipient `index` of `envelope`.
    pub fn route(&self, envelope: &Envelope, index: usize) -> Result<Destination, Problem> {
        let recipient = envelope
            .recipients
            .get(index)
            .ok_or_else(|| Problem::permanent(Status(5, 1, 3), "no such recipient in the envelope"))?;
        // The bare `postmaster` recipient is ours; as a relay we pass it to the
        // route for our own name.
        let domain = match recipient.address.domain.as_str() {
            "" => self.config.server.hostname.as_str(),
            domain => domain,
        };
        match recipient.route.as_ref().or(envelope.route.as_ref()) {
            Some(RouteChoice::Named(name)) => match self.config.routes.iter().find(|r| r.name.get_ref() == name) {
                Some(route) => Ok(self.destination(route, domain)),
                None => Err(Problem::temporary(
                    Status(4, 3, 5),
                    format!("a plugin chose route {name:?}, which is not configured"),
                )),
            },
            Some(RouteChoice::NextHop(text)) => match super::plugin_hop::entry_for(&self.config, text) {
                Some(entry) => Ok(Destination {
                    route: "plugin".to_string(),
                    auth: None,
                    hosts: Hosts::Fixed(vec![entry.hop.clone()]),
                    port: 25,
                    tls: entry.tls,
                    max_connections: self.config.delivery.connections_per_destination,
                    public_only: true,
                }),
                None => Err(Problem::temporary(
                    Status(4, 3, 5),
                    format!("a plugin chose next hop {text:?}, which no plugin granted \"route\" lists in next_hops"),
                )),
            },
            None => match self.config.routes.iter().find(|r| r.domains.matches(domain)) {
                Some(route) => Ok(self.destination(route, domain)),
                None => Err(Problem::temporary(Status(4, 3, 5), format!("no [[route]] matches the domain {domain}"))),
            },
        }
    }

    fn destination(&self, route: &RouteConfig, domain: &str) -> Destination {
        let hosts = match &route.next_hop {
            Some(hops) => Hosts::Fixed(hops.get_ref().0.clone()),
            None => Hosts::Mx(domain.to_lowercase()),
        };
        Destination {
            route: route.name.get_ref().clone(),
            auth: self.credentials.get(route.name.get_ref()).cloned(),
            hosts,
            port: route.port,
            tls: route.tls,
            max_connections: route
                .max_connections
                .as_ref()
                .map_or(self.config.delivery.connections_per_destination, |n| *n.get_ref()),
            public_only: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Host;
    use crate::mail::Mailbox;
    use crate::mail::QueueId;
    use crate::mail::envelope::test_envelope;

    fn router(routes: &str) -> Router {
        let text = format!(
            "[server]\nhostname = \"relay.test\"\nlisten = [\"127.0.0.1:25\"]\n[queue]\npath = \"q\"\n{routes}"
        );
        Router::new(Arc::new(Config::parse(std::path::Path::new("/x/s.toml"), &text).unwrap())).unwrap()
    }

    #[test]
    fn first_matching_rule_wins_and_plugins_override() {
        let router = router(
            "[[route]]\nname = \"internal\"\ndomains = [\"example.com\", \"*.example.com\"]\nnext_hop = \"10.0.0.5:2525\"\ntls = \"required\"\n\
             [[route]]\nname = \"internet\"\ndomains = [\"*\"]\nmx = true\nport = 2526\n\
             [[plugin]]\nname = \"r\"\npath = \"r.wasm\"\ngrants = [\"route\"]\nnext_hops = [{ host = \"[192.0.2.7]:26\", tls = \"verify\" }]\n",
        );
        let mut envelope = test_envelope(QueueId::from_micros(1));
        envelope.recipients[0].address = Mailbox::new("u", "Sub.Example.com");
        let d = router.route(&envelope, 0).unwrap();
        assert_eq!(d.tls, TlsMode::Required);
        assert_eq!(d.hosts, Hosts::Fixed(vec![NextHop { host: Host::Ip([10, 0, 0, 5].into()), port: Some(2525) }]));
        envelope.recipients[0].address = Mailbox::new("u", "Other.TEST");
        let d = router.route(&envelope, 0).unwrap();
        assert_eq!((d.hosts, d.port), (Hosts::Mx("other.test".into()), 2526));
        envelope.route = Some(RouteChoice::Named("internal".into()));
        assert_eq!(router.route(&envelope, 0).unwrap().tls, TlsMode::Required);
        envelope.recipients[0].route = Some(RouteChoice::NextHop("[192.0.2.7]:26".into()));
        let d = router.route(&envelope, 0).unwrap();
        assert_eq!((d.to_string(), d.tls, d.public_only), ("192.0.2.7:26".into(), TlsMode::Verify, true));
        envelope.recipients[0].route = Some(RouteChoice::NextHop("127.0.0.1:2525".into()));
        assert!(
            matches!(router.route(&envelope, 0), Err(Problem::Temporary(d)) if d.status == Status(4, 3, 5)),
            "a hop no plugin lists"
        );
        envelope.recipients[0].route = Some(RouteChoice::Named("missing".into()));
        assert!(matches!(router.route(&envelope, 0), Err(Problem::Temporary(d)) if d.status == Status(4, 3, 5)));
    }

    #[test]
    fn unmatched_domains_wait_for_a_route() {
        let router = router("");
        let envelope = test_envelope(QueueId::from_micros(1));
        assert!(matches!(router.route(&envelope, 0), Err(Problem::Temporary(_))));
    }
}
