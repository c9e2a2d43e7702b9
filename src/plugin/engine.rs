//! The one wasmtime engine of the process: pooling instance allocation (instantiation
//! in microseconds), epoch interruption (CPU budgets), and a thread that ticks epochs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

/// One epoch tick. CPU budgets are counted in ticks of time spent running wasm.
pub const TICK: Duration = Duration::from_millis(2);

/// Instances of one component: a wasm32-wasip2 component has a handful of core
/// instances, memories and tables; these bound them.
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
const MEMORIES_PER_COMPONENT: u32 = 2;
const TABLES_PER_COMPONENT: u32 = 4;
/// Memory kept mapped in a freed slot: enough for a small plugin's stack and heap.
const KEEP_RESIDENT: usize = 2 << 20;
/// A linear memory's slot when its bounds are checked by guard pages: the whole 32-bit
/// index space plus a guard past it, so compiled code needs no explicit check per load
/// (those cost a plugin's loops about a fifth of their time).
const FULL_RESERVATION: u64 = 4 << 30;
const FULL_GUARD: u64 = 32 << 20;
/// At most this much address space (of 128 TiB) for all slots' reservations; a pool
/// with more slots reserves only what plugins may use, and checks bounds explicitly.
const MAX_RESERVED: u64 = 32 << 40;

/// The reservation and guard of each linear memory slot: full ones (guard-page bounds
/// checks) when the pool's `memories` slots fit in [`MAX_RESERVED`].
fn memory_slot(memories: u32, max_memory: u64) -> (u64, u64) {
    if u64::from(memories).saturating_mul(FULL_RESERVATION + FULL_GUARD) <= MAX_RESERVED {
        (FULL_RESERVATION, FULL_GUARD)
    } else {
        (max_memory, 64 * 1024)
    }
}

pub struct PluginEngine {
    pub engine: Engine,
    ticker: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl PluginEngine {
    /// `max_instances` components may be alive at once, each with memories of at most
    /// `max_memory` bytes.
    pub fn new(max_instances: u32, max_memory: u64) -> anyhow::Result<PluginEngine> {
        let max_memory = max_memory.max(1 << 20).next_multiple_of(64 * 1024);
        let (reservation, guard) = memory_slot(max_instances.saturating_mul(MEMORIES_PER_COMPONENT), max_memory);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(max_instances)
            .total_core_instances(max_instances.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
            .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
            .total_memories(max_instances.saturating_mul(MEMORIES_PER_COMPONENT))
            .max_memories_per_component(MEMORIES_PER_COMPONENT)
            .total_tables(max_instances.saturating_mul(TABLES_PER_COMPONENT))
            .max_tables_per_component(TABLES_PER_COMPONENT)
            .total_stacks(max_instances)
            .max_memory_size(usize::try_from(max_memory).unwrap_or(usize::MAX))
            // Reuse slots without unmapping: the pages a plugin touched are reset with
            // memset (found with PAGEMAP_SCAN where the kernel has it) instead of
            // madvise, which costs page faults and TLB shootdowns on the next use.
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(64 * 1024)
            .async_stack_keep_resident(64 * 1024)
            .pagemap_scan(Enabled::Auto)
            .decommit_batch_size(64);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .cranelift_opt_level(OptLevel::Speed)
            .memory_reservation(reservation)
            .memory_guard_size(guard)
            .max_wasm_stack(512 * 1024)
            .async_stack_size(1 << 20)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        #[cfg(feature = "perfmap")]
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        let engine = Engine::new(&config)?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = engine.clone();
            let stop = Arc::clone(&stop);
            std::thread::Builder::new().name("plugin-epoch".into()).spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            })?
        };
        Ok(PluginEngine { engine, ticker: Some(ticker), stop })
    }

    /// How many ticks make `budget` (at least one).
    pub fn ticks(budget: Duration) -> u64 {
        (budget.as_micros() / TICK.as_micros()).max(1) as u64
    }
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_page_bounds_checks_while_the_slots_fit() {
        assert_eq!(memory_slot(2 * 1000, 64 << 20), (FULL_RESERVATION, FULL_GUARD));
        assert_eq!(memory_slot(2 * 100_000, 64 << 20), (64 << 20, 64 * 1024));
        assert_eq!(memory_slot(u32::MAX, 64 << 20), (64 << 20, 64 * 1024));
    }
}
