//! The audit log tailer's configuration: raw (serde, every field
//! documented) and validated into [`LogSettings`], reporting every problem
//! at once.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigil_core::validate::{Problems, join};

/// Default time between two looks at the file, in milliseconds.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 200;

/// Below this, polling an idle file costs more than it is worth.
const MIN_POLL_INTERVAL_MS: u64 = 10;

/// The `k8s-audit-log` source as an operator writes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Run this source (off by default: it needs `path`).
    pub enabled: bool,
    /// The API server's `--audit-log-path` (JSON format, one audit event
    /// per line). It need not exist yet; it is read once it appears.
    pub path: PathBuf,
    /// Read the lines already in the file when Vigil starts for the first
    /// time. Off by default. Once a read position is saved
    /// (`position_file`), a restart resumes there whatever this says, so
    /// lines written while Vigil was down are read and none twice. A file
    /// created or rotated after start is always read from its beginning.
    pub from_beginning: bool,
    /// Where the read position (file identity and offset) is kept across
    /// restarts. Absent: `<data_dir>/k8s-audit-log.position`.
    pub position_file: Option<PathBuf>,
    /// Time between two looks at the file, in milliseconds; the latency
    /// of a new event.
    pub poll_interval_ms: u64,
    /// Longest accepted line, in bytes; a longer one is skipped (counted
    /// as rejected) so that a file without newlines cannot grow Vigil's
    /// memory without bound.
    pub max_line_bytes: usize,
    /// Bytes read per look at most; a backlog is read over several looks
    /// without waiting, so its events reach the pipeline in bounded chunks.
    pub max_read_bytes: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            path: PathBuf::new(),
            from_beginning: false,
            position_file: None,
            poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
            max_line_bytes: 16 * 1024 * 1024,
            max_read_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Where reading starts in the file found at startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// Only lines written after startup.
    End,
    /// Every line of the file.
    Beginning,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// The file followed (non-empty).
    pub path: PathBuf,
    /// Where reading starts in the file present at startup.
    pub start_at: StartAt,
    /// Time between two looks (at least 10 ms).
    pub poll_interval: Duration,
    /// Longest line (positive).
    pub max_line_bytes: usize,
    /// Bytes per look (positive).
    pub max_read_bytes: usize,
    /// Where the read position is kept, if anywhere (non-empty).
    pub position_file: Option<PathBuf>,
}

impl LogConfig {
    /// Checks every field (problems at `at.FIELD`) and resolves the configuration.
    pub fn check(&self, at: &str, problems: &mut Problems) -> Option<LogSettings> {
        let before = problems.len();
        let mut bad = |field: &str, reason: &str| problems.push(join(at, field), reason);
        if self.path.as_os_str().is_empty() {
            bad("path", "must not be empty");
        }
        if self.poll_interval_ms < MIN_POLL_INTERVAL_MS {
            bad("poll_interval_ms", "must be at least 10");
        }
        if self.max_line_bytes == 0 {
            bad("max_line_bytes", "must be positive");
        }
        if self.max_read_bytes == 0 {
            bad("max_read_bytes", "must be positive");
        }
        match &self.position_file {
            Some(p) if p.as_os_str().is_empty() => bad("position_file", "must not be empty"),
            Some(p) if !p.is_absolute() => bad("position_file", "must be an absolute path"),
            _ => {}
        }
        if problems.len() > before {
            return None;
        }
        Some(LogSettings {
            path: self.path.clone(),
            start_at: if self.from_beginning {
                StartAt::Beginning
            } else {
                StartAt::End
            },
            poll_interval: Duration::from_millis(self.poll_interval_ms),
            max_line_bytes: self.max_line_bytes,
            max_read_bytes: self.max_read_bytes,
            position_file: self.position_file.clone(),
        })
    }
}
