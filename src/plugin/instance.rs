//! A live plugin instance and calls into it under the plugin's budgets: CPU time
//! (epoch ticks of running wasm), wall time (host calls included) and memory.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::{Store, UpdateDeadline};

use super::engine::PluginEngine;
use super::hooks::{Hooks, HooksPre};
use super::lift_limit::{self, lift_limit};
use super::output::Invalid;
use super::quota_hits::DnsBudget;
use super::shared::{PluginShared, Services};
use super::state::PluginState;

/// Why a call did not produce a usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// It ran out of CPU time (an endless loop, typically).
    CpuTime,
    /// It ran out of wall time, host calls included.
    WallTime,
    /// It tried to grow its memory past its limit.
    Memory,
    /// It trapped.
    Trap(String),
    /// It returned something the host refuses.
    Invalid(String),
    /// It could not be instantiated.
    Unavailable(String),
    /// It was not called: the client is in its penalty box.
    ShortCircuited,
}

impl Failure {
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::CpuTime => "cpu-time",
            Failure::WallTime => "wall-time",
            Failure::Memory => "memory",
            Failure::Trap(_) => "trap",
            Failure::Invalid(_) => "invalid-output",
            Failure::Unavailable(_) => "unavailable",
            Failure::ShortCircuited => "short-circuited",
        }
    }

    /// Whether the client that made the call is charged with it: not when the server
    /// is short of instances, nor for a call that was not made.
    pub fn charged_to_client(&self) -> bool {
        !matches!(self, Failure::Unavailable(_) | Failure::ShortCircuited)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::CpuTime => f.write_str("CPU time budget exceeded"),
            Failure::WallTime => f.write_str("wall time budget exceeded"),
            Failure::Memory => f.write_str("memory limit exceeded"),
            Failure::Trap(why) => write!(f, "trapped: {why}"),
            Failure::Invalid(why) => write!(f, "invalid output: {why}"),
            Failure::Unavailable(why) => write!(f, "cannot be instantiated: {why}"),
            Failure::ShortCircuited => f.write_str("not called: the client is in the penalty box"),
        }
    }
}

impl From<Invalid> for Failure {
    fn from(invalid: Invalid) -> Self {
        Failure::Invalid(invalid.0)
    }
}

/// Raised from the epoch callback when the CPU budget is spent.
#[derive(Debug)]
struct CpuTimeExceeded;

impl fmt::Display for CpuTimeExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CPU time budget exceeded")
    }
}

impl std::error::Error for CpuTimeExceeded {}

pub struct Instance {
    store: Store<PluginState>,
    hooks: Hooks,
    _slot: OwnedSemaphorePermit,
    /// Sessions it has finished serving (see `reuse_instances`).
    sessions: u32,
    /// A call was started and has not returned: its future was dropped mid-call (the
    /// session was cancelled), so the instance's state is unknown.
    in_call: bool,
}

impl Instance {
    /// Instantiates a plugin in a fresh store, waiting for a free pool slot within the
    /// plugin's wall time.
    pub async fn new(
        engine: &PluginEngine,
        pre: &HooksPre,
        plugin: &Arc<PluginShared>,
        services: &Arc<Services>,
        slots: &Arc<Semaphore>,
    ) -> Result<Instance, Failure> {
        let started = Instant::now();
        let slot = match Arc::clone(slots).try_acquire_owned() {
            Ok(slot) => slot,
            // The pool is full: wait for a slot, within the plugin's wall time.
            Err(_) => tokio::time::timeout(plugin.wall_time, Arc::clone(slots).acquire_owned())
                .await
                .map_err(|_| Failure::Unavailable("no free instance slot".into()))?
                .map_err(|_| Failure::Unavailable("plugin host stopped".into()))?,
        };
        let mut store = Store::new(&engine.engine, PluginState::new(Arc::clone(plugin), Arc::clone(services)));
        store.limiter(|state| &mut state.limits);
        store.set_hostcall_fuel(lift_limit(plugin));
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            if state.ticks_left == 0 {
                return Err(CpuTimeExceeded.into());
            }
            state.ticks_left -= 1;
            // Yield at every tick so a busy plugin never holds up other sessions. Tokio's
            // own yield matters: it lets the worker poll for I/O before resuming this
            // task, where a plain wake-up would keep a spinning plugin ahead of every
            // session waiting on its socket (the I/O driver is then polled only every
            // few dozen task polls, each a whole tick of wasm).
            Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
        });
        store.data_mut().ticks_left = PluginEngine::ticks(plugin.cpu_time);
        store.set_epoch_deadline(1);
        let remaining = plugin.wall_time.saturating_sub(started.elapsed());
        let hooks = match tokio::time::timeout(remaining, pre.instantiate(&mut store)).await {
            Err(_) => return Err(Failure::WallTime),
            Ok(Err(error)) => {
                return Err(classify(&error, &store).unwrap_or_else(|| Failure::Unavailable(first_line(&error))));
            }
            Ok(Ok(hooks)) => hooks,
        };
        Ok(Instance { store, hooks, _slot: slot, sessions: 0, in_call: false })
    }

    /// Calls into the instance. After any failure the instance must be dropped: its
    /// state is unknown (a call cut off by a timeout leaves it mid-execution).
    pub async fn call<R>(
        &mut self,
        call: impl AsyncFnOnce(&Hooks, &mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> Result<R, Failure> {
        let plugin = Arc::clone(&self.store.data().plugin);
        let state = self.store.data_mut();
        state.ticks_left = PluginEngine::ticks(plugin.cpu_time);
        state.limits.denied = false;
        state.deadline = tokio::time::Instant::now() + plugin.wall_time;
        state.dns_budget = DnsBudget::new(plugin.quotas.dns_lookups);
        self.store.set_epoch_deadline(1);
        self.in_call = true;
        let outcome = tokio::time::timeout(plugin.wall_time, call(&self.hooks, &mut self.store)).await;
        self.in_call = false;
        match outcome {
            Err(_) => Err(Failure::WallTime),
            Ok(Ok(result)) => Ok(result),
            Ok(Err(error)) => Err(classify(&error, &self.store).unwrap_or_else(|| Failure::Trap(first_line(&error)))),
        }
    }

    /// Counts a session it served; returns how many it has served, or `None` when a
    /// call was cut off (the instance must not serve again).
    pub fn finish_session(&mut self) -> Option<u32> {
        self.sessions += 1;
        (!self.in_call).then_some(self.sessions)
    }

    /// The most memory the instance has had.
    pub fn peak_memory(&self) -> usize {
        self.store.data().limits.peak_memory
    }

    pub fn store_mut(&mut self) -> &mut Store<PluginState> {
        &mut self.store
    }
}

fn classify(error: &wasmtime::Error, store: &Store<PluginState>) -> Option<Failure> {
    if error.downcast_ref::<CpuTimeExceeded>().is_some() {
        return Some(Failure::CpuTime);
    }
    if store.data().limits.denied {
        return Some(Failure::Memory);
    }
    if lift_limit::exceeded(error) {
        let limit = lift_limit(&store.data().plugin);
        return Some(Failure::Invalid(format!("more than {limit} bytes of output (refused while it was copied)")));
    }
    None
}

fn first_line(error: &wasmtime::Error) -> String {
    let text = format!("{error:#}");
    text.lines().next().unwrap_or("").chars().take(300).collect()
}
