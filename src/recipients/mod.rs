//! Recipient verification at RCPT: does the mail server behind the relay know this
//! address? Answered from the route's list, the answer cache (the kv store) or a
//! callout to the route's next hop, so unknown recipients are refused before a
//! message is accepted, instead of bounced to a forged sender later.
//!
//! - `list.rs`: the list file (addresses and `@domain` catch-alls);
//! - `cache.rs`: callout answers in the kv store, with their TTLs;
//! - `flight.rs`: one callout for concurrent checks of one address;
//! - `pool.rs`: a route's bounded, reused callout connections;
//! - `callout.rs`: the probe and how its reply is read;
//! - `answer.rs`: the answer, where it came from, and the reply or tag it becomes.

mod answer;
mod cache;
mod callout;
mod flight;
mod list;
mod pool;

use std::sync::Arc;

pub use answer::{Answer, Check, Source, TAG_PREFIX, Verdict, classify, tag_for};
pub use cache::{NAMESPACE, Ttls};
pub use flight::SingleFlight;
pub use list::RecipientList;

use crate::client::{ClientSettings, TlsConnectors};
use crate::config::{Config, ConfigError, DomainList, OnUnavailable, RouteConfig, VerifyMode};
use crate::dns::SharedResolver;
use crate::kv::KvStore;
use crate::mail::Mailbox;
use cache::{AnswerCache, cache_key};
use callout::Callout;

/// The answers a probe or the cache can give, as the metrics label them.
pub const RESULTS: [&str; 3] = ["valid", "unknown", "unavailable"];

/// How one route verifies its recipients.
struct Policy {
    mode: VerifyMode,
    list: Option<RecipientList>,
    callout: Option<Callout>,
    ttls: Ttls,
    on_unavailable: OnUnavailable,
}

/// One `[[route]]`, in the config's order: the first whose domains match decides.
struct RouteCheck {
    name: String,
    domains: DomainList,
    policy: Option<Policy>,
}

pub struct Verifier {
    routes: Vec<RouteCheck>,
    cache: AnswerCache,
    flights: SingleFlight<(Answer, Source)>,
}

impl Verifier {
    /// Verifies nothing: for tests and the offline runner.
    pub fn disabled() -> Verifier {
        Verifier {
            routes: Vec::new(),
            cache: AnswerCache::new(Arc::new(KvStore::memory())),
            flights: Default::default(),
        }
    }

    /// Loads the routes' lists (a malformed line is an error naming FILE:LINE) and
    /// sets up their callout pools.
    pub fn new(config: &Config, kv: Arc<KvStore>, resolver: SharedResolver) -> Result<Verifier, ConfigError> {
        let mut settings = None;
        let mut routes = Vec::with_capacity(config.routes.len());
        for route in &config.routes {
            let mode = *route.recipients.verify.get_ref();
            let policy = match mode {
                VerifyMode::None => None,
                _ => Some(policy(route, mode, config, &mut settings, &resolver)?),
            };
            routes.push(RouteCheck { name: route.name.get_ref().clone(), domains: route.domains.clone(), policy });
        }
        Ok(Verifier { routes, cache: AnswerCache::new(kv), flights: Default::default() })
    }

    /// Some route verifies recipients.
    pub fn is_active(&self) -> bool {
        self.routes.iter().any(|r| r.policy.is_some())
    }

    /// Checks `recipient`, or `None` when its route does not verify recipients.
    pub async fn check(&self, recipient: &Mailbox) -> Option<Check> {
        let route = self.routes.iter().find(|r| r.domains.matches(&recipient.domain))?;
        let policy = route.policy.as_ref()?;
        let check =
            |answer, source| Check { route: route.name.clone(), answer, source, on_unavailable: policy.on_unavailable };
        if let Some(list) = &policy.list {
            if list.contains(recipient) {
                return Some(check(Answer::Valid { said: None }, Source::List));
            }
            if policy.mode == VerifyMode::List {
                let said = format!("550 5.1.1 <{recipient}>: Recipient address rejected: User unknown");
                return Some(check(Answer::Unknown { said }, Source::List));
            }
        }
        let callout = policy.callout.as_ref()?;
        let key = cache_key(&route.name, &list::key(recipient));
        if let Some(answer) = self.cache.get(&key).await {
            metrics::counter!("sluice_recipient_cache_total", "route" => route.name.clone(), "result" => "hit")
                .increment(1);
            return Some(check(answer, Source::Cache));
        }
        metrics::counter!("sluice_recipient_cache_total", "route" => route.name.clone(), "result" => "miss")
            .increment(1);
        let (answer, source) = self
            .flights
            .run(&key, || async {
                // A probe that finished just before this flight began already answered.
                if let Some(answer) = self.cache.get(&key).await {
                    return (answer, Source::Cache);
                }
                let answer = callout.ask(recipient).await;
                metrics::counter!("sluice_recipient_probes_total", "route" => route.name.clone(), "result" => answer.name())
                    .increment(1);
                self.cache.put(&key, &answer, policy.ttls).await;
                (answer, Source::Callout)
            })
            .await;
        Some(check(answer, source))
    }

    /// Says goodbye on every idle callout connection.
    pub async fn close(&self) {
        for callout in self.routes.iter().filter_map(|r| r.policy.as_ref()?.callout.as_ref()) {
            callout.pool.close().await;
        }
    }

    /// Idle callout connections of the route named `route` (for tests and the CLI).
    pub fn idle_connections(&self, route: &str) -> usize {
        self.routes
            .iter()
            .find(|r| r.name == route)
            .and_then(|r| r.policy.as_ref()?.callout.as_ref())
            .map_or(0, |callout| callout.pool.idle_count())
    }
}

fn policy(
    route: &RouteConfig,
    mode: VerifyMode,
    config: &Config,
    settings: &mut Option<Arc<ClientSettings>>,
    resolver: &SharedResolver,
) -> Result<Policy, ConfigError> {
    let r = &route.recipients;
    let list = match (&r.list, mode.uses_list()) {
        (Some(path), true) => Some(RecipientList::load(path.get_ref())?),
        _ => None,
    };
    let callout = if mode.uses_callout() {
        let settings = match settings {
            Some(settings) => Arc::clone(settings),
            None => {
                let tls: TlsConnectors = crate::client::tls::build(&config.delivery, &config.origin)?;
                Arc::clone(settings.insert(Arc::new(ClientSettings::new(config, tls))))
            }
        };
        Some(Callout::new(route, settings, Arc::clone(resolver)))
    } else {
        None
    };
    Ok(Policy {
        mode,
        list,
        callout,
        ttls: Ttls { valid: r.cache_valid.get(), unknown: r.cache_unknown.get() },
        on_unavailable: r.on_unavailable,
    })
}
