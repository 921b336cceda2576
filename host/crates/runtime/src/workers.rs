//! One worker thread per plugin, fed through a bounded queue, so a slow
//! plugin never stalls the others; a full queue drops (and counts) events
//! for that plugin only.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use crate::internal_events::PluginQueueOverflow;
use crate::{CallOutcome, PluginRunner};
use vigil_core::metrics::PluginMetrics;
use vigil_core::model::{Event, EventKind, Finding, ServiceEvent};
use vigil_core::subjects::Verdict;

/// A finding with the plugin that reported it.
#[derive(Debug)]
pub struct PluginFinding {
    pub plugin: Arc<str>,
    pub plugin_version: Arc<str>,
    pub finding: Finding,
    /// The host's verdict on each of the finding's entities, in order (empty:
    /// none checked).
    pub verdicts: Vec<Verdict>,
}

enum Msg {
    Events(Arc<Vec<Event>>),
    Services(Arc<Vec<ServiceEvent>>),
    Tick(u64),
}

struct Worker {
    name: String,
    kinds: Vec<EventKind>,
    /// Whether it takes Docker Swarm events (`on-service-events`).
    services: bool,
    tx: Option<SyncSender<Msg>>,
    handle: Option<JoinHandle<()>>,
    metrics: Arc<PluginMetrics>,
}

/// The plugin workers of a running host.
pub struct WorkerPool {
    workers: Vec<Worker>,
}

impl WorkerPool {
    /// Starts one worker per runner; findings go to `findings`.
    pub fn start(
        runners: Vec<PluginRunner>,
        queue_batches: usize,
        findings: mpsc::Sender<PluginFinding>,
    ) -> Self {
        let workers = runners
            .into_iter()
            .map(|runner| {
                let (tx, rx) = mpsc::sync_channel(queue_batches.max(1));
                let name = runner.name().to_owned();
                let kinds = runner.plugin().kinds.clone();
                let services = runner.plugin().takes_services();
                let metrics = runner.metrics().clone();
                let out = findings.clone();
                let handle = std::thread::Builder::new()
                    .name(format!("plugin-{name}"))
                    .spawn(move || work(runner, rx, out))
                    .map_err(|e| tracing::error!(plugin = %name, error = %e, "cannot start plugin worker"))
                    .ok();
                Worker { name, kinds, services, tx: Some(tx), handle, metrics }
            })
            .collect();
        Self { workers }
    }

    /// Names of the plugins and their metrics.
    pub fn metrics(&self) -> Vec<Arc<PluginMetrics>> {
        self.workers.iter().map(|w| w.metrics.clone()).collect()
    }

    /// Hands a batch (all of one kind) to every subscribed plugin without
    /// blocking; a full queue drops the batch for that plugin, counted.
    pub fn route(&self, batch: Arc<Vec<Event>>) {
        let Some(kind) = batch.first().map(Event::kind) else {
            return;
        };
        for w in self.workers.iter().filter(|w| w.kinds.contains(&kind)) {
            let Some(tx) = &w.tx else { continue };
            match tx.try_send(Msg::Events(batch.clone())) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    PluginQueueOverflow {
                        plugin: &w.name,
                        events: batch.len(),
                    }
                    .emit(&w.metrics);
                }
            }
        }
    }

    /// Hands a batch of Docker Swarm events to every plugin that takes
    /// them, like [`Self::route`].
    pub fn route_services(&self, batch: Arc<Vec<ServiceEvent>>) {
        for w in self.workers.iter().filter(|w| w.services) {
            let Some(tx) = &w.tx else { continue };
            if tx.try_send(Msg::Services(batch.clone())).is_err() {
                PluginQueueOverflow {
                    plugin: &w.name,
                    events: batch.len(),
                }
                .emit(&w.metrics);
            }
        }
    }

    /// Sends a tick to every plugin whose queue has room (ticks carry no data).
    pub fn tick(&self, now: u64) {
        for w in &self.workers {
            if let Some(tx) = &w.tx {
                let _ = tx.try_send(Msg::Tick(now));
            }
        }
    }

    /// Closes the queues and waits for the workers to finish what is queued.
    pub fn shutdown(mut self) {
        for w in &mut self.workers {
            w.tx = None;
        }
        for w in &mut self.workers {
            if let Some(h) = w.handle.take() {
                let _ = h.join();
            }
        }
    }
}

fn work(mut runner: PluginRunner, rx: Receiver<Msg>, out: mpsc::Sender<PluginFinding>) {
    let plugin: Arc<str> = runner.name().into();
    let version: Arc<str> = runner.plugin().info.version.as_str().into();
    while let Ok(msg) = rx.recv() {
        let outcome = match msg {
            Msg::Events(batch) => runner.on_events(&batch),
            Msg::Services(batch) => runner.on_service_events(&batch),
            Msg::Tick(now) => runner.on_tick(now),
        };
        if let CallOutcome::Findings(fs) = outcome {
            for finding in fs {
                let verdicts = runner.check(&finding);
                if out
                    .send(PluginFinding {
                        plugin: plugin.clone(),
                        plugin_version: version.clone(),
                        finding,
                        verdicts,
                    })
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}
