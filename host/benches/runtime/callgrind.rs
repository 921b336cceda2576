//! Instruction counts of container-escape as Wasm against native, for
//! `valgrind --tool=callgrind` (repeatable on a noisy machine, unlike time).
//!
//! `runtime plugin-count MODE MIX BATCH N` runs one warm-up pass and then
//! one measured pass over the same N events in batches of BATCH, the
//! measured one inside a function named `callgrind_measured_MODE`, so
//! `--collect-atstart=no --toggle-collect='*callgrind_measured_*'` counts
//! that pass and nothing else (not the component's compilation, not the
//! corpus, not the warm-up). MODE is `wasm` (through the runtime, each batch
//! packed, as the throughput table calls it), `routed` (through the runtime
//! with container-escape's subscription applied and batches made per kind,
//! as `vigil replay` delivers them) or `native` (the same crate linked
//! natively, fed the same copies the Wasm boundary makes, as the table's
//! native column); MIX is `typical` or `podspec`. Valgrind needs the
//! on-demand allocator: `VIGIL_BENCH_ALLOCATOR=on-demand`.
//! `scripts/bench-callgrind.sh` runs the cases and BENCHMARKS.md has the
//! numbers.

use std::hint::black_box;
use std::sync::Arc;

use container_escape::ContainerEscape;
use vigil_core::model::Event;
use vigil_core::model::packed::PackedEvents;
use vigil_plugin_sdk::Detector;
use vigil_runtime::routing::{Route, RoutedBatch};
use vigil_runtime::{CallOutcome, PluginRunner, Runtime};

use super::{corpus, ctx, mixed, spec, to_sdk};

/// One case: what runs, on which events, in which batches.
struct Case {
    mode: Mode,
    events: Vec<Event>,
    batch: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Wasm,
    Routed,
    Native,
}

/// Runs the case `args` names (`plugin-count wasm typical 256 10240`);
/// false when `args` does not start with `plugin-count`. Panics on a
/// malformed case, so that a typo in a script does not measure nothing.
pub(super) fn run(runtime: &Runtime, args: &[String]) -> bool {
    if args.first().map(String::as_str) != Some("plugin-count") {
        return false;
    }
    let case = parse(&args[1..]).unwrap_or_else(|e| {
        panic!("{e}; usage: plugin-count wasm|routed|native typical|podspec BATCH EVENTS")
    });
    let (warm, found) = match case.mode {
        Mode::Wasm | Mode::Routed => {
            // Valgrind runs code tens of times slower than the CPU, and the
            // epoch ticker counts wall time.
            let mut spec = spec();
            spec.limits.deadline_ms = 600_000;
            let mut runner = runtime.load(spec, &ctx()).expect("load");
            let routed = case.mode == Mode::Routed;
            let batches = batches(&case.events, case.batch, routed);
            let mut packed = PackedEvents::default();
            let warm = wasm_pass(&mut runner, &batches, routed, &mut packed);
            let found = callgrind_measured_wasm(&mut runner, &batches, routed, &mut packed);
            (warm, found)
        }
        Mode::Native => {
            let mut native = ContainerEscape::default();
            native.configure("{}").expect("settings");
            let warm = native_pass(&mut native, &case.events, case.batch);
            let found = callgrind_measured_native(&mut native, &case.events, case.batch);
            (warm, found)
        }
    };
    println!(
        "{}: {} events in batches of {}, {found} findings (warm-up {warm})",
        args[1..].join(" "),
        case.events.len(),
        case.batch
    );
    true
}

fn parse(args: &[String]) -> Result<Case, String> {
    let [mode, mix, batch, n, ..] = args else {
        return Err(format!("expected 4 arguments, got {args:?}"));
    };
    let mode = match mode.as_str() {
        "wasm" => Mode::Wasm,
        "routed" => Mode::Routed,
        "native" => Mode::Native,
        other => return Err(format!("unknown mode {other:?}")),
    };
    let batch: usize = batch
        .parse()
        .ok()
        .filter(|b| *b > 0)
        .ok_or_else(|| format!("bad batch {batch:?}"))?;
    let n: usize = n.parse().map_err(|_| format!("bad event count {n:?}"))?;
    let events = match mix.as_str() {
        "typical" => corpus::typical(n),
        "podspec" => mixed(n),
        other => return Err(format!("unknown mix {other:?}")),
    };
    Ok(Case {
        mode,
        events,
        batch,
    })
}

/// Batches of `size`: per kind when routed (as the dispatcher makes them),
/// else in order (as the throughput table feeds `on_events`).
fn batches(events: &[Event], size: usize, per_kind: bool) -> Vec<Arc<Vec<Event>>> {
    if !per_kind {
        return events.chunks(size).map(|c| Arc::new(c.to_vec())).collect();
    }
    let mut kinds: [Vec<Event>; 4] = Default::default();
    for e in events {
        kinds[e.kind() as usize].push(e.clone());
    }
    kinds
        .iter()
        .flat_map(|k| k.chunks(size).map(|c| Arc::new(c.to_vec())))
        .collect()
}

fn wasm_pass(
    runner: &mut PluginRunner,
    batches: &[Arc<Vec<Event>>],
    routed: bool,
    packed: &mut PackedEvents,
) -> usize {
    let mut found = 0;
    for b in batches {
        let outcome = if routed {
            let route = [Route {
                subscription: runner.subscription(),
                packed: runner.plugin().takes_packed(),
            }];
            let batch = RoutedBatch::route(b.clone(), &route, std::mem::take(packed));
            let outcome = runner.deliver(&batch, 0);
            *packed = batch.recycle().1;
            outcome
        } else {
            runner.on_events(b)
        };
        let CallOutcome::Findings(f) = outcome else {
            panic!("container-escape failed")
        };
        found += f.len();
        black_box(f);
    }
    found
}

#[inline(never)]
fn callgrind_measured_wasm(
    runner: &mut PluginRunner,
    batches: &[Arc<Vec<Event>>],
    routed: bool,
    packed: &mut PackedEvents,
) -> usize {
    wasm_pass(runner, batches, routed, packed)
}

fn native_pass(native: &mut ContainerEscape, events: &[Event], batch: usize) -> usize {
    let mut found = 0;
    for chunk in events.chunks(batch) {
        // The same copy the Wasm boundary makes, then the same logic.
        let sdk: Vec<_> = chunk.iter().map(to_sdk::event).collect();
        let f = native.on_events(&sdk);
        found += f.len();
        black_box(f);
    }
    found
}

#[inline(never)]
fn callgrind_measured_native(
    native: &mut ContainerEscape,
    events: &[Event],
    batch: usize,
) -> usize {
    native_pass(native, events, batch)
}
