//! What a plugin instance's store holds: its WASI context (nearly empty), its resource
//! table, its limits, and handles to the host services it was granted.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::WasiHttpCtx;

use super::imports::HttpHooks;
use super::quota_hits::DnsBudget;
use super::shared::{PluginShared, Services};
use crate::config::Grant;

pub struct PluginState {
    wasi: WasiCtx,
    pub table: ResourceTable,
    pub limits: Limits,
    pub plugin: Arc<PluginShared>,
    pub services: Arc<Services>,
    /// Epoch ticks of CPU time left for the current call.
    pub ticks_left: u64,
    /// When the current call's wall time runs out; host calls that wait (DNS) give up
    /// a little before it, so the plugin still gets to decide.
    pub deadline: tokio::time::Instant,
    /// DNS lookups left for the current call.
    pub dns_budget: DnsBudget,
    pub http_ctx: WasiHttpCtx,
    pub http_hooks: HttpHooks,
}

impl PluginState {
    pub fn new(plugin: Arc<PluginShared>, services: Arc<Services>) -> PluginState {
        let mut wasi = WasiCtxBuilder::new();
        // Nothing from the host: no arguments, no environment, no stdin; output is
        // discarded. Time is frozen unless granted.
        if !plugin.grants.contains(&Grant::Clock) {
            wasi.wall_clock(FrozenClock).monotonic_clock(FrozenClock);
        }
        let limits = Limits::new(plugin.memory_limit);
        let deadline = tokio::time::Instant::now() + plugin.wall_time;
        let dns_budget = DnsBudget::new(plugin.quotas.dns_lookups);
        let http_hooks = HttpHooks::new(Arc::clone(&plugin), services.resolver.clone());
        PluginState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits,
            plugin,
            services,
            ticks_left: 0,
            deadline,
            dns_budget,
            http_ctx: WasiHttpCtx::new(),
            http_hooks,
        }
    }
}

impl PluginState {
    /// Until when a host call may wait (a DNS lookup, an HTTP request): the call's
    /// deadline, less a margin for the plugin to act on the timeout.
    pub fn host_call_deadline(&self) -> tokio::time::Instant {
        let margin = (self.plugin.wall_time / 10).min(std::time::Duration::from_millis(500));
        self.deadline.checked_sub(margin).unwrap_or(self.deadline)
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// A clock stopped at the Unix epoch, for plugins without the `clock` grant.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Memory and table limits, remembering whether a request was denied (to tell an
/// out-of-memory failure from other traps) and the peak memory (for the offline runner).
pub struct Limits {
    inner: StoreLimits,
    pub denied: bool,
    pub peak_memory: usize,
}

impl Limits {
    fn new(memory: usize) -> Limits {
        let inner = StoreLimitsBuilder::new().memory_size(memory).table_elements(100_000).instances(32).build();
        Limits { inner, denied: false, peak_memory: 0 }
    }
}

impl ResourceLimiter for Limits {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if allowed {
            self.peak_memory = self.peak_memory.max(desired);
        } else {
            self.denied = true;
        }
        Ok(allowed)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = self.inner.table_growing(current, desired, maximum)?;
        self.denied |= !allowed;
        Ok(allowed)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }
    fn tables(&self) -> usize {
        self.inner.tables()
    }
    fn memories(&self) -> usize {
        self.inner.memories()
    }
}
