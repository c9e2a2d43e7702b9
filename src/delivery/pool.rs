//! Connections by destination: a bounded number at once per destination and in all,
//! idle ones kept a little while for the next message, and a destination whose hosts
//! all failed left alone for a while instead of being hammered by every queued message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::routing::Destination;
use crate::client::SmtpClient;
use crate::config::DeliveryConfig;
use crate::queue::Diagnostic;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// One destination's connections.
pub struct Site {
    permits: Arc<Semaphore>,
    /// Idle connections, most recently used last.
    idle: Mutex<Vec<(SmtpClient, Instant)>>,
    /// Every host failed: other messages wait until then, with this error.
    down: Mutex<Option<(Instant, Diagnostic)>>,
}

impl Site {
    /// The error to defer with, while the destination is considered down.
    pub fn down(&self) -> Option<Diagnostic> {
        let mut down = lock(&self.down);
        match &*down {
            Some((until, diagnostic)) if Instant::now() < *until => Some(diagnostic.clone()),
            Some(_) => {
                *down = None;
                None
            }
            None => None,
        }
    }

    pub fn mark_down(&self, for_how_long: Duration, diagnostic: Diagnostic) {
        if !for_how_long.is_zero() {
            *lock(&self.down) = Some((Instant::now() + for_how_long, diagnostic));
        }
    }

    pub fn mark_up(&self) {
        *lock(&self.down) = None;
    }
}

pub struct Pool {
    sites: Mutex<HashMap<Destination, Arc<Site>>>,
    global: Arc<Semaphore>,
    idle_timeout: Duration,
    pub max_messages_per_connection: usize,
    pub unreachable_backoff: Duration,
}

/// The right to hold one connection open to a destination.
pub struct Permit {
    _site: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

impl Pool {
    pub fn new(config: &DeliveryConfig) -> Pool {
        Pool {
            sites: Mutex::new(HashMap::new()),
            global: Arc::new(Semaphore::new(config.max_connections)),
            idle_timeout: config.idle_timeout.get(),
            max_messages_per_connection: config.max_messages_per_connection,
            unreachable_backoff: config.unreachable_backoff.get(),
        }
    }

    pub fn site(&self, destination: &Destination) -> Arc<Site> {
        let mut sites = lock(&self.sites);
        if let Some(site) = sites.get(destination) {
            return Arc::clone(site);
        }
        let site = Arc::new(Site {
            permits: Arc::new(Semaphore::new(destination.max_connections)),
            idle: Mutex::new(Vec::new()),
            down: Mutex::new(None),
        });
        sites.insert(destination.clone(), Arc::clone(&site));
        site
    }

    /// Waits for a connection slot, per destination first (so one busy destination
    /// does not hold global slots while it queues).
    pub async fn permit(&self, site: &Site) -> Option<Permit> {
        let site_permit = Arc::clone(&site.permits).acquire_owned().await.ok()?;
        let global = Arc::clone(&self.global).acquire_owned().await.ok()?;
        Some(Permit { _site: site_permit, _global: global })
    }

    /// The most recently used idle connection that has not been idle too long.
    pub fn take_idle(&self, site: &Site) -> Option<SmtpClient> {
        let mut idle = lock(&site.idle);
        while let Some((client, since)) = idle.pop() {
            if since.elapsed() < self.idle_timeout {
                return Some(client);
            }
            close(client);
        }
        None
    }

    /// Returns a connection after use: kept for reuse, or closed.
    pub fn put_back(&self, site: &Site, client: SmtpClient) {
        if client.is_reusable() && client.transactions < self.max_messages_per_connection {
            lock(&site.idle).push((client, Instant::now()));
        } else {
            close(client);
        }
    }

    /// Closes connections idle too long and forgets destinations nobody uses.
    pub fn sweep(&self) {
        let mut sites = lock(&self.sites);
        sites.retain(|_, site| {
            let mut idle = lock(&site.idle);
            let (stale, fresh): (Vec<_>, Vec<_>) =
                std::mem::take(&mut *idle).into_iter().partition(|(_, since)| since.elapsed() >= self.idle_timeout);
            *idle = fresh;
            for (client, _) in stale {
                close(client);
            }
            let unused = idle.is_empty() && Arc::strong_count(site) == 1 && lock(&site.down).is_none();
            !unused
        });
    }

    /// Closes every idle connection (at shutdown).
    pub async fn close_all(&self) {
        let clients: Vec<SmtpClient> = {
            let sites = lock(&self.sites);
            sites.values().flat_map(|site| std::mem::take(&mut *lock(&site.idle))).map(|(c, _)| c).collect()
        };
        let quits: Vec<_> = clients.into_iter().map(|c| tokio::spawn(c.quit())).collect();
        for quit in quits {
            let _ = quit.await;
        }
    }
}

/// QUIT in the background: nobody waits for a goodbye.
fn close(client: SmtpClient) {
    tokio::spawn(client.quit());
}
