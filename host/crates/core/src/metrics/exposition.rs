//! The bridge to `prometheus-client`: one [`Collector`] over the host's
//! atomics, walked at each scrape, and small helpers that write a family
//! through the library's encoder. The library owns the text format (HELP,
//! TYPE, the `_total` suffix, `_bucket`/`le`/`_sum`/`_count`, escaping);
//! this module only decides which families exist, in which order, and with
//! which HELP.
//!
//! A family with no series (no output configured yet, no drop counted) is
//! left out entirely, as `prometheus-client` does for its own families.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabel, EncodeLabelSet, EncodeMetric, LabelSetEncoder, MetricEncoder,
    NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::labeled::FindingCounts;
use super::{
    DeliveryMetrics, Histogram, HostCounters, HostGauges, IntelCounters, IntelMetrics,
    PluginCounters, PluginMetrics, ResponseCounters, SourceCounters, SourceMetrics,
    TimelineCounters, TimelineMetrics, lock,
};

/// One counter of a `counters!` struct.
pub(crate) struct CounterField<T: 'static> {
    /// Family name without `_total` (the encoder adds it).
    pub(crate) name: &'static str,
    /// The field's doc comment (leading spaces trimmed when written).
    pub(crate) help: &'static str,
    pub(crate) get: fn(&T) -> &AtomicU64,
}

/// The label set of a host-wide family.
pub(crate) const NO_LABELS: [(&str, &str); 0] = [];

pub(crate) fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// Label names zipped with the values of one [`LabeledCounter`](super::LabeledCounter) key.
pub(crate) struct Zipped<'a> {
    pub(crate) names: &'a [&'static str],
    pub(crate) values: &'a [String],
}

impl EncodeLabelSet for Zipped<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> fmt::Result {
        for (name, value) in self.names.iter().zip(self.values) {
            (*name, value.as_str()).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

/// Writes one family: its descriptor, then `write` once per series.
fn family<L: EncodeLabelSet, V>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    series: &[(L, V)],
    mut write: impl FnMut(MetricEncoder<'_>, &V) -> fmt::Result,
) -> fmt::Result {
    if series.is_empty() {
        return Ok(());
    }
    let mut m = enc.encode_descriptor(name, help.trim(), None, kind)?;
    for (labels, v) in series {
        write(m.encode_family(labels)?, v)?;
    }
    Ok(())
}

/// A counter family (`name` without `_total`).
pub(crate) fn counters<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: &[(L, u64)],
) -> fmt::Result {
    family(enc, name, help, MetricType::Counter, series, |m, v| {
        ConstCounter::new(*v).encode(m)
    })
}

/// A gauge family.
pub(crate) fn gauges<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: &[(L, u64)],
) -> fmt::Result {
    family(enc, name, help, MetricType::Gauge, series, |m, v| {
        ConstGauge::new(*v).encode(m)
    })
}

/// A histogram family.
pub(crate) fn histograms<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: &[(L, &Histogram)],
) -> fmt::Result {
    family(
        enc,
        name,
        help,
        MetricType::Histogram,
        series,
        |mut m, h| {
            let s = h.snapshot();
            m.encode_histogram::<NoLabelSet>(s.sum, s.count, &s.buckets, None)
        },
    )
}

/// One counter family per field of a `counters!` struct, one series per
/// labelled instance (plugin, source, output).
pub(crate) fn counter_structs<T, L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder<'_>,
    fields: &[CounterField<T>],
    series: &[(L, &T)],
) -> fmt::Result {
    for f in fields {
        family(enc, f.name, f.help, MetricType::Counter, series, |m, c| {
            ConstCounter::new(load((f.get)(c))).encode(m)
        })?;
    }
    Ok(())
}

/// Every family of the host, read at each scrape. It holds the same parts
/// as the [`Registry`](super::Registry) that registered it.
#[derive(Debug)]
pub(crate) struct Families {
    pub(crate) plugins: Arc<Mutex<Vec<Arc<PluginMetrics>>>>,
    pub(crate) sources: Arc<Mutex<Vec<Arc<SourceMetrics>>>>,
    pub(crate) delivery: Arc<DeliveryMetrics>,
    pub(crate) host: Arc<HostCounters>,
    pub(crate) gauges: Arc<HostGauges>,
    pub(crate) findings: Arc<FindingCounts>,
    pub(crate) intel: Arc<IntelMetrics>,
    pub(crate) response: Arc<ResponseCounters>,
    pub(crate) timeline: Arc<TimelineMetrics>,
}

impl Collector for Families {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let enc = &mut enc;
        counter_structs(enc, HostCounters::FIELDS, &[(NO_LABELS, &*self.host)])?;
        let g = &self.gauges;
        gauges(
            enc,
            "vigil_ready",
            "1 once the plugins are loaded and the sources started (/readyz answers 200), else 0.",
            &[(NO_LABELS, u64::from(g.ready.load(Ordering::Relaxed)))],
        )?;
        gauges(
            enc,
            "vigil_plugins_running",
            "Plugins running.",
            &[(NO_LABELS, load(&g.plugins))],
        )?;
        gauges(
            enc,
            "vigil_sources_running",
            "Sources running.",
            &[(NO_LABELS, load(&g.sources))],
        )?;

        let sources = lock(&self.sources).clone();
        let by_source: Vec<_> = sources
            .iter()
            .map(|s| ([("source", s.name.as_str())], &s.counters))
            .collect();
        counter_structs(enc, SourceCounters::FIELDS, &by_source)?;
        counter_structs(
            enc,
            ResponseCounters::FIELDS,
            &[(NO_LABELS, &*self.response)],
        )?;
        self.findings.encode(enc)?;
        self.encode_plugins(enc)?;
        self.delivery.encode(enc)?;
        counter_structs(
            enc,
            IntelCounters::FIELDS,
            &[(NO_LABELS, &self.intel.counters)],
        )?;
        gauges(
            enc,
            "vigil_intel_entries",
            "Threat-intel entries loaded now.",
            &[(NO_LABELS, load(&self.intel.entries))],
        )?;
        counter_structs(
            enc,
            TimelineCounters::FIELDS,
            &[(NO_LABELS, &self.timeline.counters)],
        )?;
        gauges(
            enc,
            "vigil_timeline_entities",
            "Entities (containers, pods, services) whose timeline is kept now.",
            &[(NO_LABELS, load(&self.timeline.entities))],
        )?;
        gauges(
            enc,
            "vigil_timeline_items",
            "Events and findings held in the timeline now.",
            &[(NO_LABELS, load(&self.timeline.items))],
        )
    }
}

impl Families {
    fn encode_plugins(&self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let plugins = lock(&self.plugins).clone();
        let labels: Vec<_> = plugins
            .iter()
            .map(|p| [("plugin", p.name.as_str())])
            .collect();
        let counters: Vec<_> = labels
            .iter()
            .zip(&plugins)
            .map(|(l, p)| (*l, &p.counters))
            .collect();
        counter_structs(enc, PluginCounters::FIELDS, &counters)?;
        let disabled: Vec<_> = labels
            .iter()
            .zip(&plugins)
            .map(|(l, p)| (*l, u64::from(p.disabled.load(Ordering::Relaxed))))
            .collect();
        gauges(
            enc,
            "vigil_plugin_disabled",
            "1 while the plugin is disabled after too many consecutive faults, else 0.",
            &disabled,
        )?;
        let latency: Vec<_> = labels
            .iter()
            .zip(&plugins)
            .map(|(l, p)| (*l, &p.latency))
            .collect();
        histograms(
            enc,
            "vigil_plugin_call_seconds",
            "Duration of each plugin call (event batches and ticks).",
            &latency,
        )
    }
}
