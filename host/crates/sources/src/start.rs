//! Starting and stopping sources from the validated `[sources]` config.
//! Each source gets its own stop switch, so a reload can restart the one
//! whose settings changed while the others keep running; all of them feed
//! the same pipeline queue, which outlives them.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::{
    SourceContext, docker, file_integrity, k8s_audit_log, k8s_audit_webhook, k8s_watch, network,
};
use crate::SourcesConfig;
use vigil_core::metrics::Registry;
use vigil_core::model::Event;

/// The `[sources.*]` keys, in start order.
pub const SOURCE_KEYS: [&str; 6] = [
    "docker",
    "network",
    "file_integrity",
    "k8s_audit_webhook",
    "k8s_audit_log",
    "k8s_watch",
];

/// How a source (or one part of it) runs.
enum Done {
    Task(tokio::task::JoinHandle<()>),
    Thread(std::thread::JoinHandle<()>),
}

/// A started source.
pub struct RunningSource {
    /// Its `[sources.*]` key.
    pub key: &'static str,
    /// Its metrics name.
    pub name: &'static str,
    stop: watch::Sender<bool>,
    /// Every task and thread of the source (the network source's procfs
    /// poller and, when on, its conntrack listener), ended by one `stop`.
    done: Vec<Done>,
}

impl RunningSource {
    /// Stops the source and waits until it has ended (its socket closed,
    /// its last events handed to the pipeline), so that a restart can bind
    /// the same address or open the same baseline.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for done in self.done {
            match done {
                Done::Task(h) => {
                    let _ = h.await;
                }
                Done::Thread(h) => {
                    let _ = tokio::task::spawn_blocking(move || h.join()).await;
                }
            }
        }
    }
}

/// Whether the source `key` must be restarted to go from `old` to `new`.
pub fn changed(key: &str, old: &SourcesConfig, new: &SourcesConfig) -> bool {
    match key {
        "docker" => old.docker != new.docker,
        "network" => old.network != new.network,
        "file_integrity" => old.file_integrity != new.file_integrity,
        "k8s_audit_webhook" => old.k8s_audit_webhook != new.k8s_audit_webhook,
        "k8s_audit_log" => old.k8s_audit_log != new.k8s_audit_log,
        "k8s_watch" => old.k8s_watch != new.k8s_watch,
        _ => false,
    }
}

/// Starts every source that is on and usable on this machine, logging why
/// the others are off. Must be called inside the Tokio runtime.
pub fn start_all(
    config: &SourcesConfig,
    node: &Arc<str>,
    tx: &mpsc::Sender<Vec<Event>>,
    registry: &Registry,
) -> Vec<RunningSource> {
    SOURCE_KEYS
        .iter()
        .filter_map(|key| start_one(key, config, node, tx, registry))
        .collect()
}

fn context(
    node: &Arc<str>,
    tx: &mpsc::Sender<Vec<Event>>,
    registry: &Registry,
    name: &str,
) -> (SourceContext, watch::Sender<bool>) {
    let (stop, stopped) = watch::channel(false);
    let ctx = SourceContext::new(node.clone(), tx.clone(), registry.source(name), stopped);
    (ctx, stop)
}

/// Starts one source (by its `[sources.*]` key) when it is on and usable.
pub fn start_one(
    key: &'static str,
    config: &SourcesConfig,
    node: &Arc<str>,
    tx: &mpsc::Sender<Vec<Event>>,
    registry: &Registry,
) -> Option<RunningSource> {
    let running = |name: &'static str, stop, done| RunningSource {
        key,
        name,
        stop,
        done: vec![done],
    };
    match key {
        "docker" => {
            let c = &config.docker;
            if !c.enabled {
                tracing::info!("docker: off (sources.docker.enabled = false)");
                return None;
            }
            let settings = invalid(key, c.validate())?;
            if !settings.socket.exists() {
                tracing::info!("docker: off (no socket at {})", settings.socket.display());
                return None;
            }
            tracing::info!(socket = %settings.socket.display(), "docker: on");
            let (ctx, stop) = context(node, tx, registry, docker::SOURCE);
            Some(running(
                docker::SOURCE,
                stop,
                Done::Task(docker::start(settings, ctx)),
            ))
        }
        "network" => {
            let c = &config.network;
            if !c.enabled {
                tracing::info!("network: off (sources.network.enabled = false)");
                tracing::info!("conntrack: off (network off)");
                return None;
            }
            let settings = invalid(key, c.validate())?;
            if !settings.proc_root.join("self/net/tcp").exists() {
                tracing::info!(
                    "network: off (no socket tables under {})",
                    settings.proc_root.display()
                );
                tracing::info!("conntrack: off (network off)");
                return None;
            }
            tracing::info!(
                "network: on (procfs, every {} ms)",
                settings.interval.as_millis()
            );
            let (ctx, stop) = context(node, tx, registry, network::SOURCE);
            // The listener stops with the poller: same switch, own metrics.
            let conntrack_ctx = SourceContext::new(
                node.clone(),
                tx.clone(),
                registry.source(network::conntrack::SOURCE),
                ctx.shutdown.clone(),
            );
            let conntrack = start_conntrack(&settings, conntrack_ctx);
            let shared = conntrack.as_ref().map(|(shared, _)| shared.clone());
            let mut done = vec![Done::Task(network::start(settings, shared, ctx))];
            done.extend(conntrack.map(|(_, thread)| Done::Thread(thread)));
            Some(RunningSource {
                key,
                name: network::SOURCE,
                stop,
                done,
            })
        }
        "file_integrity" => {
            let c = &config.file_integrity;
            if !c.enabled {
                tracing::info!("file-integrity: off (sources.file_integrity.enabled = false)");
                return None;
            }
            let settings = invalid(key, c.validate())?;
            let n = settings.specs.len();
            let (ctx, stop) = context(node, tx, registry, file_integrity::SOURCE);
            match file_integrity::start(settings, ctx) {
                Ok(thread) => {
                    tracing::info!("file-integrity: on ({n} paths)");
                    Some(running(file_integrity::SOURCE, stop, Done::Thread(thread)))
                }
                Err(e) => {
                    tracing::warn!("file-integrity: off ({})", vigil_core::error::chain(&e));
                    None
                }
            }
        }
        "k8s_audit_webhook" => {
            let c = &config.k8s_audit_webhook;
            if !c.enabled {
                tracing::info!("k8s-audit-webhook: off (not enabled)");
                return None;
            }
            let settings = invalid(key, c.validate())?;
            let (ctx, stop) = context(node, tx, registry, k8s_audit_webhook::METRICS_NAME);
            match k8s_audit_webhook::start(settings, ctx) {
                Ok(s) => {
                    tracing::info!("k8s-audit-webhook: on (listening on {})", s.local_addr);
                    Some(running(
                        k8s_audit_webhook::METRICS_NAME,
                        stop,
                        Done::Task(s.task),
                    ))
                }
                // Asked for but unusable: loud, an operator expects audit events.
                Err(e) => {
                    tracing::error!("k8s-audit-webhook: off ({})", vigil_core::error::chain(&e));
                    None
                }
            }
        }
        "k8s_audit_log" => {
            let c = &config.k8s_audit_log;
            if !c.enabled {
                tracing::info!("k8s-audit-log: off (not enabled)");
                return None;
            }
            let settings = invalid(key, c.validate())?;
            tracing::info!("k8s-audit-log: on ({})", settings.path.display());
            let (ctx, stop) = context(node, tx, registry, k8s_audit_log::METRICS_NAME);
            Some(running(
                k8s_audit_log::METRICS_NAME,
                stop,
                Done::Task(k8s_audit_log::start(settings, ctx)),
            ))
        }
        "k8s_watch" => match config
            .k8s_watch
            .settings(&k8s_watch::config::Environment::current())
        {
            Ok(settings) => {
                tracing::info!(
                    "k8s-watch: on ({}, {})",
                    settings.scope(),
                    settings.credentials
                );
                let (ctx, stop) = context(node, tx, registry, k8s_watch::SOURCE);
                Some(running(
                    k8s_watch::SOURCE,
                    stop,
                    Done::Task(k8s_watch::start(settings, ctx)),
                ))
            }
            Err(why) => {
                tracing::info!("k8s-watch: off ({why})");
                None
            }
        },
        _ => None,
    }
}

/// Starts the network source's conntrack listener when wanted and
/// possible, logging why not otherwise; returns the state it shares with
/// the procfs poller and its thread.
fn start_conntrack(
    settings: &network::NetworkSettings,
    ctx: SourceContext,
) -> Option<(Arc<network::shared::Shared>, std::thread::JoinHandle<()>)> {
    if !settings.conntrack {
        tracing::info!("conntrack: off (sources.network.conntrack = false or --no-conntrack)");
        return None;
    }
    let shared = network::shared::Shared::new(settings.dedup_window, settings.max_tracked_sockets);
    match network::conntrack::start(settings, shared.clone(), ctx) {
        Ok(thread) => {
            tracing::info!("conntrack: on (netlink, new connections)");
            Some((shared, thread))
        }
        Err(e) => {
            tracing::info!("conntrack: off ({})", vigil_core::error::chain(&e));
            None
        }
    }
}

/// The settings, or `None` after logging why (the config was validated
/// before, so this is only reached by a source used without validation).
fn invalid<S, E: std::fmt::Display>(key: &str, r: Result<S, E>) -> Option<S> {
    r.map_err(|e| tracing::error!("{key}: off ({e})")).ok()
}
