//! The WIT subscription types (0.1.2): what a plugin reads of the events of
//! its kinds, returned by its optional `subscriptions` export. Validation
//! and native evaluation live in [`crate::subscription`].

use serde::{Deserialize, Serialize};
use wasmtime::component::{ComponentType, Lift, Lower};

use super::{ContainerAction, Direction};

/// Whether a plugin reads the pod spec of Kubernetes events.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
#[component(enum)]
#[repr(u8)]
#[serde(rename_all = "kebab-case")]
pub enum PodSpecUse {
    /// Never read: the host delivers events with `pod` none.
    #[component(name = "unused")]
    Unused,
    /// Read when present (the default).
    #[component(name = "when-present")]
    #[default]
    WhenPresent,
    /// Only events that carry a pod spec are delivered.
    #[component(name = "required")]
    Required,
}

/// Which Kubernetes events a plugin reads (empty lists match anything).
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
#[serde(default, deny_unknown_fields)]
pub struct KubernetesFilter {
    #[component(name = "resources")]
    pub resources: Vec<String>,
    #[component(name = "subresources")]
    pub subresources: Vec<String>,
    #[component(name = "verbs")]
    pub verbs: Vec<String>,
    #[component(name = "stages")]
    pub stages: Vec<String>,
    #[component(name = "pod-spec")]
    pub pod_spec: PodSpecUse,
}

/// Which container events a plugin reads.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
#[serde(default, deny_unknown_fields)]
pub struct ContainerFilter {
    #[component(name = "actions")]
    pub actions: Vec<ContainerAction>,
}

/// Which network events a plugin reads.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkFilter {
    #[component(name = "directions")]
    pub directions: Vec<Direction>,
    #[component(name = "ports")]
    pub ports: Vec<u16>,
}

/// Which file events a plugin reads.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
#[serde(default, deny_unknown_fields)]
pub struct FileFilter {
    #[component(name = "path-prefixes")]
    pub path_prefixes: Vec<String>,
}

/// What a plugin reads of its kinds; `None` for a kind: every event of it.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
#[serde(default, deny_unknown_fields)]
pub struct SubscriptionSet {
    #[component(name = "container")]
    pub container: Option<ContainerFilter>,
    #[component(name = "kubernetes")]
    pub kubernetes: Option<KubernetesFilter>,
    #[component(name = "network")]
    pub network: Option<NetworkFilter>,
    #[component(name = "file")]
    pub file: Option<FileFilter>,
}
