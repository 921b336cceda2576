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

pub mod outputs;
pub mod spool;
pub mod suppress;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::outputs::{DeliveryError, Output, OutputSpec, OutputsConfig};
use vigil_core::finding_record::FindingRecord;
use vigil_core::metrics::{DeliveryMetrics, OutputMetrics, PluginMetrics, Registry};
use vigil_core::time::format_rfc3339;
use vigil_core::time::wall_now;
use vigil_core::validate::{Problems, Validate, join};
use vigil_runtime::workers::PluginFinding;

pub use spool::Sync;
pub use suppress::SuppressionRule;

/// What to do when a new finding does not fit in the spool.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum WhenFull {
    /// Delete the oldest undelivered findings to make room (default: the
    /// newest findings are the ones an operator needs now).
    #[default]
    DropOldest,
    /// Refuse the new finding.
    DropNewest,
}

impl WhenFull {
    fn as_str(self) -> &'static str {
        match self {
            Self::DropOldest => "drop-oldest",
            Self::DropNewest => "drop-newest",
        }
    }
}

/// `[spool]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// The SQLite file (default: `DATA_DIR/spool.sqlite`).
    pub path: Option<PathBuf>,
    /// Most findings held (waiting for at least one output).
    pub max_findings: u64,
    /// Most bytes of findings held (their native JSON).
    pub max_bytes: u64,
    /// `drop-oldest` (default) or `drop-newest`; every drop is counted
    /// (`vigil_spool_dropped_total{policy}`) and logged.
    pub when_full: WhenFull,
    /// `normal` (default: survives a crash of Vigil) or `full` (fsync every commit: survives power loss).
    pub sync: Sync,
    /// At shutdown, how long outputs may keep delivering before Vigil exits
    /// (what is left stays in the spool for the next start), in milliseconds.
    pub shutdown_grace_ms: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            path: None,
            max_findings: 100_000,
            max_bytes: 256 << 20,
            when_full: WhenFull::default(),
            sync: Sync::default(),
            shutdown_grace_ms: 3_000,
        }
    }
}

impl Validate for SpoolConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if let Some(p) = &self.path
            && !p.is_absolute()
        {
            problems.push(join(path, "path"), "must be an absolute path");
        }
        if self.max_findings == 0 {
            problems.push(join(path, "max_findings"), "must be at least 1");
        }
        if self.max_bytes < 1 << 20 {
            problems.push(join(path, "max_bytes"), "must be at least 1048576 (1 MiB)");
        }
        if self.shutdown_grace_ms > 600_000 {
            problems.push(join(path, "shutdown_grace_ms"), "must be at most 600000");
        }
    }
}

/// `[dedup]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// Window in seconds: the first finding of a rule and entities is
    /// delivered at once; identical ones in the next `window_secs` are
    /// counted, and delivered as one summary with `count` when the window
    /// ends. 0 turns dedup off.
    pub window_secs: u64,
    /// Most windows open at once; beyond, findings are delivered without dedup (counted).
    pub max_windows: usize,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            window_secs: 60,
            max_windows: 100_000,
        }
    }
}

impl Validate for DedupConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if self.window_secs > 86_400 {
            problems.push(join(path, "window_secs"), "must be at most 86400 (a day)");
        }
        if self.max_windows == 0 {
            problems.push(join(path, "max_windows"), "must be at least 1");
        }
    }
}

/// `[monitor]`: plugins whose findings are recorded, not alerted.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// Plugin names. Their findings carry `"monitor": true` and go only to
    /// outputs with `monitor = true` (stdout and files by default), never
    /// to the responder.
    pub plugins: Vec<String>,
}

impl Validate for MonitorConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        for (i, p) in self.plugins.iter().enumerate() {
            if p.is_empty() {
                problems.push(join(path, &format!("plugins[{i}]")), "must not be empty");
            }
        }
    }
}

/// Every setting of the delivery pipeline: the `outputs`, `spool`,
/// `dedup`, `suppress` and `monitor` sections of the config file
/// (`crate::config::VigilConfig` holds them; this is their view for the
/// pipeline, and parses a file of these sections alone in tests).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    pub outputs: OutputsConfig,
    pub spool: SpoolConfig,
    pub dedup: DedupConfig,
    pub suppress: Vec<SuppressionRule>,
    pub monitor: MonitorConfig,
}

impl DeliveryConfig {
    /// The outputs in force.
    pub fn outputs(&self) -> OutputsConfig {
        self.outputs.clone()
    }
}

impl Validate for DeliveryConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        self.outputs.validate(&join(path, "outputs"), problems);
        validate_sections(
            &self.spool,
            &self.dedup,
            &self.suppress,
            &self.monitor,
            path,
            problems,
        );
    }
}

/// Validates the delivery sections but `outputs` (shared with `VigilConfig`).
pub fn validate_sections(
    spool: &SpoolConfig,
    dedup: &DedupConfig,
    suppress: &[SuppressionRule],
    monitor: &MonitorConfig,
    path: &str,
    problems: &mut Problems,
) {
    spool.validate(&join(path, "spool"), problems);
    dedup.validate(&join(path, "dedup"), problems);
    for (i, s) in suppress.iter().enumerate() {
        s.validate(&join(path, &format!("suppress[{i}]")), problems);
        if let Some(n) = &s.name
            && suppress[..i].iter().any(|o| o.name.as_ref() == Some(n))
        {
            problems.push(
                join(path, &format!("suppress[{i}].name")),
                format!("{n:?} is used twice"),
            );
        }
    }
    monitor.validate(&join(path, "monitor"), problems);
}

/// The response stage: gets every finding that passed suppression and
/// dedup, once it is durable in the spool (dedup summaries included, monitor
/// findings never). It runs on the intake thread: hand the finding to
/// your own queue and return quickly.
pub trait Responder: Send {
    fn respond(&mut self, finding: &FindingRecord);
}

/// Wakes an output thread when its queue got findings.
#[derive(Default)]
struct Wake {
    flag: Mutex<bool>,
    cv: Condvar,
}

impl Wake {
    fn notify(&self) {
        *self.flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cv.notify_one();
    }

    fn wait(&self, timeout: Duration) {
        let mut g = self.flag.lock().unwrap_or_else(PoisonError::into_inner);
        if !*g {
            g = self
                .cv
                .wait_timeout(g, timeout)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *g = false;
    }
}

/// Shutdown state shared with the output threads.
#[derive(Default)]
struct Stop {
    requested: AtomicBool,
    deadline: Mutex<Option<Instant>>,
}

impl Stop {
    fn requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }

    fn past_deadline(&self) -> bool {
        self.requested()
            && self
                .deadline
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_none_or(|d| Instant::now() >= d)
    }
}

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

/// An open dedup window.
struct Window {
    first_ns: u64,
    last_ns: u64,
    end_ns: u64,
    count: u64,
    /// The first finding's native record.
    record: Vec<u8>,
}

/// What a reload may change without restarting the pipeline.
struct Rules {
    suppressions: suppress::Suppressions,
    monitor: Vec<String>,
    window_ns: u64,
    max_windows: usize,
}

impl Rules {
    fn new(cfg: &DeliveryConfig) -> Self {
        Self {
            suppressions: suppress::Suppressions::new(&cfg.suppress),
            monitor: cfg.monitor.plugins.clone(),
            window_ns: cfg.dedup.window_secs * 1_000_000_000,
            max_windows: cfg.dedup.max_windows,
        }
    }
}

struct Intake {
    registry: Arc<Registry>,
    node: String,
    specs: Vec<(OutputSpec, Arc<OutputMetrics>, Arc<Wake>)>,
    spool: SpoolConfig,
    windows: HashMap<String, Window>,
    rules: Arc<Mutex<Rules>>,
    metrics: Arc<DeliveryMetrics>,
    responder: Option<Box<dyn Responder>>,
    dropped_logged: Option<Instant>,
    dropped_since_log: u64,
}

/// Where the spool lives.
pub fn spool_path(cfg: &SpoolConfig, data_dir: &Path) -> PathBuf {
    cfg.path
        .clone()
        .unwrap_or_else(|| data_dir.join("spool.sqlite"))
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
        for (spec, out) in outputs {
            let om = metrics.output(&spec.name);
            let wake = Arc::new(Wake::default());
            let conn = spool::open(&path, cfg.spool.sync)?;
            om.pending
                .store(spool::queued_count(&conn, &spec.name)?, Ordering::Relaxed);
            let worker = OutputWorker {
                spec: spec.clone(),
                out,
                conn,
                wake: wake.clone(),
                metrics: om.clone(),
                delivery: metrics.clone(),
                stop: stop.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!(
                    "out-{}",
                    spec.name.chars().take(10).collect::<String>()
                ))
                .spawn(move || worker.run())?;
            tracing::info!(output = %spec.name, min_severity = spec.min_severity.as_str(), monitor = spec.monitor, "output on");
            handles.push(OutputHandle {
                name: spec.name.clone(),
                wake: wake.clone(),
                thread: Some(thread),
            });
            specs.push((spec, om, wake));
        }
        let windows = spool::windows(&conn)?
            .into_iter()
            .map(|w| {
                (
                    w.key,
                    Window {
                        first_ns: w.first_ns,
                        last_ns: w.last_ns,
                        end_ns: w.end_ns,
                        count: w.count,
                        record: w.record,
                    },
                )
            })
            .collect();
        let rules = Arc::new(Mutex::new(Rules::new(cfg)));
        let mut intake = Intake {
            registry: registry.clone(),
            node: node.to_owned(),
            specs,
            spool: cfg.spool.clone(),
            windows,
            rules: rules.clone(),
            metrics,
            responder,
            dropped_logged: None,
            dropped_since_log: 0,
        };
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
        *self
            .stop
            .deadline
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + self.grace);
        self.stop.requested.store(true, Ordering::Release);
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

impl Intake {
    fn run(&mut self, mut conn: rusqlite::Connection, rx: Receiver<PluginFinding>) {
        let mut open = true;
        while open {
            let now = wall_now();
            let next_end = self.windows.values().map(|w| w.end_ns).min();
            let wait = next_end.map_or(Duration::from_secs(1), |e| {
                Duration::from_nanos(e.saturating_sub(now)).min(Duration::from_secs(1))
            });
            let mut batch = Vec::new();
            match rx.recv_timeout(wait) {
                Ok(f) => {
                    batch.push(f);
                    while batch.len() < 1024 {
                        match rx.try_recv() {
                            Ok(f) => batch.push(f),
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
            // At shutdown, open windows are closed early: their counts are
            // delivered now rather than at some later start.
            let close_all = !open;
            if !batch.is_empty()
                || self.windows.values().any(|w| w.end_ns <= wall_now())
                || (close_all && !self.windows.is_empty())
            {
                self.process(&mut conn, batch, close_all);
            }
        }
    }

    fn process(
        &mut self,
        conn: &mut rusqlite::Connection,
        batch: Vec<PluginFinding>,
        close_all: bool,
    ) {
        let n = batch.len();
        let mut queued: Vec<FindingRecord> = Vec::new();
        let result = self.process_tx(conn, batch, close_all, &mut queued);
        match result {
            Ok(()) => {}
            Err(e) => {
                PluginMetrics::add(&self.metrics.spool_errors, 1);
                tracing::error!(error = %e, findings = n, "SPOOL WRITE FAILED: these findings are LOST");
                // The in-memory windows may now be ahead of the database: reload.
                if let Ok(ws) = spool::windows(conn) {
                    self.windows = ws
                        .into_iter()
                        .map(|w| {
                            (
                                w.key,
                                Window {
                                    first_ns: w.first_ns,
                                    last_ns: w.last_ns,
                                    end_ns: w.end_ns,
                                    count: w.count,
                                    record: w.record,
                                },
                            )
                        })
                        .collect();
                }
                return;
            }
        }
        if let Ok(size) = spool::size(conn) {
            self.metrics
                .spool_depth
                .store(size.findings, Ordering::Relaxed);
            self.metrics
                .spool_bytes
                .store(size.bytes, Ordering::Relaxed);
        }
        for (spec, _, wake) in &self.specs {
            if queued.iter().any(|r| spec.wants(r)) {
                wake.notify();
            }
        }
        if let Some(r) = &mut self.responder {
            for rec in queued.iter().filter(|r| !r.monitor) {
                r.respond(rec);
            }
        }
    }

    fn process_tx(
        &mut self,
        conn: &mut rusqlite::Connection,
        batch: Vec<PluginFinding>,
        close_all: bool,
        queued: &mut Vec<FindingRecord>,
    ) -> anyhow::Result<()> {
        let now = wall_now();
        let rules = self.rules.clone();
        let mut rules = rules.lock().unwrap_or_else(PoisonError::into_inner);
        let result = (|| -> anyhow::Result<()> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut size = spool::size(&tx)?;
            for pf in batch {
                let mut rec =
                    FindingRecord::new(pf.finding, &pf.plugin, &pf.plugin_version, &self.node, now);
                let rule = rec.rule_id.clone();
                self.registry.count_finding(&pf.plugin, &rule);
                if rules.monitor.iter().any(|p| **p == *pf.plugin) {
                    rec.monitor = true;
                    self.metrics.monitor.add(&[&rule], 1);
                }
                if let Some((name, reason)) = rules.suppressions.check(&rec, now) {
                    self.metrics.suppressed.add(&[&rule, name], 1);
                    tracing::info!(
                        rule = %rule,
                        finding = %rec.id,
                        suppression = name,
                        reason,
                        entities = ?rec.entities.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
                        "finding suppressed (counted in vigil_findings_suppressed_total)"
                    );
                    continue;
                }
                if rules.window_ns > 0 {
                    let key = rec.dedup_key();
                    if let Some(w) = self.windows.get_mut(&key) {
                        if now < w.end_ns {
                            w.count += 1;
                            w.last_ns = now;
                            spool::bump_window(&tx, &key, now)?;
                            self.metrics.deduplicated.add(&[&rule], 1);
                            continue;
                        }
                        self.close_window(&tx, &key, &mut size, queued)?;
                    }
                    if self.windows.len() >= rules.max_windows {
                        PluginMetrics::add(&self.metrics.dedup_overflow, 1);
                    } else {
                        let record = serde_json::to_vec(&rec)?;
                        let w = Window {
                            first_ns: now,
                            last_ns: now,
                            end_ns: now + rules.window_ns,
                            count: 1,
                            record,
                        };
                        spool::open_window(
                            &tx,
                            &spool::StoredWindow {
                                key: key.clone(),
                                first_ns: w.first_ns,
                                last_ns: w.last_ns,
                                end_ns: w.end_ns,
                                count: 1,
                                record: w.record.clone(),
                            },
                        )?;
                        self.windows.insert(key, w);
                    }
                }
                self.enqueue(&tx, rec, now, &mut size, queued)?;
            }
            let ended: Vec<String> = self
                .windows
                .iter()
                .filter(|(_, w)| close_all || w.end_ns <= now)
                .map(|(k, _)| k.clone())
                .collect();
            for key in ended {
                self.close_window(&tx, &key, &mut size, queued)?;
            }
            tx.commit()?;
            Ok(())
        })();
        if result.is_err() {
            queued.clear();
        }
        result
    }

    /// Closes a window; more than one finding in it gives a summary.
    fn close_window(
        &mut self,
        tx: &rusqlite::Connection,
        key: &str,
        size: &mut spool::Size,
        queued: &mut Vec<FindingRecord>,
    ) -> anyhow::Result<()> {
        spool::close_window(tx, key)?;
        let Some(w) = self.windows.remove(key) else {
            return Ok(());
        };
        if w.count < 2 {
            return Ok(());
        }
        let mut rec: FindingRecord = serde_json::from_slice(&w.record)?;
        let now = wall_now();
        self.metrics.dedup_summaries.add(&[&rec.rule_id], 1);
        rec.aggregates = Some(rec.id.clone());
        rec.id = summary_id(&rec.id, w.count);
        rec.count = Some(w.count);
        rec.first_seen = Some(format_rfc3339(w.first_ns));
        rec.last_seen = Some(format_rfc3339(w.last_ns));
        rec.time = format_rfc3339(now);
        tracing::info!(rule = %rec.rule_id, finding = %rec.id, first = rec.aggregates.as_deref().unwrap_or_default(), count = w.count, "dedup window closed: summary delivered");
        self.enqueue(tx, rec, now, size, queued)
    }

    fn enqueue(
        &mut self,
        tx: &rusqlite::Connection,
        rec: FindingRecord,
        now: u64,
        size: &mut spool::Size,
        queued: &mut Vec<FindingRecord>,
    ) -> anyhow::Result<()> {
        let mut targets: Vec<&str> = Vec::new();
        for (spec, om, _) in &self.specs {
            if spec.wants(&rec) {
                targets.push(&spec.name);
            } else {
                PluginMetrics::add(&om.counters.filtered, 1);
            }
        }
        if targets.is_empty() {
            return Ok(());
        }
        let record = serde_json::to_vec(&rec)?;
        let len = record.len() as u64;
        let policy = self.spool.when_full;
        while size.findings + 1 > self.spool.max_findings || size.bytes + len > self.spool.max_bytes
        {
            let evicted = match policy {
                WhenFull::DropOldest => spool::evict_oldest(tx)?,
                WhenFull::DropNewest => None,
            };
            let dropped_id = match &evicted {
                Some(id) => {
                    *size = spool::size(tx)?;
                    id.clone()
                }
                // Nothing older to drop (or the policy says so): this one goes.
                None => rec.id.clone(),
            };
            self.metrics.spool_dropped.add(&[policy.as_str()], 1);
            self.dropped_since_log += 1;
            if self
                .dropped_logged
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
            {
                tracing::error!(
                    policy = policy.as_str(),
                    dropped = self.dropped_since_log,
                    last_dropped = %dropped_id,
                    max_findings = self.spool.max_findings,
                    max_bytes = self.spool.max_bytes,
                    "SPOOL FULL: undelivered findings dropped (counted in vigil_spool_dropped_total); an output is down or too slow"
                );
                self.dropped_logged = Some(Instant::now());
                self.dropped_since_log = 0;
            }
            if evicted.is_none() {
                return Ok(());
            }
        }
        spool::insert(tx, &rec.id, now, &record, &targets)?;
        size.findings += 1;
        size.bytes += len;
        for (spec, om, _) in &self.specs {
            if targets.contains(&spec.name.as_str()) {
                PluginMetrics::add(&om.counters.queued, 1);
                om.pending.fetch_add(1, Ordering::Relaxed);
            }
        }
        queued.push(rec);
        Ok(())
    }
}

/// The id of a dedup summary: stable for a window, distinct from the first finding's.
fn summary_id(first: &str, count: u64) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"dedup-summary\0");
    h.update(first.as_bytes());
    h.update(count.to_le_bytes());
    h.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Findings read from an output's queue at once.
const FETCH: usize = 64;
/// Longest time delivered findings wait for their ack to be written.
const ACK_EVERY: Duration = Duration::from_millis(50);

struct OutputWorker {
    spec: OutputSpec,
    out: Box<dyn Output>,
    conn: rusqlite::Connection,
    wake: Arc<Wake>,
    metrics: Arc<OutputMetrics>,
    delivery: Arc<DeliveryMetrics>,
    stop: Arc<Stop>,
}

/// `d` ± 20 %, so that outputs failing together do not retry in lockstep.
fn jitter(d: Duration) -> Duration {
    let r = (wall_now() % 1000) as f64 / 1000.0; // good enough for spreading
    d.mul_f64(0.8 + 0.4 * r)
}

impl OutputWorker {
    fn run(mut self) {
        let name = self.spec.name.clone();
        let mut backoff = self.spec.retry_initial;
        let mut failures: u32 = 0;
        let mut singles_left = 0usize;
        let mut last_pending_count = Instant::now();
        loop {
            if self.stop.past_deadline() {
                break;
            }
            if last_pending_count.elapsed() >= Duration::from_secs(1) {
                if let Ok(n) = spool::queued_count(&self.conn, &name) {
                    self.metrics.pending.store(n, Ordering::Relaxed);
                }
                last_pending_count = Instant::now();
            }
            let limit = if singles_left > 0 {
                1
            } else {
                self.spec.batch_max.max(FETCH)
            };
            let rows = match spool::queued(&self.conn, &name, limit) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(output = %name, error = %e, "spool read failed; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            if rows.is_empty() {
                self.metrics.pending.store(0, Ordering::Relaxed);
                if self.stop.requested() {
                    break;
                }
                self.wake.wait(Duration::from_secs(1));
                continue;
            }
            let mut recs = Vec::with_capacity(rows.len());
            let mut seqs = Vec::with_capacity(rows.len());
            let mut corrupt = Vec::new();
            for r in &rows {
                match serde_json::from_slice::<FindingRecord>(&r.record) {
                    Ok(rec) => {
                        recs.push(rec);
                        seqs.push(r.seq);
                    }
                    Err(e) => {
                        tracing::error!(output = %name, seq = r.seq, error = %e, "spool: unreadable finding dropped");
                        corrupt.push(r.seq);
                    }
                }
            }
            if !corrupt.is_empty() {
                PluginMetrics::add(&self.metrics.counters.rejected, corrupt.len() as u64);
                let _ = spool::ack(&mut self.conn, &name, &corrupt);
                continue;
            }
            // Several calls per spool read when batch_max is small (one POST
            // per finding): one read and one ack transaction for all of them.
            let per_call = if singles_left > 0 {
                1
            } else {
                self.spec.batch_max
            };
            let mut done = 0usize;
            let mut acked = 0usize;
            let mut last_ack = Instant::now();
            let mut failure: Option<(DeliveryError, usize)> = None;
            for chunk in recs.chunks(per_call) {
                match self.out.deliver(chunk) {
                    Ok(()) => done += chunk.len(),
                    Err(e) => {
                        failure = Some((e, chunk.len()));
                        break;
                    }
                }
                // Acks are grouped, but never held longer than ACK_EVERY: a
                // crash repeats at most that much (or one call) of deliveries.
                if last_ack.elapsed() >= ACK_EVERY {
                    if !self.acked(&rows[acked..done], &seqs[acked..done]) {
                        break;
                    }
                    acked = done;
                    last_ack = Instant::now();
                }
            }
            if done > acked && !self.acked(&rows[acked..done], &seqs[acked..done]) {
                continue;
            }
            if done > 0 {
                if failures > 0 {
                    tracing::info!(output = %name, failed_attempts = failures, "output delivering again");
                }
                failures = 0;
                backoff = self.spec.retry_initial;
                singles_left = singles_left.saturating_sub(done);
            }
            let Some((e, n)) = failure else { continue };
            let (rows, recs, seqs) = (
                &rows[done..done + n],
                &recs[done..done + n],
                &seqs[done..done + n],
            );
            if e.permanent && recs.len() > 1 {
                // Find the finding the receiver refuses: one at a time.
                singles_left = recs.len();
            } else if e.permanent {
                let _ = spool::ack(&mut self.conn, &name, seqs);
                PluginMetrics::add(&self.metrics.counters.rejected, 1);
                singles_left = singles_left.saturating_sub(1);
                tracing::error!(
                    output = %name,
                    finding = %recs[0].id,
                    rule = %recs[0].rule_id,
                    error = %e,
                    "finding REFUSED for good by the output; dropped for this output (counted in vigil_output_rejected_total)"
                );
                self.update_depth();
            } else {
                failures += 1;
                PluginMetrics::add(&self.metrics.counters.failed, 1);
                PluginMetrics::add(&self.metrics.counters.retried, recs.len() as u64);
                let _ = spool::failed(&mut self.conn, &name, seqs);
                let attempts = rows.iter().map(|r| r.attempts + 1).max().unwrap_or(1);
                tracing::warn!(
                    output = %name,
                    error = %e,
                    attempts,
                    retry_in_ms = backoff.as_millis() as u64,
                    "delivery failed; findings stay in the spool and are retried"
                );
                let until = Instant::now() + jitter(backoff);
                while Instant::now() < until && !self.stop.past_deadline() {
                    std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
                }
                backoff = (backoff * 2).min(self.spec.retry_max);
            }
        }
    }

    /// Removes delivered findings from this output's queue; false (logged)
    /// when the spool write failed: they will be delivered again.
    fn acked(&mut self, rows: &[spool::Queued], seqs: &[i64]) -> bool {
        if seqs.is_empty() {
            return true;
        }
        if let Err(e) = spool::ack(&mut self.conn, &self.spec.name, seqs) {
            tracing::error!(output = %self.spec.name, error = %e, "spool ack failed; these findings will be delivered again");
            std::thread::sleep(Duration::from_millis(200));
            return false;
        }
        let now = wall_now();
        for r in rows {
            self.metrics
                .latency
                .observe(Duration::from_nanos(now.saturating_sub(r.created_ns)));
        }
        let n = seqs.len() as u64;
        PluginMetrics::add(&self.metrics.counters.delivered, n);
        let _ = self
            .metrics
            .pending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                Some(p.saturating_sub(n))
            });
        self.update_depth();
        true
    }

    fn update_depth(&self) {
        if let Ok(size) = spool::size(&self.conn) {
            self.delivery
                .spool_depth
                .store(size.findings, Ordering::Relaxed);
            self.delivery
                .spool_bytes
                .store(size.bytes, Ordering::Relaxed);
        }
    }
}
