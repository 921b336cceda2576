//! What a loaded plugin whose subscription matches nothing in a batch costs
//! (issue 11's target: < 2 % of that batch's time). Batches are made as
//! `vigil replay` makes them (per kind, 256 events) and run the way its
//! dispatcher runs them: routed by subscription, encoded once, delivered.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use vigil_core::model::Event;
use vigil_core::model::packed::PackedEvents;
use vigil_runtime::routing::{Pick, Route, RoutedBatch};
use vigil_runtime::{Identity, PluginLimits, PluginOrigin, PluginRunner, PluginSpec, Runtime};

use super::{MIN_TIME, ROUNDS, corpus, ctx, fmt, mixed, spec};

/// Settings of the probe that match nothing of the typical and the
/// pod-spec-heavy mixes, in each of the three kinds it subscribes to.
const NOTHING: &str = r#"{"container_actions": ["exec-start"],
    "kubernetes": {"resources": ["leases"]},
    "file_prefixes": ["/var/lib/nothing/"]}"#;

const BATCH: usize = 256;

/// Batches of one kind each, in arrival order per kind, as the dispatcher
/// makes them.
fn batches(events: &[Event]) -> Vec<Arc<Vec<Event>>> {
    let mut per_kind: [Vec<Event>; 4] = Default::default();
    for e in events {
        per_kind[e.kind() as usize].push(e.clone());
    }
    per_kind
        .iter()
        .flat_map(|k| k.chunks(BATCH).map(|c| Arc::new(c.to_vec())))
        .collect()
}

/// Routes and delivers every batch to `runners`; returns the findings.
fn run(
    batches: &[Arc<Vec<Event>>],
    runners: &mut [PluginRunner],
    packed: &mut PackedEvents,
) -> usize {
    let mut findings = 0;
    for b in batches {
        let routes: Vec<Route<'_>> = runners
            .iter()
            .map(|r| Route {
                subscription: r.subscription(),
                packed: r.plugin().takes_packed(),
            })
            .collect();
        let routed = RoutedBatch::route(b.clone(), &routes, std::mem::take(packed));
        drop(routes);
        for (i, r) in runners.iter_mut().enumerate() {
            if *routed.pick(i) != Pick::Nothing
                && let vigil_runtime::CallOutcome::Findings(f) = r.deliver(&routed, i)
            {
                findings += f.len();
            }
        }
        *packed = routed.recycle().1;
    }
    findings
}

/// Seconds per pass, best of ROUNDS, with A and B measured in alternation
/// so that both see the same machine.
fn best_pair(mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, f64) {
    let (mut best_a, mut best_b) = (f64::MAX, f64::MAX);
    for _ in 0..ROUNDS * 2 {
        for (f, best) in [
            (&mut a as &mut dyn FnMut(), &mut best_a),
            (&mut b as &mut dyn FnMut(), &mut best_b),
        ] {
            f();
            let started = Instant::now();
            let mut iters = 0u32;
            while started.elapsed() < MIN_TIME / 2 {
                f();
                iters += 1;
            }
            *best = best.min(started.elapsed().as_secs_f64() / f64::from(iters));
        }
    }
    (best_a, best_b)
}

pub(super) fn idle_plugin_cost(runtime: &Runtime) {
    let probe = vigil_test_support::fixtures::hostile_plugin("subscription-probe");
    let idle = || PluginSpec {
        origin: PluginOrigin::File(probe.clone()),
        identity: Identity::Named("subscription-probe".into()),
        bytes: Arc::from(std::fs::read(&probe).expect("probe built")),
        settings: NOTHING.into(),
        limits: PluginLimits::default(),
        policy: Default::default(),
    };
    println!("## A loaded plugin whose subscription matches nothing, batch {BATCH} (one core)\n");
    println!(
        "container-escape alone, then with `subscription-probe` loaded beside it, subscribed to container, \
         Kubernetes and file events with filters that match none of the mix (`{}`); A and B measured in \
         alternation, best of {} each.\n",
        NOTHING.split_whitespace().collect::<Vec<_>>().join(" "),
        ROUNDS * 2
    );
    println!(
        "| mix | batches | container-escape alone, events/s | + idle plugin, events/s | added time | the idle plugin's filter evaluation alone |"
    );
    println!("|---|---|---|---|---|---|");
    for (label, events) in [
        ("typical live mix", corpus::typical(4096)),
        ("pod-spec-heavy mix", mixed(4096)),
    ] {
        let batches = batches(&events);
        let mut alone = vec![runtime.load(spec(), &ctx()).expect("load")];
        let mut with_idle = vec![
            runtime.load(spec(), &ctx()).expect("load"),
            runtime.load(idle(), &ctx()).expect("load probe"),
        ];
        let (mut pa, mut pb) = (PackedEvents::default(), PackedEvents::default());
        let found_a = run(&batches, &mut alone, &mut pa);
        let found_b = run(&batches, &mut with_idle, &mut pb);
        assert_eq!(found_a, found_b, "the idle plugin reports nothing");
        let (a, b) = best_pair(
            || {
                black_box(run(&batches, &mut alone, &mut pa));
            },
            || {
                black_box(run(&batches, &mut with_idle, &mut pb));
            },
        );
        // The part that the idle plugin adds for sure: evaluating its
        // filters on every event of its kinds (it is never called).
        let sub = with_idle[1].subscription().clone();
        let (filter, _) = best_pair(
            || {
                for b in &batches {
                    for e in b.iter() {
                        black_box(sub.delivery(e));
                    }
                }
            },
            || {},
        );
        let n = events.len() as f64;
        println!(
            "| {label} | {} | {} | {} | {:+.2} % | {:.3} % ({:.1} ns/event) |",
            batches.len(),
            fmt(n / a),
            fmt(n / b),
            (b / a - 1.0) * 100.0,
            filter / a * 100.0,
            filter / n * 1e9
        );
    }
    println!();
}
