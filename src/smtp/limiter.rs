//! Connection limits, global and per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub struct ConnectionLimiter {
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Holds one connection slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Permit {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

impl ConnectionLimiter {
    pub fn new() -> Arc<Self> {
        Arc::new(ConnectionLimiter::default())
    }

    pub fn current(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Takes a slot for `ip` if both limits allow it.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr, max_total: usize, max_per_ip: usize) -> Option<Permit> {
        if self.total.fetch_add(1, Ordering::AcqRel) >= max_total {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= max_per_ip {
            drop(per_ip);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        *count += 1;
        Some(Permit { limiter: Arc::clone(self), ip })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut per_ip = self.limiter.per_ip.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
        drop(per_ip);
        self.limiter.total.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_release() {
        let limiter = ConnectionLimiter::new();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let p1 = limiter.try_acquire(a, 3, 2).unwrap();
        let _p2 = limiter.try_acquire(a, 3, 2).unwrap();
        assert!(limiter.try_acquire(a, 3, 2).is_none(), "per-ip limit");
        let _p3 = limiter.try_acquire(b, 3, 2).unwrap();
        assert!(limiter.try_acquire(b, 3, 2).is_none(), "global limit");
        drop(p1);
        let _p4 = limiter.try_acquire(a, 3, 2).unwrap();
        assert_eq!(limiter.current(), 3);
    }
}
