//! One worker thread per plugin, fed through a bounded queue, so a slow
//! plugin never stalls the others; a full queue drops (and counts) events
//! for that plugin only. Each batch is routed by the plugins' subscriptions
//! and encoded once, on the routing thread ([`crate::routing`]); workers
//! share it.
//!
//! Findings are handed on between workers ([`crate::feed`]): after each call
//! a worker sends its accepted findings to the queue of every *other* plugin
//! that receives findings, without blocking (a full queue drops them for
//! that plugin, counted). [`WorkerPool::shutdown`] waits until every queued
//! message, including findings handed on meanwhile, has been handled.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::feed::{FedFindings, Producer};
use crate::internal_events::{PluginFindingsOverflow, PluginQueueOverflow};
use crate::routing::{Pick, Route, RoutedBatch, pick_processes, pick_services};
use crate::{CallOutcome, PluginRunner};
use vigil_core::metrics::PluginMetrics;
use vigil_core::model::{Event, Finding, ProcessEvent, ServiceEvent};
use vigil_core::subjects::Verdict;
use vigil_core::subscription::Subscription;

/// A finding with the plugin that reported it.
#[derive(Debug)]
pub struct PluginFinding {
    pub plugin: Arc<str>,
    pub plugin_version: Arc<str>,
    pub finding: Finding,
    /// The host's verdict on each of the finding's entities, in order (empty:
    /// none checked).
    pub verdicts: Vec<Verdict>,
    /// How deep it is (0: made from events; see [`crate::feed`]).
    pub depth: u32,
}

enum Msg {
    /// A routed batch and the worker's place in its routes.
    Events(Arc<RoutedBatch>, usize),
    /// The Docker Swarm events the worker's plugin picked.
    Services(Arc<Vec<ServiceEvent>>),
    /// The process events the worker's plugin picked.
    Processes(Arc<Vec<ProcessEvent>>),
    Tick(u64),
    Findings(Arc<FedFindings>),
}

struct Worker {
    name: String,
    subscription: Subscription,
    packed: bool,
    tx: Option<SyncSender<Msg>>,
    handle: Option<JoinHandle<()>>,
    metrics: Arc<PluginMetrics>,
}

/// Messages queued to workers and not yet handled: shutdown waits for 0.
#[derive(Default)]
struct InFlight {
    count: Mutex<u64>,
    idle: Condvar,
}

impl InFlight {
    fn add(&self) {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
    }

    fn done(&self) {
        let mut n = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.idle.notify_all();
        }
    }

    fn wait_idle(&self) {
        let mut n = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        while *n > 0 {
            n = self.idle.wait(n).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// A worker's queue, as another worker sees it.
struct Inbox {
    index: usize,
    tx: SyncSender<Msg>,
    metrics: Arc<PluginMetrics>,
    name: String,
}

/// What the workers share: the queues of the plugins that receive findings,
/// and the count of queued messages.
struct Shared {
    /// `None` once the pool is closing: nothing more is handed on.
    receivers: Mutex<Option<Vec<Inbox>>>,
    in_flight: InFlight,
    node: Arc<str>,
}

impl Shared {
    /// Queues `msg`, counted in flight; false when the queue is full or closed.
    fn send(&self, tx: &SyncSender<Msg>, msg: Msg) -> bool {
        self.in_flight.add();
        match tx.try_send(msg) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.in_flight.done();
                false
            }
        }
    }

    /// Whether a plugin other than `from` receives findings.
    fn others_receive(&self, from: usize) -> bool {
        self.receivers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|rs| rs.iter().any(|r| r.index != from))
    }

    /// Hands `batch` to every plugin that receives findings but `from`.
    fn hand_on(&self, from: usize, batch: FedFindings) {
        let batch = Arc::new(batch);
        let receivers = self
            .receivers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for r in receivers.iter().flatten().filter(|r| r.index != from) {
            if !self.send(&r.tx, Msg::Findings(batch.clone())) {
                PluginFindingsOverflow {
                    plugin: &r.name,
                    findings: batch.len(),
                }
                .emit(&r.metrics);
            }
        }
    }

    fn close(&self) {
        *self
            .receivers
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// The plugin workers of a running host.
pub struct WorkerPool {
    workers: Vec<Worker>,
    shared: Arc<Shared>,
}

impl WorkerPool {
    /// Starts one worker per runner; findings go to `findings`.
    pub fn start(
        runners: Vec<PluginRunner>,
        queue_batches: usize,
        findings: mpsc::Sender<PluginFinding>,
    ) -> Self {
        Self::start_on("", runners, queue_batches, findings)
    }

    /// [`start`](Self::start), stamping `node` on the findings handed on to
    /// plugins that receive findings.
    pub fn start_on(
        node: &str,
        runners: Vec<PluginRunner>,
        queue_batches: usize,
        findings: mpsc::Sender<PluginFinding>,
    ) -> Self {
        let channels: Vec<_> = runners
            .iter()
            .map(|_| mpsc::sync_channel(queue_batches.max(1)))
            .collect();
        let receivers = runners
            .iter()
            .zip(&channels)
            .enumerate()
            .filter(|(_, (r, _))| r.takes_findings())
            .map(|(index, (r, (tx, _)))| Inbox {
                index,
                tx: tx.clone(),
                metrics: r.metrics().clone(),
                name: r.name().to_owned(),
            })
            .collect();
        let shared = Arc::new(Shared {
            receivers: Mutex::new(Some(receivers)),
            in_flight: InFlight::default(),
            node: node.into(),
        });
        let workers = runners
            .into_iter()
            .zip(channels)
            .enumerate()
            .map(|(index, (runner, (tx, rx)))| {
                let name = runner.name().to_owned();
                let subscription = runner.subscription().clone();
                let packed = runner.plugin().takes_packed();
                let metrics = runner.metrics().clone();
                let out = findings.clone();
                let sh = shared.clone();
                let handle = std::thread::Builder::new()
                    .name(format!("plugin-{name}"))
                    .spawn(move || work(index, runner, rx, out, &sh))
                    .map_err(|e| tracing::error!(plugin = %name, error = %e, "cannot start plugin worker"))
                    .ok();
                // Nothing would ever read the queue of a worker that did not start.
                let tx = handle.is_some().then_some(tx);
                Worker { name, subscription, packed, tx, handle, metrics }
            })
            .collect();
        Self { workers, shared }
    }

    /// Names of the plugins and their metrics.
    pub fn metrics(&self) -> Vec<Arc<PluginMetrics>> {
        self.workers.iter().map(|w| w.metrics.clone()).collect()
    }

    /// Hands a batch to every plugin that wants some of its events, without
    /// blocking; a full queue drops the batch for that plugin, counted.
    pub fn route(&self, batch: Arc<Vec<Event>>) {
        if batch.is_empty() {
            return;
        }
        let routes: Vec<Route<'_>> = self
            .workers
            .iter()
            .map(|w| Route {
                subscription: &w.subscription,
                packed: w.packed,
            })
            .collect();
        let routed = Arc::new(RoutedBatch::route(batch, &routes, Default::default()));
        for (i, w) in self.workers.iter().enumerate() {
            let events = match routed.pick(i) {
                Pick::Nothing => continue,
                Pick::All => routed.events().len(),
                Pick::Some(picks) => picks.len(),
            };
            let Some(tx) = &w.tx else { continue };
            if !self.shared.send(tx, Msg::Events(routed.clone(), i)) {
                PluginQueueOverflow {
                    plugin: &w.name,
                    events,
                }
                .emit(&w.metrics);
            }
        }
    }

    /// Hands a batch of Docker Swarm events to every plugin whose
    /// subscription wants some of them, like [`Self::route`].
    pub fn route_services(&self, batch: Arc<Vec<ServiceEvent>>) {
        for w in &self.workers {
            let Some(picked) = pick_services(&batch, &w.subscription) else {
                continue;
            };
            let Some(tx) = &w.tx else { continue };
            let events = picked.len();
            if !self.shared.send(tx, Msg::Services(picked)) {
                PluginQueueOverflow {
                    plugin: &w.name,
                    events,
                }
                .emit(&w.metrics);
            }
        }
    }

    /// Hands a batch of process events to every plugin whose subscription
    /// wants some of them, like [`Self::route`].
    pub fn route_processes(&self, batch: Arc<Vec<ProcessEvent>>) {
        for w in &self.workers {
            let Some(picked) = pick_processes(&batch, &w.subscription) else {
                continue;
            };
            let Some(tx) = &w.tx else { continue };
            let events = picked.len();
            if !self.shared.send(tx, Msg::Processes(picked)) {
                PluginQueueOverflow {
                    plugin: &w.name,
                    events,
                }
                .emit(&w.metrics);
            }
        }
    }

    /// Sends a tick to every plugin whose queue has room (ticks carry no data).
    pub fn tick(&self, now: u64) {
        for w in &self.workers {
            if let Some(tx) = &w.tx {
                let _ = self.shared.send(tx, Msg::Tick(now));
            }
        }
    }

    /// Closes the queues and waits for the workers to finish what is queued,
    /// findings handed on meanwhile included.
    pub fn shutdown(mut self) {
        for w in &mut self.workers {
            w.tx = None;
        }
        // Only the workers add messages now (findings handed on, bounded by
        // the depth): once none is in flight, none can appear.
        self.shared.in_flight.wait_idle();
        self.shared.close();
        for w in &mut self.workers {
            if let Some(h) = w.handle.take() {
                let _ = h.join();
            }
        }
    }
}

impl Drop for WorkerPool {
    /// A pool dropped without [`shutdown`](Self::shutdown) still lets its
    /// workers end (they hold each other's queues otherwise).
    fn drop(&mut self) {
        self.shared.close();
    }
}

fn work(
    index: usize,
    mut runner: PluginRunner,
    rx: Receiver<Msg>,
    out: mpsc::Sender<PluginFinding>,
    shared: &Shared,
) {
    let plugin: Arc<str> = runner.name().into();
    let version: Arc<str> = runner.plugin().info.version.as_str().into();
    let mut open = true;
    while let Ok(msg) = rx.recv() {
        // Once the pipeline is gone nothing is worth computing, but the queue
        // is still emptied: shutdown waits for every queued message.
        if open {
            let outcome = match msg {
                Msg::Events(batch, at) => runner.deliver(&batch, at),
                Msg::Services(batch) => runner.on_service_events(&batch),
                Msg::Processes(batch) => runner.on_process_events(&batch),
                Msg::Tick(now) => runner.on_tick(now),
                Msg::Findings(batch) => runner.on_findings(&batch),
            };
            open = deliver(&mut runner, outcome, &plugin, &version, index, &out, shared);
        }
        shared.in_flight.done();
    }
}

/// Sends a call's findings to the delivery pipeline and hands them on;
/// false once the pipeline is gone.
fn deliver(
    runner: &mut PluginRunner,
    outcome: CallOutcome,
    plugin: &Arc<str>,
    version: &Arc<str>,
    index: usize,
    out: &mpsc::Sender<PluginFinding>,
    shared: &Shared,
) -> bool {
    let CallOutcome::Findings(fs) = outcome else {
        return true;
    };
    let depth = runner.last_depth();
    let hand_on = !fs.is_empty() && shared.others_receive(index) && runner.may_hand_on(fs.len());
    let mut fed = FedFindings::default();
    let time = runner.now();
    for finding in fs {
        let verdicts = runner.check(&finding);
        if hand_on {
            let by = Producer {
                plugin,
                version,
                node: &shared.node,
                time,
                depth,
            };
            fed.push(by, &finding, &verdicts);
        }
        let sent = out.send(PluginFinding {
            plugin: plugin.clone(),
            plugin_version: version.clone(),
            finding,
            verdicts,
            depth,
        });
        if sent.is_err() {
            return false;
        }
    }
    if !fed.is_empty() {
        shared.hand_on(index, fed);
    }
    true
}
