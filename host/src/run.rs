//! `vigil run`: the host on this machine's live sources. Sources feed a
//! bounded queue; a batcher groups events per kind (up to a batch, or a few
//! milliseconds) and routes them to one worker per plugin; findings go to
//! the delivery pipeline (`crate::delivery`: suppression, dedup, the
//! durable spool, the outputs).

use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, RwLock, mpsc as std_mpsc};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{mpsc, watch};

mod events_out;

use crate::cli::{RunArgs, hostname};
use crate::collectors::{self, SourceContext};
use crate::commands::selection;
use crate::delivery::{Delivery, DeliveryConfig};
use crate::intel::ThreatIntel;
use crate::metrics::Registry;
use crate::model::{Event, EventKind};
use crate::plugin_set;
use crate::runtime::{Clock, EngineSettings, RunContext, Runtime, wall_now};
use crate::workers::{PluginFinding, WorkerPool};

/// How long the batcher waits to fill a batch: the latency it adds.
const LINGER: Duration = Duration::from_millis(10);
/// How often plugins get `on-tick`.
const TICK: Duration = Duration::from_secs(1);

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run_async(args))
}

async fn run_async(args: RunArgs) -> anyhow::Result<ExitCode> {
    let node: Arc<str> = args.node.clone().unwrap_or_else(hostname).into();
    prepare_dir(&args.data_dir)?;
    let delivery_config = match &args.delivery_config {
        Some(p) => DeliveryConfig::load(p)?,
        None => DeliveryConfig::default(),
    };
    let (mut sel, cache) = selection(&args.plugins)?;
    let cache = if args.plugins.no_cache {
        None
    } else {
        args.plugins
            .cache_dir
            .clone()
            .or(cache.map(|_| args.data_dir.join("cache")))
    };
    sel.builtin = !args.plugins.no_builtin;
    let runtime = Runtime::new(&EngineSettings::default(), cache.as_deref())?;
    let mut intel = ThreatIntel::empty();
    for f in &args.plugins.intel {
        intel.load_file(f, "intel")?;
    }
    let ctx = RunContext {
        clock: Clock::Wall,
        intel: Arc::new(RwLock::new(Arc::new(intel))),
        state_dir: Some(args.data_dir.join("state")),
    };
    let (runners, refused) = plugin_set::load(&runtime, &sel, &ctx);
    if runners.is_empty() {
        anyhow::bail!("no plugin could be loaded ({} refused)", refused.len());
    }
    let registry = Arc::new(Registry::default());
    for r in &runners {
        registry.add_plugin(r.metrics().clone());
    }
    let names: Vec<String> = runners.iter().map(|r| r.name().to_owned()).collect();

    let (ftx, frx) = std_mpsc::channel::<PluginFinding>();
    // Outputs and the spool first: findings left by a previous run are
    // delivered while the plugins start.
    let delivery = Delivery::start(
        &delivery_config,
        &args.data_dir,
        &node,
        frx,
        registry.delivery.clone(),
        &tokio::runtime::Handle::current(),
        // The response stage plugs in here (`delivery::Responder`).
        None,
    )?;
    let pool = WorkerPool::start(runners, 64, ftx);

    let mut events_out = args
        .emit_events
        .as_deref()
        .map(events_out::EventsOut::create)
        .transpose()?;
    let (etx, mut erx) = mpsc::channel::<Vec<Event>>(1024);
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = collectors::start_all(&args, &node, &etx, &stop_rx, &registry);
    drop(etx);
    tracing::info!(node = %node, plugins = ?names, sources = ?started, "vigil running");

    let mut pending: [Vec<Event>; 4] = Default::default();
    let mut tick = tokio::time::interval(TICK);
    // Armed only while events wait, so an idle host does not wake up 100
    // times a second.
    let mut flush_at: Option<tokio::time::Instant> = None;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            batch = erx.recv() => {
                let Some(batch) = batch else { break };
                if let Some(out) = &mut events_out {
                    out.write(&batch);
                }
                if flush_at.is_none() {
                    flush_at = Some(tokio::time::Instant::now() + LINGER);
                }
                for e in batch {
                    let s = slot(e.kind());
                    pending[s].push(e);
                    if pending[s].len() >= crate::dispatch::DEFAULT_BATCH {
                        pool.route(Arc::new(std::mem::take(&mut pending[s])));
                    }
                }
            }
            _ = tokio::time::sleep_until(flush_at.unwrap_or_else(tokio::time::Instant::now)), if flush_at.is_some() => {
                flush_at = None;
                for p in &mut pending {
                    if !p.is_empty() {
                        pool.route(Arc::new(std::mem::take(p)));
                    }
                }
            }
            _ = tick.tick() => pool.tick(wall_now()),
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
        }
    }
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    for p in &mut pending {
        if !p.is_empty() {
            pool.route(Arc::new(std::mem::take(p)));
        }
    }
    tokio::task::block_in_place(|| {
        pool.shutdown();
        delivery.shutdown();
    });
    Ok(ExitCode::SUCCESS)
}

fn slot(kind: EventKind) -> usize {
    match kind {
        EventKind::Container => 0,
        EventKind::Kubernetes => 1,
        EventKind::Network => 2,
        EventKind::File => 3,
    }
}

fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))
}

/// Used by collectors to build their context.
pub fn source_context(
    node: &Arc<str>,
    tx: &mpsc::Sender<Vec<Event>>,
    stop: &watch::Receiver<bool>,
    registry: &Registry,
    name: &str,
) -> SourceContext {
    SourceContext::new(
        node.clone(),
        tx.clone(),
        registry.source(name),
        stop.clone(),
    )
}
