//! Handing out queue ids: the arrival time in microseconds, made strictly increasing.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::mail::QueueId;

/// Hands out ids. Seeded with the newest id already in the queue, so a clock that steps
/// back across a restart cannot reuse one.
#[derive(Debug)]
pub struct IdGenerator {
    last: AtomicU64,
}

impl IdGenerator {
    pub fn new(floor: Option<QueueId>) -> Self {
        IdGenerator { last: AtomicU64::new(floor.map_or(0, QueueId::micros)) }
    }

    /// Reads the system clock, not an injected one: an id is a name that must stay
    /// unique and ordered across restarts, not a delivery decision, and a test clock
    /// set in the past would only be overridden by the floor anyway.
    pub fn next(&self) -> QueueId {
        let now = crate::clock::since_epoch().as_micros() as u64;
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let candidate = now.max(last + 1);
            match self.last.compare_exchange_weak(last, candidate, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return QueueId::from_micros(candidate),
                Err(actual) => last = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase() {
        let generator = IdGenerator::new(None);
        let a = generator.next();
        let b = generator.next();
        assert!(b > a);
        let far_future = QueueId::from_micros(u64::MAX / 2);
        assert!(IdGenerator::new(Some(far_future)).next() > far_future);
    }
}
