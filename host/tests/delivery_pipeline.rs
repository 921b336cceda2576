//! The delivery pipeline (`vigil_delivery`) with in-memory outputs that
//! can be made to fail or refuse: dedup windows and their summaries,
//! suppression and monitor mode (with their counters), the full-spool
//! policies, permanent refusals, the responder stage, and recovery of the
//! spool across a restart. The real binary and real receivers are in
//! `delivery_live.rs` and `nats_live.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vigil_core::finding_record::FindingRecord;
use vigil_core::metrics::Registry;
use vigil_core::model::{Entity, EntityKind, Finding, KeyValue, Severity};
use vigil_delivery::outputs::{DeliveryError, Output, OutputSpec};
use vigil_delivery::{Delivery, DeliveryConfig, Responder, WhenFull};
use vigil_runtime::workers::PluginFinding;
use vigil_test_support::{TempDir, wait_for, wait_until};

/// An output keeping what it gets; it fails while `down`, and refuses for
/// good any finding whose pod is `refuse`.
#[derive(Clone, Default)]
struct Mem {
    got: Arc<Mutex<Vec<FindingRecord>>>,
    down: Arc<AtomicBool>,
    refuse: Option<String>,
}

impl Mem {
    fn got(&self) -> Vec<FindingRecord> {
        self.got.lock().unwrap().clone()
    }

    fn wait(&self, n: usize) -> Vec<FindingRecord> {
        wait_for(
            &format!("{n} findings"),
            Duration::from_secs(20),
            || Some(self.got()).filter(|got| got.len() >= n),
            || format!("got {:#?}", self.got()),
        )
    }
}

impl Output for Mem {
    fn deliver(&mut self, batch: &[FindingRecord]) -> Result<(), DeliveryError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(DeliveryError::transient("down"));
        }
        if let Some(r) = &self.refuse
            && batch.iter().any(|f| f.entities[0].id == *r)
        {
            return Err(DeliveryError::permanent("400 refused"));
        }
        self.got.lock().unwrap().extend_from_slice(batch);
        Ok(())
    }
}

fn spec(name: &str, monitor: bool, batch: usize) -> OutputSpec {
    OutputSpec {
        name: name.into(),
        min_severity: Severity::Info,
        monitor,
        batch_max: batch,
        retry_initial: Duration::from_millis(20),
        retry_max: Duration::from_millis(100),
    }
}

fn finding(plugin: &str, rule: &str, pod: &str, event: &str, severity: Severity) -> PluginFinding {
    PluginFinding {
        plugin: plugin.into(),
        plugin_version: "1.0.0".into(),
        finding: Finding {
            rule_id: format!("{plugin}/{rule}"),
            title: rule.into(),
            severity,
            summary: format!("{rule} in {pod}"),
            techniques: vec!["T1611".into()],
            entities: vec![Entity {
                kind: EntityKind::Pod,
                id: pod.into(),
                name: String::new(),
            }],
            evidence: vec![KeyValue {
                key: "k".into(),
                value: "v".into(),
            }],
            event_ids: vec![event.into()],
        },
        verdicts: Vec::new(),
        depth: 0,
    }
}

struct Pipeline {
    tx: Option<Sender<PluginFinding>>,
    delivery: Option<Delivery>,
    registry: Arc<Registry>,
}

impl Pipeline {
    fn start(dir: &Path, cfg: &DeliveryConfig, outputs: Vec<(OutputSpec, Mem)>) -> Self {
        Self::start_with(dir, cfg, outputs, None)
    }

    fn start_with(
        dir: &Path,
        cfg: &DeliveryConfig,
        outputs: Vec<(OutputSpec, Mem)>,
        responder: Option<Box<dyn Responder>>,
    ) -> Self {
        let (tx, rx) = channel();
        let registry = Arc::new(Registry::default());
        let outputs = outputs
            .into_iter()
            .map(|(s, m)| (s, Box::new(m) as Box<dyn Output>))
            .collect();
        let delivery =
            Delivery::start_with(cfg, dir, "node-1", rx, registry.clone(), outputs, responder)
                .unwrap();
        Self {
            tx: Some(tx),
            delivery: Some(delivery),
            registry,
        }
    }

    fn send(&self, f: PluginFinding) {
        self.tx.as_ref().unwrap().send(f).unwrap();
    }

    fn stop(mut self) -> String {
        drop(self.tx.take());
        self.delivery.take().unwrap().shutdown();
        self.registry.render()
    }

    fn metrics(&self) -> String {
        self.registry.render()
    }
}

fn metric(text: &str, line_start: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(line_start)
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
}

fn config(f: impl FnOnce(&mut DeliveryConfig)) -> DeliveryConfig {
    let mut c = DeliveryConfig::default();
    c.spool.shutdown_grace_ms = 500;
    f(&mut c);
    c
}

#[test]
fn identical_findings_in_the_window_become_one_summary_with_a_count() {
    let dir = TempDir::new("dedup");
    let mem = Mem::default();
    let cfg = config(|c| c.dedup.window_secs = 1);
    let p = Pipeline::start(&dir, &cfg, vec![(spec("mem", false, 16), mem.clone())]);
    for i in 0..5 {
        p.send(finding(
            "p",
            "priv",
            "default/a",
            &format!("e{i}"),
            Severity::High,
        ));
    }
    p.send(finding("p", "priv", "default/b", "e9", Severity::High));
    let got = mem.wait(2);
    assert_eq!(got.len(), 2, "first of each key at once: {got:#?}");
    assert!(got.iter().all(|f| f.count.is_none()));
    let first_a = got
        .iter()
        .find(|f| f.entities[0].id == "default/a")
        .unwrap()
        .clone();
    // The window ends after a second: one summary for `a` (5 seen), none for `b` (1 seen).
    let got = mem.wait(3);
    std::thread::sleep(Duration::from_millis(1_300));
    let got_after = mem.got();
    assert_eq!(got_after.len(), 3, "{got_after:#?}");
    let summary = &got[2];
    assert_eq!(summary.count, Some(5));
    assert_eq!(summary.aggregates.as_deref(), Some(first_a.id.as_str()));
    assert_ne!(summary.id, first_a.id);
    assert_eq!(summary.rule_id, "p/priv");
    assert!(summary.first_seen.as_deref().unwrap() <= summary.last_seen.as_deref().unwrap());
    // A new window after the first one closed: delivered at once again.
    p.send(finding("p", "priv", "default/a", "e10", Severity::High));
    let got = mem.wait(4);
    assert_eq!(got[3].count, None);
    let m = p.stop();
    assert_eq!(
        metric(&m, "vigil_findings_total{plugin=\"p\",rule=\"p/priv\"}"),
        7
    );
    assert_eq!(
        metric(&m, "vigil_findings_deduplicated_total{rule=\"p/priv\"}"),
        4
    );
    assert_eq!(
        metric(&m, "vigil_dedup_summaries_total{rule=\"p/priv\"}"),
        1
    );
    assert_eq!(
        metric(&m, "vigil_output_delivered_total{output=\"mem\"}"),
        4
    );
}

#[test]
fn dedup_windows_left_by_a_crashed_run_are_resumed() {
    let dir = TempDir::new("dedup-restart");
    let cfg = config(|c| c.dedup.window_secs = 2);
    // What a run killed with a window open leaves in the spool: the first
    // finding (delivered) and a count of 3.
    let first = FindingRecord::new(
        finding("p", "priv", "default/a", "e0", Severity::High).finding,
        "p",
        "1.0.0",
        "node-1",
        1,
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    {
        let conn =
            vigil_delivery::spool::open(&dir.join("spool.sqlite"), Default::default()).unwrap();
        vigil_delivery::spool::open_window(
            &conn,
            &vigil_delivery::spool::StoredWindow {
                key: first.dedup_key(),
                first_ns: now - 500_000_000,
                last_ns: now - 100_000_000,
                end_ns: now + 1_500_000_000,
                count: 3,
                record: serde_json::to_vec(&first).unwrap(),
            },
        )
        .unwrap();
    }
    let mem = Mem::default();
    let p = Pipeline::start(&dir, &cfg, vec![(spec("mem", false, 16), mem.clone())]);
    p.send(finding("p", "priv", "default/a", "e3", Severity::High));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        mem.got().is_empty(),
        "still in the resumed window: {:#?}",
        mem.got()
    );
    let got = mem.wait(1);
    assert_eq!(got[0].count, Some(4), "{got:#?}");
    assert_eq!(got[0].aggregates.as_deref(), Some(first.id.as_str()));
    p.stop();
}

#[test]
fn suppressions_and_monitor_mode_are_counted_never_silent() {
    let dir = TempDir::new("suppress");
    let cfg: DeliveryConfig = toml::from_str(
        r#"
        [dedup]
        window_secs = 0
        [spool]
        shutdown_grace_ms = 500
        [monitor]
        plugins = ["tuning"]
        [[suppress]]
        name = "kube-system-privileged"
        rule = "p/priv*"
        entities = [{ kind = "pod", id = "kube-system/*" }]
        reason = "control plane runs privileged"
        [[suppress]]
        name = "expired"
        rule = "p/*"
        expires = "2020-01-01T00:00:00Z"
        "#,
    )
    .unwrap();
    let alerting = Mem::default();
    let recording = Mem::default();
    struct Seen(Arc<Mutex<Vec<String>>>);
    impl Responder for Seen {
        fn respond(&mut self, f: &FindingRecord) {
            self.0.lock().unwrap().push(f.id.clone());
        }
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let p = Pipeline::start_with(
        &dir,
        &cfg,
        vec![
            (spec("alert", false, 16), alerting.clone()),
            (spec("record", true, 16), recording.clone()),
        ],
        Some(Box::new(Seen(seen.clone()))),
    );
    p.send(finding(
        "p",
        "privileged",
        "kube-system/etcd",
        "e1",
        Severity::Critical,
    ));
    p.send(finding(
        "p",
        "privileged",
        "kube-system/apiserver",
        "e2",
        Severity::Critical,
    ));
    p.send(finding(
        "p",
        "privileged",
        "default/web",
        "e3",
        Severity::Critical,
    ));
    p.send(finding(
        "tuning",
        "noisy",
        "default/web",
        "e4",
        Severity::Low,
    ));
    let rec = recording.wait(2);
    let alert = alerting.wait(1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(alerting.got().len(), 1);
    assert_eq!(alert[0].entities[0].id, "default/web");
    assert!(!alert[0].monitor);
    let monitor: Vec<_> = rec.iter().filter(|f| f.monitor).collect();
    assert_eq!(monitor.len(), 1);
    assert_eq!(monitor[0].rule_id, "tuning/noisy");
    assert_eq!(
        *seen.lock().unwrap(),
        [alert[0].id.clone()],
        "the responder sees no monitor finding"
    );
    let m = p.stop();
    assert_eq!(
        metric(
            &m,
            "vigil_findings_suppressed_total{rule=\"p/privileged\",suppression=\"kube-system-privileged\"}"
        ),
        2
    );
    assert_eq!(
        metric(&m, "vigil_findings_monitor_total{rule=\"tuning/noisy\"}"),
        1
    );
    assert_eq!(
        metric(&m, "vigil_output_filtered_total{output=\"alert\"}"),
        1
    );
}

fn full_spool(policy: WhenFull) -> Vec<String> {
    let dir = TempDir::new("full");
    let cfg = config(|c| {
        c.dedup.window_secs = 0;
        c.spool.max_findings = 3;
        c.spool.when_full = policy;
    });
    let mem = Mem::default();
    mem.down.store(true, Ordering::SeqCst);
    let p = Pipeline::start(&dir, &cfg, vec![(spec("mem", false, 16), mem.clone())]);
    for i in 0..5 {
        p.send(finding(
            "p",
            "r",
            &format!("default/{i}"),
            &format!("e{i}"),
            Severity::High,
        ));
    }
    wait_until(
        "a full spool",
        Duration::from_secs(10),
        || {
            let m = p.metrics();
            // The output must have been tried (and failed) while down, or
            // bringing it up below would race its first attempt.
            metric(&m, "vigil_spool_depth") >= 3
                && m.contains("vigil_spool_dropped_total")
                && m.contains("vigil_output_failed_total{output=\"mem\"}")
                && metric(&m, "vigil_output_failed_total{output=\"mem\"}") >= 1
        },
        || p.metrics(),
    );
    assert_eq!(metric(&p.metrics(), "vigil_spool_depth"), 3);
    let label = match policy {
        WhenFull::DropOldest => "drop-oldest",
        WhenFull::DropNewest => "drop-newest",
    };
    assert_eq!(
        metric(
            &p.metrics(),
            &format!("vigil_spool_dropped_total{{policy=\"{label}\"}}")
        ),
        2
    );
    mem.down.store(false, Ordering::SeqCst);
    let got = mem.wait(3);
    let m = p.stop();
    assert!(metric(&m, "vigil_output_failed_total{output=\"mem\"}") >= 1);
    assert_eq!(metric(&m, "vigil_spool_depth"), 0);
    got.iter().map(|f| f.entities[0].id.clone()).collect()
}

#[test]
fn a_full_spool_drops_the_oldest_by_default() {
    assert_eq!(
        full_spool(WhenFull::DropOldest),
        ["default/2", "default/3", "default/4"]
    );
}

#[test]
fn a_full_spool_can_drop_the_newest() {
    assert_eq!(
        full_spool(WhenFull::DropNewest),
        ["default/0", "default/1", "default/2"]
    );
}

#[test]
fn a_refused_finding_is_isolated_from_its_batch_and_counted() {
    let dir = TempDir::new("refuse");
    let cfg = config(|c| c.dedup.window_secs = 0);
    let mem = Mem {
        refuse: Some("default/2".into()),
        ..Mem::default()
    };
    mem.down.store(true, Ordering::SeqCst);
    let p = Pipeline::start(&dir, &cfg, vec![(spec("mem", false, 8), mem.clone())]);
    for i in 0..5 {
        p.send(finding(
            "p",
            "r",
            &format!("default/{i}"),
            &format!("e{i}"),
            Severity::High,
        ));
    }
    // All five queue up while the output is down, so they go as one batch.
    wait_until(
        "five findings in the spool",
        Duration::from_secs(10),
        || metric(&p.metrics(), "vigil_spool_depth") >= 5,
        || p.metrics(),
    );
    mem.down.store(false, Ordering::SeqCst);
    let got = mem.wait(4);
    let ids: Vec<_> = got.iter().map(|f| f.entities[0].id.as_str()).collect();
    assert_eq!(ids, ["default/0", "default/1", "default/3", "default/4"]);
    let m = p.stop();
    assert_eq!(metric(&m, "vigil_output_rejected_total{output=\"mem\"}"), 1);
    assert_eq!(metric(&m, "vigil_spool_depth"), 0);
}

#[test]
fn undelivered_findings_are_delivered_after_a_restart_and_orphans_are_counted() {
    let dir = TempDir::new("restart");
    let cfg = config(|c| c.dedup.window_secs = 0);
    let down = Mem::default();
    down.down.store(true, Ordering::SeqCst);
    let p = Pipeline::start(
        &dir,
        &cfg,
        vec![
            (spec("webhook", false, 16), down.clone()),
            (spec("gone", false, 16), down.clone()),
        ],
    );
    for i in 0..10 {
        p.send(finding(
            "p",
            "r",
            &format!("default/{i}"),
            &format!("e{i}"),
            Severity::High,
        ));
    }
    let m = p.stop();
    assert_eq!(metric(&m, "vigil_spool_depth"), 10);
    assert!(metric(&m, "vigil_output_retried_total{output=\"webhook\"}") >= 10);

    let up = Mem::default();
    let p = Pipeline::start(&dir, &cfg, vec![(spec("webhook", false, 4), up.clone())]);
    let got = up.wait(10);
    let ids: Vec<_> = got.iter().map(|f| f.entities[0].id.clone()).collect();
    let expected: Vec<_> = (0..10).map(|i| format!("default/{i}")).collect();
    assert_eq!(ids, expected, "in order, each once");
    let m = p.stop();
    assert_eq!(
        metric(&m, "vigil_spool_orphaned_total{output=\"gone\"}"),
        10
    );
    assert_eq!(metric(&m, "vigil_spool_depth"), 0);
}

#[test]
fn severity_thresholds_per_output() {
    let dir = TempDir::new("severity");
    let cfg = config(|c| c.dedup.window_secs = 0);
    let all = Mem::default();
    let high = Mem::default();
    let mut high_spec = spec("high", false, 16);
    high_spec.min_severity = Severity::High;
    let p = Pipeline::start(
        &dir,
        &cfg,
        vec![
            (spec("all", false, 16), all.clone()),
            (high_spec, high.clone()),
        ],
    );
    for (i, s) in [
        Severity::Info,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ]
    .into_iter()
    .enumerate()
    {
        p.send(finding(
            "p",
            "r",
            &format!("default/{i}"),
            &format!("e{i}"),
            s,
        ));
    }
    all.wait(4);
    let got = high.wait(2);
    assert!(got.iter().all(|f| f.severity >= Severity::High));
    p.stop();
}
