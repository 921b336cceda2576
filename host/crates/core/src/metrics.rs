//! The host's metrics: every drop, fault and skip has a counter here.
//!
//! Values live in plain atomics that the hot paths bump (per event, per
//! plugin call: one `fetch_add`, no lock, no allocation). At scrape time
//! [`Registry::render`] hands them to `prometheus-client`, which writes the
//! Prometheus text format: every family with its HELP (the field's doc
//! comment) and TYPE, counters with `_total`, histograms as
//! `_bucket{le}`/`_sum`/`_count`, label values escaped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A struct of `AtomicU64` counters plus the table the exposition walks:
/// field `f` becomes the family `<prefix>_f_total` and its doc comment the
/// family's HELP, so a counter cannot be added without a description.
macro_rules! counters {
    (
        $(#[$m:meta])*
        $vis:vis struct $name:ident in $prefix:literal {
            $($(#[doc = $doc:literal])+ $field:ident,)*
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Default)]
        $vis struct $name {
            $($(#[doc = $doc])+ pub $field: ::std::sync::atomic::AtomicU64,)*
        }

        impl $name {
            /// Every counter, in declaration order.
            pub(crate) const FIELDS: &[$crate::metrics::exposition::CounterField<Self>] = &[$(
                $crate::metrics::exposition::CounterField {
                    name: concat!($prefix, "_", stringify!($field)),
                    help: concat!($($doc),+),
                    get: |c| &c.$field,
                },
            )*];
        }
    };
}

mod delivery;
mod exposition;
mod histogram;
mod labeled;
#[cfg(test)]
mod tests;

pub use delivery::{DeliveryMetrics, OutputCounters, OutputMetrics};
pub use histogram::Histogram;
pub use labeled::LabeledCounter;

/// The `Content-Type` of [`Registry::render`]'s text: the Prometheus text
/// format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

counters! {
    /// Counters of one plugin.
    pub struct PluginCounters in "vigil_plugin" {
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
        /// Findings of other plugins handed to the plugin (`correlate.on-findings`).
        findings_received,
        /// Findings of the plugin not handed to other plugins because they reached `plugins.limits.max_finding_depth` (a loop bound).
        findings_depth_capped,
        /// Findings of other plugins dropped because the plugin's queue was full.
        findings_overflow,
    }
}

/// Metrics of one plugin.
#[derive(Debug)]
pub struct PluginMetrics {
    pub name: String,
    pub counters: PluginCounters,
    /// Duration of each call (event batches and ticks).
    pub latency: Histogram,
    /// Set while the plugin is disabled after too many consecutive faults.
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
    pub struct IntelCounters in "vigil_intel" {
        /// Threat-intel reloads that replaced the feeds after a file changed.
        reloads,
        /// Threat-intel reloads that failed (unreadable file, no entry): the previous feeds were kept.
        reload_failures,
    }
}

/// Metrics of the threat-intel feeds.
#[derive(Debug, Default)]
pub struct IntelMetrics {
    pub counters: IntelCounters,
    /// Threat-intel entries loaded now (a gauge).
    pub entries: AtomicU64,
}

counters! {
    /// Counters of the host itself.
    pub struct HostCounters in "vigil" {
        /// Reloads applied (SIGHUP, config file or plugin directory change).
        reloads_ok,
        /// Reloads refused: the new config or a plugin was invalid; the old set kept running (logged).
        reloads_failed,
        /// Sources restarted by a reload because their settings changed.
        source_restarts,
        /// Container create events of the sources (the heartbeat's `containers_created`: the fleet's churn).
        containers_created,
        /// Container start and restart events of the sources (the heartbeat's `containers_started`).
        containers_started,
        /// Heartbeats stored by JetStream (`[heartbeat]`).
        heartbeats_sent,
        /// Heartbeats not stored (NATS away, no stream): not retried, the next one follows (logged).
        heartbeats_failed,
        /// `vigil fleet`: messages read from the stream (findings and heartbeats).
        fleet_messages,
        /// `vigil fleet`: messages skipped because they did not parse or had no node (logged).
        fleet_malformed,
        /// `vigil fleet`: messages skipped because they were over `fleet.max_message_bytes` (logged).
        fleet_oversized,
        /// `vigil fleet`: heartbeats skipped because their `node` is not the node their subject names (logged with both).
        fleet_spoofed,
        /// `vigil fleet`: fleet findings reported (each once across instances).
        fleet_findings,
        /// `vigil fleet`: times this instance took the lease and became active.
        fleet_takeovers,
        /// `vigil fleet`: NATS connections closed because the server broke the protocol or a cap (logged).
        fleet_protocol_violations,
        /// `vigil fleet`: local connections to the NATS frame guard refused because another process made them (logged).
        fleet_guard_refused,
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

counters! {
    /// Counters of one event source.
    pub struct SourceCounters in "vigil_source" {
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
        /// Requests cut off at a deadline because the client was too slow (logged).
        timeouts,
        /// Records whose container could not be found (the eBPF source: a cgroup gone before it was looked up; logged).
        unattributed,
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

counters! {
    /// Counters of the responder (quarantine).
    pub struct ResponseCounters in "vigil_response" {
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
        /// Targets not acted on because the host could not verify them: a
        /// container or pod the plugin was not shown, a container id that is
        /// not a full id the Engine confirms. (A pod the API returns with
        /// another uid is a failed quarantine: `failed`, `actions_failed`.)
        unverified,
        /// Findings not acted on because an operator released the target for that rule.
        released_before,
        /// Findings that matched a rule but whose plugin may not trigger a response
        /// (`[plugins.policy.<name>] response`, off by default for plugins from files).
        not_permitted,
        /// Quarantine actions done.
        actions_ok,
        /// Quarantine actions skipped (not needed or not possible: host network, not running …).
        actions_skipped,
        /// Quarantine actions that failed.
        actions_failed,
        /// Quarantine actions planned by a dry run.
        actions_planned,
        /// Findings dropped because the responder's queue was full.
        queue_full,
        /// Errors of the quarantine database.
        store_errors,
    }
}

counters! {
    /// Counters of the timeline (`[timeline]`).
    pub struct TimelineCounters in "vigil_timeline" {
        /// Events added to an entity's timeline (an event about a container and its pod counts twice).
        events_recorded,
        /// Findings added to an entity's timeline (after suppression and dedup).
        findings_recorded,
        /// Finding entities not recorded because the host could not verify them (the plugin was not shown that container or pod).
        findings_unverified,
        /// Items pushed out of a full per-entity ring (`timeline.events_per_entity`, `timeline.findings_per_entity`), oldest first.
        ring_overflow,
        /// Items dropped because they were older than `timeline.max_age_secs`.
        expired,
        /// Entities evicted, least recently active first, because `timeline.max_entities` were tracked.
        entities_evicted,
        /// Items dropped with the entities evicted.
        items_evicted,
        /// Writes of `DATA_DIR/timeline.json` that failed (logged; the next one retries).
        persist_failures,
    }
}

/// Metrics of the timeline.
#[derive(Debug, Default)]
pub struct TimelineMetrics {
    pub counters: TimelineCounters,
    /// Entities tracked now (a gauge).
    pub entities: AtomicU64,
    /// Items (events and findings) held now (a gauge).
    pub items: AtomicU64,
}

/// Every metric of the host.
///
/// The parts are shared (`Arc`) with the one collector registered in the
/// library's registry, which reads them at each scrape.
#[derive(Debug)]
pub struct Registry {
    plugins: Arc<Mutex<Vec<Arc<PluginMetrics>>>>,
    sources: Arc<Mutex<Vec<Arc<SourceMetrics>>>>,
    /// Findings after the plugins: spool, outputs, dedup, suppression.
    pub delivery: Arc<DeliveryMetrics>,
    /// Reload and restart counters.
    pub host: Arc<HostCounters>,
    /// Readiness and sizes.
    pub gauges: Arc<HostGauges>,
    /// Findings written, per (plugin, rule id).
    findings: Arc<labeled::FindingCounts>,
    /// The threat-intel feeds'.
    pub intel: Arc<IntelMetrics>,
    /// The responder's counters (`vigil_response_*`).
    pub response: Arc<ResponseCounters>,
    /// The timeline's (`vigil_timeline_*`).
    pub timeline: Arc<TimelineMetrics>,
    exposition: prometheus_client::registry::Registry,
}

impl Default for Registry {
    fn default() -> Self {
        let mut r = Self {
            plugins: Arc::default(),
            sources: Arc::default(),
            delivery: Arc::default(),
            host: Arc::default(),
            gauges: Arc::default(),
            findings: Arc::default(),
            intel: Arc::default(),
            response: Arc::default(),
            timeline: Arc::default(),
            exposition: prometheus_client::registry::Registry::default(),
        };
        let families = exposition::Families {
            plugins: r.plugins.clone(),
            sources: r.sources.clone(),
            delivery: r.delivery.clone(),
            host: r.host.clone(),
            gauges: r.gauges.clone(),
            findings: r.findings.clone(),
            intel: r.intel.clone(),
            response: r.response.clone(),
            timeline: r.timeline.clone(),
        };
        r.exposition.register_collector(Box::new(families));
        r
    }
}

/// Locks a registry list; a panic elsewhere must not take `/metrics` down.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Registry {
    /// Counts a finding written for `rule` of `plugin`.
    pub fn count_finding(&self, plugin: &str, rule: &str) {
        self.findings.add(plugin, rule);
    }

    /// Registers (or returns the existing) metrics of a plugin.
    pub fn plugin(&self, name: &str) -> Arc<PluginMetrics> {
        let mut plugins = lock(&self.plugins);
        if let Some(p) = plugins.iter().find(|p| p.name == name) {
            return p.clone();
        }
        let p = Arc::new(PluginMetrics::new(name));
        plugins.push(p.clone());
        p
    }

    /// Registers (or returns the existing) metrics of a source.
    pub fn source(&self, name: &str) -> Arc<SourceMetrics> {
        let mut sources = lock(&self.sources);
        if let Some(s) = sources.iter().find(|s| s.name == name) {
            return s.clone();
        }
        let s = Arc::new(SourceMetrics::new(name));
        sources.push(s.clone());
        s
    }

    /// Adds a plugin's metrics (a runner creates its own).
    pub fn add_plugin(&self, metrics: Arc<PluginMetrics>) {
        lock(&self.plugins).push(metrics);
    }

    /// Forgets the plugins not named (unloaded by a reload), so that their
    /// frozen series stop being exported.
    pub fn retain_plugins(&self, names: &[String]) {
        lock(&self.plugins).retain(|p| names.contains(&p.name));
    }

    /// The metrics of every plugin.
    pub fn plugins(&self) -> Vec<Arc<PluginMetrics>> {
        lock(&self.plugins).clone()
    }

    /// The Prometheus text exposition (served with [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail and the collector only forwards
        // the encoder's results, so an error here is a bug worth a loud
        // panic in the admin handler rather than a silently cut scrape.
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.exposition)
            .expect("the Prometheus text exposition is written to a String");
        out
    }
}
