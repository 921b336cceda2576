//! Per-plugin resource limits and the memory limiter that enforces them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What one plugin may consume. Every field has a default sane for a
/// detector handling batches of a few hundred events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginLimits {
    /// Wall-clock budget of one call into the plugin (a batch, a tick, or
    /// instantiation plus `configure`), in milliseconds. Enforced by epoch
    /// interruption, so a plugin in an infinite loop is stopped.
    pub deadline_ms: u64,
    /// Maximum linear memory of the plugin, in bytes; growing past it traps.
    pub memory_bytes: usize,
    /// Maximum findings kept from one call; the rest are dropped and counted.
    pub max_findings_per_batch: usize,
    /// Maximum size of one finding (sum of its strings), in bytes; a larger
    /// finding is invalid data and faults the plugin.
    pub max_finding_bytes: usize,
    /// Consecutive faults after which the plugin is disabled.
    pub max_consecutive_faults: u32,
    /// First re-instantiation delay after a fault, in milliseconds; doubles
    /// with each consecutive fault.
    pub backoff_initial_ms: u64,
    /// Upper bound of the re-instantiation delay, in milliseconds.
    pub backoff_max_ms: u64,
    /// Maximum log records per call; the rest are dropped and counted.
    pub max_log_records_per_call: u32,
    /// Maximum total size of the plugin's key-value state, in bytes.
    pub state_quota_bytes: u64,
    /// Maximum size of one state value, in bytes.
    pub state_max_value_bytes: u32,
    /// Maximum size of one state key, in bytes.
    pub state_max_key_bytes: u32,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            deadline_ms: 250,
            memory_bytes: 128 << 20,
            max_findings_per_batch: 1_000,
            max_finding_bytes: 64 << 10,
            max_consecutive_faults: 5,
            backoff_initial_ms: 100,
            backoff_max_ms: 30_000,
            max_log_records_per_call: 100,
            state_quota_bytes: 4 << 20,
            state_max_value_bytes: 256 << 10,
            state_max_key_bytes: 512,
        }
    }
}

impl PluginLimits {
    /// The call deadline as a duration.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }

    /// The backoff before re-instantiating after `consecutive` faults.
    pub fn backoff(&self, consecutive: u32) -> Duration {
        let shift = consecutive.saturating_sub(1).min(20);
        let ms = self
            .backoff_initial_ms
            .saturating_mul(1u64 << shift)
            .min(self.backoff_max_ms);
        Duration::from_millis(ms)
    }

    /// Checks the limits for values that cannot work, naming each problem.
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.deadline_ms == 0 {
            problems.push(format!("{path}.deadline_ms: must be at least 1"));
        }
        if self.memory_bytes < (1 << 20) {
            problems.push(format!(
                "{path}.memory_bytes: must be at least 1 MiB (1048576)"
            ));
        }
        if self.max_findings_per_batch == 0 {
            problems.push(format!("{path}.max_findings_per_batch: must be at least 1"));
        }
        if self.max_consecutive_faults == 0 {
            problems.push(format!("{path}.max_consecutive_faults: must be at least 1"));
        }
        if self.backoff_max_ms < self.backoff_initial_ms {
            problems.push(format!(
                "{path}.backoff_max_ms: must not be below backoff_initial_ms"
            ));
        }
        problems
    }
}

/// The error a memory grow past the cap traps with, so that the runtime can
/// tell "out of memory" from other traps.
#[derive(Debug, thiserror::Error)]
#[error("memory cap of {cap} bytes exceeded (asked for {desired} bytes)")]
pub struct MemoryCapExceeded {
    /// The cap.
    pub cap: usize,
    /// What the plugin asked for.
    pub desired: usize,
}

/// Enforces [`PluginLimits::memory_bytes`] on one store.
#[derive(Debug)]
pub struct MemoryLimiter {
    cap: usize,
}

impl MemoryLimiter {
    /// A limiter with a cap in bytes.
    pub fn new(cap: usize) -> Self {
        Self { cap }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            // Trapping (rather than returning false) stops the plugin at once:
            // a guest allocator that sees a failed grow may retry forever.
            return Err(MemoryCapExceeded {
                cap: self.cap,
                desired,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }

    fn instances(&self) -> usize {
        // componentize-py components hold dozens of core instances.
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}
