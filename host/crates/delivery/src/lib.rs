//! From plugin findings to acknowledged deliveries, without loss.
//!
//! ```text
//! plugin workers ──findings──▶ intake thread ─────────────────────────────▶ output threads
//!                               1. native record (FindingRecord)              (one per output)
//!                               2. monitor mode? mark it                      read their queue
//!                               3. suppressed? count + log, stop               from the spool,
//!                               4. dedup: same rule+entities in the window?    deliver, ack
//!                                  count it, stop (summary at window end)      (or back off and
//!                               5. spool: commit, one queue row per output     retry; across
//!                                  that wants it (severity, monitor)           restarts too)
//!                               6. responder hook (after the commit)
//! ```
//!
//! Delivery is **at least once**: a finding leaves an output's queue only
//! after that output acknowledged it, so a crash between the two sends it
//! again. Receivers dedup on the finding `id` (stable: a digest of rule,
//! entities and event ids); NATS JetStream does it for them within its
//! duplicate window (`Nats-Msg-Id`).

mod config;
mod intake;
pub mod outputs;
pub mod spool;
pub mod suppress;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::intake::{Intake, Rules};
use crate::outputs::{Output, OutputSpec, OutputsConfig};
use crate::worker::{OutputWorker, Stop, Wake};
use vigil_core::finding_record::FindingRecord;
use vigil_core::metrics::Registry;
use vigil_runtime::workers::PluginFinding;

pub use config::{
    DedupConfig, DeliveryConfig, MonitorConfig, SpoolConfig, WhenFull, spool_path,
    validate_sections,
};
pub use spool::Sync;
pub use suppress::SuppressionRule;

/// The response stage: gets every finding that passed suppression and
/// dedup, once it is durable in the spool (dedup summaries included, monitor
/// findings never). It runs on the intake thread: hand the finding to
/// your own queue and return quickly.
pub trait Responder: Send {
    fn respond(&mut self, finding: &FindingRecord);

    /// Sees every finding committed to the spool, monitor-mode ones
    /// included, before [`respond`](Self::respond) sees those it gets (the
    /// host's timeline records them here). Same thread, same rule: return
    /// quickly.
    fn record(&mut self, _finding: &FindingRecord) {}
}

/// A running output thread, as the handle sees it (to wake and join it).
struct OutputHandle {
    name: String,
    wake: Arc<Wake>,
    thread: Option<JoinHandle<()>>,
}

/// The running pipeline.
pub struct Delivery {
    intake: Option<JoinHandle<()>>,
    rules: Arc<Mutex<Rules>>,
    /// The outputs and spool settings in force (they change only at a restart).
    running: (OutputsConfig, SpoolConfig),
    outputs: Vec<OutputHandle>,
    stop: Arc<Stop>,
    grace: Duration,
    spool_path: PathBuf,
    sync: Sync,
}

impl Delivery {
    /// Opens the spool (recovering what a previous run left in it), starts
    /// one thread per output and the intake thread reading `findings`.
    pub fn start(
        cfg: &DeliveryConfig,
        data_dir: &Path,
        node: &str,
        findings: Receiver<PluginFinding>,
        registry: Arc<Registry>,
        rt: &tokio::runtime::Handle,
        responder: Option<Box<dyn Responder>>,
    ) -> anyhow::Result<Self> {
        let outputs = cfg.outputs().build(rt)?;
        Self::start_with(cfg, data_dir, node, findings, registry, outputs, responder)
    }

    /// [`Delivery::start`] with outputs built by the caller (tests, benchmarks).
    pub fn start_with(
        cfg: &DeliveryConfig,
        data_dir: &Path,
        node: &str,
        findings: Receiver<PluginFinding>,
        registry: Arc<Registry>,
        outputs: Vec<(OutputSpec, Box<dyn Output>)>,
        responder: Option<Box<dyn Responder>>,
    ) -> anyhow::Result<Self> {
        let metrics = registry.delivery.clone();
        let path = spool_path(&cfg.spool, data_dir);
        // Created 0600 before SQLite opens it (SQLite would use the umask,
        // and gives its -wal and -shm files the database file's mode).
        for t in vigil_core::fsperm::private_sqlite(&path)
            .map_err(|e| anyhow::anyhow!("spool refused: {}", vigil_core::error::chain(&e)))?
        {
            tracing::warn!(path = %t.path.display(), was = %format!("{:o}", t.was), "spool: permissions tightened to 0600");
        }
        let mut conn = spool::open(&path, cfg.spool.sync)
            .map_err(|e| anyhow::anyhow!("cannot open the spool {}: {e}", path.display()))?;
        let names: Vec<String> = outputs.iter().map(|(s, _)| s.name.clone()).collect();
        for (name, n) in spool::drop_orphans(&mut conn, &names)? {
            metrics.spool_orphaned.add(&[&name], n);
            tracing::warn!(
                output = %name,
                findings = n,
                "spool: output no longer configured; its {n} undelivered findings are discarded (counted in vigil_spool_orphaned_total)"
            );
        }
        let size = spool::size(&conn)?;
        metrics.spool_depth.store(size.findings, Ordering::Relaxed);
        metrics.spool_bytes.store(size.bytes, Ordering::Relaxed);
        if size.findings > 0 {
            tracing::info!(
                findings = size.findings,
                path = %path.display(),
                "spool: undelivered findings from a previous run; delivering them"
            );
        }
        let stop = Arc::new(Stop::default());
        let mut handles = Vec::new();
        let mut specs = Vec::new();
        for (spec, mut out) in outputs {
            let om = metrics.output(&spec.name);
            out.attach_metrics(&om);
            let wake = Arc::new(Wake::default());
            let conn = spool::open(&path, cfg.spool.sync)?;
            om.pending
                .store(spool::queued_count(&conn, &spec.name)?, Ordering::Relaxed);
            let thread = OutputWorker {
                spec: spec.clone(),
                out,
                conn,
                wake: wake.clone(),
                metrics: om.clone(),
                delivery: metrics.clone(),
                stop: stop.clone(),
            }
            .spawn()?;
            tracing::info!(output = %spec.name, min_severity = spec.min_severity.as_str(), monitor = spec.monitor, "output on");
            handles.push(OutputHandle {
                name: spec.name.clone(),
                wake: wake.clone(),
                thread: Some(thread),
            });
            specs.push((spec, om, wake));
        }
        let rules = Arc::new(Mutex::new(Rules::new(cfg)));
        let mut intake = Intake::new(&conn, cfg, node, registry, specs, rules.clone(), responder)?;
        let thread = std::thread::Builder::new()
            .name("vigil-intake".into())
            .spawn(move || intake.run(conn, findings))?;
        Ok(Self {
            intake: Some(thread),
            rules,
            running: (cfg.outputs.clone(), cfg.spool.clone()),
            outputs: handles,
            stop,
            grace: Duration::from_millis(cfg.spool.shutdown_grace_ms),
            spool_path: path,
            sync: cfg.spool.sync,
        })
    }

    /// Applies a reloaded configuration: suppressions, monitor mode and
    /// dedup settings at once (open windows keep their end); outputs and
    /// spool settings only at the next start (logged).
    pub fn reload(&self, cfg: &DeliveryConfig) {
        *self.rules.lock().unwrap_or_else(PoisonError::into_inner) = Rules::new(cfg);
        if self.running.0 != cfg.outputs || self.running.1 != cfg.spool {
            tracing::warn!(
                "reload: changes to [outputs] and [spool] take effect at the next start; suppressions, monitor and dedup are applied now"
            );
        }
    }

    /// Waits for the intake to finish (its channel must be closed: the
    /// plugin workers stopped), then gives the outputs `shutdown_grace_ms`
    /// to deliver what is queued. What is left stays in the spool.
    pub fn shutdown(mut self) {
        if let Some(t) = self.intake.take() {
            let _ = t.join();
        }
        self.stop.request(Instant::now() + self.grace);
        for o in &self.outputs {
            o.wake.notify();
        }
        for o in &mut self.outputs {
            if let Some(t) = o.thread.take() {
                let _ = t.join();
            }
        }
        if let Ok(conn) = spool::open(&self.spool_path, self.sync) {
            for o in &self.outputs {
                if let Ok(n) = spool::queued_count(&conn, &o.name)
                    && n > 0
                {
                    tracing::warn!(output = %o.name, findings = n, "shutdown: findings not yet delivered stay in the spool; they are delivered at the next start");
                }
            }
        }
    }
}
