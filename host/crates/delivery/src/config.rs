//! The delivery sections of the config file: `[spool]`, `[dedup]`,
//! `[monitor]` and their view together with `[outputs]` and `[[suppress]]`
//! ([`DeliveryConfig`]), with the checks that report every problem at once.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::outputs::OutputsConfig;
use crate::spool::Sync;
use crate::suppress::SuppressionRule;
use vigil_core::validate::{Problems, Validate, join};

/// What to do when a new finding does not fit in the spool.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum WhenFull {
    /// Delete the oldest undelivered findings to make room (default: the
    /// newest findings are the ones an operator needs now).
    #[default]
    DropOldest,
    /// Refuse the new finding.
    DropNewest,
}

impl WhenFull {
    /// The name in config, logs and the `policy` metric label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::DropOldest => "drop-oldest",
            Self::DropNewest => "drop-newest",
        }
    }
}

/// `[spool]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// The SQLite file (default: `DATA_DIR/spool.sqlite`).
    pub path: Option<PathBuf>,
    /// Most findings held (waiting for at least one output).
    pub max_findings: u64,
    /// Most bytes of findings held (their native JSON).
    pub max_bytes: u64,
    /// `drop-oldest` (default) or `drop-newest`; every drop is counted
    /// (`vigil_spool_dropped_total{policy}`) and logged.
    pub when_full: WhenFull,
    /// `normal` (default: survives a crash of Vigil) or `full` (fsync every commit: survives power loss).
    pub sync: Sync,
    /// At shutdown, how long outputs may keep delivering before Vigil exits
    /// (what is left stays in the spool for the next start), in milliseconds.
    pub shutdown_grace_ms: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            path: None,
            max_findings: 100_000,
            max_bytes: 256 << 20,
            when_full: WhenFull::default(),
            sync: Sync::default(),
            shutdown_grace_ms: 3_000,
        }
    }
}

impl Validate for SpoolConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if let Some(p) = &self.path
            && !p.is_absolute()
        {
            problems.push(join(path, "path"), "must be an absolute path");
        }
        if self.max_findings == 0 {
            problems.push(join(path, "max_findings"), "must be at least 1");
        }
        if self.max_bytes < 1 << 20 {
            problems.push(join(path, "max_bytes"), "must be at least 1048576 (1 MiB)");
        }
        if self.shutdown_grace_ms > 600_000 {
            problems.push(join(path, "shutdown_grace_ms"), "must be at most 600000");
        }
    }
}

/// `[dedup]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// Window in seconds: the first finding of a rule and entities is
    /// delivered at once; identical ones in the next `window_secs` are
    /// counted, and delivered as one summary with `count` when the window
    /// ends. 0 turns dedup off.
    pub window_secs: u64,
    /// Most windows open at once; beyond, findings are delivered without dedup (counted).
    pub max_windows: usize,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            window_secs: 60,
            max_windows: 100_000,
        }
    }
}

impl Validate for DedupConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if self.window_secs > 86_400 {
            problems.push(join(path, "window_secs"), "must be at most 86400 (a day)");
        }
        if self.max_windows == 0 {
            problems.push(join(path, "max_windows"), "must be at least 1");
        }
    }
}

/// `[monitor]`: plugins whose findings are recorded, not alerted.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// Plugin names. Their findings carry `"monitor": true` and go only to
    /// outputs with `monitor = true` (stdout and files by default), never
    /// to the responder.
    pub plugins: Vec<String>,
}

impl Validate for MonitorConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        for (i, p) in self.plugins.iter().enumerate() {
            if p.is_empty() {
                problems.push(join(path, &format!("plugins[{i}]")), "must not be empty");
            }
        }
    }
}

/// Every setting of the delivery pipeline: the `outputs`, `spool`,
/// `dedup`, `suppress` and `monitor` sections of the config file
/// (the `vigil` binary's `config::VigilConfig` holds them; this is their view for the
/// pipeline, and parses a file of these sections alone in tests).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    pub outputs: OutputsConfig,
    pub spool: SpoolConfig,
    pub dedup: DedupConfig,
    pub suppress: Vec<SuppressionRule>,
    pub monitor: MonitorConfig,
}

impl DeliveryConfig {
    /// The outputs in force.
    pub fn outputs(&self) -> OutputsConfig {
        self.outputs.clone()
    }
}

impl Validate for DeliveryConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        self.outputs.validate(&join(path, "outputs"), problems);
        validate_sections(
            &self.spool,
            &self.dedup,
            &self.suppress,
            &self.monitor,
            path,
            problems,
        );
    }
}

/// Validates the delivery sections but `outputs` (shared with `VigilConfig`).
pub fn validate_sections(
    spool: &SpoolConfig,
    dedup: &DedupConfig,
    suppress: &[SuppressionRule],
    monitor: &MonitorConfig,
    path: &str,
    problems: &mut Problems,
) {
    spool.validate(&join(path, "spool"), problems);
    dedup.validate(&join(path, "dedup"), problems);
    for (i, s) in suppress.iter().enumerate() {
        s.validate(&join(path, &format!("suppress[{i}]")), problems);
        if let Some(n) = &s.name
            && suppress[..i].iter().any(|o| o.name.as_ref() == Some(n))
        {
            problems.push(
                join(path, &format!("suppress[{i}].name")),
                format!("{n:?} is used twice"),
            );
        }
    }
    monitor.validate(&join(path, "monitor"), problems);
}

/// Where the spool lives.
pub fn spool_path(cfg: &SpoolConfig, data_dir: &Path) -> PathBuf {
    cfg.path
        .clone()
        .unwrap_or_else(|| data_dir.join("spool.sqlite"))
}
