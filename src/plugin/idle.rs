//! Instances kept between sessions for plugins that are reused (`reuse_instances`, by
//! default what the plugin declares), so
//! that a plugin's set-up (reading its config, compiling its rules) runs once per
//! instance rather than once per SMTP session.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::instance::Instance;
use super::shared::PluginShared;

/// Sessions one instance serves before it is retired: bounds whatever a plugin lets
/// pile up in its globals or its resource table across sessions.
const MAX_SESSIONS: u32 = 1000;
/// Idle instances kept per plugin, at most. Each holds its linear memory, its stack and
/// a slot of the instance pool (about 2 MiB resident for a small Rust plugin).
const MAX_IDLE: usize = 32;
/// An instance idle this long is dropped, so that the pool shrinks back after a burst.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

pub struct IdleInstances {
    plugin: String,
    /// Most recently used at the back: sessions take from the back, and the front holds
    /// the instances idle the longest.
    instances: Mutex<VecDeque<(Instance, Instant)>>,
    capacity: usize,
}

impl IdleInstances {
    /// Room for none unless the plugin is reused; otherwise for up to an eighth of the
    /// instance slots free at load.
    pub fn new(plugin: &PluginShared, reuse: bool, free_slots: usize) -> IdleInstances {
        let capacity = if reuse { (free_slots / 8).min(MAX_IDLE) } else { 0 };
        IdleInstances { plugin: plugin.name.clone(), instances: Mutex::new(VecDeque::new()), capacity }
    }

    /// The instance that finished a session most recently, if one is waiting.
    pub fn take(&self) -> Option<Instance> {
        if self.capacity == 0 {
            return None;
        }
        let mut instances = self.instances.lock().ok()?;
        let taken = instances.pop_back().map(|(instance, _)| instance);
        self.report(instances.len());
        taken
    }

    /// Keeps `instance` for a later session, or drops it (releasing its slot) when the
    /// plugin is not reused, the pool is full or the instance has served long enough.
    /// A failed instance never gets here (the session drops it); one whose call was cut
    /// off by a cancelled session is dropped here.
    pub fn give(&self, mut instance: Instance) {
        if self.capacity == 0 || instance.finish_session().is_none_or(|served| served >= MAX_SESSIONS) {
            return;
        }
        // Declared before the guard, so dropped after it: releasing an instance resets its
        // memory, which should not happen under the lock.
        let mut expired = Vec::new();
        let Ok(mut instances) = self.instances.lock() else { return };
        let now = Instant::now();
        while instances.front().is_some_and(|(_, since)| now.duration_since(*since) > IDLE_TIMEOUT) {
            expired.extend(instances.pop_front());
        }
        if instances.len() < self.capacity {
            instances.push_back((instance, now));
        }
        self.report(instances.len());
    }

    fn report(&self, idle: usize) {
        metrics::gauge!("sluice_plugin_idle_instances", "plugin" => self.plugin.clone()).set(idle as f64);
    }
}
