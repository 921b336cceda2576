//! The one place that builds the wasmtime [`Engine`]: component model,
//! pooling allocator (or on-demand, for tools such as valgrind), epoch
//! interruption driven by a ticker thread that runs only while a plugin
//! call is in flight ([`Epochs`]).

use std::time::Duration;

use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig,
    ProfilingStrategy,
};

use super::RuntimeError;

mod epochs;

pub use epochs::{ActiveCall, Epochs, HasStore};

/// Engine-wide settings. Per-plugin limits live in [`super::PluginLimits`].
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// How often the epoch advances while a plugin call is in flight;
    /// deadlines are rounded up to ticks.
    pub epoch_tick: Duration,
    /// Upper bound of any plugin's memory cap (sizes the pooling slots).
    pub max_memory_bytes: usize,
    /// Component instances the pool holds at once (live plugins plus the
    /// short-lived instances of `describe`).
    pub pool_instances: u32,
    /// Where instances get their memories and tables from.
    pub allocator: Allocator,
    /// Write `/tmp/perf-PID.map` so that `perf report` names the plugins'
    /// compiled functions (from their Wasm name sections), for profiling.
    pub perf_map: bool,
}

/// How the engine allocates instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Allocator {
    /// Slots reserved up front and reused: no `mmap` per instance, the
    /// memory caps enforced by the slot size. What `vigil` runs with.
    #[default]
    Pooling,
    /// Memories and tables mapped when an instance is made. The pool
    /// reserves hundreds of GiB of address space, more than valgrind's
    /// address-space manager allows, so instruction counts
    /// (`scripts/bench-callgrind.sh`) need this one; linear memories still
    /// get wasmtime's usual reservation and guard pages.
    OnDemand,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            epoch_tick: Duration::from_millis(5),
            max_memory_bytes: 1 << 30,
            pool_instances: 64,
            allocator: Allocator::Pooling,
            perf_map: false,
        }
    }
}

/// Builds the engine.
pub fn build_engine(settings: &EngineSettings) -> Result<Engine, RuntimeError> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.cranelift_opt_level(OptLevel::Speed);
    if settings.perf_map {
        config.profiler(ProfilingStrategy::PerfMap);
    }
    if settings.allocator == Allocator::OnDemand {
        config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
        return Engine::new(&config).map_err(|e| RuntimeError::Engine(e.to_string()));
    }
    let mut pool = PoolingAllocationConfig::default();
    let instances = settings.pool_instances;
    pool.total_component_instances(instances)
        // A componentize-py component holds dozens of core instances.
        .total_core_instances(instances * 16)
        .max_core_instances_per_component(64)
        .total_memories(instances * 4)
        .max_memories_per_component(16)
        .total_tables(instances * 8)
        .max_tables_per_component(64)
        .table_elements(100_000)
        .max_memory_size(settings.max_memory_bytes)
        .max_core_instance_size(1 << 20)
        .max_component_instance_size(1 << 20);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).map_err(|e| RuntimeError::Engine(e.to_string()))
}
