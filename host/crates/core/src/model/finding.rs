//! Findings and plugin self-descriptions: what flows out of a plugin.

use serde::{Deserialize, Serialize};
use wasmtime::component::{ComponentType, Lift, Lower};

use super::{EventKind, KeyValue};

/// How bad a finding is; ordered so that `Severity::High > Severity::Low`.
#[derive(
    ComponentType,
    Lift,
    Lower,
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
)]
#[component(enum)]
#[repr(u8)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    #[component(name = "info")]
    Info,
    #[component(name = "low")]
    Low,
    #[component(name = "medium")]
    Medium,
    #[component(name = "high")]
    High,
    #[component(name = "critical")]
    Critical,
}

impl Severity {
    /// The severity's name as written in WIT and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// The kind of thing a finding is about.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash,
)]
#[component(enum)]
#[repr(u8)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    #[component(name = "container")]
    Container,
    #[component(name = "pod")]
    Pod,
    #[component(name = "node")]
    Node,
    #[component(name = "file")]
    File,
    #[component(name = "image")]
    Image,
    #[component(name = "user")]
    User,
    #[component(name = "address")]
    Address,
}

impl EntityKind {
    /// The kind's name as written in WIT and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Container => "container",
            Self::Pod => "pod",
            Self::Node => "node",
            Self::File => "file",
            Self::Image => "image",
            Self::User => "user",
            Self::Address => "address",
        }
    }
}

/// Something a finding is about.
#[derive(ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[component(record)]
pub struct Entity {
    #[component(name = "kind")]
    pub kind: EntityKind,
    #[component(name = "id")]
    pub id: String,
    #[component(name = "name")]
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// A detection returned by a plugin.
#[derive(ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[component(record)]
pub struct Finding {
    #[component(name = "rule-id")]
    pub rule_id: String,
    #[component(name = "title")]
    pub title: String,
    #[component(name = "severity")]
    pub severity: Severity,
    #[component(name = "summary")]
    pub summary: String,
    #[component(name = "techniques")]
    pub techniques: Vec<String>,
    #[component(name = "entities")]
    pub entities: Vec<Entity>,
    #[component(name = "evidence")]
    pub evidence: Vec<KeyValue>,
    #[component(name = "event-ids")]
    pub event_ids: Vec<String>,
}

/// Documentation of one plugin setting.
#[derive(ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[component(record)]
pub struct SettingInfo {
    #[component(name = "name")]
    pub name: String,
    #[component(name = "kind")]
    pub kind: String,
    #[component(name = "default-value")]
    pub default_value: String,
    #[component(name = "description")]
    pub description: String,
}

/// What a plugin says about itself.
#[derive(ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[component(record)]
pub struct PluginInfo {
    #[component(name = "name")]
    pub name: String,
    #[component(name = "version")]
    pub version: String,
    #[component(name = "description")]
    pub description: String,
    #[component(name = "subscribes")]
    pub subscribes: Vec<EventKind>,
    #[component(name = "settings")]
    pub settings: Vec<SettingInfo>,
}

/// One problem with a plugin's settings.
#[derive(ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[component(record)]
pub struct ConfigProblem {
    #[component(name = "path")]
    pub path: String,
    #[component(name = "message")]
    pub message: String,
}

/// Why a plugin refused its settings.
#[derive(ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[component(record)]
pub struct ConfigError {
    #[component(name = "problems")]
    pub problems: Vec<ConfigProblem>,
}

/// At most this many of a plugin's problems are shown; the rest are counted.
pub const CONFIG_PROBLEMS_SHOWN: usize = 16;
/// At most this many bytes of a problem's path, and of its message, are shown.
pub const CONFIG_PROBLEM_BYTES: usize = 512;

/// The problems as one line: the text comes from the plugin, so it is
/// escaped and bounded (see [`crate::text::escape_control`]).
impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::text::escape_control;
        for (i, p) in self.problems.iter().take(CONFIG_PROBLEMS_SHOWN).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            let message = escape_control(&p.message, CONFIG_PROBLEM_BYTES);
            if p.path.is_empty() {
                write!(f, "{message}")?;
            } else {
                let path = escape_control(&p.path, CONFIG_PROBLEM_BYTES);
                write!(f, "{path}: {message}")?;
            }
        }
        let hidden = self.problems.len().saturating_sub(CONFIG_PROBLEMS_SHOWN);
        if hidden > 0 {
            write!(f, "; and {hidden} more problem(s)")?;
        }
        Ok(())
    }
}
