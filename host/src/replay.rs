//! `vigil replay`: recorded input through the plugins, findings on stdout.
//!
//! With more than one thread (`--threads`, default: the cores this process
//! may run on), records are normalised on a thread pool a few chunks ahead
//! of the dispatcher, and the plugins of each batch are called concurrently
//! on the same pool. Everything that decides the output stays in input
//! order on one thread — batching, the replay clock, each plugin's sequence
//! of calls, the entity checks, the findings' order — so the output is the
//! same byte for byte whatever the number of threads
//! (`host/tests/replay_threads.rs`).

mod feed;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use vigil_core::finding_record::FindingRecord;
use vigil_normalize::{Format, InputError, Origin, Segment, split_records};
use vigil_runtime::dispatch::Dispatcher;
use vigil_runtime::intel::ThreatIntel;
use vigil_runtime::plugin_set::{self, PluginSelection};
use vigil_runtime::{Clock, EngineSettings, RunContext, Runtime};

/// What to replay, and how.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub paths: Vec<PathBuf>,
    pub format: Format,
    pub plugins: PluginSelection,
    pub node: String,
    pub batch: usize,
    pub cache_dir: Option<PathBuf>,
    pub intel_files: Vec<PathBuf>,
    /// Threads for normalising and plugin calls; 1 runs everything on the
    /// caller's thread.
    pub threads: usize,
}

/// The default number of threads: the cores this process may run on (so
/// `taskset -c 0 vigil replay` runs on one thread).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// What a replay did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ReplayReport {
    pub records: usize,
    pub events: usize,
    pub findings: usize,
    pub input_errors: usize,
    pub plugins_loaded: usize,
    pub plugins_refused: usize,
    pub failed_calls: u64,
}

impl ReplayReport {
    /// 0: all good; 2: some input was bad; 3: input good but a plugin was
    /// refused or faulted (its findings may be missing).
    pub fn exit_code(&self) -> u8 {
        if self.input_errors > 0 {
            2
        } else if self.plugins_refused > 0 || self.failed_calls > 0 {
            3
        } else {
            0
        }
    }
}

/// Replays; findings go to `out` as JSON lines, input errors to `errors`.
pub fn replay(
    opts: &ReplayOptions,
    out: &mut dyn Write,
    errors: &mut dyn FnMut(&InputError),
) -> anyhow::Result<ReplayReport> {
    let runtime = Runtime::new(&EngineSettings::default(), opts.cache_dir.as_deref())?;
    let intel = ThreatIntel::load_files(&opts.intel_files, "intel")?;
    let clock = Arc::new(AtomicU64::new(0));
    let ctx = RunContext {
        clock: Clock::Replay(clock.clone()),
        intel: Arc::new(RwLock::new(Arc::new(intel))),
        state_dir: None,
    };
    let (runners, refused) = plugin_set::load(&runtime, &opts.plugins, &ctx);
    let mut report = ReplayReport {
        plugins_loaded: runners.len(),
        plugins_refused: refused.len(),
        ..Default::default()
    };
    let pool = match opts.threads {
        0 | 1 => None,
        n => Some(Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .thread_name(|i| format!("vigil-replay-{i}"))
                .build()
                .map_err(|e| anyhow::anyhow!("cannot start {n} replay threads: {e}"))?,
        )),
    };
    let mut dispatcher = Dispatcher::new(runners, opts.batch, clock.clone());
    if let Some(pool) = &pool {
        dispatcher = dispatcher.with_pool(pool.clone());
    }
    dispatcher.node.clone_from(&opts.node);
    let origin = Origin {
        node: &opts.node,
        source: "replay",
    };
    let mut write_err: Option<std::io::Error> = None;
    let mut line = Vec::with_capacity(1024);
    let (mut findings, mut events_seen, mut records, mut input_errors) =
        (0usize, 0usize, 0usize, 0usize);
    let mut emit = |plugin: &vigil_runtime::LoadedPlugin,
                    f: vigil_core::model::Finding,
                    verdicts: Vec<vigil_core::subjects::Verdict>,
                    now: u64| {
        findings += 1;
        let mut rec =
            FindingRecord::new(f, &plugin.info.name, &plugin.info.version, &opts.node, now);
        rec.apply_verdicts(&verdicts);
        line.clear();
        if serde_json::to_writer(&mut line, &rec).is_ok() {
            line.push(b'\n');
            if let Err(e) = out.write_all(&line) {
                write_err.get_or_insert(e);
            }
        }
    };
    for path in &opts.paths {
        let label = path.display().to_string();
        let data = if label == "-" {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut buf).map(|_| buf)
        } else {
            std::fs::read(path)
        };
        let data = match data {
            Ok(d) => d,
            Err(e) => {
                input_errors += 1;
                errors(&InputError {
                    file: label,
                    line: 0,
                    reason: format!("cannot read: {e}"),
                });
                continue;
            }
        };
        let recs = split_records(&label, &data, &mut |e| {
            input_errors += 1;
            errors(&e);
        });
        records += recs.len();
        feed::feed(
            &label,
            &recs,
            opts.format,
            origin,
            pool.as_deref(),
            |segments| {
                for segment in segments {
                    match segment {
                        Segment::Events(mut events) => {
                            events_seen += events.len();
                            let clock = &clock;
                            dispatcher.push(&mut events, &mut |p, f, v| {
                                emit(p, f, v, clock.load(Ordering::Relaxed))
                            });
                        }
                        Segment::Processes(processes) => {
                            events_seen += processes.len();
                            let clock = &clock;
                            dispatcher.push_processes(processes, &mut |p, f, v| {
                                emit(p, f, v, clock.load(Ordering::Relaxed))
                            });
                        }
                        Segment::Error(e) => {
                            input_errors += 1;
                            errors(&e);
                        }
                    }
                }
            },
        );
    }
    dispatcher.finish(&mut |p, f, v| emit(p, f, v, clock.load(Ordering::Relaxed)));
    report.failed_calls = dispatcher.failed_calls;
    report.findings = findings;
    report.events = events_seen;
    report.records = records;
    report.input_errors = input_errors;
    out.flush()?;
    if let Some(e) = write_err {
        return Err(anyhow::Error::new(e).context("cannot write findings"));
    }
    Ok(report)
}
