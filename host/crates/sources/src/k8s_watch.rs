//! The `k8s-watch` source: kube-runtime watchers on Pods and on core/v1
//! Events, cluster-wide or in one namespace, with a ReplicaSet reflector
//! that attributes pods to their Deployment.
//!
//! A watched Pod becomes an [`EventBody::Kubernetes`] event (verb `added`,
//! `modified` or `deleted`, resource `pods`) whose pod spec is normalised by
//! [`vigil_normalize::pod`], exactly like pods seen in audit events. Its
//! owner is the controller from the pod's ownerReferences, followed through
//! a ReplicaSet to its Deployment when the ReplicaSet has one.
//!
//! The client comes from `$KUBECONFIG`/`~/.kube/config` or the in-cluster
//! service account (`kube::Config::infer`). Watch errors (API server down,
//! RBAC, desynchronised resourceVersion) are logged and counted as
//! reconnects; the watchers retry with kube-runtime's default backoff.

pub mod config;
mod events;
mod internal_events;
mod owners;
mod pods;

#[cfg(test)]
mod tests;

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::task::JoinHandle;

pub use config::{Mode, WatchConfig, WatchSettings};
pub use owners::{controller_of, resolve_owner};

use crate::{Off, Source, SourceContext, SourceTask, Starter};
use internal_events::{WatchClientFailed, WatchFailed, WatchObjectRejected};
use vigil_core::validate::{Problems, join};

/// The name of this source's metrics and of its events' `source`.
pub const SOURCE: &str = "k8s-watch";

/// How long pod events wait for the first ReplicaSet listing (so that the
/// initial pods are attributed to Deployments) before going without it.
const OWNERS_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the watchers on the runtime; they run until `ctx.shutdown` turns
/// true or the pipeline goes away.
pub fn start(settings: WatchSettings, ctx: SourceContext) -> JoinHandle<()> {
    tokio::spawn(run(settings, ctx))
}

impl Source for WatchConfig {
    const KEY: &'static str = "k8s_watch";
    const NAME: &'static str = "k8s-watch";
    /// Whether it can run is only known on the machine (credentials), so
    /// the checked section itself is what starting resolves.
    type Settings = WatchConfig;

    fn enabled(&self) -> bool {
        self.mode != Mode::Off
    }

    fn disabled_reason(&self) -> String {
        "mode = off".to_owned()
    }

    fn state(&self) -> &'static str {
        match self.mode {
            Mode::Auto => "auto",
            Mode::On => "on",
            Mode::Off => "off",
        }
    }

    fn check(&self, at: &str, problems: &mut Problems) -> Option<WatchConfig> {
        if let Some(ns) = &self.namespace
            && !config::is_namespace_name(ns)
        {
            problems.push(
                join(at, "namespace"),
                format!("{ns:?} is not a namespace name (a-z, 0-9, '-', at most 63)"),
            );
            return None;
        }
        Some(self.clone())
    }

    fn start(config: WatchConfig, starter: &Starter<'_>) -> Result<Vec<SourceTask>, Off> {
        let settings = config
            .settings(&config::Environment::current())
            .map_err(Off::Unavailable)?;
        tracing::info!(
            "k8s-watch: on ({}, {})",
            settings.scope(),
            settings.credentials
        );
        Ok(vec![SourceTask::Task(start(
            settings,
            starter.context(SOURCE),
        ))])
    }
}

async fn run(settings: WatchSettings, ctx: SourceContext) {
    let mut shutdown = ctx.shutdown.clone();
    let client = tokio::select! {
        () = stopped(&mut shutdown) => return,
        c = client() => c,
    };
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            WatchClientFailed { error: &e }.emit(&ctx.metrics);
            return;
        }
    };
    let ns = settings.namespace.as_deref();
    let (store, writer) = reflector::store::<ReplicaSet>();
    let replica_sets = reflector::reflector(
        writer,
        watcher(api::<ReplicaSet>(&client, ns), watcher::Config::default()).default_backoff(),
    );
    let pods = watcher(api::<Pod>(&client, ns), watcher::Config::default()).default_backoff();
    let core_events =
        watcher(api::<CoreEvent>(&client, ns), watcher::Config::default()).default_backoff();
    tokio::select! {
        () = stopped(&mut shutdown) => {}
        () = drain(replica_sets, "replicasets", &ctx) => {}
        () = watch_pods(pods, store, &ctx) => {}
        () = watch_events(core_events, &ctx) => {}
    }
}

async fn client() -> Result<Client, kube::Error> {
    let config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    Client::try_from(config)
}

fn api<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the ReplicaSet reflector, logging its errors.
async fn drain<K>(
    stream: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
    resource: &str,
    ctx: &SourceContext,
) {
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            WatchFailed {
                resource,
                error: &e,
            }
            .emit(&ctx.metrics);
        }
    }
}

async fn watch_pods(
    stream: impl Stream<Item = Result<watcher::Event<Pod>, watcher::Error>>,
    store: Store<ReplicaSet>,
    ctx: &SourceContext,
) {
    if tokio::time::timeout(OWNERS_READY_TIMEOUT, store.wait_until_ready())
        .await
        .is_err()
    {
        tracing::warn!(
            source = SOURCE,
            "k8s-watch: ReplicaSets not listed yet; pods go without their Deployment until they are"
        );
    }
    let lookup = |ns: &str, name: &str| {
        store
            .get(&reflector::ObjectRef::new(name).within(ns))
            .and_then(|rs| controller_of(&rs.metadata))
    };
    let mut tracker = pods::Tracker::default();
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(e) => e,
            Err(e) => {
                WatchFailed {
                    resource: "pods",
                    error: &e,
                }
                .emit(&ctx.metrics);
                continue;
            }
        };
        let Some((verb, pod)) = tracker.verb(&event) else {
            continue;
        };
        vigil_core::metrics::PluginMetrics::add(&ctx.metrics.counters.received, 1);
        match pods::pod_event(verb, pod, &lookup) {
            Ok(body) => {
                let ev = stamp(ctx, body);
                if !ctx.send(vec![ev]).await {
                    return;
                }
            }
            Err(e) => WatchObjectRejected {
                resource: "pods",
                name: pod.metadata.name.as_deref().unwrap_or_default(),
                reason: &e.to_string(),
            }
            .emit(&ctx.metrics),
        }
    }
}

async fn watch_events(
    stream: impl Stream<Item = Result<watcher::Event<CoreEvent>, watcher::Error>>,
    ctx: &SourceContext,
) {
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        match item {
            // Only events that happen while watching: a (re)list repeats
            // the last hour's events.
            Ok(watcher::Event::Apply(e)) => {
                vigil_core::metrics::PluginMetrics::add(&ctx.metrics.counters.received, 1);
                let ev = stamp(ctx, events::event_body(&e));
                if !ctx.send(vec![ev]).await {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => WatchFailed {
                resource: "events",
                error: &e,
            }
            .emit(&ctx.metrics),
        }
    }
}

fn stamp(ctx: &SourceContext, body: vigil_core::model::EventBody) -> vigil_core::model::Event {
    vigil_core::model::Event {
        id: ctx.next_id(),
        time: vigil_core::time::wall_now(),
        node: ctx.node.to_string(),
        source: SOURCE.to_owned(),
        body,
    }
}

async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
