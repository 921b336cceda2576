//! The source's thread: startup comparison, then inotify-driven rescans
//! (debounced) and the periodic full rehash, until shutdown.
//!
//! A dedicated OS thread rather than a task: hashing `dockerd` (~100 MB)
//! and writing SQLite are blocking work that must not stall the runtime's
//! two worker threads. Events are handed to the pipeline with
//! `Handle::block_on(ctx.send(..))`, which waits while the queue is full.

use std::path::PathBuf;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use super::internal_events::{
    FileIntegrityBaselineRecorded, FileIntegrityBaselineWriteFailed, FileIntegrityChangeDetected,
    FileIntegrityEventsOverflowed, FileIntegrityInotifyUnavailable, FileIntegrityPathUnreadable,
    FileIntegrityRehashCompleted,
};
use super::monitor::{Diff, Monitor};
use super::watch::{self, Wake, Watches};
use super::{FileIntegritySettings, SOURCE};
use crate::SourceContext;
use vigil_core::model::{Event, EventBody};
use vigil_core::time::wall_now;

/// How often the thread looks at the shutdown flag while idle.
const POLL: Duration = Duration::from_millis(250);

/// Changes paths pending comparison, debounced.
#[derive(Default)]
struct Pending {
    paths: Vec<PathBuf>,
    everything: bool,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Pending {
    fn add(&mut self, wake: Wake) {
        match wake {
            Wake::Nothing => return,
            Wake::Everything => self.everything = true,
            Wake::Paths(p) => self.paths.extend(p),
        }
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    /// When the pending paths are due: after `debounce` of quiet, or
    /// `max_delay` after the first event at the latest.
    fn due(&self, s: &FileIntegritySettings) -> Option<Instant> {
        let (first, last) = (self.first?, self.last?);
        Some((last + s.debounce).min(first + s.max_delay))
    }
}

/// Runs the source until shutdown or until the pipeline is gone.
pub fn run(settings: FileIntegritySettings, mut monitor: Monitor, ctx: SourceContext, rt: Handle) {
    // Watches first, so that a change made during the startup scan is not
    // missed: it is compared against the updated baseline right after.
    let (mut watches, rx) = match Watches::new() {
        Ok((w, rx)) => (Some(w), Some(rx)),
        Err(error) => {
            FileIntegrityInotifyUnavailable {
                error: &error,
                rehash_every: settings.rehash_interval,
            }
            .emit();
            (None, None)
        }
    };
    if let Some(w) = &mut watches {
        w.arm(monitor.specs());
    }
    match monitor.startup() {
        Ok((recorded, diff)) => {
            if recorded > 0 {
                FileIntegrityBaselineRecorded {
                    files: recorded,
                    total: monitor.baseline().len(),
                }
                .emit();
            }
            if !deliver(&mut monitor, &diff, &ctx, &rt, true) {
                return;
            }
        }
        Err(error) => FileIntegrityBaselineWriteFailed { error: &error }.emit(),
    }
    tracing::info!(
        source = SOURCE,
        files = monitor.baseline().len(),
        watched_dirs = watches.as_ref().map_or(0, Watches::len),
        "file-integrity: watching"
    );

    let mut pending = Pending::default();
    let mut next_rehash = Instant::now() + settings.rehash_interval;
    loop {
        if *ctx.shutdown.borrow() {
            return;
        }
        let now = Instant::now();
        let wake_at = pending
            .due(&settings)
            .unwrap_or(now + POLL)
            .min(next_rehash);
        let timeout = wake_at.saturating_duration_since(now).min(POLL);
        if let Some(rx) = &rx {
            match rx.recv_timeout(timeout) {
                Ok(n) => {
                    pending.add(watch::wake(n));
                    // Drain the burst without waiting.
                    while let Ok(n) = rx.try_recv() {
                        pending.add(watch::wake(n));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        } else {
            std::thread::sleep(timeout);
        }
        let now = Instant::now();
        if now >= next_rehash {
            next_rehash = now + settings.rehash_interval;
            // Subsumes whatever was pending.
            pending = Pending::default();
            let started = Instant::now();
            if let Some(w) = &mut watches {
                w.arm(monitor.specs());
            }
            let diff = monitor.rescan(&monitor.all());
            FileIntegrityRehashCompleted {
                files: monitor.baseline().len(),
                changes: diff.events.len(),
                took: started.elapsed(),
            }
            .emit();
            if !deliver(&mut monitor, &diff, &ctx, &rt, false) {
                return;
            }
        } else if pending.due(&settings).is_some_and(|due| now >= due) {
            let batch = std::mem::take(&mut pending);
            if batch.everything {
                FileIntegrityEventsOverflowed.emit();
            }
            // Re-arm before comparing: a directory created in this batch
            // gets its watch first, and whatever lands in it from now on
            // raises a new event.
            if let Some(w) = &mut watches {
                w.arm(monitor.specs());
            }
            let specs = if batch.everything {
                monitor.all()
            } else {
                monitor.affected(&batch.paths)
            };
            if specs.is_empty() {
                continue;
            }
            let diff = monitor.rescan(&specs);
            if !deliver(&mut monitor, &diff, &ctx, &rt, false) {
                return;
            }
        }
    }
}

/// Reports a diff (unreadable paths, then events) and commits it. False
/// when the pipeline is gone.
fn deliver(
    monitor: &mut Monitor,
    diff: &Diff,
    ctx: &SourceContext,
    rt: &Handle,
    at_startup: bool,
) -> bool {
    for error in &diff.unreadable {
        FileIntegrityPathUnreadable { error }.emit(&ctx.metrics);
    }
    let events: Vec<Event> = diff
        .events
        .iter()
        .map(|event| {
            FileIntegrityChangeDetected { event, at_startup }.emit(&ctx.metrics);
            Event {
                id: ctx.next_id(),
                time: wall_now(),
                node: ctx.node.to_string(),
                source: SOURCE.to_owned(),
                body: EventBody::File(event.clone()),
            }
        })
        .collect();
    if !rt.block_on(ctx.send(events)) {
        return false;
    }
    if let Err(error) = monitor.commit(diff) {
        FileIntegrityBaselineWriteFailed { error: &error }.emit();
    }
    true
}
