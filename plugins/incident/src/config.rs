//! The plugin's settings: the raw JSON shape (whose field docs are the user
//! docs) and the validated [`Config`] the grouping runs on.

use serde::Deserialize;
use vigil_plugin_sdk::settings::{self, Problems};
use vigil_plugin_sdk::{ConfigError, EntityKind};

/// The entity kinds findings are grouped by, most specific first.
pub const DEFAULT_GROUP_BY: &[EntityKind] = &[
    EntityKind::Container,
    EntityKind::Pod,
    EntityKind::Image,
    EntityKind::Node,
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
    /// Entity kinds findings are grouped by (`container`, `pod`, `image`,
    /// `node`), in this order of preference.
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
    pub group_by: Vec<EntityKind>,
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

fn kind(name: &str) -> Option<EntityKind> {
    match name {
        "container" => Some(EntityKind::Container),
        "pod" => Some(EntityKind::Pod),
        "image" => Some(EntityKind::Image),
        "node" => Some(EntityKind::Node),
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
                        format!("{name:?} is not one of container, pod, image, node"),
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
