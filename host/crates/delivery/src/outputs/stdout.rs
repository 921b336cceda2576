//! JSON lines on standard output (the default output of `vigil run`).

use std::io::Write;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{DeliveryError, Format, Output, OutputConfig, OutputSpec, validate_batch};
use vigil_core::finding_record::FindingRecord;
use vigil_core::model::Severity;
use vigil_core::validate::{Problems, Validate};

/// `[outputs.stdout]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StdoutConfig {
    /// Write findings on stdout (default: yes).
    pub enabled: bool,
    /// Findings below this severity are not written here.
    pub min_severity: Severity,
    /// `vigil`, `ocsf` or `falco`.
    pub format: Format,
    /// Also write findings of plugins in monitor mode (default: yes).
    pub monitor: bool,
    /// Findings written per flush.
    pub batch_max: usize,
}

impl Default for StdoutConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_severity: Severity::Info,
            format: Format::Vigil,
            monitor: true,
            batch_max: 256,
        }
    }
}

impl OutputConfig for StdoutConfig {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn spec(&self) -> OutputSpec {
        OutputSpec {
            name: "stdout".into(),
            min_severity: self.min_severity,
            monitor: self.monitor,
            batch_max: self.batch_max,
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
        }
    }

    fn build(&self, _rt: &tokio::runtime::Handle) -> anyhow::Result<Box<dyn Output>> {
        Ok(Box::new(Stdout::new(self.format)))
    }
}

impl Validate for StdoutConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        validate_batch(self.batch_max, path, problems);
    }
}

/// Writes to this process's standard output.
pub struct Stdout {
    format: Format,
}

impl Stdout {
    pub fn new(format: Format) -> Self {
        Self { format }
    }
}

impl Output for Stdout {
    fn deliver(&mut self, batch: &[FindingRecord]) -> Result<(), DeliveryError> {
        let mut buf = Vec::with_capacity(batch.len() * 1024);
        for rec in batch {
            buf.extend_from_slice(&self.format.line(rec));
        }
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        out.write_all(&buf)
            .and_then(|()| out.flush())
            .map_err(|e| DeliveryError::transient(format!("cannot write to stdout: {e}")))
    }
}
