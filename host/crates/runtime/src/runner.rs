//! One plugin's lifecycle: instantiate and configure, call with limits,
//! and on a fault drop the poisoned instance, back off exponentially, and
//! disable the plugin after too many consecutive faults.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use wasmtime::component::Func;
use wasmtime::{Engine, Store, Trap};

use super::bindings::Detector;
use super::engine::{Epochs, HasStore};
use super::host_state::HostState;
use super::limits::MemoryCapExceeded;
use super::{LoadError, LoadedPlugin, RunContext, new_store};
use crate::feed::FedFindings;
use crate::internal_events::{
    PluginCallSkipped, PluginDisabled, PluginFaulted, PluginFindingsCapped,
    PluginFindingsDepthCapped, PluginLogsDropped,
};
use crate::routing::{Pick, RoutedBatch};
use crate::state::PluginState;
use vigil_core::metrics::PluginMetrics;
use vigil_core::model::{
    Event, EventBody, Finding, FindingEvent, Heartbeat, ProcessEvent, ProcessFilter, ServiceEvent,
    ServiceFilter, SubscriptionSet, Timestamp,
};
use vigil_core::subjects::{GENERATION_TTL, SubjectWindow, Verdict};
use vigil_core::subscription::Subscription;
use vigil_core::text::escape_control;

/// Why a call failed. The instance is discarded after any fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// The call ran past its deadline and was interrupted.
    #[error("exceeded its deadline of {deadline_ms} ms")]
    Deadline { deadline_ms: u64 },
    /// The plugin tried to grow its memory past the cap.
    #[error("{0}")]
    Memory(String),
    /// The plugin trapped (panic, unreachable, bad memory access …).
    #[error("trapped: {0}")]
    Trap(String),
    /// The plugin returned data the host does not accept.
    #[error("returned invalid data: {0}")]
    InvalidOutput(String),
    /// Re-instantiating or re-configuring the plugin failed.
    #[error("could not be re-instantiated: {0}")]
    Start(String),
}

/// The result of one call into a plugin.
#[derive(Debug)]
pub enum CallOutcome {
    /// The plugin answered; these are its (validated, capped) findings.
    Findings(Vec<Finding>),
    /// The plugin faulted; the batch is lost for this plugin (counted).
    Failed(Fault),
    /// The plugin was not called: backing off after a fault, or disabled.
    Skipped,
}

struct Live {
    /// Entered only through [`Epochs::bounded`].
    store: Store<HostState>,
    bindings: Detector,
    /// `on-packed-events`, when exported.
    packed: Option<Func>,
    /// `subscriptions`, when exported (WIT 0.1.2).
    subscriptions: Option<Func>,
    /// `correlate.on-findings`, when exported and granted.
    on_findings: Option<Func>,
    /// `packed-correlate.on-packed-findings` (WIT 0.1.5), when exported
    /// and `on_findings` is granted: called instead of it.
    packed_findings: Option<Func>,
    /// `services.service-subscription` and `services.on-service-events`,
    /// when exported (WIT 0.1.3).
    services: Option<(Func, Func)>,
    /// `processes.process-subscription` and `processes.on-process-events`,
    /// when exported (WIT 0.1.3).
    processes: Option<(Func, Func)>,
    /// `fleet.on-heartbeats`, when exported (WIT 0.1.3).
    on_heartbeats: Option<Func>,
}

impl HasStore for Live {
    type Data = HostState;
    fn store(&mut self) -> &mut Store<HostState> {
        &mut self.store
    }
}

/// Runs one plugin. Not shared between threads: each plugin has its own
/// runner, on its own worker.
pub struct PluginRunner {
    plugin: Arc<LoadedPlugin>,
    engine: Engine,
    /// Every call into the plugin runs under [`Epochs::bounded`].
    epochs: Epochs,
    ctx: RunContext,
    state: Arc<Mutex<PluginState>>,
    live: Option<Live>,
    consecutive: u32,
    retry_at: Option<Instant>,
    disabled: bool,
    metrics: Arc<PluginMetrics>,
    /// Reused encoding buffer of packed batches.
    packed_buf: Vec<u8>,
    /// The containers and pods of each event (and fed finding) handed to
    /// this plugin recently, by id: its findings' entities are checked
    /// against those of the events they cite.
    subjects: SubjectWindow,
    /// What it receives: its granted kinds, narrowed by its `subscriptions`
    /// (read once, at load).
    subscription: Subscription,
    /// The depth of the findings of the latest call (see [`crate::feed`]).
    depth: u32,
    /// The deepest finding handed to the plugin recently, and when.
    fed: Option<(u32, Instant)>,
}

impl PluginRunner {
    pub(super) fn new(
        engine: Engine,
        epochs: Epochs,
        plugin: Arc<LoadedPlugin>,
        state: Arc<Mutex<PluginState>>,
        ctx: RunContext,
    ) -> Self {
        let metrics = Arc::new(PluginMetrics::new(&plugin.info.name));
        let subscription = Subscription::everything(&plugin.kinds);
        Self {
            plugin,
            engine,
            epochs,
            ctx,
            state,
            live: None,
            consecutive: 0,
            retry_at: None,
            disabled: false,
            metrics,
            packed_buf: Vec::new(),
            subjects: SubjectWindow::default(),
            subscription,
            depth: 0,
            fed: None,
        }
    }

    /// What the plugin receives (its kinds and filters).
    pub fn subscription(&self) -> &Subscription {
        &self.subscription
    }

    /// The plugin this runner runs.
    pub fn plugin(&self) -> &LoadedPlugin {
        &self.plugin
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.plugin.info.name
    }

    /// This plugin's metrics.
    pub fn metrics(&self) -> &Arc<PluginMetrics> {
        &self.metrics
    }

    /// Shares metrics with a registry (call before the first batch).
    pub fn set_metrics(&mut self, metrics: Arc<PluginMetrics>) {
        self.metrics = metrics;
    }

    /// True once the plugin has been disabled after repeated faults.
    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// Whether the plugin gets events of this kind: it subscribes to it
    /// and its policy allows it.
    pub fn subscribes(&self, kind: vigil_core::model::EventKind) -> bool {
        self.plugin.kinds.contains(&kind)
    }

    /// First instantiation and `configure`, at load: refusal is a load
    /// error. Then the plugin's `subscriptions`, when it exports them: read
    /// once, after `configure` (they may follow the settings), and refused
    /// with every problem when invalid.
    pub(super) fn start(&mut self) -> Result<(), LoadError> {
        match self.instantiate() {
            Ok(mut live) => {
                if let Some(set) = self.read_subscriptions(&mut live)? {
                    self.subscription =
                        Subscription::new(&self.plugin.info.subscribes, &self.plugin.kinds, set)
                            .map_err(|source| LoadError::Subscription {
                                plugin: self.name().to_owned(),
                                source,
                            })?;
                }
                if let Some(filter) = self.read_service_filter(&mut live)? {
                    self.subscription = self
                        .subscription
                        .clone()
                        .with_services(&self.plugin.info.subscribes, filter)
                        .map_err(|source| LoadError::Subscription {
                            plugin: self.name().to_owned(),
                            source,
                        })?;
                    if self.subscription.services().is_none() {
                        tracing::warn!(
                            plugin = self.name(),
                            "plugin exports Swarm service events but plugins.policy.<name>.kinds withholds container events: it will not receive them"
                        );
                    }
                }
                if let Some(filter) = self.read_process_filter(&mut live)? {
                    self.subscription = self
                        .subscription
                        .clone()
                        .with_processes(&self.plugin.info.subscribes, filter)
                        .map_err(|source| LoadError::Subscription {
                            plugin: self.name().to_owned(),
                            source,
                        })?;
                    if self.subscription.processes().is_none() {
                        tracing::warn!(
                            plugin = self.name(),
                            "plugin exports process events but plugins.policy.<name>.kinds withholds container events: it will not receive them"
                        );
                    }
                }
                self.live = Some(live);
                Ok(())
            }
            Err(StartError::Settings(error)) => Err(LoadError::Settings {
                plugin: self.name().to_owned(),
                error,
            }),
            Err(StartError::Other(reason)) => Err(LoadError::Start {
                plugin: self.name().to_owned(),
                reason,
            }),
        }
    }

    fn read_subscriptions(&self, live: &mut Live) -> Result<Option<SubscriptionSet>, LoadError> {
        let Some(func) = live.subscriptions else {
            return Ok(None);
        };
        let limits = &self.plugin.limits;
        self.epochs
            .bounded(&mut live.store, limits.deadline_ms, |store| {
                func.typed::<(), (SubscriptionSet,)>(&*store)
                    .and_then(|f| f.call(store, ()))
            })
            .map(|(set,)| Some(set))
            .map_err(|e| LoadError::Start {
                plugin: self.name().to_owned(),
                reason: format!("subscriptions: {}", describe_error(&e, limits.deadline_ms)),
            })
    }

    /// The plugin's `services.service-subscription` (WIT 0.1.3), when it
    /// exports Swarm events: read once, at load, like `subscriptions`.
    fn read_service_filter(&self, live: &mut Live) -> Result<Option<ServiceFilter>, LoadError> {
        let func = live.services.map(|(f, _)| f);
        self.read_side_filter(live, func, "services.service-subscription")
    }

    /// The plugin's `processes.process-subscription` (WIT 0.1.3), when it
    /// exports process events: read once, at load, like `subscriptions`.
    fn read_process_filter(&self, live: &mut Live) -> Result<Option<ProcessFilter>, LoadError> {
        let func = live.processes.map(|(f, _)| f);
        self.read_side_filter(live, func, "processes.process-subscription")
    }

    /// Calls a side export's filter function `func` (named `what` in the
    /// error), under the plugin's deadline.
    fn read_side_filter<F>(
        &self,
        live: &mut Live,
        func: Option<Func>,
        what: &str,
    ) -> Result<Option<F>, LoadError>
    where
        F: wasmtime::component::ComponentType + wasmtime::component::Lift + Send + Sync + 'static,
    {
        let Some(func) = func else {
            return Ok(None);
        };
        let limits = &self.plugin.limits;
        self.epochs
            .bounded(&mut live.store, limits.deadline_ms, |store| {
                func.typed::<(), (F,)>(&*store)
                    .and_then(|f| f.call(store, ()))
            })
            .map(|(filter,)| Some(filter))
            .map_err(|e| LoadError::Start {
                plugin: self.name().to_owned(),
                reason: format!("{what}: {}", describe_error(&e, limits.deadline_ms)),
            })
    }

    fn instantiate(&mut self) -> Result<Live, StartError> {
        let limits = &self.plugin.limits;
        let mut store = new_store(
            &self.engine,
            self.plugin.info.name.as_str().into(),
            self.state.clone(),
            &self.ctx,
            limits,
        );
        let start_error = |e: wasmtime::Error| {
            StartError::Other(describe_error(&e, limits.deadline_ms).to_string())
        };
        let instance = self
            .epochs
            .bounded(&mut store, limits.deadline_ms, |store| {
                self.plugin.pre.instance_pre().instantiate(store)
            })
            .map_err(start_error)?;
        let bindings = Detector::new(&mut store, &instance).map_err(start_error)?;
        let packed = self
            .plugin
            .packed
            .as_ref()
            .and_then(|idx| instance.get_func(&mut store, idx));
        let subscriptions = self
            .plugin
            .subscriptions
            .as_ref()
            .and_then(|idx| instance.get_func(&mut store, idx));
        let services = side_funcs(
            &instance,
            &mut store,
            self.plugin.services,
            "services",
            |f, store| {
                f.typed::<(&[ServiceEvent],), (Vec<Finding>,)>(store)
                    .map(drop)
                    .map_err(|e| {
                        format!(
                            "services.on-service-events does not match the WIT: {}",
                            error_reason(&e)
                        )
                    })
            },
        )?;
        let processes = side_funcs(
            &instance,
            &mut store,
            self.plugin.processes,
            "processes",
            |f, store| {
                f.typed::<(&[ProcessEvent],), (Vec<Finding>,)>(store)
                    .map(drop)
                    .map_err(|e| {
                        format!(
                            "processes.on-process-events does not match the WIT: {}",
                            error_reason(&e)
                        )
                    })
            },
        )?;
        let on_findings = match self.plugin.on_findings.as_ref() {
            None => None,
            Some(idx) => {
                let func = instance.get_func(&mut store, idx).ok_or_else(|| {
                    StartError::Other("correlate.on-findings is not a function".into())
                })?;
                func.typed::<(&[FindingEvent],), (Vec<Finding>,)>(&store)
                    .map_err(|e| {
                        StartError::Other(format!(
                            "correlate.on-findings does not match the WIT: {}",
                            error_reason(&e)
                        ))
                    })?;
                Some(func)
            }
        };
        let packed_findings = match self.plugin.packed_findings.as_ref() {
            None => None,
            Some(idx) => {
                let func = instance.get_func(&mut store, idx).ok_or_else(|| {
                    StartError::Other(
                        "packed-correlate.on-packed-findings is not a function".into(),
                    )
                })?;
                func.typed::<(&[u8],), (Vec<Finding>,)>(&store)
                    .map_err(|e| {
                        StartError::Other(format!(
                            "packed-correlate.on-packed-findings does not match the WIT: {}",
                            error_reason(&e)
                        ))
                    })?;
                Some(func)
            }
        };
        let on_heartbeats = match self.plugin.on_heartbeats.as_ref() {
            None => None,
            Some(idx) => {
                let func = instance.get_func(&mut store, idx).ok_or_else(|| {
                    StartError::Other("fleet.on-heartbeats is not a function".into())
                })?;
                func.typed::<(&[Heartbeat],), (Vec<Finding>,)>(&store)
                    .map_err(|e| {
                        StartError::Other(format!(
                            "fleet.on-heartbeats does not match the WIT: {}",
                            error_reason(&e)
                        ))
                    })?;
                Some(func)
            }
        };
        let configured = self
            .epochs
            .bounded(&mut store, limits.deadline_ms, |store| {
                bindings.call_configure(store, &self.plugin.settings)
            });
        match configured {
            Ok(Ok(())) => Ok(Live {
                store,
                bindings,
                packed,
                subscriptions,
                on_findings,
                packed_findings,
                services,
                processes,
                on_heartbeats,
            }),
            Ok(Err(e)) => Err(StartError::Settings(e)),
            Err(e) => Err(StartError::Other(format!(
                "configure: {}",
                describe_error(&e, limits.deadline_ms)
            ))),
        }
    }

    /// Runs what this plugin picked of a routed batch (`index`: its place
    /// in the routes the batch was routed with). A plugin that picked
    /// nothing is not called: no findings, nothing counted.
    pub fn deliver(&mut self, batch: &RoutedBatch, index: usize) -> CallOutcome {
        match batch.pick(index) {
            Pick::Nothing => CallOutcome::Findings(Vec::new()),
            Pick::All => {
                let events = batch.events();
                match batch.packed().whole() {
                    Some(bytes) if self.plugin.takes_packed() => {
                        self.call_packed(events.iter(), events.len(), bytes)
                    }
                    _ => self.on_events(events),
                }
            }
            Pick::Some(picks) => {
                let events = batch.events();
                if self.plugin.takes_packed() {
                    let mut buf = std::mem::take(&mut self.packed_buf);
                    batch.packed().assemble(picks, &mut buf);
                    let shown = picks.iter().map(|&(i, _)| &events[i as usize]);
                    let outcome = self.call_packed(shown, picks.len(), &buf);
                    self.packed_buf = buf;
                    outcome
                } else {
                    let subset: Vec<Event> = picks
                        .iter()
                        .map(|&(i, without_pod)| {
                            let mut e = events[i as usize].clone();
                            if without_pod && let EventBody::Kubernetes(k) = &mut e.body {
                                k.pod = None;
                            }
                            e
                        })
                        .collect();
                    self.on_events(&subset)
                }
            }
        }
    }

    /// Calls `on-packed-events` with `bytes`, the packed form of `shown`
    /// (`count` events).
    fn call_packed<'a>(
        &mut self,
        shown: impl IntoIterator<Item = &'a Event>,
        count: usize,
        bytes: &[u8],
    ) -> CallOutcome {
        self.depth = self.outside_depth();
        PluginMetrics::add(&self.metrics.counters.events, count as u64);
        if !self.disabled {
            self.subjects.record(shown);
        }
        self.invoke(count, |live| match &live.packed {
            Some(f) => f
                .typed::<(&[u8],), (Vec<Finding>,)>(&live.store)
                .and_then(|f| f.call(&mut live.store, (bytes,)))
                .map(|(findings,)| findings),
            // A component loaded as packed has the export in every
            // instance; never guess another batch for it.
            None => Err(wasmtime::Error::msg("the instance has no on-packed-events")),
        })
    }

    /// Whether the plugin receives other plugins' findings (`correlate`).
    pub fn takes_findings(&self) -> bool {
        self.plugin.takes_findings()
    }

    /// Whether the plugin receives the nodes' heartbeats (exports `fleet`).
    pub fn takes_heartbeats(&self) -> bool {
        self.plugin.takes_heartbeats()
    }

    /// The depth of the findings the latest call returned (see [`crate::feed`]).
    pub fn last_depth(&self) -> u32 {
        self.depth
    }

    /// The current time on the host's clock (the replay clock in a replay).
    pub fn now(&self) -> Timestamp {
        self.ctx.clock.now()
    }

    /// Whether findings of the latest call's depth may be handed on; when
    /// not, `n` findings are counted as held back by the depth bound.
    pub fn may_hand_on(&self, n: usize) -> bool {
        let max = self.plugin.limits.max_finding_depth;
        if self.depth < max {
            return true;
        }
        if n > 0 {
            PluginFindingsDepthCapped {
                plugin: self.name(),
                findings: n,
                depth: self.depth,
                max,
            }
            .emit(&self.metrics);
        }
        false
    }

    /// The depth of findings made outside `on-findings`: one deeper than
    /// the deepest finding handed to the plugin recently (so a plugin cannot
    /// reset the depth by re-emitting on a tick), else 0.
    fn outside_depth(&self) -> u32 {
        self.recently_fed().map_or(0, |d| d + 1)
    }

    /// The deepest finding handed to the plugin within the subject window's
    /// span (two generations).
    fn recently_fed(&self) -> Option<u32> {
        self.fed
            .filter(|(_, at)| at.elapsed() < GENERATION_TTL.saturating_mul(2))
            .map(|(d, _)| d)
    }

    /// Hands the plugin a batch of other plugins' findings (`correlate`).
    pub fn on_findings(&mut self, batch: &FedFindings) -> CallOutcome {
        let n = batch.len();
        PluginMetrics::add(&self.metrics.counters.findings_received, n as u64);
        if !self.disabled {
            // Only what the host verified for the reporting plugin becomes
            // nameable by this one.
            self.subjects
                .record_findings(batch.events.iter().zip(&batch.verdicts).map(|(e, vs)| {
                    (
                        e.id.as_str(),
                        e.finding.entities.iter().map(|en| en.kind).zip(vs.iter()),
                    )
                }));
        }
        let deepest = batch.max_depth();
        let prior = self.recently_fed().unwrap_or(0);
        self.fed = Some((prior.max(deepest), Instant::now()));
        self.depth = deepest + 1;
        if self.plugin.takes_packed_findings() {
            let mut buf = std::mem::take(&mut self.packed_buf);
            vigil_core::model::packed::encode_findings(&batch.events, &mut buf);
            let outcome = self.invoke(n, |live| match &live.packed_findings {
                Some(f) => f
                    .typed::<(&[u8],), (Vec<Finding>,)>(&live.store)
                    .and_then(|f| f.call(&mut live.store, (&buf,)))
                    .map(|(findings,)| findings),
                None => Ok(Vec::new()),
            });
            self.packed_buf = buf;
            return outcome;
        }
        self.invoke(n, |live| match &live.on_findings {
            Some(f) => f
                .typed::<(&[FindingEvent],), (Vec<Finding>,)>(&live.store)
                .and_then(|f| f.call(&mut live.store, (batch.events.as_slice(),)))
                .map(|(findings,)| findings),
            None => Ok(Vec::new()),
        })
    }

    /// Runs exactly `batch` through the plugin, whatever its subscription
    /// (benchmarks, parity tests): packed when the plugin takes it.
    pub fn on_events(&mut self, batch: &[Event]) -> CallOutcome {
        self.depth = self.outside_depth();
        PluginMetrics::add(&self.metrics.counters.events, batch.len() as u64);
        // Before the call: what the plugin is shown is what it may name, even
        // if this call faults and a later one reports on it.
        if !self.disabled {
            self.subjects.record(batch);
        }
        if self.plugin.takes_packed() {
            let mut buf = std::mem::take(&mut self.packed_buf);
            vigil_core::model::packed::encode_batch(batch, &mut buf);
            let outcome = self.invoke(batch.len(), |live| match &live.packed {
                Some(f) => f
                    .typed::<(&[u8],), (Vec<Finding>,)>(&live.store)
                    .and_then(|f| f.call(&mut live.store, (&buf,)))
                    .map(|(findings,)| findings),
                None => live.bindings.call_on_events(&mut live.store, batch),
            });
            self.packed_buf = buf;
            outcome
        } else {
            self.invoke(batch.len(), |live| {
                live.bindings.call_on_events(&mut live.store, batch)
            })
        }
    }

    /// Runs exactly `batch`, Docker Swarm events already picked by the
    /// plugin's subscription ([`crate::routing::pick_services`]), through
    /// its `services.on-service-events` (WIT 0.1.3). A plugin that does not
    /// receive them is not called. The signature was checked when the
    /// instance started, so an export of another shape never gets here.
    pub fn on_service_events(&mut self, batch: &[ServiceEvent]) -> CallOutcome {
        if batch.is_empty() || self.subscription.services().is_none() {
            return CallOutcome::Findings(Vec::new());
        }
        self.depth = self.outside_depth();
        PluginMetrics::add(&self.metrics.counters.events, batch.len() as u64);
        self.invoke(batch.len(), |live| match &live.services {
            Some((_, f)) => f
                .typed::<(&[ServiceEvent],), (Vec<Finding>,)>(&live.store)
                .and_then(|f| f.call(&mut live.store, (batch,)))
                .map(|(findings,)| findings),
            // A component loaded with the export has it in every instance.
            None => Err(wasmtime::Error::msg(
                "the instance has no on-service-events",
            )),
        })
    }

    /// Runs exactly `batch`, process events already picked by the plugin's
    /// subscription ([`crate::routing::pick_processes`]), through its
    /// `processes.on-process-events` (WIT 0.1.3). A plugin that does not
    /// receive them is not called. Their containers count as shown to the
    /// plugin, so its findings about them verify.
    pub fn on_process_events(&mut self, batch: &[ProcessEvent]) -> CallOutcome {
        if batch.is_empty() || self.subscription.processes().is_none() {
            return CallOutcome::Findings(Vec::new());
        }
        self.depth = self.outside_depth();
        PluginMetrics::add(&self.metrics.counters.events, batch.len() as u64);
        self.subjects.record_processes(batch);
        self.invoke(batch.len(), |live| match &live.processes {
            Some((_, f)) => f
                .typed::<(&[ProcessEvent],), (Vec<Finding>,)>(&live.store)
                .and_then(|f| f.call(&mut live.store, (batch,)))
                .map(|(findings,)| findings),
            // A component loaded with the export has it in every instance.
            None => Err(wasmtime::Error::msg(
                "the instance has no on-process-events",
            )),
        })
    }

    /// Hands a fleet rule the nodes' heartbeats (`fleet.on-heartbeats`, WIT
    /// 0.1.3); only `vigil fleet` calls this. A plugin that does not export
    /// `fleet` is not called. A heartbeat shows no container or pod, so
    /// nothing becomes nameable by it.
    pub fn on_heartbeats(&mut self, batch: &[Heartbeat]) -> CallOutcome {
        if batch.is_empty() || !self.plugin.takes_heartbeats() {
            return CallOutcome::Findings(Vec::new());
        }
        self.depth = self.outside_depth();
        PluginMetrics::add(&self.metrics.counters.events, batch.len() as u64);
        self.invoke(batch.len(), |live| match &live.on_heartbeats {
            Some(f) => f
                .typed::<(&[Heartbeat],), (Vec<Finding>,)>(&live.store)
                .and_then(|f| f.call(&mut live.store, (batch,)))
                .map(|(findings,)| findings),
            // A component loaded with the export has it in every instance.
            None => Err(wasmtime::Error::msg("the instance has no on-heartbeats")),
        })
    }

    /// The host's verdict on each entity of one of this plugin's findings:
    /// whether it is a container or pod that an event the finding cites
    /// (handed to this plugin recently) is about, and its full id (see
    /// [`vigil_core::subjects`]).
    pub fn check(&mut self, finding: &Finding) -> Vec<Verdict> {
        self.subjects.check(finding)
    }

    /// Gives the plugin a tick.
    pub fn on_tick(&mut self, now: Timestamp) -> CallOutcome {
        self.depth = self.outside_depth();
        self.invoke(0, |live| live.bindings.call_on_tick(&mut live.store, now))
    }

    fn invoke(
        &mut self,
        events: usize,
        call: impl FnOnce(&mut Live) -> wasmtime::Result<Vec<Finding>>,
    ) -> CallOutcome {
        if self.disabled {
            PluginCallSkipped {
                plugin: self.name(),
                events,
                disabled: true,
            }
            .emit(&self.metrics);
            return CallOutcome::Skipped;
        }
        if self.live.is_none() {
            if self.retry_at.is_some_and(|t| Instant::now() < t) {
                PluginCallSkipped {
                    plugin: self.name(),
                    events,
                    disabled: false,
                }
                .emit(&self.metrics);
                return CallOutcome::Skipped;
            }
            match self.instantiate() {
                Ok(live) => {
                    PluginMetrics::add(&self.metrics.counters.restarts, 1);
                    tracing::info!(plugin = self.name(), "plugin re-instantiated after a fault");
                    self.live = Some(live);
                }
                Err(StartError::Settings(e)) => {
                    return self.fault(Fault::Start(format!("settings refused: {e}")), events);
                }
                Err(StartError::Other(reason)) => return self.fault(Fault::Start(reason), events),
            }
        }
        let limits = &self.plugin.limits;
        let Some(live) = self.live.as_mut() else {
            return CallOutcome::Skipped;
        };
        live.store.data_mut().log_budget = limits.max_log_records_per_call;
        let started = Instant::now();
        let result = self.epochs.bounded(live, limits.deadline_ms, call);
        self.metrics.latency.observe(started.elapsed());
        let data = live.store.data_mut();
        let (logs_dropped, refusals) = (
            std::mem::take(&mut data.logs_dropped),
            std::mem::take(&mut data.state_refusals),
        );
        if logs_dropped > 0 {
            PluginLogsDropped {
                plugin: self.name(),
                dropped: logs_dropped,
            }
            .emit(&self.metrics);
        }
        PluginMetrics::add(&self.metrics.counters.state_refusals, refusals);
        if let Err(e) = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
        {
            tracing::error!(plugin = self.name(), error = %e, "cannot persist plugin state");
        }
        match result {
            Ok(findings) => match self.accept(findings) {
                Ok(findings) => {
                    self.consecutive = 0;
                    PluginMetrics::add(&self.metrics.counters.calls_ok, 1);
                    PluginMetrics::add(&self.metrics.counters.findings, findings.len() as u64);
                    CallOutcome::Findings(findings)
                }
                Err(reason) => self.fault(Fault::InvalidOutput(reason), events),
            },
            Err(e) => {
                let fault = describe_error(&e, self.plugin.limits.deadline_ms);
                self.fault(fault, events)
            }
        }
    }

    fn fault(&mut self, fault: Fault, events: usize) -> CallOutcome {
        // After any fault the instance may be poisoned: never reuse it.
        self.live = None;
        self.consecutive += 1;
        let retry_in = self.plugin.limits.backoff(self.consecutive);
        PluginFaulted {
            plugin: self.name(),
            fault: &fault,
            events,
            consecutive: self.consecutive,
            retry_in,
        }
        .emit(&self.metrics);
        if self.consecutive >= self.plugin.limits.max_consecutive_faults {
            self.disabled = true;
            PluginDisabled {
                plugin: self.name(),
                consecutive: self.consecutive,
                last: &fault,
            }
            .emit(&self.metrics);
        } else {
            self.retry_at = Some(Instant::now() + retry_in);
        }
        CallOutcome::Failed(fault)
    }

    fn accept(&self, mut findings: Vec<Finding>) -> Result<Vec<Finding>, String> {
        let limits = &self.plugin.limits;
        if findings.len() > limits.max_findings_per_batch {
            PluginFindingsCapped {
                plugin: self.name(),
                returned: findings.len(),
                kept: limits.max_findings_per_batch,
            }
            .emit(&self.metrics);
            findings.truncate(limits.max_findings_per_batch);
        }
        let prefix = format!("{}/", self.plugin.info.name);
        for f in &findings {
            if !f.rule_id.starts_with(&prefix)
                || f.rule_id.len() == prefix.len()
                || f.rule_id.len() > 128
            {
                return Err(format!(
                    "rule id {:?} must be `{prefix}<rule>` (at most 128 bytes)",
                    trunc(&f.rule_id)
                ));
            }
            if f.rule_id.bytes().any(|b| b.is_ascii_control() || b == b' ') {
                return Err(format!(
                    "rule id {:?} contains spaces or control characters",
                    trunc(&f.rule_id)
                ));
            }
            if f.title.trim().is_empty() {
                return Err(format!("finding {} has an empty title", f.rule_id));
            }
            let size = finding_size(f);
            if size > limits.max_finding_bytes {
                return Err(format!(
                    "finding {} is {size} bytes, over the cap of {}",
                    f.rule_id, limits.max_finding_bytes
                ));
            }
        }
        Ok(findings)
    }
}

enum StartError {
    Settings(vigil_core::model::ConfigError),
    Other(String),
}

fn trunc(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Sum of a finding's string bytes: what it costs downstream.
pub fn finding_size(f: &Finding) -> usize {
    f.rule_id.len()
        + f.title.len()
        + f.summary.len()
        + f.techniques.iter().map(String::len).sum::<usize>()
        + f.entities
            .iter()
            .map(|e| e.id.len() + e.name.len())
            .sum::<usize>()
        + f.evidence
            .iter()
            .map(|kv| kv.key.len() + kv.value.len())
            .sum::<usize>()
        + f.event_ids.iter().map(String::len).sum::<usize>()
}

/// At most this many bytes of a fault's reason (escaped text).
const FAULT_REASON_BYTES: usize = 1024;

/// The fault an error of a call stands for, classified by what is anywhere in
/// its chain (the root cause, typically, under wasmtime's backtrace context).
fn describe_error(e: &wasmtime::Error, deadline_ms: u64) -> Fault {
    if let Some(cap) = find_in_chain::<MemoryCapExceeded>(e) {
        return Fault::Memory(cap.to_string());
    }
    match find_in_chain::<Trap>(e) {
        Some(Trap::Interrupt) => Fault::Deadline { deadline_ms },
        _ => Fault::Trap(error_reason(e)),
    }
}

fn find_in_chain<T>(e: &wasmtime::Error) -> Option<&T>
where
    T: std::error::Error + Send + Sync + 'static,
{
    e.downcast_ref::<T>()
        .or_else(|| e.chain().find_map(|c| c.downcast_ref::<T>()))
}

/// The error's chain down to its root cause, `outer: …: root`, escaped and
/// bounded: wasmtime's messages carry names taken from the plugin's binary.
///
/// wasmtime puts the call's backtrace on top of the chain as a multi-line
/// message ("error while executing at wasm backtrace: …"): it is left out,
/// except for the innermost function with a name, so the line says where.
pub(crate) fn error_reason(e: &wasmtime::Error) -> String {
    // The chain yields contexts wrapped, so the backtrace is recognised by
    // its text.
    let backtrace = e.downcast_ref::<wasmtime::WasmBacktrace>();
    let backtrace_text = backtrace.map(ToString::to_string);
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if Some(&text) == backtrace_text.as_ref() {
            continue;
        }
        // A context repeated by its cause (or an empty one) adds nothing.
        if !text.is_empty() && parts.last().is_none_or(|last| *last != text) {
            parts.push(text);
        }
    }
    if parts.is_empty() {
        parts.push(first_line(e));
    }
    let mut reason = parts.join(": ");
    let innermost = backtrace.and_then(|bt| bt.frames().iter().find_map(|f| f.func_name()));
    if let Some(func) = innermost {
        reason.push_str(&format!(" (in wasm function {func})"));
    }
    escape_control(&reason, FAULT_REASON_BYTES).into_owned()
}

fn first_line(e: &wasmtime::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_owned()
}

/// The two functions of a side export (`services`, `processes`: a filter
/// and a batch call) in a new instance, the batch call checked against the
/// WIT by `check` (each export has its own event type); `None` when the
/// plugin does not export it.
fn side_funcs(
    instance: &wasmtime::component::Instance,
    store: &mut Store<HostState>,
    export: Option<super::ServicesExport>,
    iface: &str,
    check: impl FnOnce(Func, &Store<HostState>) -> Result<(), String>,
) -> Result<Option<(Func, Func)>, StartError> {
    let Some(export) = export else {
        return Ok(None);
    };
    let funcs = instance
        .get_func(&mut *store, export.subscription)
        .zip(instance.get_func(&mut *store, export.on_events))
        .ok_or_else(|| StartError::Other(format!("the `{iface}` export has no functions")))?;
    check(funcs.1, store).map_err(StartError::Other)?;
    Ok(Some(funcs))
}
