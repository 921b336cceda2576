//! The network source's internal events: each logs with structured fields
//! and bumps its counter together.

use std::time::Duration;
use vigil_core::error::chain;

use vigil_core::metrics::{PluginMetrics, SourceMetrics};

/// A poll read the socket tables.
pub struct NetworkRowsRead {
    pub rows: u64,
    pub new: usize,
    pub took: Duration,
}

impl NetworkRowsRead {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.received, self.rows);
        tracing::trace!(
            source = super::SOURCE,
            rows = self.rows,
            new = self.new,
            took_us = self.took.as_micros() as u64,
            "network: poll done"
        );
    }
}

/// Table rows that did not parse (a kernel format this code does not know).
pub struct NetworkRowsRejected<'a> {
    pub count: u64,
    pub example: &'a str,
}

impl NetworkRowsRejected<'_> {
    pub fn emit(&self, m: &SourceMetrics) {
        // Once loudly; after that a format problem repeats on every poll.
        let first = PluginMetrics::get(&m.counters.rejected) == 0;
        PluginMetrics::add(&m.counters.rejected, self.count);
        if first {
            tracing::warn!(
                source = super::SOURCE,
                count = self.count,
                example = self.example,
                "network: socket table rows not understood; skipped"
            );
        } else {
            tracing::debug!(
                source = super::SOURCE,
                count = self.count,
                example = self.example,
                "network: socket table rows not understood; skipped"
            );
        }
    }
}

/// New sockets not reported because the tracker is full.
pub struct NetworkSocketsUntracked {
    pub count: u64,
    pub cap: usize,
}

impl NetworkSocketsUntracked {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.overflow, self.count);
        tracing::warn!(
            source = super::SOURCE,
            count = self.count,
            cap = self.cap,
            "network: socket tracker full; new sockets not reported (raise max_tracked_sockets)"
        );
    }
}

/// A whole poll failed (the proc root is unreadable): connections opened
/// and closed meanwhile are missed.
pub struct NetworkPollFailed<'a> {
    pub error: &'a dyn std::error::Error,
}

impl NetworkPollFailed<'_> {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.gaps, 1);
        tracing::error!(
            source = super::SOURCE,
            error = %chain(self.error),
            "network: poll failed; connections may be missed"
        );
    }
}

/// A poll took longer than the interval: polls are late, and short
/// connections are missed more often.
pub struct NetworkPollSlow {
    pub took: Duration,
    pub interval: Duration,
}

impl NetworkPollSlow {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.slow_polls, 1);
        tracing::warn!(
            source = super::SOURCE,
            took_ms = self.took.as_millis() as u64,
            interval_ms = self.interval.as_millis() as u64,
            "network: poll slower than its interval"
        );
    }
}
