//! The greylisting decision for one recipient, against a [`Kv`] store.
//!
//! A new triplet is recorded as waiting (TTL `retry_window`) and deferred. A retry
//! before `delay` is deferred again with the time left; one between `delay` and
//! `retry_window` passes: the triplet is recorded as passed and, with `auto_allow`, so
//! is the client network (both for `pass_ttl`), so that it skips greylisting from then
//! on. Pass records still in use are refreshed once a day, so active senders stay
//! allowed and idle ones expire.

use std::net::IpAddr;
use std::time::Duration;

use filter_util::config::OnFailure;
use filter_util::domain::domain_of;
use filter_util::net::client_network;
use filter_util::reply;
use sluice_plugin::Outcome;
use sluice_plugin::kv::{Kv, KvError};

use crate::config::Config;
use crate::triplet::{Record, network_key, normalize_recipient, normalize_sender, triplet_key};

/// Pass records are rewritten (extending their TTL) at most this often.
pub const REFRESH_SECS: u64 = 86_400;

/// One RCPT TO, as greylisting needs it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub ip: IpAddr,
    /// `""` for the null sender.
    pub sender: &'a str,
    pub recipient: &'a str,
    pub authenticated: bool,
    /// Unix seconds.
    pub now: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Not subject to greylisting, and why.
    Skip(String),
    /// The client network passed before (auto-allow).
    AutoAllowed(String),
    /// The triplet passed before.
    Known,
    /// This retry came after the delay: it passes, after waiting this many seconds.
    Passed { waited: u64 },
    /// Deferred: retry in this many seconds; `first` for a triplet never seen before.
    Greylisted { retry_in: u64, first: bool },
}

pub fn check(req: &Request<'_>, config: &Config, kv: &mut impl Kv) -> Result<Decision, KvError> {
    if req.authenticated && config.skip_authenticated {
        return Ok(Decision::Skip("authenticated client".into()));
    }
    if config.allow_networks.contains(req.ip) {
        return Ok(Decision::Skip("allow-listed network".into()));
    }
    for address in [req.sender, req.recipient] {
        if let Some(domain) = domain_of(address).filter(|d| config.allow_domains.matches(d)) {
            return Ok(Decision::Skip(format!("allow-listed domain {domain}")));
        }
    }

    let (v4, v6) = (config.ipv4_prefix, config.ipv6_prefix);
    let pass = Record::Passed { at: req.now }.encode();
    if config.auto_allow {
        let key = network_key(req.ip, v4, v6);
        if let Some(Record::Passed { at }) = kv.get(&key)?.as_deref().and_then(Record::decode) {
            refresh(kv, &key, at, req.now, &pass, config.pass_ttl)?;
            return Ok(Decision::AutoAllowed(client_network(req.ip, v4, v6)));
        }
    }

    let sender = normalize_sender(req.sender, config.normalize_sender);
    let key = triplet_key(req.ip, v4, v6, &sender, &normalize_recipient(req.recipient));
    let delay = config.delay.as_secs();
    match kv.get(&key)?.as_deref().and_then(Record::decode) {
        Some(Record::Passed { at }) => {
            refresh(kv, &key, at, req.now, &pass, config.pass_ttl)?;
            Ok(Decision::Known)
        }
        Some(Record::Waiting { first_seen }) => {
            // A clock behind the record's (another node's) counts as no time elapsed.
            let waited = req.now.saturating_sub(first_seen);
            if waited < delay {
                Ok(Decision::Greylisted { retry_in: delay - waited, first: false })
            } else if waited > config.retry_window.as_secs() {
                // Too late (the record should have expired): start over.
                start(kv, &key, req.now, config)?;
                Ok(Decision::Greylisted { retry_in: delay, first: true })
            } else {
                kv.set(&key, &pass, Some(config.pass_ttl))?;
                if config.auto_allow {
                    kv.set(&network_key(req.ip, v4, v6), &pass, Some(config.pass_ttl))?;
                }
                Ok(Decision::Passed { waited })
            }
        }
        None => {
            start(kv, &key, req.now, config)?;
            Ok(Decision::Greylisted { retry_in: delay, first: true })
        }
    }
}

fn start(kv: &mut impl Kv, key: &str, now: u64, config: &Config) -> Result<(), KvError> {
    kv.set(key, &Record::Waiting { first_seen: now }.encode(), Some(config.retry_window))
}

fn refresh(kv: &mut impl Kv, key: &str, at: u64, now: u64, pass: &[u8], ttl: Duration) -> Result<(), KvError> {
    if now.saturating_sub(at) >= REFRESH_SECS { kv.set(key, pass, Some(ttl)) } else { Ok(()) }
}

/// What the plugin returns for a decision.
pub fn outcome(decision: &Decision, config: &Config) -> Outcome {
    match decision {
        Decision::Skip(reason) => Outcome::proceed().annotate("greylist", reason.clone()),
        Decision::AutoAllowed(network) => Outcome::proceed().annotate("greylist", format!("auto-allowed {network}")),
        Decision::Known => Outcome::proceed().annotate("greylist", "known triplet"),
        Decision::Passed { waited } => {
            Outcome::proceed().tag("greylist:passed").annotate("greylist", format!("passed after {waited}s"))
        }
        Decision::Greylisted { retry_in, first } => {
            let seconds = retry_in.to_string();
            let text = reply::render(&config.reply.text, &[("seconds", &seconds)]);
            Outcome::tempfail(config.reply.code, &config.reply.enhanced, text)
                .tag("greylist:deferred")
                .annotate("greylist", if *first { "new triplet" } else { "retried too early" })
        }
    }
}

/// What the plugin returns when the store failed.
pub fn kv_failure(error: &KvError, config: &Config) -> Outcome {
    match config.on_kv_error {
        OnFailure::Continue => Outcome::proceed().annotate("greylist.error", error.to_string()),
        OnFailure::Tempfail => Outcome::tempfail(451, "4.3.0", "Temporary local problem, please try again later")
            .annotate("greylist.error", error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use sluice_plugin::Verdict;
    use sluice_plugin::config::Value;
    use sluice_plugin::testing::{MemoryKv, parse_clean, strings, table, text};

    use super::*;

    const T0: u64 = 1_795_000_000;

    /// A store and a clock moving together.
    struct World {
        kv: MemoryKv,
        now: u64,
        config: Config,
    }

    impl World {
        fn new(entries: &[(&str, Value)]) -> World {
            let config = parse_clean(Config::from_value, &table(entries));
            let kv = MemoryKv::at(T0 * 1000);
            World { kv, now: T0, config }
        }

        fn advance(&mut self, secs: u64) {
            self.now += secs;
            self.kv.now_ms = self.now * 1000;
        }

        fn rcpt(&mut self, ip: &str, sender: &str, recipient: &str) -> Decision {
            let req = Request { ip: ip.parse().unwrap(), sender, recipient, authenticated: false, now: self.now };
            check(&req, &self.config, &mut self.kv).unwrap()
        }
    }

    fn first(retry_in: u64) -> Decision {
        Decision::Greylisted { retry_in, first: true }
    }

    #[test]
    fn first_sight_defers_then_retry_after_delay_passes() {
        let mut w = World::new(&[]);
        assert_eq!(w.rcpt("192.0.2.1", "alice@example.org", "bob@example.com"), first(300));
        w.advance(60);
        assert_eq!(
            w.rcpt("192.0.2.1", "alice@example.org", "bob@example.com"),
            Decision::Greylisted { retry_in: 240, first: false }
        );
        w.advance(240);
        assert_eq!(w.rcpt("192.0.2.77", "Alice@Example.org", "BOB@example.com"), Decision::Passed { waited: 300 });
        // The client's /24 is now auto-allowed, for any triplet.
        w.advance(10);
        assert_eq!(
            w.rcpt("192.0.2.200", "carol@example.net", "dave@example.com"),
            Decision::AutoAllowed("192.0.2.0/24".into())
        );
        // Another network is not.
        assert_eq!(w.rcpt("198.51.100.1", "alice@example.org", "bob@example.com"), first(300));
    }

    #[test]
    fn a_retry_after_the_window_starts_over() {
        let mut w = World::new(&[("delay", text("5m")), ("retry_window", text("1h"))]);
        assert_eq!(w.rcpt("192.0.2.1", "a@example.org", "b@example.com"), first(300));
        w.advance(3600);
        assert_eq!(w.rcpt("192.0.2.1", "a@example.org", "b@example.com"), first(300), "record expired");
        w.advance(299);
        assert_eq!(
            w.rcpt("192.0.2.1", "a@example.org", "b@example.com"),
            Decision::Greylisted { retry_in: 1, first: false }
        );
        w.advance(1);
        assert_eq!(w.rcpt("192.0.2.1", "a@example.org", "b@example.com"), Decision::Passed { waited: 300 });
    }

    #[test]
    fn a_stale_waiting_record_is_not_trusted() {
        // Even if the store kept it past its TTL, a record older than the window restarts.
        let mut w = World::new(&[]);
        let key = triplet_key("192.0.2.1".parse().unwrap(), 24, 64, "a@example.org", "b@example.com");
        w.kv.set(&key, &Record::Waiting { first_seen: T0 - 5 * 3600 }.encode(), None).unwrap();
        assert_eq!(w.rcpt("192.0.2.1", "a@example.org", "b@example.com"), first(300));
    }

    #[test]
    fn passes_expire_after_pass_ttl_unless_refreshed() {
        let mut w = World::new(&[("pass_ttl", text("3d"))]);
        w.rcpt("192.0.2.1", "a@example.org", "b@example.com");
        w.advance(300);
        assert_eq!(w.rcpt("192.0.2.1", "a@example.org", "b@example.com"), Decision::Passed { waited: 300 });
        // Used two days later: refreshed for another three.
        w.advance(2 * 86_400);
        assert!(matches!(w.rcpt("192.0.2.9", "x@example.net", "y@example.com"), Decision::AutoAllowed(_)));
        w.advance(2 * 86_400);
        assert!(matches!(w.rcpt("192.0.2.9", "x@example.net", "y@example.com"), Decision::AutoAllowed(_)));
        // Then idle past the TTL: greylisted again.
        w.advance(4 * 86_400);
        assert_eq!(w.rcpt("192.0.2.9", "x@example.net", "y@example.com"), first(300));
    }

    #[test]
    fn without_auto_allow_only_the_triplet_is_remembered() {
        let mut w = World::new(&[("auto_allow", Value::Boolean(false))]);
        w.rcpt("192.0.2.1", "a@example.org", "b@example.com");
        w.advance(600);
        assert_eq!(w.rcpt("192.0.2.1", "a@example.org", "b@example.com"), Decision::Passed { waited: 600 });
        assert_eq!(w.rcpt("192.0.2.1", "a@example.org", "b@example.com"), Decision::Known);
        assert_eq!(w.rcpt("192.0.2.1", "a@example.org", "c@example.com"), first(300));
    }

    #[test]
    fn ipv6_clients_are_grouped_by_64() {
        let mut w = World::new(&[]);
        w.rcpt("2001:db8:1:2::1", "a@example.org", "b@example.com");
        w.advance(300);
        assert_eq!(w.rcpt("2001:db8:1:2::ffff", "a@example.org", "b@example.com"), Decision::Passed { waited: 300 });
        assert_eq!(w.rcpt("2001:db8:1:3::1", "a@example.org", "b@example.com"), first(300));
    }

    #[test]
    fn null_sender_and_verp_retries_match() {
        let mut w = World::new(&[]);
        assert_eq!(w.rcpt("192.0.2.1", "", "b@example.com"), first(300));
        w.advance(400);
        assert_eq!(w.rcpt("192.0.2.1", "", "b@example.com"), Decision::Passed { waited: 400 });
        let mut w = World::new(&[]);
        w.rcpt("198.51.100.1", "bounce-1001-7@lists.example", "b@example.com");
        w.advance(400);
        assert_eq!(
            w.rcpt("198.51.100.1", "bounce-1002-7@lists.example", "b@example.com"),
            Decision::Passed { waited: 400 },
            "a new VERP number is the same sender"
        );
    }

    #[test]
    fn allow_lists_and_authentication_skip() {
        let mut w = World::new(&[
            ("allow_networks", strings(&["198.51.100.0/24", "2001:db8::/32"])),
            ("allow_domains", strings(&["partner.example", ".lists.example.org"])),
        ]);
        assert!(matches!(w.rcpt("198.51.100.7", "a@example.org", "b@example.com"), Decision::Skip(_)));
        assert!(matches!(w.rcpt("2001:db8::1", "a@example.org", "b@example.com"), Decision::Skip(_)));
        assert_eq!(
            w.rcpt("192.0.2.1", "news@eu.lists.example.org", "b@example.com"),
            Decision::Skip("allow-listed domain eu.lists.example.org".into())
        );
        assert!(matches!(w.rcpt("192.0.2.1", "a@example.org", "sales@PARTNER.example"), Decision::Skip(_)));
        assert_eq!(
            w.rcpt("127.0.0.1", "a@example.org", "b@example.com"),
            first(300),
            "configured list replaces loopback"
        );
        let req = Request {
            ip: "192.0.2.1".parse().unwrap(),
            sender: "a@example.org",
            recipient: "b@example.com",
            authenticated: true,
            now: T0,
        };
        assert_eq!(check(&req, &w.config, &mut w.kv), Ok(Decision::Skip("authenticated client".into())));
        assert!(w.kv.len() == 1, "only the loopback triplet was stored");
    }

    #[test]
    fn records_carry_ttls() {
        let mut w = World::new(&[]);
        w.rcpt("192.0.2.1", "a@example.org", "b@example.com");
        let key = triplet_key("192.0.2.1".parse().unwrap(), 24, 64, "a@example.org", "b@example.com");
        assert_eq!(w.kv.expires_at(&key), Some((T0 + 4 * 3600) * 1000));
        w.advance(300);
        w.rcpt("192.0.2.1", "a@example.org", "b@example.com");
        assert_eq!(w.kv.expires_at(&key), Some((T0 + 300 + 35 * 86_400) * 1000));
        let net = network_key("192.0.2.1".parse().unwrap(), 24, 64);
        assert_eq!(w.kv.expires_at(&net), Some((T0 + 300 + 35 * 86_400) * 1000));
    }

    #[test]
    fn garbage_records_start_over() {
        let mut w = World::new(&[]);
        let key = triplet_key("192.0.2.1".parse().unwrap(), 24, 64, "a@example.org", "b@example.com");
        w.kv.set(&key, b"v2:something", None).unwrap();
        assert_eq!(w.rcpt("192.0.2.1", "a@example.org", "b@example.com"), first(300));
    }

    #[test]
    fn outcomes() {
        let config = Config::from_value(&table(&[])).0;
        let deferred = outcome(&first(300), &config);
        match &deferred.verdict {
            Verdict::Tempfail(r) => {
                assert_eq!((r.code, r.enhanced_code.as_str()), (451, "4.7.1"));
                assert_eq!(r.text, "Greylisted, please try again in 300 seconds");
            }
            other => panic!("expected a tempfail, got {other:?}"),
        }
        assert_eq!(deferred.tags, ["greylist:deferred"]);
        let passed = outcome(&Decision::Passed { waited: 312 }, &config);
        assert!(passed.is_proceed());
        assert_eq!(passed.tags, ["greylist:passed"]);
        assert!(outcome(&Decision::Known, &config).tags.is_empty());
    }

    #[test]
    fn store_failures_follow_the_policy() {
        let mut w = World::new(&[]);
        w.kv.failure = Some(KvError::Unavailable("connection refused".into()));
        let req = Request {
            ip: "192.0.2.1".parse().unwrap(),
            sender: "a@example.org",
            recipient: "b@example.com",
            authenticated: false,
            now: T0,
        };
        let error = check(&req, &w.config, &mut w.kv).unwrap_err();
        assert!(kv_failure(&error, &w.config).is_proceed());
        let strict = Config::from_value(&table(&[("kv_error", text("tempfail"))])).0;
        assert!(
            matches!(kv_failure(&error, &strict).verdict, Verdict::Tempfail(ref r) if r.code == 451 && r.enhanced_code == "4.3.0")
        );
    }
}
