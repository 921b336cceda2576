//! The output threads: one per output, each reading its queue from the
//! spool, delivering in batches, acknowledging what was delivered, and
//! backing off (with jitter) and retrying what failed; plus the [`Wake`] and
//! [`Stop`] signals the intake and the [`Delivery`](crate::Delivery) handle
//! drive them with.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::outputs::{DeliveryError, Output, OutputSpec};
use crate::spool;
use vigil_core::finding_record::FindingRecord;
use vigil_core::metrics::{DeliveryMetrics, OutputMetrics, PluginMetrics};
use vigil_core::time::wall_now;

/// Wakes an output thread when its queue got findings.
#[derive(Default)]
pub(crate) struct Wake {
    flag: Mutex<bool>,
    cv: Condvar,
}

impl Wake {
    pub(crate) fn notify(&self) {
        *self.flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cv.notify_one();
    }

    pub(crate) fn wait(&self, timeout: Duration) {
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
pub(crate) struct Stop {
    requested: AtomicBool,
    deadline: Mutex<Option<Instant>>,
}

impl Stop {
    /// Asks the output threads to stop once their queue is empty, or at
    /// `deadline` whatever is left.
    pub(crate) fn request(&self, deadline: Instant) {
        // The deadline first: a thread that sees `requested` must see it too.
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner) = Some(deadline);
        self.requested.store(true, Ordering::Release);
    }

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

/// Findings read from an output's queue at once.
const FETCH: usize = 64;
/// Longest time delivered findings wait for their ack to be written.
const ACK_EVERY: Duration = Duration::from_millis(50);

/// One output's thread: its spool queue in, deliveries and acks out.
pub(crate) struct OutputWorker {
    pub(crate) spec: OutputSpec,
    pub(crate) out: Box<dyn Output>,
    pub(crate) conn: rusqlite::Connection,
    pub(crate) wake: Arc<Wake>,
    pub(crate) metrics: Arc<OutputMetrics>,
    pub(crate) delivery: Arc<DeliveryMetrics>,
    pub(crate) stop: Arc<Stop>,
}

/// `d` ± 20 %, so that outputs failing together do not retry in lockstep.
fn jitter(d: Duration) -> Duration {
    let r = (wall_now() % 1000) as f64 / 1000.0; // good enough for spreading
    d.mul_f64(0.8 + 0.4 * r)
}

impl OutputWorker {
    /// Starts the thread (named after the output, shortened to fit the
    /// 15 bytes Linux keeps of a thread name).
    pub(crate) fn spawn(self) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name(format!(
                "out-{}",
                self.spec.name.chars().take(10).collect::<String>()
            ))
            .spawn(move || self.run())
    }

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
