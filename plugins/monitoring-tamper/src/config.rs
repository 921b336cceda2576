//! The plugin's settings: the raw JSON shape and the validated [`Config`].

use serde::Deserialize;
use vigil_plugin_sdk::ConfigError;
use vigil_plugin_sdk::settings::{self, Problems};
use vigil_plugin_sdk::util::image::normalize_image;
use vigil_plugin_sdk::util::lists::{non_empty, non_empty_owned};
use vigil_plugin_sdk::util::paths::{PathPattern, wildcard};
use vigil_plugin_sdk::util::rules::parse_disabled;
use vigil_plugin_sdk::view::{KeyValueView, List};

use crate::rules::Rule;

/// Images of security agents (globs: `*` matches anything; a pattern without
/// a tag or digest matches every tag and digest).
pub const DEFAULT_AGENT_IMAGES: &[&str] = &[
    "vigil",
    "*/vigil",
    "falcosecurity/*",
    "*/falcosecurity/*",
    "sysdig/*",
    "*/sysdig/*",
    "*/cilium/tetragon*",
    "aquasec/tracee",
    "*/aquasecurity/tracee",
];

/// Container labels that mark a security agent: `key` (any value) or `key=value`.
pub const DEFAULT_AGENT_LABELS: &[&str] = &[
    "vigil.agent",
    "io.kubernetes.container.name=falco",
    "io.kubernetes.container.name=tetragon",
];

/// Names (globs) of agent containers and of their Kubernetes workloads and pods.
pub const DEFAULT_AGENT_NAMES: &[&str] = &["vigil*", "falco*", "sysdig*", "tetragon*", "tracee*"];

/// Kubernetes namespaces that hold security agents.
pub const DEFAULT_AGENT_NAMESPACES: &[&str] =
    &["vigil", "falco", "sysdig-agent", "tetragon", "tracee"];

/// Identities of the control plane and the nodes: their deletions are
/// rollouts, evictions and garbage collection.
pub const DEFAULT_SYSTEM_USERS: &[&str] = &[
    "system:kube-controller-manager",
    "system:kube-scheduler",
    "system:apiserver",
    "system:node:*",
    "system:serviceaccount:kube-system:*",
];

/// The Kubernetes audit configuration (what the file-integrity source watches by default).
pub const DEFAULT_AUDIT_CONFIG_PATHS: &[&str] = &[
    "/etc/kubernetes/audit-policy.yaml",
    "/etc/kubernetes/audit-webhook.yaml",
    "/etc/kubernetes/audit-webhook-config.yaml",
    "/etc/kubernetes/audit/",
];

/// Default `fold_window_secs`.
pub const DEFAULT_FOLD_WINDOW_SECS: u64 = 60;

/// Default `pod_hold_secs`.
pub const DEFAULT_POD_HOLD_SECS: u64 = 15;

/// The settings as the operator writes them. Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSettings {
    /// How security agents are recognised.
    agents: RawAgents,
    /// Replaces the system identities.
    system_users: Option<Vec<String>>,
    /// Replaces the audit configuration paths.
    audit_config_paths: Option<Vec<String>>,
    /// Window in which the events of one stop are one finding.
    fold_window_secs: Option<u64>,
    /// How long stops of pods' containers wait for a deletion through the API.
    pod_hold_secs: Option<u64>,
    /// Rules turned off.
    disabled_rules: Vec<String>,
}

/// `agents.*`, each replacing its default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAgents {
    images: Option<Vec<String>>,
    labels: Option<Vec<String>>,
    names: Option<Vec<String>>,
    namespaces: Option<Vec<String>>,
}

/// The validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub(crate) agent_images: Vec<String>,
    pub(crate) agent_labels: Vec<(String, Option<String>)>,
    pub(crate) agent_names: Vec<String>,
    pub(crate) agent_namespaces: Vec<String>,
    pub(crate) system_users: Vec<String>,
    pub(crate) audit_config_paths: Vec<PathPattern>,
    pub(crate) fold_window_ns: u64,
    pub(crate) pod_hold_ns: u64,
    pub(crate) disabled_rules: Vec<Rule>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            agent_images: owned(DEFAULT_AGENT_IMAGES),
            agent_labels: DEFAULT_AGENT_LABELS.iter().map(|l| label(l)).collect(),
            agent_names: owned(DEFAULT_AGENT_NAMES),
            agent_namespaces: owned(DEFAULT_AGENT_NAMESPACES),
            system_users: owned(DEFAULT_SYSTEM_USERS),
            audit_config_paths: DEFAULT_AUDIT_CONFIG_PATHS
                .iter()
                .filter_map(|p| PathPattern::parse(p).ok())
                .collect(),
            fold_window_ns: DEFAULT_FOLD_WINDOW_SECS * 1_000_000_000,
            pod_hold_ns: DEFAULT_POD_HOLD_SECS * 1_000_000_000,
            disabled_rules: Vec::new(),
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
        if let Some(images) = &raw.agents.images {
            config.agent_images = non_empty(images, "agents.images", &mut problems)
                .map(|i| normalize_image(i).to_owned())
                .collect();
        }
        if let Some(labels) = &raw.agents.labels {
            config.agent_labels = non_empty(labels, "agents.labels", &mut problems)
                .map(label)
                .collect();
        }
        if let Some(names) = &raw.agents.names {
            config.agent_names = non_empty_owned(names, "agents.names", &mut problems);
        }
        if let Some(namespaces) = &raw.agents.namespaces {
            config.agent_namespaces =
                non_empty_owned(namespaces, "agents.namespaces", &mut problems);
        }
        if let Some(users) = &raw.system_users {
            config.system_users = non_empty_owned(users, "system_users", &mut problems);
        }
        if let Some(paths) = &raw.audit_config_paths {
            config.audit_config_paths = paths
                .iter()
                .enumerate()
                .filter_map(|(i, p)| match PathPattern::parse(p) {
                    Ok(pattern) => Some(pattern),
                    Err(reason) => {
                        problems.push(format!("audit_config_paths[{i}]"), reason.to_string());
                        None
                    }
                })
                .collect();
        }
        if let Some(secs) = raw.fold_window_secs {
            if secs <= 86_400 {
                config.fold_window_ns = secs * 1_000_000_000;
            } else {
                problems.push("fold_window_secs", "must be at most 86400 (a day)");
            }
        }
        if let Some(secs) = raw.pod_hold_secs {
            if secs <= 3600 {
                config.pod_hold_ns = secs * 1_000_000_000;
            } else {
                problems.push("pod_hold_secs", "must be at most 3600 (an hour)");
            }
        }
        config.disabled_rules = parse_disabled(&raw.disabled_rules, &mut problems);
        problems.into_result()?;
        Ok(config)
    }

    pub(crate) fn enabled(&self, rule: Rule) -> bool {
        !self.disabled_rules.contains(&rule)
    }

    /// Why a container is a security agent (`image=falcosecurity/*`), or `None`.
    pub(crate) fn agent_container<'a>(
        &self,
        name: &str,
        image: &str,
        labels: List<'a, KeyValueView<'a>>,
    ) -> Option<String> {
        if let Some(pattern) = self.image_match(image) {
            return Some(format!("image={pattern}"));
        }
        for (key, value) in &self.agent_labels {
            if labels
                .iter()
                .any(|l| l.key == *key && value.as_ref().is_none_or(|v| *v == l.value))
            {
                return Some(match value {
                    Some(value) => format!("label={key}={value}"),
                    None => format!("label={key}"),
                });
            }
        }
        self.name_match(name)
            .map(|pattern| format!("name={pattern}"))
    }

    /// The agent image pattern `image` matches.
    pub(crate) fn image_match(&self, image: &str) -> Option<&str> {
        let image = normalize_image(image);
        if image.is_empty() {
            return None;
        }
        self.agent_images
            .iter()
            .find(|pattern| image_matches(pattern, image))
            .map(String::as_str)
    }

    /// The agent name pattern `name` matches.
    pub(crate) fn name_match(&self, name: &str) -> Option<&str> {
        let name = name.trim_start_matches('/');
        if name.is_empty() {
            return None;
        }
        self.agent_names
            .iter()
            .find(|pattern| wildcard(pattern, name))
            .map(String::as_str)
    }

    pub(crate) fn agent_namespace(&self, namespace: &str) -> bool {
        self.agent_namespaces.iter().any(|n| n == namespace)
    }

    pub(crate) fn is_system(&self, user: &str) -> bool {
        self.system_users.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => user.starts_with(prefix),
            None => p == user,
        })
    }

    pub(crate) fn audit_config(&self, path: &str) -> Option<&PathPattern> {
        self.audit_config_paths.iter().find(|p| p.matches(path))
    }

    /// Literal prefixes of every path [`Self::audit_config`] may match, for
    /// the file subscription (as runtime-tamper's), leaving out those another
    /// one covers (`/etc/kubernetes/audit/` gives `/etc/kubernetes/audit`,
    /// which covers `/etc/kubernetes/audit-policy.yaml`). With no path configured
    /// (`audit_config_paths = []`) the list is empty, which a subscription
    /// reads as every file event: none of them matches then, so that only
    /// costs their decoding.
    pub(crate) fn audit_config_prefixes(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .audit_config_paths
            .iter()
            .map(PathPattern::prefix)
            .collect();
        // Sorted, a prefix comes before every path it covers.
        all.sort();
        let mut out: Vec<String> = Vec::new();
        for prefix in all {
            if !out.iter().any(|p| prefix.starts_with(p.as_str())) {
                out.push(prefix);
            }
        }
        out
    }
}

fn owned(items: &[&str]) -> Vec<String> {
    items.iter().map(|i| (*i).to_owned()).collect()
}

fn label(entry: &str) -> (String, Option<String>) {
    match entry.split_once('=') {
        Some((key, value)) => (key.trim().to_owned(), Some(value.trim().to_owned())),
        None => (entry.trim().to_owned(), None),
    }
}

/// A glob over the whole reference (`*` matches anything, `/` included);
/// a pattern without a tag or digest also matches every tag and digest.
fn image_matches(pattern: &str, image: &str) -> bool {
    if wildcard(pattern, image) {
        return true;
    }
    let last = pattern.rsplit('/').next().unwrap_or(pattern);
    if last.contains(':') || pattern.contains('@') {
        return false;
    }
    image
        .split_once('@')
        .map(|(repo, _)| repo)
        .or_else(|| {
            // `repo:tag`, where the colon is after the last slash (not a registry port).
            let (repo, tag) = image.rsplit_once(':')?;
            (!tag.contains('/')).then_some(repo)
        })
        .is_some_and(|repo| wildcard(pattern, repo))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_globs() {
        let config = Config::default();
        for (image, expected) in [
            ("falcosecurity/falco:0.37.1", Some("falcosecurity/*")),
            (
                "docker.io/falcosecurity/falco-no-driver@sha256:abc",
                Some("falcosecurity/*"),
            ),
            (
                "public.ecr.aws/falcosecurity/falco:0.37.1",
                Some("*/falcosecurity/*"),
            ),
            ("quay.io/cilium/tetragon:v1.1.0", Some("*/cilium/tetragon*")),
            ("vigil:latest", Some("vigil")),
            ("registry.local:5000/vigil", Some("*/vigil")),
            ("vigilante:1", None),
            ("nginx:1.25", None),
            ("", None),
        ] {
            assert_eq!(config.image_match(image), expected, "{image}");
        }
    }
}
