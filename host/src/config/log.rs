//! `[log]`: the level filter and format of Vigil's own logs (stderr).
//! Read once at startup: a reload that changes them logs that a restart is
//! needed.

use serde::{Deserialize, Serialize};

use super::{Problems, Validate, join};

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Filter in tracing's `EnvFilter` syntax: `info`, `warn,vigil=debug` …
    /// `--log` and `$VIGIL_LOG` override it.
    pub level: String,
    /// `text` or `json`; `--log-format` overrides it.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl Validate for LogConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.level) {
            problems.push(join(path, "level"), format!("not a log filter: {e}"));
        }
    }
}
