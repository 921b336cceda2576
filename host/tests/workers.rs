//! The live pipeline's plugin workers: a plugin stuck in a loop does not
//! stall the others, and its overflowing queue is counted, never silent.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use std::sync::{Arc, RwLock, mpsc};
use std::time::{Duration, Instant};

use vigil_core::metrics::PluginMetrics;
use vigil_core::model::Event;
use vigil_normalize::{Format, Origin, for_each_record};
use vigil_runtime::workers::WorkerPool;
use vigil_runtime::{
    Clock, EngineSettings, Identity, PluginLimits, PluginOrigin, PluginSpec, ReplayClock,
    RunContext, Runtime,
};
use vigil_test_support::fixtures::{falco, hostile_dir};

#[test]
fn a_stuck_plugin_does_not_stall_the_others() {
    let runtime = Runtime::new(&EngineSettings::default(), None).unwrap();
    let ctx = RunContext {
        clock: Clock::Replay(ReplayClock::new()),
        intel: Arc::new(RwLock::new(Arc::default())),
        state_dir: None,
    };
    let limits = PluginLimits {
        deadline_ms: 200,
        backoff_initial_ms: 0,
        max_consecutive_faults: 1000,
        ..Default::default()
    };
    let spin = PluginSpec {
        origin: PluginOrigin::File("hostile_loop.wasm".into()),
        identity: Identity::Named("hostile-loop".into()),
        bytes: Arc::from(std::fs::read(hostile_dir().join("hostile_loop.wasm")).unwrap()),
        settings: "{}".into(),
        limits: limits.clone(),
        policy: Default::default(),
    };
    let escape = PluginSpec {
        origin: PluginOrigin::Builtin("container-escape"),
        identity: Identity::Named("container-escape".into()),
        bytes: Arc::from(vigil_runtime::builtin::bytes("container-escape").unwrap()),
        settings: "{}".into(),
        limits,
        policy: Default::default(),
    };
    let runners = vec![
        runtime.load(spin, &ctx).unwrap(),
        runtime.load(escape, &ctx).unwrap(),
    ];

    let mut events: Vec<Event> = Vec::new();
    let data = std::fs::read(falco("create_nginx_pod_privileged.json")).unwrap();
    for_each_record(
        "f",
        &data,
        Format::Auto,
        &Origin {
            node: "n",
            source: "t",
        },
        |e| events.append(e),
        |_| {},
    );

    let (tx, rx) = mpsc::channel();
    let pool = WorkerPool::start(runners, 4, tx);
    let metrics = pool.metrics();
    let batches = 50;
    let started = Instant::now();
    // A steady stream: a batch every 10 ms, far more than the spinning
    // plugin (200 ms per batch) can take, far less than container-escape can.
    for _ in 0..batches {
        pool.route(Arc::new(events.clone()));
        std::thread::sleep(Duration::from_millis(10));
    }
    // container-escape answers every batch quickly although the other
    // plugin burns its full deadline on each one.
    let mut escape_findings = 0;
    while escape_findings < batches {
        let f = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("container-escape keeps answering");
        assert_eq!(&*f.plugin, "container-escape");
        escape_findings += 1;
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let spin = metrics.iter().find(|m| m.name == "hostile-loop").unwrap();
    let overflow = PluginMetrics::get(&spin.counters.queue_overflow);
    assert!(
        overflow > 0,
        "the stuck plugin's full queue drops batches, counted"
    );
    let escape = metrics
        .iter()
        .find(|m| m.name == "container-escape")
        .unwrap();
    assert_eq!(PluginMetrics::get(&escape.counters.queue_overflow), 0);
    assert_eq!(PluginMetrics::get(&escape.counters.events), batches as u64);
    drop(rx);
    pool.shutdown();
}
