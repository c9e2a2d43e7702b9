//! Instances kept between sessions for plugins configured with `reuse_instances`, so
//! that a plugin's set-up (reading its config, compiling its rules) runs once per
//! instance rather than once per SMTP session.

use std::sync::Mutex;

use super::instance::Instance;
use super::shared::PluginShared;

/// Sessions one instance serves before it is retired: bounds whatever a plugin lets
/// pile up in its globals or its resource table across sessions.
const MAX_SESSIONS: u32 = 1000;
/// Idle instances kept per plugin, at most: enough for the sessions that run at once
/// on a busy node, few enough that idle plugins never hold most of the instance slots.
const MAX_IDLE: usize = 64;

pub struct IdleInstances {
    instances: Mutex<Vec<Instance>>,
    capacity: usize,
}

impl IdleInstances {
    /// Room for none unless the plugin is configured for reuse; otherwise for up to an
    /// eighth of the instance slots free at load.
    pub fn new(plugin: &PluginShared, free_slots: usize) -> IdleInstances {
        let capacity = if plugin.reuse_instances { (free_slots / 8).min(MAX_IDLE) } else { 0 };
        IdleInstances { instances: Mutex::new(Vec::new()), capacity }
    }

    /// An instance that served an earlier session, if one is waiting.
    pub fn take(&self) -> Option<Instance> {
        if self.capacity == 0 {
            return None;
        }
        self.instances.lock().ok()?.pop()
    }

    /// Keeps `instance` for a later session, or drops it (releasing its slot) when the
    /// plugin is not reused, the pool is full or the instance has served long enough.
    /// A failed instance never gets here (the session drops it); one whose call was cut
    /// off by a cancelled session is dropped here.
    pub fn give(&self, mut instance: Instance) {
        if self.capacity == 0 || instance.finish_session().is_none_or(|served| served >= MAX_SESSIONS) {
            return;
        }
        if let Ok(mut instances) = self.instances.lock()
            && instances.len() < self.capacity
        {
            instances.push(instance);
        }
    }
}
