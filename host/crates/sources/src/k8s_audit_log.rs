//! The `k8s-audit-log` source: follows the API server's JSON audit log
//! (`--audit-log-path`, one `audit.k8s.io/v1` `Event` per line) across
//! rotation and truncation, and turns each line into Vigil events with
//! [`vigil_normalize::k8s_audit`].
//!
//! Polling rather than inotify: a look every 200 ms costs one `stat` on an
//! idle file, sees rotation and truncation the same way on every
//! filesystem (including the bind mounts and overlay layers a containerised
//! Vigil reads through), and needs no watch on the parent directory.
//! The read position (file identity and offset of the first line not yet
//! delivered) is kept in the data directory (`position`), so that lines
//! written while Vigil was down are read at the next start, none twice
//! after a clean stop, and a file rotated or replaced meanwhile is
//! recognised. Without a saved position, reading starts at the end of the
//! file found (or at its start with `from_beginning`).

mod config;
mod internal_events;
mod position;
mod tail;

#[cfg(test)]
mod tests;

use tokio::task::JoinHandle;

pub use config::{DEFAULT_POLL_INTERVAL_MS, LogConfig, LogSettings, StartAt};
pub use position::{Position, PositionError, Saved};
pub use tail::{Line, Note, Poll, TailError, Tailer};

use crate::{Off, Source, SourceContext, SourceTask, Starter};
use internal_events::{
    AuditLogFileOpened, AuditLogFileRotated, AuditLogFileTruncated, AuditLogLineRejected,
    AuditLogLinesRead, AuditLogPositionLoadFailed, AuditLogPositionSaveFailed, AuditLogReadFailed,
    AuditLogResumeFileGone,
};
use vigil_core::model::Event;
use vigil_core::validate::Problems;
use vigil_normalize::{Origin, k8s_audit};

/// The name of this source's metrics (its events say `source: "k8s-audit"`).
pub const METRICS_NAME: &str = "k8s-audit-log";

/// Characters of a rejected line quoted in the log.
const EXCERPT_CHARS: usize = 160;

/// The position file's name in the data directory.
pub const POSITION_FILE: &str = "k8s-audit-log.position";

/// The position is saved at most this often while lines flow (and at stop).
const SAVE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts the source on the runtime; it runs until `ctx.shutdown` turns
/// true or the pipeline goes away.
pub fn start(settings: LogSettings, ctx: SourceContext) -> JoinHandle<()> {
    tokio::spawn(run(settings, ctx))
}

impl Source for LogConfig {
    const KEY: &'static str = "k8s_audit_log";
    const NAME: &'static str = "k8s-audit-log";
    type Settings = LogSettings;

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn check(&self, at: &str, problems: &mut Problems) -> Option<LogSettings> {
        LogConfig::check(self, at, problems)
    }

    fn start(settings: LogSettings, starter: &Starter<'_>) -> Result<Vec<SourceTask>, Off> {
        tracing::info!("k8s-audit-log: on ({})", settings.path.display());
        let ctx = starter.context(METRICS_NAME);
        Ok(vec![SourceTask::Task(start(settings, ctx))])
    }
}

/// Tailers of sources that were stopped (a reload restarting the source
/// with new settings), so that the next source following the same file
/// resumes at their position: lines written while it restarted are read,
/// none twice.
static HANDOVER: std::sync::Mutex<Vec<Tailer>> = std::sync::Mutex::new(Vec::new());

fn hand_over(tailer: Option<Tailer>) {
    if let Some(t) = tailer {
        let mut slot = HANDOVER
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.retain(|o| o.path() != t.path());
        slot.push(t);
    }
}

fn take_over(settings: &LogSettings) -> Tailer {
    let mut slot = HANDOVER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match slot.iter().position(|t| t.path() == settings.path) {
        Some(i) => {
            let mut t = slot.swap_remove(i);
            t.set_limits(settings.max_line_bytes, settings.max_read_bytes);
            tracing::info!(source = METRICS_NAME, path = %settings.path.display(), "k8s-audit-log: resuming where the previous source stopped");
            t
        }
        // First start in this process: the position saved by the last one.
        None => first_tailer(settings),
    }
}

/// A line that did not normalise: (offset, reason, excerpt).
type Rejected = (u64, String, String);

/// The outcome of one look, normalised off the async workers.
struct Step {
    tailer: Tailer,
    poll: Result<Poll, TailError>,
    events: Vec<Event>,
    /// Lines that did not normalise.
    rejected: Vec<Rejected>,
}

/// The tailer at the saved position when there is one for this path.
fn first_tailer(settings: &LogSettings) -> Tailer {
    let saved = settings
        .position_file
        .as_deref()
        .and_then(|f| match position::load(f) {
            Ok(saved) => saved,
            Err(error) => {
                AuditLogPositionLoadFailed { error: &error }.emit();
                None
            }
        })
        .filter(|s| s.path == settings.path);
    match saved {
        Some(s) => {
            tracing::info!(
                source = METRICS_NAME,
                path = %settings.path.display(),
                offset = s.position.offset,
                "k8s-audit-log: resuming at the saved position"
            );
            Tailer::resume(
                settings.path.clone(),
                s.position,
                settings.max_line_bytes,
                settings.max_read_bytes,
            )
        }
        None => Tailer::new(
            settings.path.clone(),
            settings.start_at,
            settings.max_line_bytes,
            settings.max_read_bytes,
        ),
    }
}

/// Saves the position of what was delivered, when it moved (and, unless
/// `now`, not more than once per [`SAVE_EVERY`]).
struct Checkpoint {
    file: Option<std::path::PathBuf>,
    path: std::path::PathBuf,
    saved: Option<Position>,
    at: Option<std::time::Instant>,
}

impl Checkpoint {
    fn save(&mut self, tailer: &Tailer, now: bool) {
        let (Some(file), Some(position)) = (&self.file, tailer.position()) else {
            return;
        };
        if self.saved == Some(position)
            || (!now && self.at.is_some_and(|at| at.elapsed() < SAVE_EVERY))
        {
            return;
        }
        let saved = Saved {
            path: self.path.clone(),
            position,
        };
        self.at = Some(std::time::Instant::now());
        match position::save(file, &saved) {
            Ok(()) => self.saved = Some(position),
            Err(error) => AuditLogPositionSaveFailed { error: &error }.emit(),
        }
    }
}

async fn run(settings: LogSettings, ctx: SourceContext) {
    let mut tailer = Some(take_over(&settings));
    let mut checkpoint = Checkpoint {
        file: settings.position_file.clone(),
        path: settings.path.clone(),
        saved: None,
        at: None,
    };
    let mut shutdown = ctx.shutdown.clone();
    let mut tick = tokio::time::interval(settings.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut more = false;
    loop {
        // A backlog is read without waiting for the next tick.
        let stopping = if more {
            *shutdown.borrow()
        } else {
            tokio::select! {
                () = stopped(&mut shutdown) => true,
                _ = tick.tick() => false,
            }
        };
        if stopping {
            // Everything the tailer returned was delivered: keep where it
            // is, on disk for the next start and in memory for a restart
            // of this source (reload).
            if let Some(t) = &tailer {
                checkpoint.save(t, true);
            }
            return hand_over(tailer);
        }
        let Some(t) = tailer.take() else { return };
        let node = ctx.node.clone();
        // File reads block and parsing is CPU: off the async workers.
        let Ok(step) = tokio::task::spawn_blocking(move || look(t, &node)).await else {
            tracing::error!(
                source = METRICS_NAME,
                "k8s-audit-log: read task failed; source stopped"
            );
            return;
        };
        let Step {
            tailer: t,
            poll,
            events,
            rejected,
        } = step;
        more = false;
        match poll {
            Ok(poll) => {
                for note in &poll.notes {
                    report(note, t.path(), &ctx);
                }
                for (offset, reason, excerpt) in &rejected {
                    AuditLogLineRejected {
                        path: t.path(),
                        offset: *offset,
                        reason,
                        excerpt,
                    }
                    .emit(&ctx.metrics);
                }
                AuditLogLinesRead {
                    lines: poll.lines.len(),
                    events: events.len(),
                }
                .emit(&ctx.metrics);
                more = poll.more;
            }
            Err(e) => AuditLogReadFailed { error: &e }.emit(&ctx.metrics),
        }
        if !ctx.send(events).await {
            return;
        }
        // Only now are the lines read delivered.
        checkpoint.save(&t, false);
        tailer = Some(t);
    }
}

/// Lines per task when a look's lines are normalised in parallel: a few
/// hundred microseconds of work, well above a task's cost.
const LINES_PER_TASK: usize = 64;

/// One look at the file, its lines normalised: in parallel on the process's
/// worker pool (one thread per core), in input order, so that a backlog
/// read from one file does not normalise on one thread. A look holds at
/// most `max_read_bytes` (4 MiB, a few thousand audit lines) by default.
fn look(mut tailer: Tailer, node: &str) -> Step {
    use rayon::prelude::*;
    let poll = tailer.poll();
    let mut events = Vec::new();
    let mut rejected = Vec::new();
    if let Ok(p) = &poll {
        let origin = Origin {
            node,
            source: "k8s-audit",
        };
        let parts: Vec<(Vec<Event>, Vec<Rejected>)> = p
            .lines
            .par_chunks(LINES_PER_TASK)
            .map(|lines| {
                let (mut events, mut rejected) = (Vec::new(), Vec::new());
                for line in lines {
                    if let Err(reason) = normalise_line(&line.text, &origin, &mut events) {
                        let excerpt: String = String::from_utf8_lossy(&line.text)
                            .chars()
                            .take(EXCERPT_CHARS)
                            .collect();
                        rejected.push((line.offset, reason, excerpt));
                    }
                }
                (events, rejected)
            })
            .collect();
        for (e, r) in parts {
            events.extend(e);
            rejected.extend(r);
        }
    }
    Step {
        tailer,
        poll,
        events,
        rejected,
    }
}

/// One line into events; the reason when it is not an audit event.
fn normalise_line(text: &[u8], origin: &Origin<'_>, out: &mut Vec<Event>) -> Result<usize, String> {
    let text = std::str::from_utf8(text).map_err(|e| format!("not UTF-8: {e}"))?;
    let before = out.len();
    k8s_audit::normalise(text, origin, out).map_err(|e| {
        // An `EventList` failing halfway must not leave half its events.
        out.truncate(before);
        e.to_string()
    })
}

fn report(note: &Note, path: &std::path::Path, ctx: &SourceContext) {
    match *note {
        Note::Opened { from } => AuditLogFileOpened { path, from }.emit(&ctx.metrics),
        Note::Rotated => AuditLogFileRotated { path }.emit(&ctx.metrics),
        Note::Truncated { was, now } => {
            AuditLogFileTruncated { path, was, now }.emit(&ctx.metrics);
        }
        Note::ResumeFileGone { offset } => {
            AuditLogResumeFileGone { path, offset }.emit(&ctx.metrics);
        }
        Note::LineTooLong { offset } => AuditLogLineRejected {
            path,
            offset,
            reason: "line longer than max_line_bytes; skipped",
            excerpt: "",
        }
        .emit(&ctx.metrics),
    }
}

/// Resolves when shutdown is requested (or the host is gone). The watch
/// guard is dropped here, not held across the caller's awaits (it is not
/// `Send`).
async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
