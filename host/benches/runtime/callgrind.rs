//! Instruction counts of container-escape as Wasm against native, for
//! `valgrind --tool=callgrind` (repeatable on a noisy machine, unlike time).
//!
//! `runtime callgrind-MODE-MIX` runs one warm-up pass and then one measured
//! pass of the mix in batches of 256 inside a function named
//! `callgrind_measured`, so `--toggle-collect='*callgrind_measured*'` counts
//! only that pass: MODE `wasm` (through the runtime, the whole batch,
//! packed), `routed` (through the runtime with container-escape's
//! subscription applied, as `vigil replay` runs it) or `native` (the same
//! crate linked natively, fed the same copies the Wasm boundary makes); MIX
//! `typical` or `podspec`. BENCHMARKS.md has the commands.

use std::hint::black_box;
use std::sync::Arc;

use container_escape::ContainerEscape;
use vigil_core::model::Event;
use vigil_core::model::packed::PackedEvents;
use vigil_plugin_sdk::Detector;
use vigil_runtime::routing::{Route, RoutedBatch};
use vigil_runtime::{CallOutcome, PluginRunner, Runtime};

use super::{corpus, ctx, mixed, spec, to_sdk};

const BATCH: usize = 256;

/// Runs the mode named by `arg` (`callgrind-wasm-typical` …); false when
/// `arg` names none.
pub(super) fn run(runtime: &Runtime, arg: &str) -> bool {
    let Some(rest) = arg.strip_prefix("callgrind-") else {
        return false;
    };
    let Some((mode, mix)) = rest.split_once('-') else {
        return false;
    };
    let events = match mix {
        "typical" => corpus::typical(4096),
        "podspec" => mixed(4096),
        _ => return false,
    };
    match mode {
        "wasm" | "routed" => {
            let mut runner = runtime.load(spec(), &ctx()).expect("load");
            let routed = mode == "routed";
            let batches = batches(&events, routed);
            let mut packed = PackedEvents::default();
            let warm = wasm_pass(&mut runner, &batches, routed, &mut packed);
            let found = callgrind_measured_wasm(&mut runner, &batches, routed, &mut packed);
            println!(
                "{mode} {mix}: {} events, {found} findings (warm-up {warm})",
                events.len()
            );
        }
        "native" => {
            let mut native = ContainerEscape::default();
            native.configure("{}").expect("settings");
            let warm = native_pass(&mut native, &events);
            let found = callgrind_measured_native(&mut native, &events);
            println!(
                "native {mix}: {} events, {found} findings (warm-up {warm})",
                events.len()
            );
        }
        _ => return false,
    }
    true
}

/// Batches of 256: per kind when routed (as the dispatcher makes them),
/// else in order (as the throughput table feeds `on_events`).
fn batches(events: &[Event], per_kind: bool) -> Vec<Arc<Vec<Event>>> {
    if !per_kind {
        return events.chunks(BATCH).map(|c| Arc::new(c.to_vec())).collect();
    }
    let mut kinds: [Vec<Event>; 4] = Default::default();
    for e in events {
        kinds[e.kind() as usize].push(e.clone());
    }
    kinds
        .iter()
        .flat_map(|k| k.chunks(BATCH).map(|c| Arc::new(c.to_vec())))
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

fn native_pass(native: &mut ContainerEscape, events: &[Event]) -> usize {
    let mut found = 0;
    for chunk in events.chunks(BATCH) {
        let sdk: Vec<_> = chunk.iter().map(to_sdk::event).collect();
        let f = native.on_events(&sdk);
        found += f.len();
        black_box(f);
    }
    found
}

#[inline(never)]
fn callgrind_measured_native(native: &mut ContainerEscape, events: &[Event]) -> usize {
    native_pass(native, events)
}
