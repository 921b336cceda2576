//! The eBPF source's internal events: each logs with structured fields and
//! bumps its counter together.

use vigil_core::metrics::{PluginMetrics, SourceMetrics};

use super::SOURCE;
use super::wire::{Record, WireError, counter};

/// A ring buffer record that could not be decoded.
pub struct EbpfRecordRejected<'a> {
    pub error: &'a WireError,
}

impl EbpfRecordRejected<'_> {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.rejected, 1);
        tracing::warn!(source = SOURCE, error = %self.error, "ebpf: kernel record rejected");
    }
}

/// A connect or exec whose cgroup was gone (or invisible) before it could
/// be mapped to a container: reported as the host's when `include_host`,
/// otherwise not at all, and counted either way.
pub struct EbpfAttributionMissed<'a> {
    pub record: &'a Record,
}

impl EbpfAttributionMissed<'_> {
    pub fn emit(&self, m: &SourceMetrics) {
        let first = PluginMetrics::get(&m.counters.unattributed) == 0;
        PluginMetrics::add(&m.counters.unattributed, 1);
        let (what, pid, name, cgroup_id, detail) = match self.record {
            Record::Connect(c) => (
                "connect",
                c.pid,
                c.comm.as_str(),
                c.cgroup_id,
                format!("{}:{}", c.remote, c.remote_port),
            ),
            Record::Exec(x) => ("exec", x.pid, x.binary.as_str(), x.cgroup_id, String::new()),
        };
        if first {
            tracing::warn!(
                source = SOURCE,
                what,
                pid,
                name,
                cgroup_id,
                detail,
                "ebpf: event not attributed (its cgroup was gone before it was looked up)"
            );
        } else {
            tracing::debug!(
                source = SOURCE,
                what,
                pid,
                name,
                cgroup_id,
                detail,
                "ebpf: event not attributed (its cgroup was gone before it was looked up)"
            );
        }
    }
}

/// What the kernel programs lost since the last look.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EbpfKernelDrops {
    /// Events lost because the ring buffer was full.
    pub ring_full: u64,
    /// Connects not followed because the in-flight map was full.
    pub pending_full: u64,
    /// Connects whose address or socket could not be read, execs whose
    /// path or arguments could not be.
    pub read_failed: u64,
}

impl EbpfKernelDrops {
    /// The differences between two readings of the counters.
    pub fn since(before: &[u64], now: &[u64]) -> Self {
        let d = |i: u32| {
            let i = i as usize;
            now.get(i)
                .copied()
                .unwrap_or_default()
                .saturating_sub(before.get(i).copied().unwrap_or_default())
        };
        Self {
            ring_full: d(counter::RING_FULL),
            pending_full: d(counter::PENDING_FULL),
            read_failed: d(counter::READ_FAILED),
        }
    }

    pub fn emit(&self, m: &SourceMetrics) {
        if self.ring_full > 0 {
            PluginMetrics::add(&m.counters.gaps, self.ring_full);
            tracing::warn!(
                source = SOURCE,
                lost = self.ring_full,
                "ebpf: EVENTS LOST in the kernel: ring buffer full (raise sources.ebpf.ring_buffer_bytes)"
            );
        }
        if self.pending_full > 0 {
            PluginMetrics::add(&m.counters.overflow, self.pending_full);
            tracing::warn!(
                source = SOURCE,
                lost = self.pending_full,
                "ebpf: connects not followed: in-flight map full (raise sources.ebpf.max_pending_connects)"
            );
        }
        if self.read_failed > 0 {
            PluginMetrics::add(&m.counters.rejected, self.read_failed);
            tracing::debug!(
                source = SOURCE,
                count = self.read_failed,
                "ebpf: connects whose address or socket, or execs whose path or arguments, could not be read"
            );
        }
    }
}
