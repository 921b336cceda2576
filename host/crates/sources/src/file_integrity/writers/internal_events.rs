//! The writers' internal events: each logs with structured fields and
//! bumps its counter together.

use std::path::Path;

use nix::errno::Errno;
use vigil_core::error::chain;
use vigil_core::metrics::{PluginMetrics, SourceMetrics};
use vigil_core::model::ProcessEvent;

use super::WritersError;
use super::procfs::WriterError;

/// fanotify cannot be used: changes are reported without their writer.
pub struct FileIntegrityWritersUnavailable<'a> {
    /// Why.
    pub error: &'a WritersError,
}

impl FileIntegrityWritersUnavailable<'_> {
    pub fn emit(&self) {
        tracing::warn!(source = "file-integrity", error = %chain(self.error), "file-integrity: writers not named: changes are reported without the process behind them");
    }
}

/// A directory could not be marked: writes there are reported without
/// their writer.
pub struct FileIntegrityMarkFailed<'a> {
    /// The directory.
    pub dir: &'a Path,
    /// Why.
    pub error: Errno,
}

impl FileIntegrityMarkFailed<'_> {
    pub fn emit(&self) {
        tracing::warn!(source = "file-integrity", dir = %self.dir.display(), error = %self.error, "file-integrity: cannot mark directory for fanotify; its writers are not named");
    }
}

/// A named process wrote to a watched file; its event is about to be sent.
pub struct FileIntegrityWriteSeen<'a> {
    /// The `write` process event.
    pub event: &'a ProcessEvent,
}

impl FileIntegrityWriteSeen<'_> {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.received, 1);
        let e = self.event;
        let container = e.container.as_ref().map_or("host", |c| c.id.as_str());
        let name = e.container.as_ref().map_or("", |c| c.name.as_str());
        tracing::info!(
            source = "file-integrity",
            path = e.path.as_deref().unwrap_or_default(),
            pid = e.pid,
            binary = %e.binary,
            container,
            container_name = name,
            "file-integrity: watched file written"
        );
    }
}

/// A writer whose details could not be read (it exited first): the write
/// is not reported as a process event; the change still is, by the
/// file-integrity event.
pub struct FileIntegrityWriterMissed<'a> {
    /// The pid fanotify reported.
    pub pid: i32,
    /// The watched file.
    pub path: &'a str,
    /// Why.
    pub error: &'a WriterError,
}

impl FileIntegrityWriterMissed<'_> {
    pub fn emit(&self, m: &SourceMetrics) {
        let first = PluginMetrics::get(&m.counters.unattributed) == 0;
        PluginMetrics::add(&m.counters.unattributed, 1);
        if first {
            tracing::warn!(source = "file-integrity", pid = self.pid, path = self.path, error = %chain(self.error), "file-integrity: writer of a watched file not named");
        } else {
            tracing::debug!(source = "file-integrity", pid = self.pid, path = self.path, error = %chain(self.error), "file-integrity: writer of a watched file not named");
        }
    }
}

/// The kernel's fanotify queue overflowed: writes were lost (their changes
/// are still found by inotify and the rehash, without their writers).
pub struct FileIntegrityWritersOverflowed;

impl FileIntegrityWritersOverflowed {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.gaps, 1);
        tracing::warn!(
            source = "file-integrity",
            "file-integrity: fanotify queue overflowed; some writers of watched files were not named"
        );
    }
}

/// Reading the fanotify group failed (logged; the loop goes on).
pub struct FileIntegrityWritersReadFailed {
    /// Why.
    pub error: Errno,
}

impl FileIntegrityWritersReadFailed {
    pub fn emit(&self) {
        tracing::warn!(source = "file-integrity", error = %self.error, "file-integrity: cannot read the fanotify group");
    }
}
