//! The plugin's settings: the raw JSON shape and the validated [`Config`].

use serde::Deserialize;
use vigil_plugin_sdk::ConfigError;
use vigil_plugin_sdk::settings::{self, Problems};
use vigil_plugin_sdk::util::image::{ImagePattern, normalize_image};
use vigil_plugin_sdk::util::lists::{non_empty, non_empty_owned};
use vigil_plugin_sdk::util::rules::parse_disabled;

use crate::rules::Rule;

/// Namespaces where only the cluster's own components should create pods.
pub const DEFAULT_PROTECTED_NAMESPACES: &[&str] = &["kube-system", "kube-public"];

/// Identities of the control plane and the nodes: what they create in a
/// protected namespace is the cluster's own doing (or, for a controller,
/// attributed to whoever created the controller's workload).
pub const DEFAULT_SYSTEM_USERS: &[&str] = &[
    "system:kube-controller-manager",
    "system:kube-scheduler",
    "system:apiserver",
    "system:node:*",
    "system:serviceaccount:kube-system:*",
];

/// Images of core cluster add-ons whose pods in a protected namespace are
/// expected (`system-namespace-pod` only).
pub const DEFAULT_TRUSTED_IMAGES: &[&str] = &[
    "registry.k8s.io/coredns/coredns",
    "registry.k8s.io/kube-proxy",
    "registry.k8s.io/pause",
    "registry.k8s.io/metrics-server/metrics-server",
    "k8s.gcr.io/coredns/coredns",
    "k8s.gcr.io/coredns",
    "k8s.gcr.io/kube-proxy",
    "k8s.gcr.io/pause",
];

/// Default cap of each map the plugin keeps (creators, owners, reported workloads).
pub const DEFAULT_MAX_TRACKED_OBJECTS: usize = 2048;

/// The settings as the operator writes them. Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSettings {
    /// Replaces the protected namespaces.
    protected_namespaces: Option<Vec<String>>,
    /// Replaces the system identities.
    system_users: Option<Vec<String>>,
    /// Replaces the trusted add-on images.
    trusted_images: Option<Vec<String>>,
    /// What is never reported.
    allowlist: RawAllowlist,
    /// Cap of each tracked map.
    max_tracked_objects: Option<usize>,
    /// Rules turned off.
    disabled_rules: Vec<String>,
}

/// `allowlist.*`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAllowlist {
    /// Users (patterns) never reported.
    users: Vec<String>,
    /// Namespaces never reported.
    namespaces: Vec<String>,
}

/// The validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub(crate) protected_namespaces: Vec<String>,
    pub(crate) system_users: Vec<UserPattern>,
    pub(crate) trusted_images: Vec<ImagePattern>,
    pub(crate) allowed_users: Vec<UserPattern>,
    pub(crate) allowed_namespaces: Vec<String>,
    pub(crate) max_tracked_objects: usize,
    pub(crate) disabled_rules: Vec<Rule>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            protected_namespaces: owned(DEFAULT_PROTECTED_NAMESPACES),
            system_users: DEFAULT_SYSTEM_USERS
                .iter()
                .map(|u| UserPattern::new(u))
                .collect(),
            trusted_images: DEFAULT_TRUSTED_IMAGES
                .iter()
                .map(|i| ImagePattern::new(i))
                .collect(),
            allowed_users: Vec::new(),
            allowed_namespaces: Vec::new(),
            max_tracked_objects: DEFAULT_MAX_TRACKED_OBJECTS,
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
        if let Some(namespaces) = &raw.protected_namespaces {
            config.protected_namespaces =
                non_empty_owned(namespaces, "protected_namespaces", &mut problems);
        }
        if let Some(users) = &raw.system_users {
            config.system_users = non_empty(users, "system_users", &mut problems)
                .map(UserPattern::new)
                .collect();
        }
        if let Some(images) = &raw.trusted_images {
            config.trusted_images = non_empty(images, "trusted_images", &mut problems)
                .map(ImagePattern::new)
                .collect();
        }
        config.allowed_users = non_empty(&raw.allowlist.users, "allowlist.users", &mut problems)
            .map(UserPattern::new)
            .collect();
        config.allowed_namespaces = non_empty_owned(
            &raw.allowlist.namespaces,
            "allowlist.namespaces",
            &mut problems,
        );
        if let Some(max) = raw.max_tracked_objects {
            if (16..=100_000).contains(&max) {
                config.max_tracked_objects = max;
            } else {
                problems.push("max_tracked_objects", "must be between 16 and 100000");
            }
        }
        config.disabled_rules = parse_disabled(&raw.disabled_rules, &mut problems);
        problems.into_result()?;
        Ok(config)
    }

    pub(crate) fn enabled(&self, rule: Rule) -> bool {
        !self.disabled_rules.contains(&rule)
    }

    pub(crate) fn protected(&self, namespace: &str) -> bool {
        self.protected_namespaces.iter().any(|n| n == namespace)
    }

    /// A control-plane or node identity.
    pub(crate) fn is_system(&self, user: &str) -> bool {
        self.system_users.iter().any(|p| p.matches(user))
    }

    /// Never reported: an allowlisted user, or a request in an allowlisted namespace.
    pub(crate) fn allowed(&self, user: &str, namespace: &str) -> bool {
        self.allowed_users.iter().any(|p| p.matches(user))
            || self.allowed_namespaces.iter().any(|n| n == namespace)
    }

    pub(crate) fn image_trusted(&self, image: &str) -> bool {
        let image = normalize_image(image);
        self.trusted_images.iter().any(|p| p.matches(image))
    }
}

fn owned(items: &[&str]) -> Vec<String> {
    items.iter().map(|i| (*i).to_owned()).collect()
}

/// A user name, exactly, or a prefix when it ends in `*`
/// (`system:serviceaccount:kube-system:*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UserPattern {
    Exact(String),
    Prefix(String),
}

impl UserPattern {
    fn new(entry: &str) -> Self {
        match entry.strip_suffix('*') {
            Some(prefix) => Self::Prefix(prefix.to_owned()),
            None => Self::Exact(entry.to_owned()),
        }
    }

    pub(crate) fn matches(&self, user: &str) -> bool {
        match self {
            Self::Exact(name) => name == user,
            Self::Prefix(prefix) => user.starts_with(prefix.as_str()),
        }
    }
}
