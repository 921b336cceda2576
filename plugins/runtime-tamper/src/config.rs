//! The plugin's settings: the raw JSON shape and the validated [`Config`].

use serde::Deserialize;
use vigil_plugin_sdk::settings::{self, Problems};
use vigil_plugin_sdk::util::paths::PathPattern;
use vigil_plugin_sdk::util::rules::parse_disabled;
use vigil_plugin_sdk::{ConfigError, Severity};

use crate::rules::{PathClass, Rule, parse_severity};

/// The directories the runtime binaries are looked for in.
const BIN_DIRS: [&str; 3] = ["/usr/bin", "/usr/local/bin", "/usr/sbin"];

/// Runtime binaries (and the kubelet), in each of [`BIN_DIRS`].
const BINARIES: [&str; 12] = [
    "dockerd",
    "containerd",
    "containerd-shim*",
    "runc",
    "crun",
    "runsc",
    "docker-proxy",
    "docker-init",
    "ctr",
    "crio",
    "conmon",
    "kubelet",
];

/// The default `runtime_binaries`: every [`BINARIES`] entry in every [`BIN_DIRS`] entry.
#[must_use]
pub fn default_runtime_binaries() -> Vec<String> {
    BIN_DIRS
        .iter()
        .flat_map(|dir| BINARIES.iter().map(move |bin| format!("{dir}/{bin}")))
        .collect()
}

/// The default `daemon_configs`.
pub const DEFAULT_DAEMON_CONFIGS: &[&str] = &[
    "/etc/docker/daemon.json",
    "/etc/default/docker",
    "/etc/sysconfig/docker",
];

/// The default `runtime_configs`.
pub const DEFAULT_RUNTIME_CONFIGS: &[&str] = &[
    "/etc/containerd/config.toml",
    "/etc/crio/crio.conf",
    "/etc/crio/crio.conf.d/",
    "/lib/systemd/system/docker.service",
    "/lib/systemd/system/docker.socket",
    "/lib/systemd/system/containerd.service",
    "/usr/lib/systemd/system/docker.service",
    "/usr/lib/systemd/system/docker.socket",
    "/usr/lib/systemd/system/containerd.service",
    "/etc/systemd/system/docker.service",
    "/etc/systemd/system/docker.socket",
    "/etc/systemd/system/containerd.service",
    "/etc/systemd/system/docker.service.d/",
    "/etc/systemd/system/docker.socket.d/",
    "/etc/systemd/system/containerd.service.d/",
];

/// The default `static_pod_dirs`.
pub const DEFAULT_STATIC_POD_DIRS: &[&str] = &["/etc/kubernetes/manifests/"];

/// The default `orchestration_configs`.
pub const DEFAULT_ORCHESTRATION_CONFIGS: &[&str] = &[
    "/etc/cni/net.d/",
    "/var/lib/kubelet/config.yaml",
    "/var/lib/kubelet/kubeadm-flags.env",
    "/etc/kubernetes/kubelet.conf",
    "/etc/default/kubelet",
    "/etc/sysconfig/kubelet",
    "/lib/systemd/system/kubelet.service",
    "/usr/lib/systemd/system/kubelet.service",
    "/etc/systemd/system/kubelet.service.d/",
    "/usr/lib/systemd/system/kubelet.service.d/",
];

/// The default severity of `inconsistent-change`.
pub const DEFAULT_INCONSISTENT_SEVERITY: Severity = Severity::Critical;

/// The settings as the operator writes them. Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSettings {
    /// Replaces the runtime-binary paths.
    runtime_binaries: Option<Vec<String>>,
    /// Replaces the Docker daemon configuration paths.
    daemon_configs: Option<Vec<String>>,
    /// Replaces the runtime configuration and unit paths.
    runtime_configs: Option<Vec<String>>,
    /// Replaces the static pod manifest directories.
    static_pod_dirs: Option<Vec<String>>,
    /// Replaces the CNI and kubelet configuration paths.
    orchestration_configs: Option<Vec<String>>,
    /// Severity per class (and for `inconsistent`).
    severities: RawSeverities,
    /// Content hashes whose appearance is an approved change.
    approved_sha256: Vec<String>,
    /// Paths never reported.
    ignore_paths: Vec<String>,
    /// Rules turned off.
    disabled_rules: Vec<String>,
    /// Images whose containers `unexpected-exec` does not judge.
    exec_allowed_images: Vec<String>,
}

/// `severities.*`: each a severity name, or absent for the default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSeverities {
    #[serde(rename = "runtime-binary")]
    runtime_binary: Option<String>,
    #[serde(rename = "daemon-config")]
    daemon_config: Option<String>,
    #[serde(rename = "runtime-config")]
    runtime_config: Option<String>,
    #[serde(rename = "static-pod")]
    static_pod: Option<String>,
    #[serde(rename = "orchestration-config")]
    orchestration_config: Option<String>,
    inconsistent: Option<String>,
}

/// The validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Per class, in matching order: its patterns and severity.
    pub(crate) classes: Vec<(PathClass, Vec<PathPattern>, Severity)>,
    pub(crate) inconsistent_severity: Severity,
    pub(crate) approved_sha256: Vec<String>,
    pub(crate) ignore_paths: Vec<PathPattern>,
    pub(crate) disabled_rules: Vec<Rule>,
    /// Image references (or prefixes ending in `*`) not judged by
    /// `unexpected-exec`.
    pub(crate) exec_allowed_images: Vec<String>,
}

/// The default patterns of a class.
#[must_use]
pub fn default_paths(class: PathClass) -> Vec<String> {
    let list: &[&str] = match class {
        PathClass::RuntimeBinary => return default_runtime_binaries(),
        PathClass::DaemonConfig => DEFAULT_DAEMON_CONFIGS,
        PathClass::RuntimeConfig => DEFAULT_RUNTIME_CONFIGS,
        PathClass::StaticPod => DEFAULT_STATIC_POD_DIRS,
        PathClass::OrchestrationConfig => DEFAULT_ORCHESTRATION_CONFIGS,
    };
    list.iter().map(|p| (*p).to_owned()).collect()
}

impl Default for Config {
    fn default() -> Self {
        Self {
            classes: PathClass::ALL
                .into_iter()
                .map(|class| {
                    let patterns = default_paths(class)
                        .iter()
                        .filter_map(|p| PathPattern::parse(p).ok())
                        .collect();
                    (class, patterns, class.default_severity())
                })
                .collect(),
            inconsistent_severity: DEFAULT_INCONSISTENT_SEVERITY,
            approved_sha256: Vec::new(),
            ignore_paths: Vec::new(),
            disabled_rules: Vec::new(),
            exec_allowed_images: Vec::new(),
        }
    }
}

impl Config {
    /// Parses and validates the settings JSON, reporting every problem.
    ///
    /// # Errors
    /// Every problem found, each with its JSON path.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let raw: RawSettings = settings::parse(json)?;
        let mut problems = Problems::new();
        let mut config = Self::default();

        for (class, patterns, severity) in &mut config.classes {
            let given = match class {
                PathClass::RuntimeBinary => &raw.runtime_binaries,
                PathClass::DaemonConfig => &raw.daemon_configs,
                PathClass::RuntimeConfig => &raw.runtime_configs,
                PathClass::StaticPod => &raw.static_pod_dirs,
                PathClass::OrchestrationConfig => &raw.orchestration_configs,
            };
            if let Some(given) = given {
                *patterns = parse_patterns(given, class.setting(), &mut problems);
                if *class == PathClass::StaticPod {
                    for (i, pattern) in patterns.iter().enumerate() {
                        if !pattern.is_dir() {
                            problems.push(
                                format!("static_pod_dirs[{i}]"),
                                format!("`{}` must be a directory, ending in `/`", pattern.raw()),
                            );
                        }
                    }
                }
            }
            let named = match class {
                PathClass::RuntimeBinary => &raw.severities.runtime_binary,
                PathClass::DaemonConfig => &raw.severities.daemon_config,
                PathClass::RuntimeConfig => &raw.severities.runtime_config,
                PathClass::StaticPod => &raw.severities.static_pod,
                PathClass::OrchestrationConfig => &raw.severities.orchestration_config,
            };
            if let Some(name) = named {
                match parse_severity(name) {
                    Some(parsed) => *severity = parsed,
                    None => problems.push(
                        format!("severities.{}", class.name()),
                        unknown_severity(name),
                    ),
                }
            }
        }
        if let Some(name) = &raw.severities.inconsistent {
            match parse_severity(name) {
                Some(parsed) => config.inconsistent_severity = parsed,
                None => problems.push("severities.inconsistent", unknown_severity(name)),
            }
        }

        for (i, hash) in raw.approved_sha256.iter().enumerate() {
            let hash = hash.trim().to_ascii_lowercase();
            let hash = hash.strip_prefix("sha256:").unwrap_or(&hash);
            if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                config.approved_sha256.push(hash.to_owned());
            } else {
                problems.push(
                    format!("approved_sha256[{i}]"),
                    "must be a SHA-256 digest: 64 hexadecimal digits (optionally prefixed `sha256:`)",
                );
            }
        }
        config.ignore_paths = parse_patterns(&raw.ignore_paths, "ignore_paths", &mut problems);

        config.disabled_rules = parse_disabled(&raw.disabled_rules, &mut problems);

        for (i, image) in raw.exec_allowed_images.iter().enumerate() {
            let image = image.trim();
            if image.is_empty() || image == "*" {
                problems.push(
                    format!("exec_allowed_images[{i}]"),
                    "must be an image reference, or a prefix of one ending in `*` (not `*` alone: disable `unexpected-exec` instead)",
                );
            } else {
                config.exec_allowed_images.push(image.to_owned());
            }
        }

        problems.into_result()?;
        Ok(config)
    }

    pub(crate) fn enabled(&self, rule: Rule) -> bool {
        !self.disabled_rules.contains(&rule)
    }

    /// The class of a path and its severity; `None` when no class selects it
    /// or it is ignored.
    pub(crate) fn classify(&self, path: &str) -> Option<(PathClass, &PathPattern, Severity)> {
        if self.ignore_paths.iter().any(|p| p.matches(path)) {
            return None;
        }
        self.classes.iter().find_map(|(class, patterns, severity)| {
            patterns
                .iter()
                .find(|p| p.matches(path))
                .map(|pattern| (*class, pattern, *severity))
        })
    }

    /// A prefix of every path some class selects.
    pub(crate) fn path_prefixes(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .classes
            .iter()
            .flat_map(|(_, patterns, _)| patterns.iter().map(PathPattern::prefix))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    pub(crate) fn approved(&self, sha256: &str) -> bool {
        !sha256.is_empty()
            && self
                .approved_sha256
                .iter()
                .any(|h| h.eq_ignore_ascii_case(sha256))
    }
}

fn parse_patterns(entries: &[String], key: &str, problems: &mut Problems) -> Vec<PathPattern> {
    entries
        .iter()
        .enumerate()
        .filter_map(|(i, entry)| match PathPattern::parse(entry) {
            Ok(pattern) => Some(pattern),
            Err(reason) => {
                problems.push(format!("{key}[{i}]"), reason.to_string());
                None
            }
        })
        .collect()
}

fn unknown_severity(name: &str) -> String {
    format!("unknown severity `{name}`; expected one of: info, low, medium, high, critical")
}
