//! Callout answers kept in the kv store, so every node sharing a Redis store (and a
//! restarted one) trusts them too: a yes for `cache_valid`, a no for `cache_unknown`.
//! "Unavailable" is never kept: the next RCPT asks again.

use std::sync::Arc;
use std::time::Duration;

use super::answer::Answer;
use crate::kv::{KvStore, Limit};

/// Plugin namespaces are plugin names, which cannot contain `:`: plugins never see this.
pub const NAMESPACE: &str = "sluice:recipients";

/// What the answers may take of the store: far more than any real directory, yet a
/// harvest attack of distinct guesses cannot fill the disk the queue needs.
pub const CACHE_LIMIT: Limit = Limit { keys: 1_000_000, bytes: 256 << 20 };

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ttls {
    pub valid: Duration,
    pub unknown: Duration,
}

#[derive(Debug, Clone)]
pub struct AnswerCache {
    kv: Arc<KvStore>,
}

/// The key of `address` (as `list::key` writes it) for `route`: answers are per route,
/// since two routes may ask different servers.
pub fn cache_key(route: &str, address: &str) -> String {
    format!("{route}/{address}")
}

impl AnswerCache {
    pub fn new(kv: Arc<KvStore>) -> AnswerCache {
        AnswerCache { kv }
    }

    /// A kept answer; a store that fails is a miss (the callout still decides).
    pub async fn get(&self, key: &str) -> Option<Answer> {
        match self.kv.get(NAMESPACE, key).await {
            Ok(value) => value.and_then(|bytes| decode(&bytes)),
            Err(error) => {
                tracing::warn!(%error, "recipient cache unavailable");
                None
            }
        }
    }

    pub async fn put(&self, key: &str, answer: &Answer, ttls: Ttls) {
        let (value, ttl) = match answer {
            Answer::Valid { said } => (encode(b'v', said.as_deref().unwrap_or_default()), ttls.valid),
            Answer::Unknown { said } => (encode(b'u', said), ttls.unknown),
            Answer::Unavailable { .. } => return,
        };
        if ttl.is_zero() {
            return;
        }
        if let Err(error) = self.kv.set(NAMESPACE, key, value, Some(ttl), CACHE_LIMIT).await {
            tracing::warn!(%error, "cannot keep a recipient answer");
        }
    }
}

fn encode(kind: u8, said: &str) -> Vec<u8> {
    let mut value = Vec::with_capacity(1 + said.len());
    value.push(kind);
    value.extend_from_slice(said.as_bytes());
    value
}

/// Another version's (or a damaged) value is a miss.
fn decode(bytes: &[u8]) -> Option<Answer> {
    let (&kind, said) = bytes.split_first()?;
    let said = String::from_utf8(said.to_vec()).ok()?;
    match kind {
        b'v' => Some(Answer::Valid { said: (!said.is_empty()).then_some(said) }),
        b'u' => Some(Answer::Unknown { said }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    const TTLS: Ttls = Ttls { valid: Duration::from_secs(86_400), unknown: Duration::from_secs(3_600) };

    #[tokio::test]
    async fn each_answer_lives_for_its_own_ttl() {
        let clock = ManualClock::at_ms(1_700_000_000_000);
        let cache = AnswerCache::new(Arc::new(KvStore::memory_with_clock(clock.clone())));
        let yes = Answer::Valid { said: Some("250 2.1.5 Ok".into()) };
        let no = Answer::Unknown { said: "550 5.1.1 unknown".into() };
        cache.put("r/alice@example.com", &yes, TTLS).await;
        cache.put("r/nobody@example.com", &no, TTLS).await;
        cache.put("r/later@example.com", &Answer::Unavailable { why: "timeout".into() }, TTLS).await;
        assert_eq!(cache.get("r/alice@example.com").await, Some(yes.clone()));
        assert_eq!(cache.get("r/nobody@example.com").await, Some(no.clone()));
        assert_eq!(cache.get("r/later@example.com").await, None, "unavailable is never kept");

        clock.advance(Duration::from_secs(3_599));
        assert_eq!(cache.get("r/nobody@example.com").await, Some(no));
        clock.advance(Duration::from_secs(1));
        assert_eq!(cache.get("r/nobody@example.com").await, None, "a no expires after cache_unknown");
        assert_eq!(cache.get("r/alice@example.com").await, Some(yes.clone()));
        clock.advance(Duration::from_secs(86_400 - 3_600));
        assert_eq!(cache.get("r/alice@example.com").await, None, "a yes expires after cache_valid");
    }

    #[tokio::test]
    async fn a_zero_ttl_keeps_nothing_and_garbage_is_a_miss() {
        let kv = Arc::new(KvStore::memory());
        let cache = AnswerCache::new(Arc::clone(&kv));
        let ttls = Ttls { valid: Duration::ZERO, unknown: Duration::ZERO };
        cache.put("r/a@example.com", &Answer::Valid { said: None }, ttls).await;
        assert_eq!(cache.get("r/a@example.com").await, None);
        kv.set(NAMESPACE, "r/b@example.com", b"x?".to_vec(), None, CACHE_LIMIT).await.unwrap();
        assert_eq!(cache.get("r/b@example.com").await, None);
        kv.set(NAMESPACE, "r/c@example.com", b"v".to_vec(), None, CACHE_LIMIT).await.unwrap();
        assert_eq!(cache.get("r/c@example.com").await, Some(Answer::Valid { said: None }));
    }
}
