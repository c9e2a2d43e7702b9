//! Single flight: callers asking about the same key at once share one answer, so a
//! burst of RCPTs for one address makes one callout.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

#[derive(Debug)]
pub struct SingleFlight<V> {
    flights: Mutex<HashMap<String, Arc<OnceCell<V>>>>,
}

impl<V> Default for SingleFlight<V> {
    fn default() -> Self {
        SingleFlight { flights: Mutex::default() }
    }
}

impl<V: Clone> SingleFlight<V> {
    /// Runs `work` for `key` unless a call for it is already running, in which case
    /// waits for that one's value. If the running call is cancelled (its session went
    /// away), a waiting caller runs its own `work` instead.
    pub async fn run<F, Fut>(&self, key: &str, work: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let cell = {
            let mut flights = self.flights.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            Arc::clone(flights.entry(key.to_string()).or_default())
        };
        let value = cell.get_or_init(work).await.clone();
        let mut flights = self.flights.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if flights.get(key).is_some_and(|current| Arc::ptr_eq(current, &cell)) {
            flights.remove(key);
        }
        value
    }

    /// Calls in flight now.
    pub fn len(&self) -> usize {
        self.flights.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::Notify;

    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let flight = Arc::new(SingleFlight::<u32>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());
        let mut callers = Vec::new();
        for _ in 0..8 {
            let (flight, runs, release) = (Arc::clone(&flight), Arc::clone(&runs), Arc::clone(&release));
            callers.push(tokio::spawn(async move {
                flight
                    .run("alice@example.com", || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        release.notified().await;
                        42
                    })
                    .await
            }));
        }
        // Every caller is waiting on the one run before it is allowed to finish.
        while runs.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        for _ in 0..16 {
            tokio::task::yield_now().await;
        }
        release.notify_one();
        for caller in callers {
            assert_eq!(caller.await.unwrap(), 42);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(flight.is_empty(), "finished flights are forgotten");
        // The next call runs again.
        assert_eq!(flight.run("alice@example.com", || async { 7 }).await, 7);
    }

    #[tokio::test]
    async fn different_keys_do_not_wait_for_each_other() {
        let flight = SingleFlight::<&'static str>::default();
        let (a, b) = tokio::join!(flight.run("a", || async { "a" }), flight.run("b", || async { "b" }));
        assert_eq!((a, b), ("a", "b"));
    }

    #[tokio::test]
    async fn a_cancelled_run_hands_over_to_a_waiter() {
        let flight = Arc::new(SingleFlight::<u32>::default());
        let started = Arc::new(Notify::new());
        let leader = {
            let (flight, started) = (Arc::clone(&flight), Arc::clone(&started));
            tokio::spawn(async move {
                flight
                    .run("k", || async move {
                        started.notify_one();
                        std::future::pending::<u32>().await
                    })
                    .await
            })
        };
        started.notified().await;
        let follower = {
            let flight = Arc::clone(&flight);
            tokio::spawn(async move { flight.run("k", || async { 5 }).await })
        };
        tokio::task::yield_now().await;
        leader.abort();
        assert_eq!(follower.await.unwrap(), 5);
    }
}
