//! One route's callout connections: at most `size` open at once (so a dictionary
//! attack queues behind them instead of opening a connection per guess), idle ones
//! reused after RSET, and closed with QUIT once idle for `idle_timeout`.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::client::SmtpClient;

pub struct CalloutPool {
    permits: Arc<Semaphore>,
    /// Idle connections, most recently used last.
    idle: Mutex<Vec<(SmtpClient, Instant)>>,
    idle_timeout: Duration,
}

/// The right to use one connection; a connection handed back with it stays open.
pub struct Lease {
    _permit: OwnedSemaphorePermit,
    /// An idle connection to reuse, if there was one.
    pub client: Option<SmtpClient>,
}

impl CalloutPool {
    pub fn new(size: usize, idle_timeout: Duration) -> Arc<CalloutPool> {
        let pool = Arc::new(CalloutPool {
            permits: Arc::new(Semaphore::new(size)),
            idle: Mutex::new(Vec::new()),
            idle_timeout,
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(close_idle(Arc::downgrade(&pool), idle_timeout));
        }
        pool
    }

    fn idle(&self) -> MutexGuard<'_, Vec<(SmtpClient, Instant)>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a free slot; hands over the most recently used idle connection.
    pub async fn lease(&self) -> Option<Lease> {
        let permit = Arc::clone(&self.permits).acquire_owned().await.ok()?;
        let fresh = Instant::now().checked_sub(self.idle_timeout);
        let mut idle = self.idle();
        let client = loop {
            match idle.pop() {
                Some((client, since)) if fresh.is_none_or(|limit| since > limit) => break Some(client),
                Some((stale, _)) => {
                    tokio::spawn(stale.quit());
                }
                None => break None,
            }
        };
        Some(Lease { _permit: permit, client })
    }

    /// Keeps a connection that is still usable for the next probe.
    pub fn give_back(&self, lease: Lease, client: SmtpClient) {
        if client.is_reusable() {
            self.idle().push((client, Instant::now()));
        }
        drop(lease);
    }

    /// Idle connections open now.
    pub fn idle_count(&self) -> usize {
        self.idle().len()
    }

    /// QUITs every idle connection (a one-shot check is done with them).
    pub async fn close(&self) {
        let idle = std::mem::take(&mut *self.idle());
        for (client, _) in idle {
            client.quit().await;
        }
    }

    /// QUITs the connections idle longer than the timeout.
    fn close_stale(&self) {
        let Some(limit) = Instant::now().checked_sub(self.idle_timeout) else { return };
        let stale: Vec<SmtpClient> = {
            let mut idle = self.idle();
            let (stale, fresh): (Vec<_>, Vec<_>) = idle.drain(..).partition(|(_, since)| *since <= limit);
            *idle = fresh;
            stale.into_iter().map(|(client, _)| client).collect()
        };
        for client in stale {
            tokio::spawn(client.quit());
        }
    }
}

/// Runs while the pool exists (a reload replaces it).
async fn close_idle(pool: Weak<CalloutPool>, idle_timeout: Duration) {
    let tick = (idle_timeout / 2).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(tick).await;
        match pool.upgrade() {
            Some(pool) => pool.close_stale(),
            None => return,
        }
    }
}

impl Drop for CalloutPool {
    /// Say goodbye to the next hop rather than just dropping the connections.
    fn drop(&mut self) {
        let idle = std::mem::take(&mut *self.idle());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            for (client, _) in idle {
                runtime.spawn(client.quit());
            }
        }
    }
}
