//! Where findings go. Each output is a module here; several run at once,
//! each with its own minimum severity, format and retry schedule, each fed
//! from the durable spool (`crate`) and acknowledging what it
//! delivered.
//!
//! Transports: `stdout`, `file` (size-based rotation), `webhook` (HTTP
//! POST, TLS), `nats` (JetStream publish with acks). Formats, for any
//! transport: `vigil` (the native `vigil.finding/v1` schema), `ocsf` (OCSF
//! 1.5 Detection Finding, class 2004) and `falco` (Falco's JSON output, what
//! falcosidekick reads).

pub mod falco;
pub mod file;
pub mod nats;
pub mod ocsf;
pub mod stdout;
pub mod webhook;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use vigil_core::finding_record::FindingRecord;
use vigil_core::model::Severity;
use vigil_core::validate::{Problems, Validate, join};

/// How a finding is written.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Vigil's native schema, `vigil.finding/v1`.
    #[default]
    Vigil,
    /// OCSF 1.5 Detection Finding (class 2004).
    Ocsf,
    /// Falco's JSON output (for falcosidekick).
    Falco,
}

impl Format {
    /// One finding as a JSON value in this format.
    pub fn value(self, rec: &FindingRecord) -> serde_json::Value {
        match self {
            Self::Vigil => serde_json::to_value(rec).unwrap_or(serde_json::Value::Null),
            Self::Ocsf => ocsf::detection_finding(rec),
            Self::Falco => falco::event(rec),
        }
    }

    /// One finding as a JSON line (with its newline).
    pub fn line(self, rec: &FindingRecord) -> Vec<u8> {
        let mut out = match self {
            Self::Vigil => serde_json::to_vec(rec),
            _ => serde_json::to_vec(&self.value(rec)),
        }
        .unwrap_or_default();
        out.push(b'\n');
        out
    }
}

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// The destination refused the findings for good (retrying cannot help):
    /// they are dropped for this output, logged and counted.
    pub permanent: bool,
    pub message: String,
}

impl DeliveryError {
    /// A failure worth retrying (destination down, timeout, 5xx …).
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            permanent: false,
            message: message.into(),
        }
    }

    /// A refusal that retrying cannot fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            permanent: true,
            message: message.into(),
        }
    }
}

/// A destination. `deliver` returns only once the destination has
/// acknowledged every finding of the batch (written and flushed, HTTP 2xx,
/// JetStream ack), so the spool can forget them.
pub trait Output: Send {
    fn deliver(&mut self, batch: &[FindingRecord]) -> Result<(), DeliveryError>;

    /// Hands the output its metrics before the first delivery, for the
    /// counters only the output itself can bump (the NATS frame guard's).
    fn attach_metrics(&mut self, _metrics: &std::sync::Arc<vigil_core::metrics::OutputMetrics>) {}
}

/// What the delivery pipeline needs to know about an output besides how to
/// deliver to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    /// Stable name: the spool's queue for this output and the metrics label.
    pub name: String,
    pub min_severity: Severity,
    /// Also gets findings of plugins in monitor mode.
    pub monitor: bool,
    /// Findings per delivery.
    pub batch_max: usize,
    /// First retry delay after a failure; doubles up to `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

impl OutputSpec {
    /// Whether this output wants the finding.
    pub fn wants(&self, rec: &FindingRecord) -> bool {
        rec.severity >= self.min_severity && (self.monitor || !rec.monitor)
    }
}

/// Retry schedule of an output.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// First delay after a failed delivery, in milliseconds.
    #[serde(default = "default_retry_initial_ms")]
    pub initial_ms: u64,
    /// Longest delay between two attempts, in milliseconds.
    #[serde(default = "default_retry_max_ms")]
    pub max_ms: u64,
}

fn default_retry_initial_ms() -> u64 {
    500
}

fn default_retry_max_ms() -> u64 {
    60_000
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            initial_ms: default_retry_initial_ms(),
            max_ms: default_retry_max_ms(),
        }
    }
}

impl Validate for Retry {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if self.initial_ms == 0 {
            problems.push(join(path, "initial_ms"), "must be at least 1");
        }
        if self.max_ms < self.initial_ms {
            problems.push(join(path, "max_ms"), "must be at least initial_ms");
        }
    }
}

/// An output's config section: the extension point of outputs. An output
/// is its module (config + the [`Output`] it builds) and one line of the
/// `outputs!` registry below, which generates `[outputs]`, its validation
/// and the list of specs and outputs the pipeline runs.
pub trait OutputConfig: Validate {
    /// Whether it runs (only `[outputs.stdout]` can be switched off; the
    /// others run when they are in the file).
    fn enabled(&self) -> bool {
        true
    }

    /// What the pipeline needs to know besides how to deliver.
    fn spec(&self) -> OutputSpec;

    /// Opens it. `rt` runs the network outputs' I/O.
    fn build(&self, rt: &tokio::runtime::Handle) -> anyhow::Result<Box<dyn Output>>;
}

/// Generates `OutputsConfig` from one line per output: `one KEY: Config`
/// for a single table (`[outputs.KEY]`), `many KEY: Config` for an array of
/// tables (`[[outputs.KEY]]`).
macro_rules! outputs {
    ($($(#[$doc:meta])* $arity:ident $key:ident: $config:ty,)+) => {
        /// The `[outputs]` section. Default: the native schema on stdout, nothing else.
        #[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
        #[serde(deny_unknown_fields, default)]
        pub struct OutputsConfig {
            $($(#[$doc])* pub $key: outputs!(@type $arity $config),)+
        }

        impl OutputsConfig {
            /// Every configured output that runs, with its path in the file, in a fixed order.
            fn each(&self) -> Vec<(String, &dyn OutputConfig)> {
                let mut v: Vec<(String, &dyn OutputConfig)> = Vec::new();
                $(outputs!(@each $arity self.$key, stringify!($key), v);)+
                v
            }
        }
    };
    (@type one $config:ty) => { $config };
    (@type many $config:ty) => { Vec<$config> };
    (@each one $field:expr, $key:expr, $v:ident) => {
        $v.push(($key.to_owned(), &$field));
    };
    (@each many $field:expr, $key:expr, $v:ident) => {
        for (i, c) in $field.iter().enumerate() {
            $v.push((format!("{}[{i}]", $key), c));
        }
    };
}

outputs! {
    /// JSON lines on standard output (on by default).
    one stdout: stdout::StdoutConfig,
    /// JSON lines to files, with rotation.
    many file: file::FileConfig,
    /// HTTP POST.
    many webhook: webhook::WebhookConfig,
    /// NATS JetStream publish.
    many nats: nats::NatsConfig,
}

impl OutputsConfig {
    /// No output at all (stdout off): a start for tests and benchmarks.
    pub fn none() -> Self {
        let mut o = Self::default();
        o.stdout.enabled = false;
        o
    }

    /// The specs of every configured output, in a fixed order.
    pub fn specs(&self) -> Vec<OutputSpec> {
        self.each()
            .into_iter()
            .filter(|(_, c)| c.enabled())
            .map(|(_, c)| c.spec())
            .collect()
    }

    /// Opens every output. `rt` runs the network outputs' I/O.
    pub fn build(
        &self,
        rt: &tokio::runtime::Handle,
    ) -> anyhow::Result<Vec<(OutputSpec, Box<dyn Output>)>> {
        self.each()
            .into_iter()
            .filter(|(_, c)| c.enabled())
            .map(|(_, c)| Ok((c.spec(), c.build(rt)?)))
            .collect()
    }
}

impl Validate for OutputsConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        for (at, c) in self.each() {
            c.validate(&join(path, &at), problems);
        }
        let specs = self.specs();
        if specs.is_empty() {
            problems.push(
                path.to_owned(),
                "no output: stdout is disabled and no file, webhook or nats output is configured, so findings would only be counted",
            );
        }
        for (i, s) in specs.iter().enumerate() {
            if specs[..i].iter().any(|o| o.name == s.name) {
                problems.push(
                    path.to_owned(),
                    format!(
                        "two outputs are named {:?}; give one of them another `name` (it keys the output's queue in the spool)",
                        s.name
                    ),
                );
            }
        }
    }
}

/// Checks a `batch_max`.
fn validate_batch(batch: usize, path: &str, problems: &mut Problems) {
    if !(1..=10_000).contains(&batch) {
        problems.push(join(path, "batch_max"), "must be between 1 and 10000");
    }
}
