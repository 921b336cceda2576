//! The TOML configuration file (`vigil run --config FILE`, `vigil config
//! check FILE`): typed sections, each validated by its own module, all
//! problems reported at once with their paths.
//!
//! Two phases, as everywhere in Vigil: the file is parsed into the raw
//! sections below (serde, `deny_unknown_fields`, every field documented and
//! defaulted, so an empty file is the embedded defaults), then
//! [`VigilConfig::validate`] checks every section and reports every problem
//! with its dotted path. Command-line flags are applied between the two
//! ([`overrides`]), so a flag is validated like the file.
//!
//! `config/vigil.example.toml` documents every key; `config/tests.rs` checks
//! that it parses, validates, and names every key of the defaults.

mod admin;
mod file;
mod fleet;
mod log;
pub mod overrides;
mod plugins;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use admin::{AdminConfig, DEFAULT_ADMIN_LISTEN};
pub use file::{ConfigFileError, load_file, parse};
pub use fleet::{FleetConfig, HeartbeatConfig};
pub use log::{LogConfig, LogFormat};
pub use plugins::{PluginsConfig, check_plugins};
pub use vigil_core::timeline::TimelineConfig;
pub use vigil_core::validate::{InvalidConfig, Problem, Problems, Validate, join};
pub use vigil_runtime::intel::{FeedConfig, IntelConfig};
pub use vigil_sources::SourcesConfig;

use vigil_delivery::outputs::OutputsConfig;
use vigil_delivery::{DedupConfig, DeliveryConfig, MonitorConfig, SpoolConfig, SuppressionRule};

/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/vigil";

/// The whole configuration file. Every section has defaults: no file, or an
/// empty one, is the embedded defaults.
///
/// To add a section (outputs, spool, response …): add a field here whose
/// type is `Deserialize + Serialize + Default + Validate` with
/// `#[serde(deny_unknown_fields, default)]` and a doc comment on every field;
/// add one line to [`VigilConfig::validate`]; document every key in
/// `config/vigil.example.toml` (`config::tests` fails when the example misses
/// a key of the defaults, or a key has no comment above it).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct VigilConfig {
    /// Node name stamped on events and findings; this host's name when absent.
    pub node: Option<String>,
    /// Data directory: plugin state, compile cache, file-integrity baseline.
    /// Created `0700` at startup.
    pub data_dir: PathBuf,
    /// Logging.
    pub log: LogConfig,
    /// The admin HTTP endpoint (`/metrics`, `/healthz`, `/readyz`).
    pub admin: AdminConfig,
    /// The live event sources.
    pub sources: SourcesConfig,
    /// The detector plugins.
    pub plugins: PluginsConfig,
    /// Threat-intel feeds answered to plugins.
    pub intel: IntelConfig,
    /// Where findings go (default: the native schema on stdout).
    pub outputs: OutputsConfig,
    /// The durable spool findings wait in until every output acknowledged them.
    pub spool: SpoolConfig,
    /// Identical findings (same rule, same entities) within a window become one summary with a count.
    pub dedup: DedupConfig,
    /// Suppression rules (`[[suppress]]`): counted and logged, never silent.
    pub suppress: Vec<SuppressionRule>,
    /// Plugins in monitor mode: findings recorded, not alerted.
    pub monitor: MonitorConfig,
    /// Response to findings: quarantine of containers and pods (off by default).
    pub response: vigil_response::ResponseConfig,
    /// The heartbeat `vigil run` publishes for `vigil fleet` (through the first `[[outputs.nats]]`).
    pub heartbeat: HeartbeatConfig,
    /// `vigil fleet`: the fleet's stream, lease and rules.
    pub fleet: FleetConfig,
    /// The bounded history of recent events and findings per container, pod and service (`vigil timeline`).
    pub timeline: TimelineConfig,
}

impl Default for VigilConfig {
    fn default() -> Self {
        Self {
            node: None,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            log: LogConfig::default(),
            admin: AdminConfig::default(),
            sources: SourcesConfig::default(),
            plugins: PluginsConfig::default(),
            intel: IntelConfig::default(),
            outputs: OutputsConfig::default(),
            spool: SpoolConfig::default(),
            dedup: DedupConfig::default(),
            suppress: Vec::new(),
            monitor: MonitorConfig::default(),
            response: vigil_response::ResponseConfig::default(),
            heartbeat: HeartbeatConfig::default(),
            fleet: FleetConfig::default(),
            timeline: TimelineConfig::default(),
        }
    }
}

impl Validate for VigilConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if let Some(node) = &self.node
            && node.trim().is_empty()
        {
            problems.push(
                join(path, "node"),
                "must not be empty (omit it for the host name)",
            );
        }
        if !self.data_dir.is_absolute() {
            problems.push(join(path, "data_dir"), "must be an absolute path");
        }
        self.log.validate(&join(path, "log"), problems);
        self.admin.validate(&join(path, "admin"), problems);
        self.sources.validate(&join(path, "sources"), problems);
        self.plugins.validate(&join(path, "plugins"), problems);
        self.intel.validate(&join(path, "intel"), problems);
        self.outputs.validate(&join(path, "outputs"), problems);
        vigil_delivery::validate_sections(
            &self.spool,
            &self.dedup,
            &self.suppress,
            &self.monitor,
            path,
            problems,
        );
        self.response.validate(&join(path, "response"), problems);
        self.heartbeat.validate(&join(path, "heartbeat"), problems);
        if self.heartbeat.enabled && self.outputs.nats.is_empty() {
            problems.push(
                join(path, "heartbeat.enabled"),
                "needs an [[outputs.nats]] (the heartbeat uses its connection)",
            );
        }
        self.fleet.validate(&join(path, "fleet"), problems);
        self.timeline.validate(&join(path, "timeline"), problems);
    }
}

impl VigilConfig {
    /// Every problem of the whole configuration, or `Ok`.
    pub fn check(&self) -> Result<(), InvalidConfig> {
        let mut problems = Problems::default();
        self.validate("", &mut problems);
        problems.into_result()
    }

    /// The delivery pipeline's sections.
    pub fn delivery(&self) -> DeliveryConfig {
        DeliveryConfig {
            outputs: self.outputs.clone(),
            spool: self.spool.clone(),
            dedup: self.dedup.clone(),
            suppress: self.suppress.clone(),
            monitor: self.monitor.clone(),
        }
    }

    /// The node name: the configured one, else this host's name.
    pub fn node_name(&self) -> String {
        self.node.clone().unwrap_or_else(crate::cli::hostname)
    }
}
