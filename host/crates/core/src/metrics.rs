//! Counters and histograms of the host, rendered in the Prometheus text
//! format. Every drop, fault and skip has a counter here.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Latency bucket bounds, in microseconds.
const BUCKETS_US: [u64; 12] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
];

/// A fixed-bucket latency histogram.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let us = d.as_micros() as u64;
        if let Some(i) = BUCKETS_US.iter().position(|b| us <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, bound) in BUCKETS_US.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{}\"}} {cumulative}",
                *bound as f64 / 1e6
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels},le=\"+Inf\"}} {}",
            self.count()
        );
        let _ = writeln!(
            out,
            "{name}_sum{{{labels}}} {}",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count());
    }
}

macro_rules! counters {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($(#[$fm:meta])* $field:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Default)]
        $vis struct $name { $($(#[$fm])* pub $field: AtomicU64,)* }
        impl $name {
            fn render_counters(&self, out: &mut String, prefix: &str, labels: &str) {
                // No braces at all for an empty label set.
                let labels = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
                $(let _ = writeln!(out, "{prefix}_{}_total{labels} {}", stringify!($field), self.$field.load(Ordering::Relaxed));)*
            }
        }
    };
}

counters! {
    /// Counters of one plugin.
    pub struct PluginCounters {
        /// Events handed to the plugin.
        events,
        /// Calls that returned normally.
        calls_ok,
        /// Calls that faulted (the batch is lost for this plugin).
        calls_failed,
        /// Events in failed calls.
        events_failed,
        /// Calls skipped because the plugin was backing off or disabled.
        calls_skipped,
        /// Events in skipped calls.
        events_skipped,
        /// Faults: deadline exceeded.
        faults_deadline,
        /// Faults: memory cap exceeded.
        faults_memory,
        /// Faults: traps (panics, unreachable, out-of-bounds access …).
        faults_trap,
        /// Faults: invalid output.
        faults_invalid_output,
        /// Faults: re-instantiation failed.
        faults_start,
        /// Findings accepted from the plugin.
        findings,
        /// Findings dropped over the per-call cap.
        findings_capped,
        /// Log records dropped over the per-call cap.
        logs_dropped,
        /// State writes refused (quota, sizes).
        state_refusals,
        /// Events dropped because the plugin's queue was full.
        queue_overflow,
        /// Re-instantiations after a fault.
        restarts,
    }
}

/// Metrics of one plugin.
#[derive(Debug)]
pub struct PluginMetrics {
    pub name: String,
    pub counters: PluginCounters,
    pub latency: Histogram,
    pub disabled: AtomicBool,
}

impl PluginMetrics {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            counters: PluginCounters::default(),
            latency: Histogram::default(),
            disabled: AtomicBool::new(false),
        }
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

counters! {
    /// Counters of the threat-intel feeds.
    pub struct IntelCounters {
        /// Reloads that replaced the feeds after a file changed.
        reloads,
        /// Reloads that failed (unreadable file, no entry): the previous feeds were kept.
        reload_failures,
    }
}

/// Metrics of the threat-intel feeds.
#[derive(Debug, Default)]
pub struct IntelMetrics {
    pub counters: IntelCounters,
    /// Entries loaded now (a gauge).
    pub entries: AtomicU64,
}

counters! {
    /// Counters of the host itself.
    pub struct HostCounters {
        /// Reloads applied (SIGHUP, config file or plugin directory change).
        reloads_ok,
        /// Reloads refused: the new config or a plugin was invalid; the old set kept running (logged).
        reloads_failed,
        /// Sources restarted by a reload because their settings changed.
        source_restarts,
    }
}

/// Gauges of the host itself.
#[derive(Debug, Default)]
pub struct HostGauges {
    /// 1 once the plugins are loaded and the sources started (`/readyz`).
    pub ready: AtomicBool,
    /// Plugins running.
    pub plugins: AtomicU64,
    /// Sources running.
    pub sources: AtomicU64,
}

/// Every metric of the host.
#[derive(Debug, Default)]
pub struct Registry {
    plugins: Mutex<Vec<Arc<PluginMetrics>>>,
    sources: Mutex<Vec<Arc<SourceMetrics>>>,
    /// Findings after the plugins: spool, outputs, dedup, suppression.
    pub delivery: Arc<DeliveryMetrics>,
    /// Reload and restart counters.
    pub host: HostCounters,
    /// Readiness and sizes.
    pub gauges: HostGauges,
    /// Findings written, per (plugin, rule id).
    rules: Mutex<std::collections::BTreeMap<(String, String), u64>>,
    /// The threat-intel feeds'.
    pub intel: Arc<IntelMetrics>,
    /// The responder's counters (`vigil_response_*`).
    pub response: ResponseCounters,
}

/// Distinct (plugin, rule) series kept: a plugin inventing rule ids must
/// not grow the metrics without bound; the excess is counted under
/// `rule="(other)"`.
const MAX_RULE_SERIES: usize = 1_000;

impl Registry {
    /// Counts a finding written for `rule` of `plugin`.
    pub fn count_finding(&self, plugin: &str, rule: &str) {
        let mut rules = self.rules.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (plugin.to_owned(), rule.to_owned());
        let key = if rules.contains_key(&key) || rules.len() < MAX_RULE_SERIES {
            key
        } else {
            (plugin.to_owned(), "(other)".to_owned())
        };
        *rules.entry(key).or_default() += 1;
    }

    /// Registers (or returns the existing) metrics of a plugin.
    pub fn plugin(&self, name: &str) -> Arc<PluginMetrics> {
        let mut plugins = self.plugins.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = plugins.iter().find(|p| p.name == name) {
            return p.clone();
        }
        let p = Arc::new(PluginMetrics::new(name));
        plugins.push(p.clone());
        p
    }

    /// Registers (or returns the existing) metrics of a source.
    pub fn source(&self, name: &str) -> Arc<SourceMetrics> {
        let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = sources.iter().find(|s| s.name == name) {
            return s.clone();
        }
        let s = Arc::new(SourceMetrics::new(name));
        sources.push(s.clone());
        s
    }

    /// Adds a plugin's metrics (a runner creates its own).
    pub fn add_plugin(&self, metrics: Arc<PluginMetrics>) {
        self.plugins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(metrics);
    }

    /// Forgets the plugins not named (unloaded by a reload), so that their
    /// frozen series stop being exported.
    pub fn retain_plugins(&self, names: &[String]) {
        self.plugins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|p| names.contains(&p.name));
    }

    /// The metrics of every plugin.
    pub fn plugins(&self) -> Vec<Arc<PluginMetrics>> {
        self.plugins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.host.render_counters(&mut out, "vigil", "");
        let g = &self.gauges;
        let _ = writeln!(
            out,
            "vigil_ready {}",
            u8::from(g.ready.load(Ordering::Relaxed))
        );
        let _ = writeln!(
            out,
            "vigil_plugins_running {}",
            g.plugins.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "vigil_sources_running {}",
            g.sources.load(Ordering::Relaxed)
        );
        for s in self
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            s.counters
                .render(&mut out, &format!("source=\"{}\"", s.name));
        }
        self.response
            .render_counters(&mut out, "vigil_response", "");
        for ((plugin, rule), n) in self
            .rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "vigil_findings_total{{plugin=\"{}\",rule=\"{}\"}} {n}",
                escape(plugin),
                escape(rule)
            );
        }
        for p in self.plugins() {
            let labels = format!("plugin=\"{}\"", p.name);
            p.counters
                .render_counters(&mut out, "vigil_plugin", &labels);
            let _ = writeln!(
                out,
                "vigil_plugin_disabled{{{labels}}} {}",
                u8::from(p.disabled.load(Ordering::Relaxed))
            );
            p.latency
                .render(&mut out, "vigil_plugin_call_seconds", &labels);
        }
        self.delivery.render(&mut out);
        self.intel
            .counters
            .render_counters(&mut out, "vigil_intel", "");
        let _ = writeln!(
            out,
            "vigil_intel_entries {}",
            self.intel.entries.load(Ordering::Relaxed)
        );
        out
    }
}

/// Counters keyed by label values (rule ids, output names): few keys, low rate.
#[derive(Debug, Default)]
pub struct LabeledCounter {
    values: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl LabeledCounter {
    /// Adds `n` to the counter of these label values.
    pub fn add(&self, labels: &[&str], n: u64) {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        let key: Vec<String> = labels.iter().map(|l| (*l).to_owned()).collect();
        *values.entry(key).or_default() += n;
    }

    /// The counter of these label values (0 when never counted).
    pub fn get(&self, labels: &[&str]) -> u64 {
        let values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        values
            .iter()
            .find(|(k, _)| k.iter().map(String::as_str).eq(labels.iter().copied()))
            .map_or(0, |(_, v)| *v)
    }

    fn render(&self, out: &mut String, name: &str, label_names: &[&str]) {
        let values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, v) in values.iter() {
            let labels: Vec<String> = label_names
                .iter()
                .zip(key)
                .map(|(n, v)| format!("{n}=\"{}\"", escape_label(v)))
                .collect();
            let _ = writeln!(out, "{name}{{{}}} {v}", labels.join(","));
        }
    }
}

/// Escapes a Prometheus label value.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

counters! {
    /// Counters of one output.
    pub struct OutputCounters {
        /// Findings the destination acknowledged.
        delivered,
        /// Delivery attempts that failed (each is retried after a backoff).
        failed,
        /// Findings sent again after a failed attempt.
        retried,
        /// Findings the destination refused for good (e.g. HTTP 400): logged and dropped for this output.
        rejected,
        /// Findings below this output's minimum severity, or from a plugin in monitor mode, not queued for it.
        filtered,
        /// Findings queued for this output in the spool.
        queued,
    }
}

/// Metrics of one output.
#[derive(Debug)]
pub struct OutputMetrics {
    pub name: String,
    pub counters: OutputCounters,
    /// Findings waiting for this output in the spool.
    pub pending: AtomicU64,
    /// Time from a finding's creation to its acknowledgement by the output.
    pub latency: Histogram,
}

/// Metrics of the delivery pipeline: spool, outputs, dedup, suppression.
#[derive(Debug, Default)]
pub struct DeliveryMetrics {
    outputs: Mutex<Vec<Arc<OutputMetrics>>>,
    /// Findings in the spool (waiting for at least one output).
    pub spool_depth: AtomicU64,
    /// Bytes of findings in the spool.
    pub spool_bytes: AtomicU64,
    /// Findings dropped because the spool was full, by policy (`drop-oldest`, `drop-newest`).
    pub spool_dropped: LabeledCounter,
    /// Queued findings of outputs no longer configured, discarded at startup, by output.
    pub spool_orphaned: LabeledCounter,
    /// Spool write failures (the findings of the failed transaction are lost; logged).
    pub spool_errors: AtomicU64,
    /// Findings suppressed, by rule and suppression.
    pub suppressed: LabeledCounter,
    /// Findings folded into an open dedup window (delivered later as a count), by rule.
    pub deduplicated: LabeledCounter,
    /// Dedup summaries emitted (windows that saw more than one finding), by rule.
    pub dedup_summaries: LabeledCounter,
    /// Findings not deduplicated because the table of open windows was full.
    pub dedup_overflow: AtomicU64,
    /// Findings of plugins in monitor mode, by rule.
    pub monitor: LabeledCounter,
}

impl DeliveryMetrics {
    /// Registers (or returns the existing) metrics of an output.
    pub fn output(&self, name: &str) -> Arc<OutputMetrics> {
        let mut outputs = self.outputs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(o) = outputs.iter().find(|o| o.name == name) {
            return o.clone();
        }
        let o = Arc::new(OutputMetrics {
            name: name.to_owned(),
            counters: OutputCounters::default(),
            pending: AtomicU64::new(0),
            latency: Histogram::default(),
        });
        outputs.push(o.clone());
        o
    }

    fn render(&self, out: &mut String) {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(out, "vigil_spool_depth {}", g(&self.spool_depth));
        let _ = writeln!(out, "vigil_spool_bytes {}", g(&self.spool_bytes));
        let _ = writeln!(out, "vigil_spool_errors_total {}", g(&self.spool_errors));
        self.spool_dropped
            .render(out, "vigil_spool_dropped_total", &["policy"]);
        self.spool_orphaned
            .render(out, "vigil_spool_orphaned_total", &["output"]);
        for o in self
            .outputs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let labels = format!("output=\"{}\"", escape_label(&o.name));
            o.counters.render_counters(out, "vigil_output", &labels);
            let _ = writeln!(out, "vigil_output_pending{{{labels}}} {}", g(&o.pending));
            o.latency
                .render(out, "vigil_output_latency_seconds", &labels);
        }
        self.suppressed.render(
            out,
            "vigil_findings_suppressed_total",
            &["rule", "suppression"],
        );
        self.deduplicated
            .render(out, "vigil_findings_deduplicated_total", &["rule"]);
        self.dedup_summaries
            .render(out, "vigil_dedup_summaries_total", &["rule"]);
        let _ = writeln!(
            out,
            "vigil_dedup_overflow_total {}",
            g(&self.dedup_overflow)
        );
        self.monitor
            .render(out, "vigil_findings_monitor_total", &["rule"]);
    }
}

counters! {
    /// Counters of one event source.
    pub struct SourceCounters {
        /// Raw records received from the source.
        received,
        /// Events produced by normalisation.
        normalised,
        /// Records that could not be normalised (logged with the reason).
        rejected,
        /// Events dropped because the pipeline queue was full.
        dropped,
        /// Reconnections to the source.
        reconnects,
        /// Breaks in the source's stream whose events could not all be recovered (logged loudly).
        gaps,
        /// Records not turned into events because a bounded table of the source was full (logged).
        overflow,
        /// Polls of a polling source that took longer than its interval (logged).
        slow_polls,
    }
}

/// Metrics of one source.
#[derive(Debug)]
pub struct SourceMetrics {
    pub name: String,
    pub counters: SourceCounters,
}

impl SourceMetrics {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            counters: SourceCounters::default(),
        }
    }
}

impl SourceCounters {
    /// Renders with the given metric prefix and labels (used by [`Registry::render`]).
    pub fn render(&self, out: &mut String, labels: &str) {
        self.render_counters(out, "vigil_source", labels);
    }
}

counters! {
    /// Counters of the responder (quarantine).
    pub struct ResponseCounters {
        /// Findings that matched a response rule (at or above its severity).
        decisions,
        /// Quarantines started in enforce mode (one per target).
        quarantines,
        /// Dry-run records created (the actions a quarantine would take).
        dry_runs,
        /// Quarantines that completed every action.
        quarantined,
        /// Quarantines left partial (some action failed or could not be taken yet).
        partial,
        /// Quarantines where no action succeeded.
        failed,
        /// Findings for a target already quarantined (or already dry-run): nothing new done.
        already,
        /// Findings not acted on: Vigil's own container/pod, or an exempt target.
        exempt,
        /// Findings not acted on because an operator released the target for that rule.
        released_before,
        /// Actions done.
        actions_ok,
        /// Actions skipped (not needed or not possible: host network, not running …).
        actions_skipped,
        /// Actions that failed.
        actions_failed,
        /// Actions planned by a dry run.
        actions_planned,
        /// Findings dropped because the responder's queue was full.
        queue_full,
        /// Errors of the quarantine database.
        store_errors,
    }
}

/// A label value in the Prometheus text format: `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_per_rule_are_bounded_and_escaped() {
        let r = Registry::default();
        r.count_finding("p", "a\"b");
        r.count_finding("p", "a\"b");
        for i in 0..MAX_RULE_SERIES + 5 {
            r.count_finding("q", &format!("r{i}"));
        }
        let text = r.render();
        assert!(
            text.contains("vigil_findings_total{plugin=\"p\",rule=\"a\\\"b\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("vigil_findings_total{plugin=\"q\",rule=\"(other)\"} 6"),
            "{text}"
        );
        assert_eq!(
            text.matches("vigil_findings_total{").count(),
            MAX_RULE_SERIES + 1
        );
        assert!(text.contains("vigil_reloads_ok_total 0\n"), "{text}");
    }
}
