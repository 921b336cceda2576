//! Metrics of the delivery pipeline: the spool, each output, dedup and
//! suppression (`vigil_spool_*`, `vigil_output_*`, `vigil_findings_*`,
//! `vigil_dedup_*`).

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::DescriptorEncoder;

use super::exposition::{self, NO_LABELS, load};
use super::{Histogram, LabeledCounter, lock};

counters! {
    /// Counters of one output.
    pub struct OutputCounters in "vigil_output" {
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
        /// NATS: connections closed because the server broke the protocol or a cap (control line, payload, stalled operation; logged).
        protocol_violations,
        /// NATS: local connections to the frame guard's loopback listener refused because another process made them (logged).
        guard_refused,
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
        let mut outputs = lock(&self.outputs);
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

    /// Writes every delivery family; HELP texts are the fields' docs.
    pub(crate) fn encode(&self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        exposition::gauges(
            enc,
            "vigil_spool_depth",
            "Findings in the spool (waiting for at least one output).",
            &[(NO_LABELS, load(&self.spool_depth))],
        )?;
        exposition::gauges(
            enc,
            "vigil_spool_bytes",
            "Bytes of findings in the spool.",
            &[(NO_LABELS, load(&self.spool_bytes))],
        )?;
        exposition::counters(
            enc,
            "vigil_spool_errors",
            "Spool write failures (the findings of the failed transaction are lost; logged).",
            &[(NO_LABELS, load(&self.spool_errors))],
        )?;
        self.spool_dropped.encode(
            enc,
            "vigil_spool_dropped",
            "Findings dropped because the spool was full, by policy (drop-oldest, drop-newest).",
            &["policy"],
        )?;
        self.spool_orphaned.encode(
            enc,
            "vigil_spool_orphaned",
            "Queued findings of outputs no longer configured, discarded at startup, by output.",
            &["output"],
        )?;

        let outputs = lock(&self.outputs).clone();
        let labels: Vec<_> = outputs
            .iter()
            .map(|o| [("output", o.name.as_str())])
            .collect();
        let counters: Vec<_> = labels
            .iter()
            .zip(&outputs)
            .map(|(l, o)| (*l, &o.counters))
            .collect();
        exposition::counter_structs(enc, OutputCounters::FIELDS, &counters)?;
        let pending: Vec<_> = labels
            .iter()
            .zip(&outputs)
            .map(|(l, o)| (*l, load(&o.pending)))
            .collect();
        exposition::gauges(
            enc,
            "vigil_output_pending",
            "Findings waiting for this output in the spool.",
            &pending,
        )?;
        let latency: Vec<_> = labels
            .iter()
            .zip(&outputs)
            .map(|(l, o)| (*l, &o.latency))
            .collect();
        exposition::histograms(
            enc,
            "vigil_output_latency_seconds",
            "Time from a finding's creation to its acknowledgement by the output.",
            &latency,
        )?;

        self.suppressed.encode(
            enc,
            "vigil_findings_suppressed",
            "Findings suppressed, by rule and suppression.",
            &["rule", "suppression"],
        )?;
        self.deduplicated.encode(
            enc,
            "vigil_findings_deduplicated",
            "Findings folded into an open dedup window (delivered later as a count), by rule.",
            &["rule"],
        )?;
        self.dedup_summaries.encode(
            enc,
            "vigil_dedup_summaries",
            "Dedup summaries emitted (windows that saw more than one finding), by rule.",
            &["rule"],
        )?;
        exposition::counters(
            enc,
            "vigil_dedup_overflow",
            "Findings not deduplicated because the table of open windows was full.",
            &[(NO_LABELS, load(&self.dedup_overflow))],
        )?;
        self.monitor.encode(
            enc,
            "vigil_findings_monitor",
            "Findings of plugins in monitor mode, by rule.",
            &["rule"],
        )
    }
}
