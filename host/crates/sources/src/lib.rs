//! Live event sources and the normalisers of recorded input. Each source is
//! a module with a validated config, its own metrics and internal events;
//! all of them hand normalised events to the pipeline through a bounded
//! queue, counting what they drop.
//!
//! Adding a source: its module, whose config section implements
//! [`Source`], one line in the `sources!` registry below and a cargo
//! feature (default on) for it and its dependencies; then its keys in
//! `config/vigil.example.toml`.

mod config;
#[cfg(feature = "docker")]
pub mod docker;
#[cfg(feature = "ebpf")]
pub mod ebpf;
#[cfg(feature = "file-integrity")]
pub mod file_integrity;
#[cfg(feature = "k8s-audit-log")]
pub mod k8s_audit_log;
#[cfg(feature = "k8s-audit-webhook")]
pub mod k8s_audit_webhook;
#[cfg(feature = "k8s-watch")]
pub mod k8s_watch;
#[cfg(feature = "network")]
pub mod network;
pub mod source;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, watch};

use vigil_core::metrics::{PluginMetrics, SourceMetrics};
use vigil_core::model::{Batch, Event, ProcessEvent, ServiceEvent};

/// What a running source gets from the host.
#[derive(Clone)]
pub struct SourceContext {
    /// This node's name, stamped on every event.
    pub node: Arc<str>,
    /// The pipeline's input queue (bounded).
    pub tx: mpsc::Sender<Batch>,
    /// This source's counters.
    pub metrics: Arc<SourceMetrics>,
    /// Becomes `true` when the host shuts down.
    pub shutdown: watch::Receiver<bool>,
    seq: Arc<AtomicU64>,
}

impl SourceContext {
    pub fn new(
        node: Arc<str>,
        tx: mpsc::Sender<Batch>,
        metrics: Arc<SourceMetrics>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            node,
            tx,
            metrics,
            shutdown,
            seq: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A unique event id for this source: `<source>:<boot nanos>:<seq>`.
    pub fn next_id(&self) -> String {
        static BOOT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let boot = *BOOT.get_or_init(vigil_core::time::wall_now);
        format!(
            "{}:{boot:x}:{}",
            self.metrics.name,
            self.seq.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Sends events to the pipeline, waiting while the queue is full (a
    /// live source must not lose events to a momentary burst). Returns
    /// false when the pipeline is gone (shutdown).
    pub async fn send(&self, events: Vec<Event>) -> bool {
        self.send_batch(Batch::Events(events)).await
    }

    /// Sends Docker Swarm events to the pipeline, like [`Self::send`].
    pub async fn send_services(&self, events: Vec<ServiceEvent>) -> bool {
        self.send_batch(Batch::Services(events)).await
    }

    /// Sends process events (WIT 0.1.3) to the pipeline, like [`Self::send`].
    pub async fn send_processes(&self, events: Vec<ProcessEvent>) -> bool {
        self.send_batch(Batch::Processes(events)).await
    }

    async fn send_batch(&self, batch: Batch) -> bool {
        if batch.is_empty() {
            return true;
        }
        let n = batch.len() as u64;
        PluginMetrics::add(&self.metrics.counters.normalised, n);
        match self.tx.send(batch).await {
            Ok(()) => true,
            Err(_) => {
                PluginMetrics::add(&self.metrics.counters.dropped, n);
                false
            }
        }
    }

    /// Counts and logs a record that could not be normalised.
    pub fn rejected(&self, reason: &str) {
        PluginMetrics::add(&self.metrics.counters.rejected, 1);
        tracing::warn!(source = %self.metrics.name, reason, "record rejected");
    }
}

pub use source::{Off, RunningSource, Source, SourceTask, Starter};

source::sources! {
    /// `[sources.docker]`: container lifecycle from the Docker Engine API.
    ["docker"] docker: docker::DockerConfig,
    /// `[sources.network]`: container sockets from procfs, and new
    /// connections from conntrack (`conntrack = true`).
    ["network"] network: network::NetworkConfig,
    /// `[sources.ebpf]`: every outbound connect, seen in the kernel and
    /// attributed to its container by cgroup id.
    ["ebpf"] ebpf: ebpf::EbpfConfig,
    /// `[sources.file_integrity]`: runtime binaries and configuration files.
    ["file-integrity"] file_integrity: file_integrity::FileIntegrityConfig,
    /// `[sources.k8s_audit_webhook]`: the API server's audit webhook backend.
    ["k8s-audit-webhook"] k8s_audit_webhook: k8s_audit_webhook::WebhookConfig,
    /// `[sources.k8s_audit_log]`: the API server's JSON audit log.
    ["k8s-audit-log"] k8s_audit_log: k8s_audit_log::LogConfig,
    /// `[sources.k8s_watch]`: Pod, ReplicaSet and Event watchers.
    ["k8s-watch"] k8s_watch: k8s_watch::WatchConfig,
}
