//! The host's internal events: one type per thing worth telling an
//! operator, each logging with structured fields and bumping its metric
//! together, so that nothing is counted without being logged or vice versa.

use std::time::Duration;

use crate::Fault;
use vigil_core::metrics::PluginMetrics;

/// A plugin call faulted; the plugin is stopped and will be re-instantiated.
pub struct PluginFaulted<'a> {
    pub plugin: &'a str,
    pub fault: &'a Fault,
    pub events: usize,
    pub consecutive: u32,
    pub retry_in: Duration,
}

impl PluginFaulted<'_> {
    pub fn emit(&self, m: &PluginMetrics) {
        let c = &m.counters;
        PluginMetrics::add(&c.calls_failed, 1);
        PluginMetrics::add(&c.events_failed, self.events as u64);
        PluginMetrics::add(
            match self.fault {
                Fault::Deadline { .. } => &c.faults_deadline,
                Fault::Memory(_) => &c.faults_memory,
                Fault::Trap(_) => &c.faults_trap,
                Fault::InvalidOutput(_) => &c.faults_invalid_output,
                Fault::Start(_) => &c.faults_start,
            },
            1,
        );
        tracing::error!(
            plugin = self.plugin,
            reason = %self.fault,
            events_lost = self.events,
            consecutive = self.consecutive,
            retry_in_ms = self.retry_in.as_millis() as u64,
            "plugin faulted; its batch is recorded as failed and the plugin will be re-instantiated"
        );
    }
}

/// A plugin faulted too often in a row and is disabled until restart.
pub struct PluginDisabled<'a> {
    pub plugin: &'a str,
    pub consecutive: u32,
    pub last: &'a Fault,
}

impl PluginDisabled<'_> {
    pub fn emit(&self, m: &PluginMetrics) {
        m.disabled.store(true, std::sync::atomic::Ordering::Relaxed);
        tracing::error!(
            plugin = self.plugin,
            consecutive_faults = self.consecutive,
            last_fault = %self.last,
            "PLUGIN DISABLED after repeated faults: it receives no more events until Vigil is restarted or reloaded"
        );
    }
}

/// A call was not made because the plugin is backing off or disabled.
pub struct PluginCallSkipped<'a> {
    pub plugin: &'a str,
    pub events: usize,
    pub disabled: bool,
}

impl PluginCallSkipped<'_> {
    pub fn emit(&self, m: &PluginMetrics) {
        let c = &m.counters;
        let first = PluginMetrics::get(&c.calls_skipped) == 0;
        PluginMetrics::add(&c.calls_skipped, 1);
        PluginMetrics::add(&c.events_skipped, self.events as u64);
        // The fault itself was logged loudly; log skips once, then count.
        if first {
            tracing::warn!(
                plugin = self.plugin,
                events = self.events,
                disabled = self.disabled,
                "plugin not called (backing off after a fault, or disabled); skipped events are counted in vigil_plugin_events_skipped_total"
            );
        }
    }
}

/// A plugin returned more findings than allowed; the excess is dropped.
pub struct PluginFindingsCapped<'a> {
    pub plugin: &'a str,
    pub returned: usize,
    pub kept: usize,
}

impl PluginFindingsCapped<'_> {
    pub fn emit(&self, m: &PluginMetrics) {
        PluginMetrics::add(
            &m.counters.findings_capped,
            (self.returned - self.kept) as u64,
        );
        tracing::warn!(
            plugin = self.plugin,
            returned = self.returned,
            kept = self.kept,
            "plugin returned too many findings; the excess is dropped"
        );
    }
}

/// Log records over the per-call budget were dropped.
pub struct PluginLogsDropped<'a> {
    pub plugin: &'a str,
    pub dropped: u64,
}

impl PluginLogsDropped<'_> {
    pub fn emit(&self, m: &PluginMetrics) {
        PluginMetrics::add(&m.counters.logs_dropped, self.dropped);
        tracing::warn!(
            plugin = self.plugin,
            dropped = self.dropped,
            "plugin logged too much in one call; records dropped"
        );
    }
}

/// A plugin's queue was full; events were dropped for it.
pub struct PluginQueueOverflow<'a> {
    pub plugin: &'a str,
    pub events: usize,
}

impl PluginQueueOverflow<'_> {
    pub fn emit(&self, m: &PluginMetrics) {
        PluginMetrics::add(&m.counters.queue_overflow, self.events as u64);
        tracing::warn!(
            plugin = self.plugin,
            events = self.events,
            "plugin queue full: events DROPPED for this plugin"
        );
    }
}

/// Findings a plugin returned were not handed to the plugins that receive
/// findings: they are as deep as the bound (`max_finding_depth`), so handing
/// them on could feed a loop. They are delivered as usual.
pub struct PluginFindingsDepthCapped<'a> {
    pub plugin: &'a str,
    pub findings: usize,
    pub depth: u32,
    pub max: u32,
}

impl PluginFindingsDepthCapped<'_> {
    pub fn emit(&self, m: &PluginMetrics) {
        let c = &m.counters.findings_depth_capped;
        let first = PluginMetrics::get(c) == 0;
        PluginMetrics::add(c, self.findings as u64);
        // A correlation chain reaches the bound in normal operation: warn
        // once per plugin, then count.
        if first {
            tracing::warn!(
                plugin = self.plugin,
                findings = self.findings,
                depth = self.depth,
                max_depth = self.max,
                "findings at the depth bound are not handed to other plugins (counted in vigil_plugin_findings_depth_capped_total)"
            );
        }
    }
}

/// A plugin's queue was full; a batch of other plugins' findings was dropped
/// for it.
pub struct PluginFindingsOverflow<'a> {
    pub plugin: &'a str,
    pub findings: usize,
}

impl PluginFindingsOverflow<'_> {
    pub fn emit(&self, m: &PluginMetrics) {
        PluginMetrics::add(&m.counters.findings_overflow, self.findings as u64);
        tracing::warn!(
            plugin = self.plugin,
            findings = self.findings,
            "plugin queue full: other plugins' findings DROPPED for this plugin"
        );
    }
}
