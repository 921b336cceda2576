//! Live event sources. Each source is a module with a validated config, its
//! own metrics and internal events; all of them hand normalised events to
//! the pipeline through a bounded queue, counting what they drop.

pub mod docker;
pub mod file_integrity;
pub mod k8s_audit_log;
pub mod k8s_audit_webhook;
pub mod k8s_watch;
pub mod network;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, watch};

use crate::metrics::{PluginMetrics, SourceMetrics};
use crate::model::Event;

/// What a running source gets from the host.
#[derive(Clone)]
pub struct SourceContext {
    /// This node's name, stamped on every event.
    pub node: Arc<str>,
    /// The pipeline's input queue (bounded).
    pub tx: mpsc::Sender<Vec<Event>>,
    /// This source's counters.
    pub metrics: Arc<SourceMetrics>,
    /// Becomes `true` when the host shuts down.
    pub shutdown: watch::Receiver<bool>,
    seq: Arc<AtomicU64>,
}

impl SourceContext {
    pub fn new(
        node: Arc<str>,
        tx: mpsc::Sender<Vec<Event>>,
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
        let boot = *BOOT.get_or_init(crate::runtime::wall_now);
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
        if events.is_empty() {
            return true;
        }
        let n = events.len() as u64;
        PluginMetrics::add(&self.metrics.counters.normalised, n);
        match self.tx.send(events).await {
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

/// Starts every source available on this machine and says which are on and
/// why the others are off. Returns the names of the sources started. Must be
/// called inside the Tokio runtime (sources are tasks).
pub fn start_all(
    args: &crate::cli::RunArgs,
    node: &Arc<str>,
    tx: &mpsc::Sender<Vec<Event>>,
    stop: &watch::Receiver<bool>,
    registry: &crate::metrics::Registry,
) -> Vec<String> {
    let mut started = Vec::new();
    match docker_settings(args) {
        Ok(settings) => {
            tracing::info!(socket = %settings.socket.display(), "docker: on");
            let ctx = crate::run::source_context(node, tx, stop, registry, docker::SOURCE);
            // Detached: the task ends by itself on shutdown or when the pipeline closes.
            drop(docker::start(settings, ctx));
            started.push(docker::SOURCE.to_owned());
        }
        Err(why) => tracing::info!("docker: off ({why})"),
    }
    match network_settings(args) {
        Ok(settings) => {
            tracing::info!(
                "network: on (procfs, every {} ms)",
                settings.interval.as_millis()
            );
            let shared = start_conntrack(args, &settings, node, tx, stop, registry);
            if shared.is_some() {
                started.push(network::conntrack::SOURCE.to_owned());
            }
            let ctx = crate::run::source_context(node, tx, stop, registry, network::SOURCE);
            // Detached, like the Docker source.
            drop(network::start(settings, shared, ctx));
            started.push(network::SOURCE.to_owned());
        }
        Err(why) => {
            tracing::info!("network: off ({why})");
            tracing::info!("conntrack: off (network off)");
        }
    }
    match file_integrity_settings(args) {
        Ok(settings) => {
            let n = settings.specs.len();
            let ctx = crate::run::source_context(node, tx, stop, registry, file_integrity::SOURCE);
            match file_integrity::start(settings, ctx) {
                // Detached, like the Docker source: the thread ends on shutdown.
                Ok(_thread) => {
                    tracing::info!("file-integrity: on ({n} paths)");
                    started.push(file_integrity::SOURCE.to_owned());
                }
                Err(e) => {
                    tracing::warn!("file-integrity: off ({})", file_integrity::error_chain(&e))
                }
            }
        }
        Err(why) => tracing::info!("file-integrity: off ({why})"),
    }
    match audit_webhook_settings(args) {
        Ok(settings) => {
            let ctx = crate::run::source_context(
                node,
                tx,
                stop,
                registry,
                k8s_audit_webhook::METRICS_NAME,
            );
            match k8s_audit_webhook::start(settings, ctx) {
                // Detached: the accept loop ends on shutdown.
                Ok(s) => {
                    tracing::info!("k8s-audit-webhook: on (listening on {})", s.local_addr);
                    started.push(k8s_audit_webhook::METRICS_NAME.to_owned());
                }
                Err(e) => tracing::error!(
                    "k8s-audit-webhook: off ({})",
                    file_integrity::error_chain(&e)
                ),
            }
        }
        Err(Off::NotAsked) => tracing::info!("k8s-audit-webhook: off (no --audit-webhook-listen)"),
        // Asked for but unusable: loud, an operator expects audit events.
        Err(Off::Invalid(why)) => tracing::error!("k8s-audit-webhook: off ({why})"),
    }
    match audit_log_settings(args) {
        Ok(settings) => {
            tracing::info!("k8s-audit-log: on ({})", settings.path.display());
            let ctx =
                crate::run::source_context(node, tx, stop, registry, k8s_audit_log::METRICS_NAME);
            // Detached, like the Docker source.
            drop(k8s_audit_log::start(settings, ctx));
            started.push(k8s_audit_log::METRICS_NAME.to_owned());
        }
        Err(Off::NotAsked) => tracing::info!("k8s-audit-log: off (no --audit-log)"),
        Err(Off::Invalid(why)) => tracing::error!("k8s-audit-log: off ({why})"),
    }
    match k8s_watch_config(args).settings(&k8s_watch::config::Environment::current()) {
        Ok(settings) => {
            tracing::info!(
                "k8s-watch: on ({}, {})",
                settings.scope(),
                settings.credentials
            );
            let ctx = crate::run::source_context(node, tx, stop, registry, k8s_watch::SOURCE);
            // Detached, like the Docker source: the client is built in the task.
            drop(k8s_watch::start(settings, ctx));
            started.push(k8s_watch::SOURCE.to_owned());
        }
        Err(why) => tracing::info!("k8s-watch: off ({why})"),
    }
    started
}

/// Starts the conntrack listener when wanted and possible, saying why not
/// otherwise; returns the state it shares with the procfs poller.
fn start_conntrack(
    args: &crate::cli::RunArgs,
    settings: &network::NetworkSettings,
    node: &Arc<str>,
    tx: &mpsc::Sender<Vec<Event>>,
    stop: &watch::Receiver<bool>,
    registry: &crate::metrics::Registry,
) -> Option<Arc<network::shared::Shared>> {
    if args.no_conntrack || !settings.conntrack {
        tracing::info!("conntrack: off (--no-conntrack)");
        return None;
    }
    let shared = network::shared::Shared::new(settings.dedup_window, settings.max_tracked_sockets);
    let ctx = crate::run::source_context(node, tx, stop, registry, network::conntrack::SOURCE);
    match network::conntrack::start(settings, shared.clone(), ctx) {
        // Detached, like the file-integrity thread: it ends on shutdown.
        Ok(_thread) => {
            tracing::info!("conntrack: on (netlink, new connections)");
            Some(shared)
        }
        Err(e) => {
            tracing::info!("conntrack: off ({})", file_integrity::error_chain(&e));
            None
        }
    }
}

/// The Kubernetes watchers' config from the flags.
fn k8s_watch_config(args: &crate::cli::RunArgs) -> k8s_watch::WatchConfig {
    let mode = if args.no_k8s_watch {
        k8s_watch::Mode::Off
    } else if args.k8s_watch {
        k8s_watch::Mode::On
    } else {
        k8s_watch::Mode::Auto
    };
    k8s_watch::WatchConfig {
        mode,
        namespace: args.k8s_namespace.clone(),
    }
}

/// Why an opt-in source stays off.
enum Off {
    /// Its flag was not given.
    NotAsked,
    /// Its flags do not validate.
    Invalid(String),
}

/// The audit webhook's settings, or why it stays off.
fn audit_webhook_settings(
    args: &crate::cli::RunArgs,
) -> Result<k8s_audit_webhook::WebhookSettings, Off> {
    let Some(listen) = &args.audit_webhook_listen else {
        return Err(Off::NotAsked);
    };
    let config = k8s_audit_webhook::WebhookConfig {
        listen: listen.clone(),
        token_file: args.audit_webhook_token_file.clone(),
        max_body_bytes: args.audit_webhook_max_body_bytes,
        tls_cert: args.audit_webhook_tls_cert.clone(),
        tls_key: args.audit_webhook_tls_key.clone(),
        ..k8s_audit_webhook::WebhookConfig::default()
    };
    config.validate().map_err(|e| Off::Invalid(e.to_string()))
}

/// The audit log tailer's settings, or why it stays off.
fn audit_log_settings(args: &crate::cli::RunArgs) -> Result<k8s_audit_log::LogSettings, Off> {
    let Some(path) = &args.audit_log else {
        return Err(Off::NotAsked);
    };
    let config = k8s_audit_log::LogConfig {
        path: path.clone(),
        from_beginning: args.audit_log_from_beginning,
        position_file: Some(args.data_dir.join(k8s_audit_log::POSITION_FILE)),
        ..k8s_audit_log::LogConfig::default()
    };
    config.validate().map_err(|e| Off::Invalid(e.to_string()))
}

/// The Docker source's settings, or why it stays off.
fn docker_settings(args: &crate::cli::RunArgs) -> Result<docker::DockerSettings, String> {
    if args.no_docker {
        return Err("--no-docker".into());
    }
    let config = docker::DockerConfig {
        socket: args.docker_socket.clone(),
        ..docker::DockerConfig::default()
    };
    let settings = config.validate().map_err(|e| e.to_string())?;
    if !settings.socket.exists() {
        return Err(format!("no socket at {}", settings.socket.display()));
    }
    Ok(settings)
}

/// The network source's settings, or why it stays off.
fn network_settings(args: &crate::cli::RunArgs) -> Result<network::NetworkSettings, String> {
    if args.no_network {
        return Err("--no-network".into());
    }
    let config = network::NetworkConfig {
        interval_ms: args.network_interval_ms,
        include_host: args.network_include_host,
        ..network::NetworkConfig::default()
    };
    let settings = config.validate().map_err(|e| e.to_string())?;
    if !settings.proc_root.join("self/net/tcp").exists() {
        return Err(format!(
            "no socket tables under {}",
            settings.proc_root.display()
        ));
    }
    Ok(settings)
}

/// The file-integrity source's settings, or why it stays off.
fn file_integrity_settings(
    args: &crate::cli::RunArgs,
) -> Result<file_integrity::FileIntegritySettings, String> {
    if args.no_file_integrity {
        return Err("--no-file-integrity".into());
    }
    let mut config = file_integrity::FileIntegrityConfig {
        paths: args.fim_path.clone(),
        baseline: args.data_dir.join("fim.sqlite"),
        ..file_integrity::FileIntegrityConfig::default()
    };
    if let Some(root) = &args.fim_root {
        config.root = root.clone();
    }
    if let Some(secs) = args.fim_rehash_secs {
        config.rehash_interval_secs = secs;
    }
    config.validate().map_err(|e| e.to_string())
}
