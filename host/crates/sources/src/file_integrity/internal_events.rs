//! The file-integrity source's internal events: each logs with structured
//! fields and bumps its counter together.

use std::path::Path;
use std::time::Duration;
use vigil_core::error::chain;

use vigil_core::metrics::{PluginMetrics, SourceMetrics};
use vigil_core::model::{FileChange, FileEvent};

/// Specs seen for the first time were recorded without events.
pub struct FileIntegrityBaselineRecorded {
    /// Paths recorded silently.
    pub files: usize,
    /// Paths in the baseline now.
    pub total: usize,
}

impl FileIntegrityBaselineRecorded {
    pub fn emit(&self) {
        tracing::info!(
            source = "file-integrity",
            recorded = self.files,
            total = self.total,
            "file-integrity: baseline recorded for newly watched paths (no events for them)"
        );
    }
}

/// A watched path changed; its event is about to be sent.
pub struct FileIntegrityChangeDetected<'a> {
    /// The change, as sent.
    pub event: &'a FileEvent,
    /// Found by the startup comparison (changed while Vigil was down).
    pub at_startup: bool,
}

impl FileIntegrityChangeDetected<'_> {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.received, 1);
        let change = match self.event.change {
            FileChange::Created => "created",
            FileChange::Modified => "modified",
            FileChange::Metadata => "metadata",
            FileChange::Deleted => "deleted",
        };
        tracing::info!(
            source = "file-integrity",
            path = %self.event.path,
            change,
            at_startup = self.at_startup,
            "file-integrity: watched path changed"
        );
    }
}

/// A path could not be read (permissions, I/O error); it keeps its
/// baseline state and is retried at the next event or rehash.
pub struct FileIntegrityPathUnreadable<'a> {
    /// What failed (names the path).
    pub error: &'a dyn std::error::Error,
}

impl FileIntegrityPathUnreadable<'_> {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.rejected, 1);
        tracing::warn!(source = "file-integrity", error = %chain(self.error), "file-integrity: cannot read a watched path; its change is unknown until it can be read");
    }
}

/// A directory could not be watched; changes there are found only by the
/// periodic rehash.
pub struct FileIntegrityWatchFailed<'a> {
    /// The directory.
    pub dir: &'a Path,
    /// Why (e.g. the inotify watch limit).
    pub error: &'a dyn std::error::Error,
}

impl FileIntegrityWatchFailed<'_> {
    pub fn emit(&self) {
        tracing::warn!(source = "file-integrity", dir = %self.dir.display(), error = %chain(self.error), "file-integrity: cannot watch directory; relying on the periodic rehash");
    }
}

/// inotify could not be set up at all (watch limit, no inotify); the source
/// runs on the periodic rehash alone.
pub struct FileIntegrityInotifyUnavailable<'a> {
    /// Why.
    pub error: &'a dyn std::error::Error,
    /// The rehash period, now the only detection.
    pub rehash_every: Duration,
}

impl FileIntegrityInotifyUnavailable<'_> {
    pub fn emit(&self) {
        tracing::error!(source = "file-integrity", error = %chain(self.error), rehash_every_s = self.rehash_every.as_secs(), "file-integrity: inotify unavailable; changes are found only by the periodic rehash");
    }
}

/// The kernel dropped inotify events (queue overflow) or reported an
/// error: everything is rehashed now, so nothing is lost, only later.
pub struct FileIntegrityEventsOverflowed;

impl FileIntegrityEventsOverflowed {
    // No counter: the source's counters have none for "resynchronised", and
    // nothing is lost (the rehash follows at once).
    pub fn emit(&self) {
        tracing::warn!(
            source = "file-integrity",
            "file-integrity: inotify events lost; rehashing every watched path"
        );
    }
}

/// The baseline could not be written: the same change will be reported
/// again at the next comparison (never lost).
pub struct FileIntegrityBaselineWriteFailed<'a> {
    /// Why.
    pub error: &'a dyn std::error::Error,
}

impl FileIntegrityBaselineWriteFailed<'_> {
    pub fn emit(&self) {
        tracing::error!(source = "file-integrity", error = %chain(self.error), "file-integrity: cannot write the baseline; changes may be reported again");
    }
}

/// A full rehash finished.
pub struct FileIntegrityRehashCompleted {
    /// Paths in the baseline.
    pub files: usize,
    /// Events found.
    pub changes: usize,
    /// How long it took.
    pub took: Duration,
}

impl FileIntegrityRehashCompleted {
    pub fn emit(&self) {
        tracing::debug!(
            source = "file-integrity",
            files = self.files,
            changes = self.changes,
            took_ms = self.took.as_millis() as u64,
            "file-integrity: full rehash done"
        );
    }
}
