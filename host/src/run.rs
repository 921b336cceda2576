//! `vigil run`: the host on this machine's live sources. Sources feed a
//! bounded queue; the [`pipeline`] groups events per kind and routes them
//! to one worker per plugin; findings go to the delivery pipeline
//! ([`vigil_delivery`]: monitor mode, suppression, dedup, the durable
//! spool, the outputs), which hands each one that passed, once it is in
//! the spool, to the [`Responder`] (quarantine, when `response.mode` is not
//! `off`).
//! The admin endpoint serves metrics and probes; SIGHUP or a change of the
//! config file or plugin directory reloads plugins and sources ([`reload`]).
//! The threat-intel feed files are polled on their own thread and reloaded
//! when they change ([`vigil_runtime::intel::reload`]); a config reload that changes
//! `[intel]` restarts that poller on the new feeds.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, RwLock, mpsc as std_mpsc};
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

mod events_out;
pub mod heartbeat;
mod pipeline;
pub mod reload;

use crate::cli::RunArgs;
use crate::config::{IntelConfig, VigilConfig, overrides};
use crate::timeline::{Persister, RecordingResponder};
use pipeline::Pipeline;
use reload::{Candidate, FileWatch, Fingerprint};
use vigil_core::metrics::{PluginMetrics, Registry};
use vigil_core::model::Batch;
use vigil_core::time::wall_now;
use vigil_core::timeline::{Limits, Timeline};
use vigil_delivery::Delivery;
use vigil_response::Responder;
use vigil_runtime::intel::reload::ReloaderHandle;
use vigil_runtime::plugin_set;
use vigil_runtime::workers::{PluginFinding, WorkerPool};
use vigil_runtime::{Clock, EngineSettings, PluginRunner, RunContext, Runtime};
use vigil_sources::RunningSource;

/// How long shutdown waits for the sources to stop (and for their last
/// events), in all.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How often plugins get `on-tick`.
const TICK: Duration = Duration::from_secs(1);

/// Batches each plugin's queue holds.
const WORKER_QUEUE: usize = 64;

/// The configuration `vigil run` uses: the file (or the embedded defaults),
/// then the flags, then validation of the whole.
pub fn load_config(args: &RunArgs) -> anyhow::Result<VigilConfig> {
    let mut config = match &args.config {
        Some(path) => crate::config::load_file(path)?,
        None => VigilConfig::default(),
    };
    overrides::apply(&mut config, args)?;
    let data_dir = config.data_dir.clone();
    config.sources.resolve(&data_dir);
    config.check()?;
    Ok(config)
}

/// Runs the host until SIGINT or SIGTERM.
pub fn run(args: RunArgs, config: VigilConfig) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // On a worker thread, not in `block_on`: the pipeline blocks in place
    // while a reload drains the plugin workers.
    rt.block_on(async move {
        tokio::spawn(run_async(args, config))
            .await
            .context("the main task failed")?
    })
}

/// Everything the main loop owns.
struct Host {
    args: RunArgs,
    config: VigilConfig,
    node: Arc<str>,
    runtime: Runtime,
    ctx: RunContext,
    registry: Arc<Registry>,
    responder: Responder,
    findings: std_mpsc::Sender<PluginFinding>,
    sources: Vec<RunningSource>,
    events: mpsc::Sender<Batch>,
    /// Suppression, dedup, the spool and the outputs.
    delivery: Delivery,
    /// Plugins and sources as the heartbeat reports them.
    status: heartbeat::SharedStatus,
    /// Polls the threat-intel feed files; `None` when there is none to
    /// poll (no feed, or `intel.poll_interval_ms = 0`).
    intel_reloader: Option<ReloaderHandle>,
    /// The per-entity history (`None` when `[timeline]` is off).
    timeline: Option<Arc<Timeline>>,
}

async fn run_async(args: RunArgs, config: VigilConfig) -> anyhow::Result<ExitCode> {
    let node: Arc<str> = config.node_name().into();
    prepare_dir(&config.data_dir)?;
    let registry = Arc::new(Registry::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let timeline = config
        .timeline
        .enabled
        .then(|| Arc::new(Timeline::new(&config.timeline, registry.timeline.clone())));
    let persister = timeline
        .as_ref()
        .map(|t| Arc::new(Persister::new(t.clone(), &config.data_dir)));
    if let Some(p) = &persister {
        tokio::task::block_in_place(|| p.restore());
    }
    if config.admin.enabled
        && let Some(addr) = config.admin.addr()
    {
        // Not fatal: detection goes on without metrics (a taken port must not
        // stop the agent); the probes then fail, which makes it visible.
        let state = crate::admin::AdminState {
            registry: registry.clone(),
            timeline: timeline.clone(),
        };
        match crate::admin::start(addr, state, stop_rx.clone()) {
            Ok(bound) => {
                tracing::info!(address = %bound, "admin endpoint: listening (/metrics, /healthz, /readyz, /timeline)")
            }
            Err(e) => {
                tracing::error!(error = %vigil_core::error::chain(&e), "admin endpoint: off")
            }
        }
    }
    let cache = config.plugins.cache_dir(&config.data_dir);
    let runtime = Runtime::new(&EngineSettings::default(), cache.as_deref())?;
    let intel = reload::load_intel(&config.intel)?;
    registry
        .intel
        .entries
        .store(intel.len() as u64, Ordering::Relaxed);
    let ctx = RunContext {
        clock: Clock::Wall,
        intel: Arc::new(RwLock::new(Arc::new(intel))),
        state_dir: Some(config.data_dir.join("state")),
    };
    let intel_reloader = ReloaderHandle::start(&config.intel, &ctx.intel, &registry.intel)
        .context("cannot start the threat-intel reloader")?;
    let selection = config.plugins.selection();
    let unknown = plugin_set::unknown_names(&selection);
    if !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(ToString::to_string).collect();
        anyhow::bail!("{}", list.join("; "));
    }
    let (runners, refused) = plugin_set::load(&runtime, &selection, &ctx);
    if runners.is_empty() {
        anyhow::bail!("no plugin could be loaded ({} refused)", refused.len());
    }
    let names = plugin_names(&runners);
    let digests = plugin_digests(&runners);

    let responder = Responder::start(
        config.response.clone(),
        config.data_dir.clone(),
        &node,
        registry.clone(),
        timeline.clone(),
    )?;
    responder.permit_plugins(may_respond(&runners));
    let (ftx, frx) = std_mpsc::channel::<PluginFinding>();
    // Outputs and the spool before the plugins: findings a previous run
    // left undelivered go out while the sources start.
    let delivery = Delivery::start(
        &config.delivery(),
        &config.data_dir,
        &node,
        frx,
        registry.clone(),
        &tokio::runtime::Handle::current(),
        Some(Box::new(RecordingResponder {
            timeline: timeline.clone(),
            responder: responder.handle(),
        })),
    )?;
    let pool = start_pool(&node, runners, &registry, &ftx);

    let events_out = args
        .emit_events
        .as_deref()
        .map(events_out::EventsOut::create)
        .transpose()?;
    let (etx, mut erx) = mpsc::channel::<Batch>(1024);
    let sources = config.sources.start_all(&node, &etx, &registry);
    let started: Vec<&'static str> = sources.iter().map(|s| s.name).collect();
    registry
        .gauges
        .sources
        .store(sources.len() as u64, Ordering::Relaxed);
    registry.gauges.ready.store(true, Ordering::Relaxed);
    let status = heartbeat::SharedStatus::default();
    *status.lock().unwrap_or_else(PoisonError::into_inner) = heartbeat::Status {
        plugins: digests,
        sources: source_status(&sources),
    };
    // Validation made sure an `[[outputs.nats]]` exists when enabled; a
    // change of `[heartbeat]` takes a restart.
    if config.heartbeat.enabled
        && let Some(nats) = config.outputs.nats.first()
    {
        tokio::spawn(heartbeat::run(
            config.heartbeat.clone(),
            nats.clone(),
            node.clone(),
            status.clone(),
            registry.clone(),
            stop_rx.clone(),
        ));
    }

    if let Some(p) = &persister {
        tokio::spawn(timeline_upkeep(
            p.clone(),
            config.timeline.persist_interval_secs,
            registry.timeline.clone(),
            stop_rx.clone(),
        ));
    }

    let mut host = Host {
        timeline: timeline.clone(),
        status,
        args,
        config,
        node,
        runtime,
        ctx,
        registry,
        responder,
        findings: ftx,
        sources,
        events: etx,
        intel_reloader,
        delivery,
    };
    let mut pipeline = Pipeline::new(pool, events_out, timeline, host.registry.host.clone());
    let (reload_tx, mut reload_rx) = mpsc::channel::<()>(1);
    let mut file_watch = host.watch(&reload_tx);
    let mut fingerprint = host.fingerprint();
    // Once the files are watched: a change made after this line reloads.
    tracing::info!(node = %host.node, plugins = ?names, sources = ?started, "vigil running");
    let mut reload_at: Option<tokio::time::Instant> = None;

    let mut tick = tokio::time::interval(TICK);
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            batch = erx.recv() => {
                // `host.events` keeps the queue open: never `None` here.
                let Some(batch) = batch else { break };
                pipeline.push(batch);
            }
            _ = tokio::time::sleep_until(pipeline.flush_at.unwrap_or_else(tokio::time::Instant::now)), if pipeline.flush_at.is_some() => {
                pipeline.flush();
            }
            _ = tick.tick() => pipeline.tick(wall_now()),
            _ = sighup.recv() => {
                tracing::info!("SIGHUP: reloading");
                host.reload(&mut pipeline, &mut erx).await;
                fingerprint = host.fingerprint();
                file_watch = host.watch(&reload_tx);
            }
            Some(()) = reload_rx.recv() => {
                reload_at = Some(tokio::time::Instant::now() + reload::DEBOUNCE);
            }
            _ = tokio::time::sleep_until(reload_at.unwrap_or_else(tokio::time::Instant::now)), if reload_at.is_some() => {
                reload_at = None;
                let now = host.fingerprint();
                if now != fingerprint {
                    tracing::info!("config file or plugin directory changed: reloading");
                    host.reload(&mut pipeline, &mut erx).await;
                    fingerprint = host.fingerprint();
                    file_watch = host.watch(&reload_tx);
                }
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
        }
    }
    tracing::info!("shutting down");
    drop(file_watch);
    drop(host.intel_reloader.take());
    host.registry.gauges.ready.store(false, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    let Host {
        sources,
        findings,
        events,
        responder,
        delivery,
        registry,
        ..
    } = host;
    // Each source is stopped while the queue is still read, and has ended
    // (its last events queued, the audit log's position saved) before the
    // queue is emptied into the plugins: what a source recorded as
    // delivered is processed. Bounded, so that a source that does not stop
    // does not hold the host: it is left behind, logged.
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    for s in sources {
        let name = s.name;
        let stopping = stop_draining(s, &mut pipeline, &mut erx);
        if tokio::time::timeout_at(deadline, stopping).await.is_err() {
            tracing::warn!(
                source = name,
                "source did not stop within {} s: its last events may be lost",
                SHUTDOWN_GRACE.as_secs()
            );
        }
    }
    drop(events);
    while let Ok(batch) = erx.try_recv() {
        pipeline.push(batch);
    }
    pipeline.finish();
    drop(findings);
    // The intake ends once the plugins' findings are all in the spool (and
    // handed to the responder); the outputs get their grace period.
    tokio::task::block_in_place(|| delivery.shutdown());
    responder.shutdown();
    // Last: the findings of the final events are in.
    if let Some(p) = persister {
        tokio::task::block_in_place(|| p.save(&registry.timeline));
    }
    Ok(ExitCode::SUCCESS)
}

/// Stops a source while still taking events from the queue: a source
/// blocked on a full queue must be able to send, see the stop and end.
async fn stop_draining(
    source: RunningSource,
    pipeline: &mut Pipeline,
    erx: &mut mpsc::Receiver<Batch>,
) {
    let stop = source.stop();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            Some(batch) = erx.recv() => pipeline.push(batch),
        }
    }
}

impl Host {
    fn watch(&self, tx: &mpsc::Sender<()>) -> Option<FileWatch> {
        if self.args.no_watch {
            return None;
        }
        let config = self.args.config.as_deref().map(absolute);
        match FileWatch::start(
            config.as_deref(),
            self.config.plugins.dir.as_deref(),
            &reload::key_files(&self.config.plugins.trusted_keys),
            tx.clone(),
        ) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the config file or plugin directory; reload with SIGHUP");
                None
            }
        }
    }

    fn fingerprint(&self) -> Fingerprint {
        Fingerprint::take(
            self.args.config.as_deref(),
            self.config.plugins.dir.as_deref(),
            &reload::key_files(&self.config.plugins.trusted_keys),
        )
    }

    /// Checks the new configuration and plugins, then swaps them in; on any
    /// problem the running set is kept.
    async fn reload(&mut self, pipeline: &mut Pipeline, erx: &mut mpsc::Receiver<Batch>) {
        let prepared = tokio::task::block_in_place(|| {
            reload::prepare(&self.args, &self.config, &self.runtime)
        });
        let candidate = match prepared {
            Ok(c) => c,
            Err(e) => {
                // Logged before it is counted: whoever sees the counter
                // can expect the reason in the log.
                tracing::error!(error = %format!("{:#}", anyhow::Error::from(e)), "RELOAD REFUSED: the running configuration and plugins are kept");
                PluginMetrics::add(&self.registry.host.reloads_failed, 1);
                return;
            }
        };
        self.swap(candidate, pipeline, erx).await;
    }

    async fn swap(
        &mut self,
        candidate: Candidate,
        pipeline: &mut Pipeline,
        erx: &mut mpsc::Receiver<Batch>,
    ) {
        let Candidate { config, intel } = candidate;
        // The old plugins finish what they were given (and persist their
        // state) before the new ones load it.
        pipeline.drain();
        // A poller of the old feed list must not swap its feeds over the
        // new ones: stopped (and its poll in progress finished) first.
        let intel_changed = config.intel != self.config.intel;
        if intel_changed && let Some(old) = self.intel_reloader.take() {
            tokio::task::block_in_place(|| old.stop());
        }
        let entries = intel.len() as u64;
        *self
            .ctx
            .intel
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(intel);
        self.registry
            .intel
            .entries
            .store(entries, Ordering::Relaxed);
        if intel_changed {
            self.restart_intel_reloader(&config.intel);
        }
        let (runners, errors) = tokio::task::block_in_place(|| {
            plugin_set::load(&self.runtime, &config.plugins.selection(), &self.ctx)
        });
        let (runners, config) = if errors.is_empty() && !runners.is_empty() {
            (runners, config)
        } else {
            // Checked a moment ago, so only a state file can fail here.
            tracing::error!(
                "RELOAD FAILED while swapping plugins; restoring the previous plugin set"
            );
            let (old, _) = tokio::task::block_in_place(|| {
                plugin_set::load(&self.runtime, &self.config.plugins.selection(), &self.ctx)
            });
            PluginMetrics::add(&self.registry.host.reloads_failed, 1);
            let mut kept = config;
            kept.plugins = self.config.plugins.clone();
            (old, kept)
        };
        let names = plugin_names(&runners);
        let digests = plugin_digests(&runners);
        self.registry.retain_plugins(&names);
        self.responder.permit_plugins(may_respond(&runners));
        pipeline.install(start_pool(
            &self.node,
            runners,
            &self.registry,
            &self.findings,
        ));

        let mut restarted = Vec::new();
        for key in vigil_sources::source_keys() {
            if !self.config.sources.changed(key, &config.sources) {
                continue;
            }
            if let Some(i) = self.sources.iter().position(|s| s.key == key) {
                let old = self.sources.swap_remove(i);
                stop_draining(old, pipeline, erx).await;
            }
            if let Some(s) = config
                .sources
                .start_one(key, &self.node, &self.events, &self.registry)
            {
                self.sources.push(s);
            }
            PluginMetrics::add(&self.registry.host.source_restarts, 1);
            restarted.push(key);
        }
        self.registry
            .gauges
            .sources
            .store(self.sources.len() as u64, Ordering::Relaxed);
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = heartbeat::Status {
            plugins: digests,
            sources: source_status(&self.sources),
        };
        if config.response != self.config.response {
            self.responder.reconfigure(config.response.clone());
        }
        self.delivery.reload(&config.delivery());
        if config.timeline != self.config.timeline {
            if let Some(t) = &self.timeline {
                t.set_limits(Limits::from_config(&config.timeline));
            }
            if config.timeline.enabled != self.config.timeline.enabled
                || config.timeline.persist_interval_secs
                    != self.config.timeline.persist_interval_secs
            {
                tracing::warn!(
                    "reload: timeline.enabled and timeline.persist_interval_secs take effect at the next start; its bounds are applied now"
                );
            }
        }
        self.config = config;
        PluginMetrics::add(&self.registry.host.reloads_ok, 1);
        tracing::info!(plugins = ?names, restarted_sources = ?restarted, "configuration reloaded");
    }

    /// Starts polling the feeds of `intel` (already loaded into the shared
    /// intel), replacing a stopped poller.
    fn restart_intel_reloader(&mut self, intel: &IntelConfig) {
        match ReloaderHandle::start(intel, &self.ctx.intel, &self.registry.intel) {
            Ok(reloader) => {
                let files: Vec<String> = intel
                    .feeds
                    .iter()
                    .map(|f| f.path.display().to_string())
                    .collect();
                let polling = reloader.is_some();
                tracing::info!(
                    files = ?files,
                    poll_interval_ms = intel.poll_interval_ms,
                    polling,
                    "threat-intel config changed by the reload: feed polling restarted on the new feeds"
                );
                self.intel_reloader = reloader;
            }
            Err(e) => {
                // The new feeds are in force; only their later changes would be missed.
                tracing::error!(
                    error = %e,
                    "cannot restart the threat-intel reloader: feed files are no longer polled (a config reload or restart picks up their changes)"
                );
            }
        }
    }
}

fn absolute(p: &Path) -> std::path::PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

fn plugin_names(runners: &[PluginRunner]) -> Vec<String> {
    runners.iter().map(|r| r.name().to_owned()).collect()
}

/// Each plugin's name, version and digest, for the heartbeat.
fn plugin_digests(runners: &[PluginRunner]) -> Vec<heartbeat::PluginDigest> {
    runners
        .iter()
        .map(|r| heartbeat::PluginDigest {
            name: r.name().to_owned(),
            version: r.plugin().info.version.clone(),
            digest: r.plugin().digest.clone(),
        })
        .collect()
}

/// Every source key with whether it runs, for the heartbeat.
fn source_status(running: &[RunningSource]) -> Vec<(String, bool)> {
    vigil_sources::source_keys()
        .into_iter()
        .map(|k| (k.to_owned(), running.iter().any(|s| s.key == k)))
        .collect()
}

/// The plugins whose findings may trigger the response stage.
fn may_respond(runners: &[PluginRunner]) -> Vec<String> {
    runners
        .iter()
        .filter(|r| r.plugin().may_respond)
        .map(|r| r.name().to_owned())
        .collect()
}

/// Starts the workers, each plugin's metrics shared with the registry so
/// that counters carry on across reloads.
fn start_pool(
    node: &str,
    mut runners: Vec<PluginRunner>,
    registry: &Registry,
    findings: &std_mpsc::Sender<PluginFinding>,
) -> WorkerPool {
    for r in &mut runners {
        let m = registry.plugin(r.name());
        m.disabled.store(false, Ordering::Relaxed);
        r.set_metrics(m);
    }
    registry
        .gauges
        .plugins
        .store(runners.len() as u64, Ordering::Relaxed);
    WorkerPool::start_on(node, runners, WORKER_QUEUE, findings.clone())
}

/// How often the timeline drops what is past its age bound.
const TIMELINE_SWEEP: Duration = Duration::from_secs(5);

/// Sweeps the timeline and writes it to the data directory every
/// `persist_secs` (when something changed), until shutdown (which writes it
/// once more itself).
async fn timeline_upkeep(
    persister: Arc<Persister>,
    persist_secs: u64,
    metrics: Arc<vigil_core::metrics::TimelineMetrics>,
    mut stop: watch::Receiver<bool>,
) {
    let activity = |m: &vigil_core::metrics::TimelineMetrics| {
        let c = &m.counters;
        [
            &c.events_recorded,
            &c.findings_recorded,
            &c.expired,
            &c.entities_evicted,
        ]
        .iter()
        .map(|a| a.load(Ordering::Relaxed))
        .sum::<u64>()
    };
    let mut sweep = tokio::time::interval(TIMELINE_SWEEP);
    let persist_every = Duration::from_secs(persist_secs);
    let mut last_save = tokio::time::Instant::now();
    let mut saved = activity(&metrics);
    loop {
        tokio::select! {
            () = stopped(&mut stop) => return,
            _ = sweep.tick() => {}
        }
        persister.sweep();
        if persist_secs == 0 || last_save.elapsed() < persist_every {
            continue;
        }
        last_save = tokio::time::Instant::now();
        let now = activity(&metrics);
        if now == saved {
            continue;
        }
        saved = now;
        let (p, m) = (persister.clone(), metrics.clone());
        let _ = tokio::task::spawn_blocking(move || p.save(&m)).await;
    }
}

/// Resolves when shutdown is requested (the watch guard, not `Send`, is
/// dropped here).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Makes the data directory private (see `vigil_core::fsperm`): created
/// `0700`, or, when it exists, refused unless it is Vigil's user's, and
/// tightened with everything in it. Each change is logged: a directory that
/// was open to others may have been read or planted in.
fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    let tree = vigil_core::fsperm::private_tree(dir)
        .with_context(|| format!("data directory {} refused", dir.display()))?;
    for t in &tree.tightened {
        tracing::warn!(
            path = %t.path.display(),
            was = %format!("{:o}", t.was),
            now = %format!("{:o}", t.now),
            "data directory: permissions tightened (it was open to other users)"
        );
    }
    for (path, owner) in &tree.foreign {
        tracing::warn!(
            path = %path.display(),
            owner,
            "data directory: entry owned by another user left as it is (Vigil did not create it; remove it if unexpected)"
        );
    }
    for e in &tree.failed {
        tracing::warn!(error = %vigil_core::error::chain(e), "data directory: cannot tighten an entry");
    }
    Ok(())
}
