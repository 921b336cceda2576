//! `vigil replay`: recorded input through the plugins, findings on stdout.
//!
//! With more than one thread (`--threads`, default: the cores this process
//! may run on), records are normalised on a thread pool a few chunks ahead
//! of the dispatcher, and the plugins of each batch are called concurrently
//! on the same pool, of which the dispatcher's thread is one: no thread
//! waits while another has work to give (a chunk to normalise, a plugin to
//! call). Everything that decides the output stays in input
//! order on one thread — batching, the replay clock, each plugin's sequence
//! of calls, the entity checks, the findings' order — so the output is the
//! same byte for byte whatever the number of threads
//! (`host/tests/replay_threads.rs`).
//!
//! JSON lines — audit logs, `--emit-events` output — are read in blocks of
//! [`READ_BLOCK`] bytes, each normalised and run through the plugins before
//! the next is read: memory does not grow with the input, and a pipe's lines
//! are processed as they come. Other inputs (a JSON array, multi-line
//! documents) are read whole, up to [`MAX_DOCUMENT`].

mod feed;
mod read_ahead;

use feed::Fed;
use read_ahead::Input;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use vigil_core::finding_record::FindingRecord;
use vigil_core::model::ProcessEvent;
use vigil_normalize::{
    Format, InputError, LineBlocks, Origin, Segment, is_json_lines, split_records,
};
use vigil_runtime::dispatch::Dispatcher;
use vigil_runtime::intel::ThreatIntel;
use vigil_runtime::plugin_set::{self, PluginSelection};
use vigil_runtime::{Allocator, Clock, EngineSettings, ReplayClock, RunContext, Runtime};

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

/// Bytes read at a time from JSON-lines input, in a buffer reused block
/// after block.
pub const READ_BLOCK: usize = 8 << 20;

/// The longest line of JSON-lines input: a longer one is an input error
/// (its line number, skipped; the rest is still read). A line longer than
/// [`READ_BLOCK`] grows the buffer up to this for as long as it takes.
pub const MAX_LINE: usize = 64 << 20;

/// The largest input that is not JSON lines (a JSON array, multi-line
/// documents), which is read whole: a larger one is an input error.
pub const MAX_DOCUMENT: usize = 256 << 20;

/// The limits above, `(block, line, document)`. For tests only: the
/// environment variable `VIGIL_REPLAY_TEST_LIMITS=BLOCK,LINE,DOCUMENT`
/// (bytes) replaces them, so that tests can cross block boundaries and
/// caps with small inputs; it is not meant for operators.
fn limits() -> (usize, usize, usize) {
    let test = std::env::var("VIGIL_REPLAY_TEST_LIMITS")
        .ok()
        .and_then(|v| {
            let n: Vec<usize> = v.split(',').filter_map(|n| n.trim().parse().ok()).collect();
            (n.len() == 3).then(|| (n[0], n[1], n[2]))
        });
    test.unwrap_or((READ_BLOCK, MAX_LINE, MAX_DOCUMENT))
}

/// The engine's settings. For profiling only: the environment variable
/// `VIGIL_REPLAY_ENGINE`, a comma-separated list of `on-demand` (no
/// pooling allocator, whose reservation valgrind cannot make: so that
/// `valgrind --tool=callgrind` counts a whole replay's instructions,
/// `CALLGRIND=N scripts/bench-replay.sh`) and `perf-map` (names the plugins'
/// functions in `perf report`), changes them; it is not meant for
/// operators, and an unknown word is an error.
fn engine_settings() -> anyhow::Result<EngineSettings> {
    let mut settings = EngineSettings::default();
    let Some(words) = std::env::var_os("VIGIL_REPLAY_ENGINE") else {
        return Ok(settings);
    };
    for word in words.to_string_lossy().split(',').map(str::trim) {
        match word {
            "" => {}
            "on-demand" => settings.allocator = Allocator::OnDemand,
            "perf-map" => settings.perf_map = true,
            other => anyhow::bail!(
                "VIGIL_REPLAY_ENGINE: unknown setting {other:?} (known: on-demand, perf-map)"
            ),
        }
    }
    Ok(settings)
}

/// Standard input without std's buffer in front, so that a poll of its
/// descriptor tells whether more can be read at once.
fn stdin_reader() -> Box<dyn Read + Send> {
    use std::os::fd::AsFd;
    match std::io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(std::io::stdin()),
    }
}

/// Whether standard input can be read without waiting (data, end of input
/// or an error: a read returns at once).
fn stdin_ready() -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    // An error of poll itself: better a full block than a busy loop.
    !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(0))
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
///
/// With more than one thread, the replay runs on a thread of its own that
/// is one of the pool's threads: `--threads N` is N threads in all, and the
/// thread that runs the plugins' batches in order normalises chunks itself
/// whenever it would otherwise wait, while the other threads normalise
/// ahead and take plugin calls. Rayon cannot give a thread back once it
/// joined a pool, hence the thread of its own: a process may replay many
/// times (a few kilobytes of the pool's bookkeeping stay allocated each
/// time).
pub fn replay(
    opts: &ReplayOptions,
    out: &mut (dyn Write + Send),
    errors: &mut (dyn FnMut(&InputError) + Send),
) -> anyhow::Result<ReplayReport> {
    let n = opts.threads;
    if n <= 1 {
        return replay_on(opts, None, out, errors);
    }
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("vigil-replay-0".into())
            // As much stack as the main thread that runs a one-thread replay.
            .stack_size(8 << 20)
            .spawn_scoped(scope, || {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .use_current_thread()
                    .thread_name(|i| format!("vigil-replay-{i}"))
                    .build()
                    .map_err(|e| anyhow::anyhow!("cannot start {n} replay threads: {e}"))?;
                replay_on(opts, Some(Arc::new(pool)), out, errors)
            })
            .map_err(|e| anyhow::anyhow!("cannot start the replay thread: {e}"))?;
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// [`replay`] on the current thread, which is `pool`'s first thread if
/// there is a pool.
fn replay_on(
    opts: &ReplayOptions,
    pool: Option<Arc<rayon::ThreadPool>>,
    out: &mut (dyn Write + Send),
    errors: &mut (dyn FnMut(&InputError) + Send),
) -> anyhow::Result<ReplayReport> {
    let runtime = Runtime::new(&engine_settings()?, opts.cache_dir.as_deref())?;
    let intel = ThreatIntel::load_files(&opts.intel_files, "intel")?;
    let clock = ReplayClock::new();
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
    let out = std::cell::RefCell::new(out);
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
            if let Err(e) = out.borrow_mut().write_all(&line) {
                write_err.get_or_insert(e);
            }
        }
    };
    // Process events are handed to the dispatcher a run at a time, cut where
    // the input cuts them (an event, a bad record, the end of a chunk or of
    // the input), never where a block happens to end.
    let mut processes: Vec<ProcessEvent> = Vec::new();
    let mut consume = |segments: Vec<Segment>, chunk_ends: bool| {
        for segment in segments {
            match segment {
                Segment::Processes(run) => {
                    events_seen += run.len();
                    processes.extend(run);
                }
                Segment::Events(mut events) => {
                    if !processes.is_empty() {
                        dispatcher
                            .push_processes(std::mem::take(&mut processes), &mut |p, f, v| {
                                emit(p, f, v, clock.now())
                            });
                    }
                    events_seen += events.len();
                    dispatcher.push(&mut events, &mut |p, f, v| emit(p, f, v, clock.now()));
                }
                Segment::Error(e) => {
                    if !processes.is_empty() {
                        dispatcher
                            .push_processes(std::mem::take(&mut processes), &mut |p, f, v| {
                                emit(p, f, v, clock.now())
                            });
                    }
                    input_errors += 1;
                    errors(&e);
                }
            }
        }
        if chunk_ends && !processes.is_empty() {
            dispatcher.push_processes(std::mem::take(&mut processes), &mut |p, f, v| {
                emit(p, f, v, clock.now())
            });
        }
    };
    // Findings of a block are out as soon as it is done (a pipe may be slow
    // to bring the next). A failure here repeats at the last flush, which
    // reports it.
    let flush_block = |out: &std::cell::RefCell<&mut (dyn Write + Send)>| {
        let _ = out.borrow_mut().flush();
    };
    let (block, max_line, max_document) = limits();
    for path in &opts.paths {
        let label = path.display().to_string();
        let cannot_read = |e: std::io::Error| {
            vec![Segment::Error(InputError {
                file: label.clone(),
                line: 0,
                reason: format!("cannot read: {e}"),
            })]
        };
        let reader: Box<dyn Read + Send> = if label == "-" {
            stdin_reader()
        } else {
            match std::fs::File::open(path) {
                Ok(f) => Box::new(f),
                Err(e) => {
                    consume(cannot_read(e), true);
                    continue;
                }
            }
        };
        let mut blocks = LineBlocks::new(&label, reader, block, max_line);
        if label == "-" {
            blocks = blocks.yield_when_idle(Box::new(stdin_ready));
        }
        let mut progress = feed::Progress::new(opts.format);
        let lines = match blocks.head() {
            Ok(head) => is_json_lines(head),
            Err(e) => {
                consume(cannot_read(e), true);
                continue;
            }
        };
        match lines {
            // Nothing but blanks.
            None => {}
            Some(true) => match pool.as_deref() {
                // Several threads: read and cut on a thread of its own, normalised on the pool
                // without a pause between blocks.
                Some(pool) => {
                    let read = read_ahead::ahead(blocks, |input| {
                        feed::feed_ahead(
                            &label,
                            input,
                            &mut progress,
                            origin,
                            pool,
                            &cannot_read,
                            &mut |fed| match fed {
                                Fed::Segments(segments, ends) => consume(segments, ends),
                                Fed::BlockDone(n) => {
                                    records += n;
                                    flush_block(&out);
                                }
                            },
                        );
                    });
                    if let Err(e) = read {
                        consume(cannot_read(e), true);
                    }
                }
                None => read_ahead::blocks(blocks, |input| match input {
                    Input::Errors(bad) => {
                        consume(bad.into_iter().map(Segment::Error).collect(), false);
                    }
                    Input::Block(block) => {
                        let recs = block.records();
                        records += recs.len();
                        feed::feed(&label, &recs, &mut progress, origin, None, &mut consume);
                        flush_block(&out);
                    }
                    Input::Failed(e) => consume(cannot_read(e), true),
                }),
            },
            Some(false) => {
                let data = match blocks.read_whole(max_document) {
                    Ok(Some(data)) => data,
                    Ok(None) => {
                        consume(
                            vec![Segment::Error(InputError {
                                file: label.clone(),
                                line: 0,
                                reason: format!(
                                    "larger than {max_document} bytes, the limit of an input that is not JSON lines (a JSON array, multi-line documents); convert it to JSON lines (`jq -c '.[]'` or `jq -c .`), which are read in blocks"
                                ),
                            })],
                            true,
                        );
                        continue;
                    }
                    Err(e) => {
                        consume(cannot_read(e), true);
                        continue;
                    }
                };
                let mut bad = Vec::new();
                let recs = split_records(&label, &data, &mut |e| bad.push(Segment::Error(e)));
                // Reported first, as when every input was read whole.
                consume(bad, false);
                records += recs.len();
                feed::feed(
                    &label,
                    &recs,
                    &mut progress,
                    origin,
                    pool.as_deref(),
                    &mut consume,
                );
            }
        }
        // The end of an input ends its last run.
        consume(Vec::new(), true);
    }
    dispatcher.finish(&mut |p, f, v| emit(p, f, v, clock.now()));
    report.failed_calls = dispatcher.failed_calls;
    report.findings = findings;
    report.events = events_seen;
    report.records = records;
    report.input_errors = input_errors;
    out.into_inner().flush()?;
    if let Some(e) = write_err {
        return Err(anyhow::Error::new(e).context("cannot write findings"));
    }
    Ok(report)
}
