//! The cost of normalising one real Kubernetes audit line: the Falco
//! fixtures (less the malformed one), line by line in file-name order, the
//! same lines `scripts/bench-replay.sh` cycles into its 200k stream, each
//! through [`k8s_audit::normalise`] as `vigil replay` calls it.
//!
//! `cargo bench -p vigil-normalize --bench audit_parse` prints lines/s
//! (wall time: only as good as the machine is quiet). For instruction
//! counts, which a busy machine does not change, `audit_parse count
//! CYCLES` runs one warm-up pass over the lines and then CYCLES passes
//! inside `callgrind_measured_parse`, so that `valgrind --tool=callgrind
//! --collect-atstart=no --toggle-collect='*callgrind_measured_*'` counts
//! those passes alone; `scripts/bench-parse.sh` runs it and prints
//! instructions per line.

#![allow(clippy::expect_used, reason = "a benchmark fails loudly")]

use std::hint::black_box;
use std::time::Instant;

use vigil_core::model::Event;
use vigil_normalize::{Origin, k8s_audit};
use vigil_test_support::fixtures::falco_lines;

const ORIGIN: Origin<'static> = Origin {
    node: "bench",
    source: "replay",
};

/// Normalises every line once; returns the number of events.
fn pass(lines: &[String], out: &mut Vec<Event>) -> usize {
    let mut n = 0;
    for line in lines {
        // Dropping the events is part of the cost: `vigil replay` drops
        // each batch once the plugins have seen it.
        out.clear();
        n += k8s_audit::normalise(line, &ORIGIN, out).expect("a fixture normalises");
    }
    n
}

#[inline(never)]
fn callgrind_measured_parse(lines: &[String], cycles: usize, out: &mut Vec<Event>) -> usize {
    (0..cycles).map(|_| pass(black_box(lines), out)).sum()
}

fn main() {
    let lines = falco_lines();
    let bytes: usize = lines.iter().map(String::len).sum();
    let mut out = Vec::new();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("count") {
        let cycles = args
            .get(1)
            .map(|c| c.parse().expect("count CYCLES: a number"))
            .unwrap_or(100);
        let warm = pass(&lines, &mut out);
        let events = callgrind_measured_parse(&lines, cycles, &mut out);
        assert_eq!(events, warm * cycles);
        println!(
            "{} lines ({} per cycle, {bytes} bytes), {events} events",
            lines.len() * cycles,
            lines.len()
        );
        return;
    }
    // `cargo bench` passes `--bench`; a quick rate, best of five.
    let cycles = 2_000;
    let best = (0..5)
        .map(|_| {
            let start = Instant::now();
            black_box(callgrind_measured_parse(&lines, cycles, &mut out));
            start.elapsed()
        })
        .min()
        .expect("five runs");
    let n = (lines.len() * cycles) as f64;
    println!(
        "k8s_audit::normalise: {:.0} lines/s, {:.0} ns/line, {:.0} MiB/s ({} real audit lines, {} B on average)",
        n / best.as_secs_f64(),
        best.as_secs_f64() * 1e9 / n,
        (bytes * cycles) as f64 / best.as_secs_f64() / (1 << 20) as f64,
        lines.len(),
        bytes / lines.len()
    );
}
