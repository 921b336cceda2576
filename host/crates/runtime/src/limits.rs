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
    /// Maximum memory of one plugin instance, in bytes: all its linear
    /// memories and tables together (a table element counts as
    /// [`TABLE_ELEMENT_BYTES`]). Creating or growing one past it traps.
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
    /// How deep findings are handed on to plugins that export `correlate`:
    /// a finding made from events is 0 deep, one a plugin made from findings
    /// of depth `d` is `d + 1`; a finding this deep or deeper is delivered
    /// but not handed to any plugin (counted in
    /// `vigil_plugin_findings_depth_capped_total`), so no loop between
    /// plugins can form. 0 hands no finding on.
    pub max_finding_depth: u32,
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
            max_finding_depth: 2,
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
        if self.max_finding_depth > MAX_FINDING_DEPTH {
            problems.push(format!(
                "{path}.max_finding_depth: must be at most {MAX_FINDING_DEPTH}"
            ));
        }
        if self.backoff_max_ms < self.backoff_initial_ms {
            problems.push(format!(
                "{path}.backoff_max_ms: must not be below backoff_initial_ms"
            ));
        }
        problems
    }
}

/// The largest `max_finding_depth` accepted: each level can multiply the
/// findings handed on by the number of correlating plugins.
pub const MAX_FINDING_DEPTH: u32 = 8;

/// What one table element costs against [`PluginLimits::memory_bytes`]:
/// wasmtime stores each element as one pointer (`ResourceLimiter::table_growing`).
pub const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();

/// The error a memory or table grow past the cap traps with, so that the
/// runtime can tell "out of memory" from other traps.
#[derive(Debug, thiserror::Error)]
#[error(
    "memory cap of {cap} bytes exceeded: the plugin's linear memories and tables would total {total} bytes"
)]
pub struct MemoryCapExceeded {
    /// The cap.
    pub cap: usize,
    /// What every memory and table of the plugin instance would take
    /// together after the refused grow.
    pub total: usize,
}

/// Enforces [`PluginLimits::memory_bytes`] on one store: one budget for
/// every linear memory and table of the plugin instance.
///
/// A component may hold several core instances, each with its own memory
/// (up to the engine's per-component limit), so a per-memory check would
/// let a plugin use that many times its cap. wasmtime calls the limiter for
/// each memory and table when it is created (`current` = 0, `desired` = its
/// initial size) and for each grow, with sizes of that one memory or table;
/// the limiter adds the differences up. Memories and tables are never freed
/// while the store lives, and each instantiation gets a fresh store (and
/// limiter), so the sum only goes up.
///
/// A grow the limiter allowed may still fail in wasmtime (the pool's slot is
/// full, the OS refuses); it stays counted. That errs on the safe side and
/// cannot be abused: undoing it in `memory_grow_failed` could not tell such a
/// failure from one wasmtime reports without asking the limiter first.
#[derive(Debug)]
pub struct MemoryLimiter {
    cap: usize,
    memories: usize,
    tables: usize,
}

impl MemoryLimiter {
    /// A limiter with a cap in bytes.
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            memories: 0,
            tables: 0,
        }
    }

    /// Bytes of memories and tables granted so far.
    pub fn total(&self) -> usize {
        self.memories.saturating_add(self.tables)
    }

    /// Grants growing one memory or table from `current` to `desired` bytes
    /// when the whole store stays within the cap.
    fn grow(&mut self, table: bool, current: usize, desired: usize) -> wasmtime::Result<bool> {
        let added = desired.saturating_sub(current);
        let total = self.total().saturating_add(added);
        if total > self.cap {
            // Trapping (rather than returning false) stops the plugin at once:
            // a guest allocator that sees a failed grow may retry forever.
            return Err(MemoryCapExceeded {
                cap: self.cap,
                total,
            }
            .into());
        }
        let counter = if table {
            &mut self.tables
        } else {
            &mut self.memories
        };
        *counter = counter.saturating_add(added);
        Ok(true)
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            // Past the memory's own maximum: wasmtime fails the grow anyway
            // (`memory.grow` returns -1); nothing to count.
            return Ok(false);
        }
        self.grow(false, current, desired)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        self.grow(
            true,
            current.saturating_mul(TABLE_ELEMENT_BYTES),
            desired.saturating_mul(TABLE_ELEMENT_BYTES),
        )
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

#[cfg(test)]
mod tests {
    use wasmtime::ResourceLimiter;

    use super::{MemoryCapExceeded, MemoryLimiter, TABLE_ELEMENT_BYTES};

    const MIB: usize = 1 << 20;

    fn refusal(r: wasmtime::Result<bool>) -> (usize, usize) {
        let e = r.expect_err("refused");
        let e = e.downcast_ref::<MemoryCapExceeded>().expect("typed error");
        (e.total, e.cap)
    }

    #[test]
    fn every_memory_counts_against_one_cap() {
        let mut l = MemoryLimiter::new(128 * MIB);
        // Four memories created at instantiation, then each grown to 60%.
        for _ in 0..4 {
            assert!(l.memory_growing(0, MIB, None).unwrap());
        }
        assert!(l.memory_growing(MIB, 77 * MIB, None).unwrap());
        assert_eq!(l.total(), 80 * MIB);
        assert_eq!(
            refusal(l.memory_growing(MIB, 77 * MIB, None)),
            (156 * MIB, 128 * MIB)
        );
        // The refused grow is not counted; a small one still fits.
        assert_eq!(l.total(), 80 * MIB);
        assert!(l.memory_growing(MIB, 2 * MIB, None).unwrap());
        assert_eq!(l.total(), 81 * MIB);
    }

    #[test]
    fn tables_count_at_a_pointer_per_element() {
        let mut l = MemoryLimiter::new(2 * MIB);
        assert!(l.memory_growing(0, MIB, None).unwrap());
        let elements = MIB / TABLE_ELEMENT_BYTES;
        assert!(l.table_growing(0, elements, None).unwrap());
        assert_eq!(l.total(), 2 * MIB);
        assert_eq!(
            refusal(l.table_growing(elements, elements + 1, None)),
            (2 * MIB + TABLE_ELEMENT_BYTES, 2 * MIB)
        );
    }

    #[test]
    fn the_cap_itself_is_allowed() {
        let mut l = MemoryLimiter::new(4 * MIB);
        assert!(l.memory_growing(0, 4 * MIB, None).unwrap());
        assert_eq!(
            refusal(l.memory_growing(0, 64 << 10, None)).0,
            4 * MIB + (64 << 10)
        );
    }

    #[test]
    fn a_grow_past_the_memory_maximum_fails_without_counting() {
        let mut l = MemoryLimiter::new(4 * MIB);
        assert!(!l.memory_growing(0, 2 * MIB, Some(MIB)).unwrap());
        assert_eq!(l.total(), 0);
    }

    #[test]
    fn sizes_near_usize_max_do_not_overflow() {
        let mut l = MemoryLimiter::new(4 * MIB);
        assert_eq!(
            refusal(l.table_growing(0, usize::MAX, None)),
            (usize::MAX, 4 * MIB)
        );
        assert_eq!(refusal(l.memory_growing(0, usize::MAX, None)).0, usize::MAX);
    }
}
