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
            // Reserve only what the largest plugin may use, so thousands of slots fit
            // in the address space; bounds checks are explicit past the guard.
            .memory_reservation(max_memory)
            .memory_guard_size(64 * 1024)
            .max_wasm_stack(512 * 1024)
            .async_stack_size(1 << 20)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
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
