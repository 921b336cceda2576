//! `fleet/churn-spike`: container churn summed over the fleet's nodes,
//! against a fleet baseline. Each node's heartbeat carries the containers
//! its sources saw created since it booted (`counters.containers_created`);
//! the fleet turns consecutive heartbeats of a node into a delta, sums the
//! deltas of every node into windows of `window_secs`, and judges each
//! window's sum as the container-churn plugin judges one scope's count: a
//! burst of 2 containers on each of 20 nodes is under every node's own
//! threshold and still a fleet spike.
//!
//! The baseline logic is the container-churn plugin's
//! (`plugins/container-churn/src/baseline.rs` and `time.rs`), ported here
//! rather than shared: that plugin is a Wasm guest built against the plugin
//! SDK in its own workspace, and sharing its module would make the host
//! depend on the plugin tree (or the plugin on a host crate). Keep the two in
//! step: a running mean and variance per window count, exact for the first
//! `cap` samples and then exponentially weighted; one overall and one per
//! hour-of-week bucket (used once it has `min_bucket_samples`); the
//! standard deviation at least √mean and at least 1; quiet windows learned
//! as zeros, but only while the fleet was listening; a spike when the count
//! is at least `min_count` and `z_threshold` deviations above the mean,
//! once per window, after `warmup` windows learned.
//!
//! The baseline outlives the instance that learned it: the active instance
//! keeps a [`ChurnSnapshot`] (the series, a fixed size: one statistic
//! overall and one per hour of the week) in the JetStream key-value store
//! (`lease::Lease::save_churn`), and an instance that becomes active
//! restores it, so a takeover or a restart does not warm up again, and a
//! burst after it is judged against what the fleet learned before.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};

use vigil_core::model::{Finding, KeyValue, Severity};

/// Hours in a week: the number of seasonal buckets.
const WEEK_HOURS: usize = 168;
/// The overall statistics remember about this many windows.
const OVERALL_CAP: u16 = 2_016;
/// Each hour-of-week bucket remembers about this many windows.
const BUCKET_CAP: u16 = 48;
/// Quiet windows filled in at most at once.
const MAX_ZERO_FILL: u32 = 2_016;
/// Nodes named in a finding's evidence, the largest contributors first.
const NODES_NAMED: usize = 20;

/// The rule's parameters (the validated `[fleet.churn]`).
#[derive(Debug, Clone, Copy)]
pub struct ChurnRule {
    pub enabled: bool,
    pub window_secs: u64,
    /// Windows learned before a spike is reported.
    pub warmup_windows: u32,
    pub z_threshold: f64,
    pub min_count: u32,
    pub min_bucket_samples: u32,
}

/// A running mean and (population) variance: exact, like Welford's
/// algorithm, for the first `cap` samples; then an exponentially weighted
/// average with weight `1/cap`, so the baseline follows slow change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Stat {
    n: u16,
    mean: f32,
    var: f32,
}

impl Stat {
    fn update(&mut self, x: f64, cap: u16) {
        let n = self.n.saturating_add(1).min(cap.max(1));
        let alpha = 1.0 / f64::from(n);
        let mean = f64::from(self.mean);
        let delta = x - mean;
        let var = (1.0 - alpha) * (f64::from(self.var) + alpha * delta * delta);
        self.n = n;
        // f32 is plenty for window counts (as in the plugin).
        self.mean = (mean + alpha * delta) as f32;
        self.var = var.max(0.0) as f32;
    }
}

/// The baseline a window's count is compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    pub mean: f64,
    /// The standard deviation used: at least √mean (Poisson) and at least 1.
    pub sd: f64,
    pub samples: u16,
    /// The hour-of-week bucket, or `None` for the overall baseline.
    pub bucket: Option<usize>,
}

impl Baseline {
    pub fn z(&self, count: u32) -> f64 {
        (f64::from(count) - self.mean) / self.sd
    }
}

/// The fleet's counts of containers created, per window.
#[derive(Debug, Clone, PartialEq)]
struct Series {
    learned: u32,
    cur_window: u32,
    cur_count: u32,
    /// The last window that gave a finding; 0 when none.
    alerted: u32,
    overall: Stat,
    buckets: Box<[Stat; WEEK_HOURS]>,
}

impl Series {
    fn new(window: u32) -> Self {
        Self {
            learned: 0,
            cur_window: window,
            cur_count: 0,
            alerted: 0,
            overall: Stat::default(),
            buckets: Box::new([Stat::default(); WEEK_HOURS]),
        }
    }

    /// Moves to window `target`: the current window is learned, then
    /// every quiet window in between as a zero, but only windows from
    /// `alive_from` on (before it the fleet was not listening: no data, not
    /// "no containers").
    fn advance(&mut self, target: u32, alive_from: u32, window_secs: u64) {
        if target <= self.cur_window {
            return;
        }
        if self.cur_window >= alive_from {
            self.learn(self.cur_window, f64::from(self.cur_count), window_secs);
        }
        let first_zero = (self.cur_window + 1)
            .max(alive_from)
            .max(target.saturating_sub(MAX_ZERO_FILL));
        for window in first_zero..target {
            self.learn(window, 0.0, window_secs);
        }
        self.cur_window = target;
        self.cur_count = 0;
    }

    fn learn(&mut self, window: u32, count: f64, window_secs: u64) {
        let bucket = hour_of_week(u64::from(window) * window_secs);
        self.overall.update(count, OVERALL_CAP);
        self.buckets[bucket].update(count, BUCKET_CAP);
        self.learned = self.learned.saturating_add(1);
    }

    /// The current window's hour-of-week bucket once it has
    /// `min_bucket_samples`, else the overall statistics.
    fn baseline(&self, window_secs: u64, min_bucket_samples: u32) -> Baseline {
        let bucket = hour_of_week(u64::from(self.cur_window) * window_secs);
        let (stat, which) = if u32::from(self.buckets[bucket].n) >= min_bucket_samples {
            (self.buckets[bucket], Some(bucket))
        } else {
            (self.overall, None)
        };
        let mean = f64::from(stat.mean);
        Baseline {
            mean,
            sd: f64::from(stat.var).max(mean).max(1.0).sqrt(),
            samples: stat.n,
            bucket: which,
        }
    }
}

/// The hour-of-week bucket (Monday 00:00-01:00 UTC = 0) of a time in seconds.
fn hour_of_week(secs: u64) -> usize {
    let hours = secs / 3_600;
    // 1970-01-01 was a Thursday: day 0 is weekday 3 (Monday = 0).
    let weekday = usize::try_from((hours / 24 + 3) % 7).unwrap_or(0);
    weekday * 24 + usize::try_from(hours % 24).unwrap_or(0)
}

/// `Wed 10:00-11:00 UTC`.
fn bucket_label(bucket: usize) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let hour = bucket % 24;
    format!(
        "{} {hour:02}:00-{:02}:00 UTC",
        DAYS[(bucket / 24) % 7],
        (hour + 1) % 24
    )
}

/// The learned baseline as stored between instances: the series without
/// the nodes' shares of the current window (evidence only). Its size is
/// fixed (`WEEK_HOURS` + 1 statistics, under 16 KiB as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnSnapshot {
    /// The window length it was learned with: a baseline of other windows
    /// says nothing about these.
    window_secs: u64,
    learned: u32,
    cur_window: u32,
    cur_count: u32,
    alerted: u32,
    overall: Stat,
    /// One per hour of the week, Monday 00:00 UTC first.
    buckets: Vec<Stat>,
}

/// Why a stored baseline was not restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("the stored churn baseline is {0} bytes, over the bound of {MAX_SNAPSHOT_BYTES}")]
    Oversized(usize),
    #[error("the stored churn baseline does not parse")]
    Malformed(#[source] serde_json::Error),
    #[error("the stored churn baseline was learned with {stored}-second windows, not {configured}")]
    OtherWindow { stored: u64, configured: u64 },
    #[error("the stored churn baseline has {0} hour-of-week buckets, not {WEEK_HOURS}")]
    Buckets(usize),
}

/// The largest stored baseline read back (a full one is about 10 KiB).
pub const MAX_SNAPSHOT_BYTES: usize = 64 * 1024;

impl ChurnSnapshot {
    /// The JSON stored in the key-value store.
    pub fn encode(&self) -> Vec<u8> {
        // Numbers and a list of them: encoding cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a stored baseline back, checked against the configured rule.
    pub fn decode(bytes: &[u8], rule: ChurnRule) -> Result<Self, SnapshotError> {
        if bytes.len() > MAX_SNAPSHOT_BYTES {
            return Err(SnapshotError::Oversized(bytes.len()));
        }
        let snap: Self = serde_json::from_slice(bytes).map_err(SnapshotError::Malformed)?;
        if snap.window_secs != rule.window_secs {
            return Err(SnapshotError::OtherWindow {
                stored: snap.window_secs,
                configured: rule.window_secs,
            });
        }
        if snap.buckets.len() != WEEK_HOURS {
            return Err(SnapshotError::Buckets(snap.buckets.len()));
        }
        Ok(snap)
    }

    /// Windows learned into it.
    pub fn learned(&self) -> u32 {
        self.learned
    }
}

/// The fleet's churn: one series, and what each node added to the
/// current window (for the finding).
#[derive(Debug, Default)]
pub struct FleetChurn {
    series: Option<Series>,
    /// The first window of the fleet's current view of the stream: the
    /// windows before it (back to the last one learned) are not learned.
    alive_from: u32,
    by_node: BTreeMap<String, u64>,
}

/// In the state file: how much is learned, and the overall baseline.
impl Serialize for FleetChurn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Summary {
            learned: u32,
            window: u32,
            count: u32,
            mean: f32,
            samples: u16,
        }
        self.series
            .as_ref()
            .map(|x| Summary {
                learned: x.learned,
                window: x.cur_window,
                count: x.cur_count,
                mean: x.overall.mean,
                samples: x.overall.n,
            })
            .serialize(s)
    }
}

impl FleetChurn {
    /// The baseline to store; `None` before anything was learned or
    /// counted.
    pub fn snapshot(&self, rule: ChurnRule) -> Option<ChurnSnapshot> {
        let s = self.series.as_ref()?;
        Some(ChurnSnapshot {
            window_secs: rule.window_secs,
            learned: s.learned,
            cur_window: s.cur_window,
            cur_count: s.cur_count,
            alerted: s.alerted,
            overall: s.overall,
            buckets: s.buckets.to_vec(),
        })
    }

    /// Continues from a stored baseline (this instance just became
    /// active): what it learned itself before is replaced, the stored one
    /// being the last active instance's. The nodes' shares of the current
    /// window start empty.
    pub fn restore(&mut self, snap: ChurnSnapshot) {
        let mut buckets = Box::new([Stat::default(); WEEK_HOURS]);
        for (b, s) in buckets.iter_mut().zip(snap.buckets) {
            *b = s;
        }
        self.series = Some(Series {
            learned: snap.learned,
            cur_window: snap.cur_window,
            cur_count: snap.cur_count,
            alerted: snap.alerted,
            overall: snap.overall,
            buckets,
        });
        self.by_node.clear();
    }

    /// The fleet (re)gained its view of the stream at `ms`.
    pub fn watching_since(&mut self, ms: u64, rule: ChurnRule) {
        self.alive_from = window_of(ms, rule);
    }

    /// Moves to the window of `now_ms` (quiet windows learned as zeros).
    pub fn advance(&mut self, now_ms: u64, rule: ChurnRule) {
        let window = window_of(now_ms, rule);
        if let Some(s) = &mut self.series
            && window > s.cur_window
        {
            s.advance(window, self.alive_from, rule.window_secs);
            self.by_node.clear();
        }
    }

    /// Adds `delta` containers created that `node` reported in a heartbeat
    /// stored at `at_ms`; returns the spike finding when this window's sum
    /// crosses the baseline (once per window).
    pub fn count(
        &mut self,
        node: &str,
        delta: u64,
        at_ms: u64,
        rule: ChurnRule,
    ) -> Option<Finding> {
        if !rule.enabled {
            return None;
        }
        self.advance(at_ms, rule);
        // Learning starts with the first heartbeat read, counted or not.
        let series = self
            .series
            .get_or_insert_with(|| Series::new(window_of(at_ms, rule)));
        if delta == 0 {
            return None;
        }
        series.cur_count = series
            .cur_count
            .saturating_add(u32::try_from(delta).unwrap_or(u32::MAX));
        *self.by_node.entry(node.to_owned()).or_default() += delta;
        if series.alerted == series.cur_window || series.learned < rule.warmup_windows {
            return None;
        }
        let baseline = series.baseline(rule.window_secs, rule.min_bucket_samples);
        if series.cur_count < rule.min_count || baseline.z(series.cur_count) < rule.z_threshold {
            return None;
        }
        series.alerted = series.cur_window;
        Some(spike(
            series.cur_window,
            series.cur_count,
            &baseline,
            &self.by_node,
            rule,
        ))
    }
}

fn window_of(ms: u64, rule: ChurnRule) -> u32 {
    u32::try_from(ms / 1000 / rule.window_secs.max(1)).unwrap_or(u32::MAX)
}

fn kv(key: &str, value: impl ToString) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: value.to_string(),
    }
}

fn spike(
    window: u32,
    count: u32,
    b: &Baseline,
    by_node: &BTreeMap<String, u64>,
    rule: ChurnRule,
) -> Finding {
    let start =
        vigil_core::time::format_rfc3339(u64::from(window) * rule.window_secs * 1_000_000_000);
    let bucket = match b.bucket {
        Some(bucket) => bucket_label(bucket),
        None => format!("all hours, {} windows", b.samples),
    };
    let mut nodes: Vec<(&String, &u64)> = by_node.iter().collect();
    nodes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut named: Vec<String> = nodes
        .iter()
        .take(NODES_NAMED)
        .map(|(n, c)| format!("{n}={c}"))
        .collect();
    if nodes.len() > NODES_NAMED {
        named.push(format!("+{} more", nodes.len() - NODES_NAMED));
    }
    Finding {
        rule_id: "fleet/churn-spike".into(),
        title: "Burst of container creations across the fleet".into(),
        // The plugin's spike severity.
        severity: Severity::Medium,
        summary: format!(
            "{count} containers created on {} nodes within the {}-second window from {start}, \
             against a fleet baseline of {:.1} ± {:.1} ({bucket}): z = {:.1}, over the threshold \
             of {} with at least {}.",
            nodes.len(),
            rule.window_secs,
            b.mean,
            b.sd,
            b.z(count),
            rule.z_threshold,
            rule.min_count,
        ),
        // Deploy Container.
        techniques: vec!["T1610".into()],
        // No entity: the finding is about the fleet; the nodes and their
        // shares are evidence (they differ between instances that saw the
        // window from different points, the id must not).
        entities: Vec::new(),
        evidence: vec![
            kv("window-start", &start),
            kv("window-secs", rule.window_secs),
            kv("observed", count),
            kv("nodes", named.join(", ")),
            kv("baseline-mean", format!("{:.2}", b.mean)),
            kv("baseline-sd", format!("{:.2}", b.sd)),
            kv("baseline-samples", b.samples),
            kv("baseline-bucket", bucket),
            kv("z-score", format!("{:.2}", b.z(count))),
            kv(
                "threshold",
                format!("z >= {} and count >= {}", rule.z_threshold, rule.min_count),
            ),
        ],
        // One finding per window, whichever instance reports it.
        event_ids: vec![format!("churn-window:{}:{window}", rule.window_secs)],
    }
}

#[cfg(test)]
mod tests;
