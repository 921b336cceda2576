//! The conntrack listener's internal events: each logs with structured
//! fields and bumps its counter together.

use super::SOURCE;
use super::decode::DecodeError;
use vigil_core::error::chain;
use vigil_core::metrics::{PluginMetrics, SourceMetrics};

/// A datagram's new flows were read.
pub struct ConntrackFlowsRead {
    pub flows: u64,
    pub events: usize,
}

impl ConntrackFlowsRead {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.received, self.flows);
        tracing::trace!(
            source = SOURCE,
            flows = self.flows,
            events = self.events,
            "conntrack: datagram read"
        );
    }
}

/// A message that does not decode (a kernel layout this code does not know).
pub struct ConntrackMessageRejected<'a> {
    pub error: &'a DecodeError,
}

impl ConntrackMessageRejected<'_> {
    pub fn emit(&self, m: &SourceMetrics) {
        // Once loudly; a format problem repeats on every message.
        let first = PluginMetrics::get(&m.counters.rejected) == 0;
        PluginMetrics::add(&m.counters.rejected, 1);
        if first {
            tracing::warn!(source = SOURCE, error = %self.error, "conntrack: message not understood; skipped");
        } else {
            tracing::debug!(source = SOURCE, error = %self.error, "conntrack: message not understood; skipped");
        }
    }
}

/// The kernel dropped events (`ENOBUFS`): the socket's receive buffer was
/// full. Connections opened meanwhile are only seen if the poller sees them.
pub struct ConntrackEventsLost;

impl ConntrackEventsLost {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.gaps, 1);
        tracing::error!(
            source = SOURCE,
            "conntrack: the kernel dropped events (receive buffer full); short connections may be missed (raise network.conntrack_receive_buffer_bytes)"
        );
    }
}

/// Reading the socket failed; retried after a pause.
pub struct ConntrackReadFailed<'a> {
    pub error: &'a std::io::Error,
}

impl ConntrackReadFailed<'_> {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.gaps, 1);
        tracing::error!(source = SOURCE, error = %chain(self.error), "conntrack: cannot read the netlink socket; retrying");
    }
}

/// A flow waiting for its address to be known was dropped: too many wait.
pub struct ConntrackPendingOverflow {
    pub cap: usize,
}

impl ConntrackPendingOverflow {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.overflow, 1);
        tracing::warn!(
            source = SOURCE,
            cap = self.cap,
            "conntrack: too many flows of unknown addresses waiting; oldest dropped (raise network.max_pending_flows)"
        );
    }
}

/// A container's `hosts` file was larger than the cap: not read, so the
/// container is not attributed from it. Docker writes a few hundred bytes;
/// a large one was written by the container itself (its `/etc/hosts`).
pub struct ConntrackHostsFileOversized<'a> {
    pub path: &'a std::path::Path,
    pub cap: u64,
}

impl ConntrackHostsFileOversized<'_> {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.rejected, 1);
        tracing::warn!(
            source = SOURCE,
            path = %self.path.display(),
            cap = self.cap,
            "conntrack: container hosts file over the size cap; not used for attribution"
        );
    }
}
