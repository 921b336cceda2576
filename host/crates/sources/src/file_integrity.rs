//! The `file-integrity` source: changes to the files that decide how
//! containers run — runtime binaries (`dockerd`, `containerd`, the shims,
//! `runc`), their configuration and systemd units, CNI configuration,
//! kubelet configuration, static pod manifests and the audit policy.
//!
//! Each watched path is compared with a baseline (SHA-256, size, mode,
//! owner, group, mtime) persisted in SQLite: at start (a change made while
//! Vigil was down is reported then), after inotify events (debounced), and
//! by a periodic full rehash that catches whatever inotify missed. An event
//! is sent only when the state differs from the baseline, so each change is
//! one event whatever the burst of inotify events behind it: a replace by
//! rename is one `modified`, not a deletion and a creation; a `chmod` or
//! `chown` alone is `metadata`; an mtime-only change (`touch`) is recorded
//! silently. Paths never seen before (first start, or newly configured) are
//! recorded silently too: a baseline, not a flood of `created` events.
//!
//! Who made a change is not in the file event: with `name_writers`, a
//! fanotify group ([`writers`]) names the process behind each write to a
//! watched file at the moment of the write, with its container, in a
//! `write` process event (WIT 0.1.3) beside the file event.

mod baseline;
mod config;
mod internal_events;
mod monitor;
mod runner;
mod scan;
mod spec;
mod watch;
mod writers;

#[cfg(test)]
mod tests;

pub use config::{FileIntegrityConfig, FileIntegritySettings};
pub use monitor::classify;
pub use scan::{ScanError, read_state};
pub use spec::{PathSpec, SpecKind};
pub use writers::WriterSettings;

use crate::{Off, Source, SourceContext, SourceTask, Starter};
use vigil_core::validate::Problems;

/// The source's name, on its events and metrics.
pub const SOURCE: &str = "file-integrity";

/// Why the source could not start.
#[derive(Debug, thiserror::Error)]
pub enum FileIntegrityError {
    /// The baseline database could not be opened.
    #[error("cannot open the file-integrity baseline")]
    Baseline(#[source] baseline::BaselineError),
    /// The source's thread could not be spawned.
    #[error("cannot start the file-integrity thread")]
    Spawn(#[source] std::io::Error),
}

/// Opens the baseline and starts the source on its own thread (see
/// `runner`); it runs until `ctx.shutdown` turns true or the pipeline goes
/// away. Must be called inside the Tokio runtime.
pub fn start(
    settings: FileIntegritySettings,
    ctx: SourceContext,
) -> Result<std::thread::JoinHandle<()>, FileIntegrityError> {
    let baseline =
        baseline::Baseline::open(&settings.baseline).map_err(FileIntegrityError::Baseline)?;
    let monitor = monitor::Monitor::new(settings.specs.clone(), baseline);
    let rt = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("vigil-fim".into())
        .spawn(move || runner::run(settings, monitor, ctx, rt))
        .map_err(FileIntegrityError::Spawn)
}

impl Source for FileIntegrityConfig {
    const KEY: &'static str = "file_integrity";
    const NAME: &'static str = "file-integrity";
    type Settings = FileIntegritySettings;

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn check(&self, at: &str, problems: &mut Problems) -> Option<FileIntegritySettings> {
        FileIntegrityConfig::check(self, at, problems)
    }

    fn start(
        settings: FileIntegritySettings,
        starter: &Starter<'_>,
    ) -> Result<Vec<SourceTask>, Off> {
        let n = settings.specs.len();
        let writers = settings.writers.clone();
        let specs = settings.specs.clone();
        let ctx = starter.context(SOURCE);
        let thread =
            start(settings, ctx.clone()).map_err(|e| Off::Failed(vigil_core::error::chain(&e)))?;
        let mut tasks = vec![SourceTask::Thread(thread)];
        let mut named = false;
        if let Some(w) = writers {
            let rt = tokio::runtime::Handle::current();
            if let Some(t) = writers::start_or_log(w, specs, ctx, rt) {
                tasks.push(SourceTask::Thread(t));
                named = true;
            }
        }
        tracing::info!(
            "file-integrity: on ({n} paths, writers {})",
            if named { "named" } else { "not named" }
        );
        Ok(tasks)
    }
}
