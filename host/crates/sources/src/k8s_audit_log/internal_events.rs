//! The audit log tailer's internal events: each logs with structured
//! fields and bumps its counter together.

use std::path::Path;

use vigil_core::metrics::{PluginMetrics, SourceMetrics};

/// Lines were read from the file.
pub struct AuditLogLinesRead {
    pub lines: usize,
    pub events: usize,
}

impl AuditLogLinesRead {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.received, self.lines as u64);
        tracing::trace!(
            source = super::METRICS_NAME,
            lines = self.lines,
            events = self.events,
            "k8s-audit-log: lines read"
        );
    }
}

/// A line is not an audit event (or is too long): skipped.
pub struct AuditLogLineRejected<'a> {
    pub path: &'a Path,
    pub offset: u64,
    pub reason: &'a str,
    /// The line's start, for finding it.
    pub excerpt: &'a str,
}

impl AuditLogLineRejected<'_> {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.rejected, 1);
        tracing::warn!(
            source = super::METRICS_NAME,
            path = %self.path.display(),
            offset = self.offset,
            reason = self.reason,
            excerpt = self.excerpt,
            "k8s-audit-log: line rejected"
        );
    }
}

/// The file was opened (at startup, after creation or after rotation).
pub struct AuditLogFileOpened<'a> {
    pub path: &'a Path,
    pub from: u64,
}

impl AuditLogFileOpened<'_> {
    pub fn emit(&self, _m: &SourceMetrics) {
        tracing::info!(
            source = super::METRICS_NAME,
            path = %self.path.display(),
            from = self.from,
            "k8s-audit-log: following file"
        );
    }
}

/// The file was rotated (renamed away and recreated).
pub struct AuditLogFileRotated<'a> {
    pub path: &'a Path,
}

impl AuditLogFileRotated<'_> {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.reconnects, 1);
        tracing::info!(
            source = super::METRICS_NAME,
            path = %self.path.display(),
            "k8s-audit-log: file rotated; reading the new one from its start"
        );
    }
}

/// The file was truncated: lines written between the last look and the
/// truncation may be lost (copy-truncate rotation is racy by nature).
pub struct AuditLogFileTruncated<'a> {
    pub path: &'a Path,
    pub was: u64,
    pub now: u64,
}

impl AuditLogFileTruncated<'_> {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.reconnects, 1);
        tracing::warn!(
            source = super::METRICS_NAME,
            path = %self.path.display(),
            was = self.was,
            now = self.now,
            "k8s-audit-log: file truncated; reading again from its start"
        );
    }
}

/// A look at the file failed; the next one retries.
pub struct AuditLogReadFailed<'a> {
    pub error: &'a dyn std::error::Error,
}

impl AuditLogReadFailed<'_> {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.gaps, 1);
        tracing::error!(
            source = super::METRICS_NAME,
            error = %vigil_core::error::chain(self.error),
            "k8s-audit-log: cannot read the file; retrying"
        );
    }
}

/// The file of the saved position was replaced while Vigil was down and
/// is gone: the lines written to it after the position are lost.
pub struct AuditLogResumeFileGone<'a> {
    pub path: &'a Path,
    pub offset: u64,
}

impl AuditLogResumeFileGone<'_> {
    pub fn emit(&self, m: &SourceMetrics) {
        PluginMetrics::add(&m.counters.gaps, 1);
        tracing::error!(
            source = super::METRICS_NAME,
            path = %self.path.display(),
            offset = self.offset,
            "k8s-audit-log: the file read before the restart was replaced and is gone; lines written to it after the saved offset are lost"
        );
    }
}

/// The saved position could not be read: reading starts as configured.
pub struct AuditLogPositionLoadFailed<'a> {
    pub error: &'a dyn std::error::Error,
}

impl AuditLogPositionLoadFailed<'_> {
    pub fn emit(&self) {
        tracing::error!(
            source = super::METRICS_NAME,
            error = %vigil_core::error::chain(self.error),
            "k8s-audit-log: saved read position unusable; starting as configured"
        );
    }
}

/// The position could not be saved: a restart may read lines again.
pub struct AuditLogPositionSaveFailed<'a> {
    pub error: &'a dyn std::error::Error,
}

impl AuditLogPositionSaveFailed<'_> {
    pub fn emit(&self) {
        tracing::error!(
            source = super::METRICS_NAME,
            error = %vigil_core::error::chain(self.error),
            "k8s-audit-log: cannot save the read position; a restart may repeat or miss lines"
        );
    }
}
