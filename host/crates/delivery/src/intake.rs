//! The intake thread: turns plugin findings into native records, marks
//! monitor-mode ones, drops suppressed ones, folds repeats into dedup
//! windows (and their summaries), commits the rest to the spool with one
//! queue row per output that wants them, wakes those outputs, and then calls
//! the responder. Each batch is one spool transaction.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::{DeliveryConfig, SpoolConfig, WhenFull};
use crate::outputs::OutputSpec;
use crate::worker::Wake;
use crate::{Responder, spool, suppress};
use vigil_core::finding_record::FindingRecord;
use vigil_core::metrics::{DeliveryMetrics, OutputMetrics, PluginMetrics, Registry};
use vigil_core::time::{format_rfc3339, wall_now};
use vigil_runtime::workers::PluginFinding;

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
pub(crate) struct Rules {
    suppressions: suppress::Suppressions,
    monitor: Vec<String>,
    window_ns: u64,
    max_windows: usize,
}

impl Rules {
    pub(crate) fn new(cfg: &DeliveryConfig) -> Self {
        Self {
            suppressions: suppress::Suppressions::new(&cfg.suppress),
            monitor: cfg.monitor.plugins.clone(),
            window_ns: cfg.dedup.window_secs * 1_000_000_000,
            max_windows: cfg.dedup.max_windows,
        }
    }
}

/// The intake thread's state (it alone writes findings to the spool).
pub(crate) struct Intake {
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

/// The dedup windows in the spool (left open by a previous run, or the
/// truth again after a failed write).
fn load_windows(conn: &rusqlite::Connection) -> rusqlite::Result<HashMap<String, Window>> {
    Ok(spool::windows(conn)?
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
        .collect())
}

impl Intake {
    /// The intake over the spool `conn`, feeding the outputs in `specs`,
    /// with the dedup windows a previous run left open.
    pub(crate) fn new(
        conn: &rusqlite::Connection,
        cfg: &DeliveryConfig,
        node: &str,
        registry: Arc<Registry>,
        specs: Vec<(OutputSpec, Arc<OutputMetrics>, Arc<Wake>)>,
        rules: Arc<Mutex<Rules>>,
        responder: Option<Box<dyn Responder>>,
    ) -> rusqlite::Result<Self> {
        Ok(Self {
            metrics: registry.delivery.clone(),
            registry,
            node: node.to_owned(),
            specs,
            spool: cfg.spool.clone(),
            windows: load_windows(conn)?,
            rules,
            responder,
            dropped_logged: None,
            dropped_since_log: 0,
        })
    }

    /// Reads findings until `rx` closes, then closes the open dedup windows.
    pub(crate) fn run(&mut self, mut conn: rusqlite::Connection, rx: Receiver<PluginFinding>) {
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
                if let Ok(ws) = load_windows(conn) {
                    self.windows = ws;
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
            for rec in &queued {
                r.record(rec);
            }
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
                rec.apply_verdicts(&pf.verdicts);
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
                    // A finding made from findings (an incident) is an update
                    // when its members change: only an exact repeat (same
                    // record id: rule, entities and event ids) is folded.
                    let key = if pf.depth > 0 {
                        rec.id.clone()
                    } else {
                        rec.dedup_key()
                    };
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
    vigil_core::text::hex(&h.finalize()[..12])
}
