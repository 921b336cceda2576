//! The plugin's settings: the raw JSON shape (whose field docs are the user
//! docs) and the validated [`Config`] the grouping runs on.

use serde::Deserialize;
use vigil_plugin_sdk::settings::{self, Problems};
use vigil_plugin_sdk::{ConfigError, EntityKind};

/// What findings can be grouped by: an entity kind, or a Docker Swarm
/// service. WIT `entity-kind` has no service (the enum is part of the 0.1.0
/// contract and cannot grow), so a finding names its service in evidence:
/// `service` (container-escape, monitoring-tamper) or a `scope` of
/// `service:NAME` (container-churn).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupKind {
    /// An entity of this kind.
    Entity(EntityKind),
    /// A Swarm service, by name.
    Service,
}

impl GroupKind {
    /// The settings' and the evidence's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Entity(kind) => kind.as_str(),
            Self::Service => "service",
        }
    }
}

impl std::fmt::Display for GroupKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What findings are grouped by, most specific first.
pub const DEFAULT_GROUP_BY: &[GroupKind] = &[
    GroupKind::Entity(EntityKind::Container),
    GroupKind::Entity(EntityKind::Pod),
    GroupKind::Service,
    GroupKind::Entity(EntityKind::Image),
    GroupKind::Entity(EntityKind::Node),
];

/// The settings as the operator writes them (JSON). Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSettings {
    /// Seconds within which findings join one incident: an incident with no
    /// new finding for this long is closed (a later finding opens a new one).
    window_secs: Option<u64>,
    /// Distinct plugins whose findings an incident needs before it is reported.
    min_plugins: Option<usize>,
    /// What findings are grouped by (`container`, `pod`, `service`,
    /// `image`, `node`), in this order of preference.
    group_by: Option<Vec<String>>,
    /// Incidents kept open at once; the least recently updated is closed first.
    max_open: Option<usize>,
    /// Findings listed in one incident; later ones are counted, not listed.
    max_members: Option<usize>,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The window, in nanoseconds.
    pub window_ns: u64,
    /// Distinct plugins an incident needs.
    pub min_plugins: usize,
    /// The kinds grouped by, most preferred first.
    pub group_by: Vec<GroupKind>,
    /// Open incidents kept.
    pub max_open: usize,
    /// Findings listed per incident.
    pub max_members: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            window_ns: 600 * NS,
            min_plugins: 2,
            group_by: DEFAULT_GROUP_BY.to_vec(),
            max_open: 1024,
            max_members: 64,
        }
    }
}

const NS: u64 = 1_000_000_000;

fn kind(name: &str) -> Option<GroupKind> {
    match name {
        "container" => Some(GroupKind::Entity(EntityKind::Container)),
        "pod" => Some(GroupKind::Entity(EntityKind::Pod)),
        "service" => Some(GroupKind::Service),
        "image" => Some(GroupKind::Entity(EntityKind::Image)),
        "node" => Some(GroupKind::Entity(EntityKind::Node)),
        _ => None,
    }
}

impl Config {
    /// Parses and checks the settings, reporting every problem.
    ///
    /// # Errors
    /// Every problem, each with its JSON path.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let raw: RawSettings = settings::parse(json)?;
        let mut problems = Problems::new();
        let mut config = Self::default();
        if let Some(secs) = raw.window_secs {
            if secs == 0 || secs > 86_400 {
                problems.push("window_secs", "must be between 1 and 86400 seconds");
            }
            config.window_ns = secs.saturating_mul(NS);
        }
        if let Some(n) = raw.min_plugins {
            if !(2..=16).contains(&n) {
                problems.push("min_plugins", "must be between 2 and 16");
            }
            config.min_plugins = n;
        }
        if let Some(kinds) = raw.group_by {
            if kinds.is_empty() {
                problems.push("group_by", "must name at least one entity kind");
            }
            config.group_by.clear();
            for (i, name) in kinds.iter().enumerate() {
                match kind(name) {
                    Some(k) if config.group_by.contains(&k) => {
                        problems.push(format!("group_by[{i}]"), format!("{name} is listed twice"));
                    }
                    Some(k) => config.group_by.push(k),
                    None => problems.push(
                        format!("group_by[{i}]"),
                        format!("{name:?} is not one of container, pod, service, image, node"),
                    ),
                }
            }
        }
        if let Some(n) = raw.max_open {
            if n == 0 || n > 100_000 {
                problems.push("max_open", "must be between 1 and 100000");
            }
            config.max_open = n;
        }
        if let Some(n) = raw.max_members {
            if !(2..=256).contains(&n) {
                problems.push("max_members", "must be between 2 and 256");
            }
            config.max_members = n;
        }
        problems.into_result()?;
        Ok(config)
    }
}
