//! `[sources.*]`: one table per live source, each the source's own config
//! struct (whose field docs are the user docs), validated by the source
//! itself; its problems are re-rooted under `sources.<name>`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{docker, file_integrity, k8s_audit_log, k8s_audit_webhook, k8s_watch, network};
use vigil_core::validate::{Problems, Validate, join};

/// `[sources]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourcesConfig {
    /// `[sources.docker]`: container lifecycle from the Docker Engine API.
    pub docker: docker::DockerConfig,
    /// `[sources.network]`: container sockets from procfs, and new
    /// connections from conntrack (`conntrack = true`).
    pub network: network::NetworkConfig,
    /// `[sources.file_integrity]`: runtime binaries and configuration files.
    pub file_integrity: file_integrity::FileIntegrityConfig,
    /// `[sources.k8s_audit_webhook]`: the API server's audit webhook backend.
    pub k8s_audit_webhook: k8s_audit_webhook::WebhookConfig,
    /// `[sources.k8s_audit_log]`: the API server's JSON audit log.
    pub k8s_audit_log: k8s_audit_log::LogConfig,
    /// `[sources.k8s_watch]`: Pod, ReplicaSet and Event watchers.
    pub k8s_watch: k8s_watch::WatchConfig,
}

/// The file-integrity baseline's default file name, under the data directory.
const BASELINE_FILE: &str = "fim.sqlite";

impl SourcesConfig {
    /// Fills what defaults to a place under the data directory: the
    /// file-integrity baseline, when left at its built-in default, and the
    /// audit log's read position, when not set.
    pub fn resolve(&mut self, data_dir: &Path) {
        if self.file_integrity.baseline == file_integrity::FileIntegrityConfig::default().baseline {
            self.file_integrity.baseline = data_dir.join(BASELINE_FILE);
        }
        if self.k8s_audit_log.position_file.is_none() {
            self.k8s_audit_log.position_file = Some(data_dir.join(k8s_audit_log::POSITION_FILE));
        }
    }
}

/// Re-roots a source's problem (`docker.socket`) under `at` (`sources.docker.socket`).
fn reroot(at: &str, problem_path: &str) -> String {
    match problem_path.split_once('.') {
        Some((_, field)) => join(at, field),
        None => at.to_owned(),
    }
}

macro_rules! source_problems {
    ($result:expr, $at:expr, $problems:expr) => {
        if let Err(e) = $result {
            for p in e.0 {
                $problems.push(reroot(&$at, &p.path), p.reason);
            }
        }
    };
}

impl Validate for SourcesConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        // A source that is off is not checked: its defaults may be
        // incomplete on purpose (no `listen`, no `path`).
        if self.docker.enabled {
            source_problems!(self.docker.validate(), join(path, "docker"), problems);
        }
        if self.network.enabled {
            source_problems!(self.network.validate(), join(path, "network"), problems);
        }
        if self.file_integrity.enabled {
            source_problems!(
                self.file_integrity.validate(),
                join(path, "file_integrity"),
                problems
            );
        }
        if self.k8s_audit_webhook.enabled {
            source_problems!(
                self.k8s_audit_webhook.validate(),
                join(path, "k8s_audit_webhook"),
                problems
            );
        }
        if self.k8s_audit_log.enabled {
            source_problems!(
                self.k8s_audit_log.validate(),
                join(path, "k8s_audit_log"),
                problems
            );
        }
        if let Some(ns) = &self.k8s_watch.namespace
            && !k8s_watch::config::is_namespace_name(ns)
        {
            problems.push(
                join(path, "k8s_watch.namespace"),
                format!("{ns:?} is not a namespace name (a-z, 0-9, '-', at most 63)"),
            );
        }
    }
}
