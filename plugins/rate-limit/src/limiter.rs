//! Counting events against the limits of a stage in a [`Kv`] store, and what to answer.
//!
//! Every applicable limit counts the event with one atomic `increment` of its current
//! bucket (so concurrent sessions, and several servers sharing the store, never lose a
//! count) and one read of the previous bucket; see [`crate::window`] for the estimate.
//! Refused events are counted too.

use std::net::IpAddr;
use std::time::Duration;

use filter_util::config::OnFailure;
use filter_util::domain::domain_of;
use filter_util::duration::ceil_secs;
use filter_util::key;
use filter_util::net::client_network;
use filter_util::reply;
use sluice_plugin::Outcome;
use sluice_plugin::kv::{Kv, KvError};

use crate::config::{Action, Config, Limit, Subject};
use crate::window;

/// Extra life for bucket counters beyond the two windows they are read in, for clocks
/// that differ a little between servers sharing a store.
const TTL_SLACK: Duration = Duration::from_secs(5);

/// Estimates are floats: 6 × (1 − 1/3) + 1 must not exceed 5.
const EPSILON: f64 = 1e-9;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Connect,
    MailFrom,
}

/// One limit after counting this event.
#[derive(Clone, Debug, PartialEq)]
pub struct Usage<'a> {
    pub limit: &'a Limit,
    /// What was counted: the client network, the sender, or its domain.
    pub subject: String,
    /// Events in the window, this one included.
    pub estimate: f64,
    /// When over the limit: how long until one more event would fit.
    pub retry_after: Option<Duration>,
}

/// The event's subject for a limit, or `None` if the limit does not apply to it.
fn subject(limit: &Limit, stage: Stage, ip: IpAddr, sender: Option<&str>, config: &Config) -> Option<String> {
    if limit.subject.at_connect() != (stage == Stage::Connect) {
        return None;
    }
    match limit.subject {
        Subject::IpConnections | Subject::Ip => Some(client_network(ip, config.ipv4_prefix, config.ipv6_prefix)),
        // The null sender is nobody in particular: only the per-client limits apply.
        Subject::Sender => sender.map(str::trim).filter(|s| !s.is_empty()).map(str::to_ascii_lowercase),
        Subject::SenderDomain => sender.and_then(domain_of),
    }
}

fn bucket_key(limit: &Limit, subject: &str, bucket: u64) -> String {
    let window_ms = limit.window.as_millis().to_string();
    key::make(&["c", &limit.name, subject, &window_ms, &bucket.to_string()])
}

fn read_counter(kv: &mut impl Kv, key: &str) -> Result<u64, KvError> {
    let bytes = kv.get(key)?;
    // A missing or unreadable counter counts as empty.
    Ok(bytes.and_then(|b| std::str::from_utf8(&b).ok()?.trim().parse::<i64>().ok()).map_or(0, |n| n.max(0) as u64))
}

/// Counts one event (a connection at `Connect`, a message at `MailFrom`) against every
/// limit that applies to it.
pub fn count<'a>(
    stage: Stage,
    ip: IpAddr,
    sender: Option<&str>,
    config: &'a Config,
    now_ms: u64,
    kv: &mut impl Kv,
) -> Result<Vec<Usage<'a>>, KvError> {
    let mut usages = Vec::new();
    for limit in &config.limits {
        let Some(subject) = subject(limit, stage, ip, sender, config) else { continue };
        let window_ms = u64::try_from(limit.window.as_millis()).unwrap_or(u64::MAX);
        let (bucket, elapsed) = window::position(now_ms, window_ms);
        let ttl = limit.window.saturating_mul(2).saturating_add(TTL_SLACK);
        let current = kv.increment(&bucket_key(limit, &subject, bucket), 1, Some(ttl))?.max(0) as u64;
        let previous = match bucket.checked_sub(1) {
            Some(prev) => read_counter(kv, &bucket_key(limit, &subject, prev))?,
            None => 0,
        };
        let estimate = window::estimate(previous, current, elapsed);
        let retry_after = (estimate > limit.count as f64 + EPSILON)
            .then(|| window::retry_after(previous, current, limit.count, elapsed, limit.window));
        usages.push(Usage { limit, subject, estimate, retry_after });
    }
    Ok(usages)
}

/// The exceeded limit with the longest wait, if any.
pub fn worst<'u, 'a>(usages: &'u [Usage<'a>]) -> Option<&'u Usage<'a>> {
    usages.iter().filter(|u| u.retry_after.is_some()).max_by_key(|u| u.retry_after)
}

/// `per_ip 192.0.2.1/32: 3.0 of 30 per 60s`, for annotations and logs.
pub fn describe(usage: &Usage<'_>) -> String {
    format!(
        "{} {}: {:.1} of {} per {}s",
        usage.limit.name,
        usage.subject,
        usage.estimate,
        usage.limit.count,
        usage.limit.window.as_secs()
    )
}

/// Within every limit: go on, noting the usage (`rate-limit.usage`) for later plugins
/// and the logs. Over a limit: the configured action, with a tag and a `rate-limit`
/// annotation for each exceeded limit, and the longest wait in the reply.
pub fn outcome(stage: Stage, usages: &[Usage<'_>], config: &Config) -> Outcome {
    let Some(worst) = worst(usages) else {
        if usages.is_empty() {
            return Outcome::proceed();
        }
        let usage: Vec<String> = usages.iter().map(describe).collect();
        return Outcome::proceed().annotate("rate-limit.usage", usage.join("; "));
    };
    let seconds = ceil_secs(worst.retry_after.unwrap_or_default()).max(1).to_string();
    let window_secs = worst.limit.window.as_secs().to_string();
    let count = worst.limit.count.to_string();
    let text = reply::render(
        &config.reply_text,
        &[("seconds", &seconds), ("limit", &worst.limit.name), ("count", &count), ("window", &window_secs)],
    );
    let mut outcome = match (config.action, stage) {
        (Action::Tempfail, Stage::Connect) => Outcome::disconnect(421, "4.7.0", text),
        (Action::Tempfail, Stage::MailFrom) => Outcome::tempfail(451, "4.7.1", text),
        (Action::Reject, Stage::Connect) => Outcome::reject(554, "5.7.1", text),
        (Action::Reject, Stage::MailFrom) => Outcome::reject(550, "5.7.1", text),
        (Action::Tag, _) => Outcome::proceed(),
    };
    for usage in usages.iter().filter(|u| u.retry_after.is_some()) {
        outcome = outcome.tag(format!("rate-limit:{}", usage.limit.name)).annotate("rate-limit", describe(usage));
    }
    outcome
}

/// What to answer when the store failed.
pub fn kv_failure(stage: Stage, error: &KvError, config: &Config) -> Outcome {
    let note = error.to_string();
    match (config.on_kv_error, stage) {
        (OnFailure::Continue, _) => Outcome::proceed().annotate("rate-limit.error", note),
        (OnFailure::Tempfail, Stage::Connect) => {
            Outcome::disconnect(421, "4.3.0", "Temporary local problem, please try again later")
                .annotate("rate-limit.error", note)
        }
        (OnFailure::Tempfail, Stage::MailFrom) => {
            Outcome::tempfail(451, "4.3.0", "Temporary local problem, please try again later")
                .annotate("rate-limit.error", note)
        }
    }
}

#[cfg(test)]
mod tests {
    use sluice_plugin::Verdict;
    use sluice_plugin::config::Value;
    use sluice_plugin::testing::{MemoryKv, parse_clean, table, text};

    use super::*;
    use crate::config::tests::rate;

    /// Start of a minute, so windows line up with the examples.
    const T0_MS: u64 = 1_795_000_020_000 - 1_795_000_020_000 % 3_600_000;

    struct World {
        kv: MemoryKv,
        config: Config,
    }

    impl World {
        fn new(entries: &[(&str, Value)]) -> World {
            let config = parse_clean(Config::from_value, &table(entries));
            let kv = MemoryKv::at(T0_MS);
            World { kv, config }
        }

        fn at(&mut self, ms_after_t0: u64) -> &mut World {
            self.kv.now_ms = T0_MS + ms_after_t0;
            self
        }

        fn event(&mut self, stage: Stage, ip: &str, sender: Option<&str>) -> Outcome {
            let now = self.kv.now_ms;
            let usages = count(stage, ip.parse().unwrap(), sender, &self.config, now, &mut self.kv).unwrap();
            outcome(stage, &usages, &self.config)
        }

        fn connect(&mut self, ip: &str) -> Outcome {
            self.event(Stage::Connect, ip, None)
        }

        fn mail(&mut self, ip: &str, sender: &str) -> Outcome {
            self.event(Stage::MailFrom, ip, Some(sender))
        }
    }

    fn reply(outcome: &Outcome) -> Option<(String, u16, String, String)> {
        match &outcome.verdict {
            Verdict::Tempfail(r) => Some(("tempfail".into(), r.code, r.enhanced_code.clone(), r.text.clone())),
            Verdict::Disconnect(r) => Some(("disconnect".into(), r.code, r.enhanced_code.clone(), r.text.clone())),
            Verdict::Reject(r) => Some(("reject".into(), r.code, r.enhanced_code.clone(), r.text.clone())),
            _ => None,
        }
    }

    #[test]
    fn connections_per_ip_disconnect_with_421() {
        let mut w = World::new(&[("per_ip_connections", rate(3, "1m"))]);
        for _ in 0..3 {
            assert!(w.connect("192.0.2.1").is_proceed());
        }
        // 4 counted at 15 s: the next connection fits once 4 × (1 − g) + 1 ≤ 3 in the
        // next minute, g ≥ 0.5: 45 s + 30 s.
        let refused = w.at(15_000).connect("192.0.2.1");
        assert_eq!(
            reply(&refused),
            Some(("disconnect".into(), 421, "4.7.0".into(), "Rate limit exceeded, retry after 75 seconds".into()))
        );
        assert_eq!(refused.tags, ["rate-limit:per_ip_connections"]);
        assert!(w.connect("192.0.2.2").is_proceed(), "other clients have their own count");
        assert!(w.mail("192.0.2.1", "a@example.org").is_proceed(), "connection limits do not apply at MAIL");
    }

    #[test]
    fn the_window_slides() {
        let mut w = World::new(&[("per_ip", rate(10, "1m"))]);
        for i in 0..10 {
            assert!(w.at(50_000 + i * 100).mail("192.0.2.1", "a@example.org").is_proceed());
        }
        assert!(!w.at(55_000).mail("192.0.2.1", "a@example.org").is_proceed(), "11 in the last minute");
        // 15 s into the next minute, 11 × 0.75 = 8.25 of the old ones still count: one
        // more fits (9.25), a second does not (8.23 + 2). A fixed window would have
        // allowed 10 more right after the boundary.
        assert!(w.at(75_000).mail("192.0.2.1", "a@example.org").is_proceed());
        assert!(!w.at(75_100).mail("192.0.2.1", "a@example.org").is_proceed());
        // Near the end of the minute the old bucket has nearly slid out.
        assert!(w.at(119_000).mail("192.0.2.1", "a@example.org").is_proceed());
    }

    #[test]
    fn the_advised_wait_is_enough() {
        let mut w = World::new(&[("per_ip", rate(5, "1m"))]);
        for _ in 0..5 {
            w.at(30_000).mail("192.0.2.1", "a@example.org");
        }
        let refused = w.at(30_000).mail("192.0.2.1", "a@example.org");
        let (_, code, enhanced, text) = reply(&refused).unwrap();
        assert_eq!((code, enhanced.as_str()), (451, "4.7.1"));
        // 6 counted in this minute: next minute, 6 × (1 − g) + 1 ≤ 5 needs g ≥ 1/3.
        assert_eq!(text, "Rate limit exceeded, retry after 50 seconds");
        assert!(!w.at(79_000).mail("192.0.2.1", "a@example.org").is_proceed(), "a second early is too early");
        // That refusal counted too (7 in the previous bucket now): the client that
        // obeys the first advice gets a fresh one.
        let mut w = World::new(&[("per_ip", rate(5, "1m"))]);
        for _ in 0..6 {
            w.at(30_000).mail("192.0.2.1", "a@example.org");
        }
        assert!(w.at(80_000).mail("192.0.2.1", "a@example.org").is_proceed());
    }

    #[test]
    fn senders_and_domains() {
        let mut w = World::new(&[("per_sender", rate(2, "1h")), ("per_sender_domain", rate(3, "1h"))]);
        assert!(w.mail("192.0.2.1", "alice@example.org").is_proceed());
        assert!(w.mail("198.51.100.1", "Alice@Example.org").is_proceed(), "same sender, any client, any case");
        let refused = w.mail("192.0.2.1", "alice@example.org");
        assert_eq!(refused.tags, ["rate-limit:per_sender"]);
        assert!(!w.mail("192.0.2.1", "bob@example.org").is_proceed(), "the domain's 4th message");
        assert!(w.mail("192.0.2.1", "carol@example.net").is_proceed());
        // The null sender is limited per client only.
        for _ in 0..5 {
            assert!(w.mail("192.0.2.1", "").is_proceed());
        }
    }

    #[test]
    fn several_exceeded_limits_report_the_longest_wait() {
        let mut w = World::new(&[("per_ip", rate(1, "1m")), ("per_sender", rate(1, "1h"))]);
        w.mail("192.0.2.1", "a@example.org");
        let refused = w.at(1_000).mail("192.0.2.1", "a@example.org");
        assert_eq!(refused.tags, ["rate-limit:per_ip", "rate-limit:per_sender"]);
        let (_, _, _, text) = reply(&refused).unwrap();
        // per_sender: the rest of the hour and all of the next: 1 − 1/3600 + 1 hours.
        assert_eq!(text, "Rate limit exceeded, retry after 7199 seconds");
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        let mut w = World::new(&[("per_ip_connections", rate(2, "1m"))]);
        assert!(w.connect("2001:db8:1:2::1").is_proceed());
        assert!(w.connect("2001:db8:1:2::2").is_proceed());
        assert!(!w.connect("2001:db8:1:2::3").is_proceed());
        assert!(w.connect("2001:db8:1:3::1").is_proceed());
    }

    #[test]
    fn actions() {
        let mut w =
            World::new(&[("per_ip_connections", rate(1, "1m")), ("per_ip", rate(1, "1m")), ("action", text("reject"))]);
        w.connect("192.0.2.1");
        assert_eq!(
            reply(&w.connect("192.0.2.1")).map(|r| (r.0, r.1, r.2)),
            Some(("reject".into(), 554, "5.7.1".into()))
        );
        w.mail("192.0.2.1", "a@example.org");
        assert_eq!(reply(&w.mail("192.0.2.1", "a@example.org")).map(|r| (r.1, r.2)), Some((550, "5.7.1".into())));
        let mut w = World::new(&[("per_ip", rate(1, "1m")), ("action", text("tag"))]);
        w.mail("192.0.2.1", "a@example.org");
        let tagged = w.mail("192.0.2.1", "a@example.org");
        assert!(tagged.is_proceed());
        assert_eq!(tagged.tags, ["rate-limit:per_ip"]);
        assert_eq!(tagged.annotations[0].1, "per_ip 192.0.2.1/32: 2.0 of 1 per 60s");
    }

    #[test]
    fn usage_is_annotated_within_the_limits() {
        let mut w = World::new(&[("per_ip", rate(30, "1m")), ("per_sender", rate(100, "1h"))]);
        let first = w.mail("192.0.2.1", "a@example.org");
        assert!(first.is_proceed() && first.tags.is_empty());
        assert_eq!(
            first.annotations,
            [(
                "rate-limit.usage".to_string(),
                "per_ip 192.0.2.1/32: 1.0 of 30 per 60s; per_sender a@example.org: 1.0 of 100 per 3600s".to_string()
            )]
        );
        assert!(w.connect("192.0.2.1").annotations.is_empty(), "no limit applies at connect here");
    }

    #[test]
    fn reply_text_placeholders() {
        let mut w = World::new(&[
            ("per_ip", rate(1, "1m")),
            ("reply_text", text("Too many messages ({limit}: {count} per {window}s); retry in {seconds}s")),
        ]);
        w.mail("192.0.2.1", "a@example.org");
        let (_, _, _, text) = reply(&w.mail("192.0.2.1", "a@example.org")).unwrap();
        assert_eq!(text, "Too many messages (per_ip: 1 per 60s); retry in 120s");
    }

    #[test]
    fn counters_expire_after_two_windows() {
        let mut w = World::new(&[("per_ip", rate(1, "1m"))]);
        w.mail("192.0.2.1", "a@example.org");
        let key = bucket_key(&w.config.limits[0], "192.0.2.1/32", T0_MS / 60_000);
        assert_eq!(w.kv.expires_at(&key), Some(T0_MS + 125_000));
    }

    #[test]
    fn store_failures_follow_the_policy() {
        let mut w = World::new(&[("per_ip", rate(1, "1m"))]);
        w.kv.failure = Some(KvError::Unavailable("down".into()));
        let error =
            count(Stage::MailFrom, "192.0.2.1".parse().unwrap(), Some("a@example.org"), &w.config, T0_MS, &mut w.kv)
                .unwrap_err();
        assert!(kv_failure(Stage::MailFrom, &error, &w.config).is_proceed());
        let strict = Config::from_value(&table(&[("per_ip", rate(1, "1m")), ("kv_error", text("tempfail"))])).0;
        assert_eq!(
            reply(&kv_failure(Stage::Connect, &error, &strict)).map(|r| (r.1, r.2)),
            Some((421, "4.3.0".into()))
        );
    }
}
