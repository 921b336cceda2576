//! Docker Swarm activity (WIT 0.1.3): the host's types for the WIT
//! `service-event` and its parts, the `service-filter` a plugin reads them
//! through, and [`Batch`], what a source hands the pipeline. Swarm events
//! are not an `event-body` case (that variant is part of the 0.1.0 contract
//! and cannot grow): they travel beside events and reach only plugins that
//! export the `services` interface.

use serde::{Deserialize, Serialize};
use wasmtime::component::{ComponentType, Lift, Lower};

use super::{ContainerSecurity, Event, KeyValue, ProcessEvent, Timestamp};

/// How a Swarm service places its tasks.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
#[component(enum)]
#[repr(u8)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceMode {
    #[component(name = "replicated")]
    #[default]
    Replicated,
    #[component(name = "global")]
    Global,
    #[component(name = "replicated-job")]
    ReplicatedJob,
    #[component(name = "global-job")]
    GlobalJob,
}

/// The kind of Swarm object a service event is about.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
#[component(enum)]
#[repr(u8)]
#[serde(rename_all = "snake_case")]
pub enum SwarmObject {
    #[component(name = "service")]
    #[default]
    Service,
    #[component(name = "node")]
    Node,
    #[component(name = "secret")]
    Secret,
    #[component(name = "config")]
    Config,
}

impl SwarmObject {
    /// The Engine's word for it (the event `Type`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Node => "node",
            Self::Secret => "secret",
            Self::Config => "config",
        }
    }
}

/// The security-relevant settings of one version of a service's spec.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
#[serde(default)]
pub struct ServiceSpec {
    #[component(name = "id")]
    pub id: String,
    #[component(name = "name")]
    pub name: String,
    #[component(name = "version")]
    pub version: u64,
    #[component(name = "image")]
    pub image: String,
    #[component(name = "mode")]
    pub mode: ServiceMode,
    #[component(name = "replicas")]
    pub replicas: Option<u64>,
    #[component(name = "networks")]
    pub networks: Vec<String>,
    #[component(name = "security")]
    pub security: ContainerSecurity,
    #[component(name = "labels")]
    pub labels: Vec<KeyValue>,
    #[component(name = "created-at")]
    pub created_at: Timestamp,
    #[component(name = "updated-at")]
    pub updated_at: Timestamp,
}

/// Docker Swarm activity seen on a manager (see `wit/types.wit`).
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
#[serde(default)]
pub struct ServiceEvent {
    #[component(name = "id")]
    pub id: String,
    #[component(name = "time")]
    pub time: Timestamp,
    #[component(name = "node")]
    pub node: String,
    #[component(name = "source")]
    pub source: String,
    #[component(name = "object")]
    pub object: SwarmObject,
    #[component(name = "action")]
    pub action: String,
    #[component(name = "object-id")]
    pub object_id: String,
    #[component(name = "name")]
    pub name: String,
    #[component(name = "service")]
    pub service: Option<ServiceSpec>,
    #[component(name = "changes")]
    pub changes: Vec<KeyValue>,
    #[component(name = "actor")]
    pub actor: String,
}

/// Which service events a plugin reads (empty lists match anything);
/// validated and evaluated in [`crate::subscription`].
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceFilter {
    #[component(name = "objects")]
    pub objects: Vec<SwarmObject>,
    #[component(name = "actions")]
    pub actions: Vec<String>,
}

/// What a source hands the pipeline: events, which every plugin may
/// subscribe to, Swarm events, which go only to plugins exporting the
/// `services` interface, or process events, which go only to plugins
/// exporting `processes`. One queue for all keeps their order.
#[derive(Debug, Clone, PartialEq)]
pub enum Batch {
    /// Normalised events.
    Events(Vec<Event>),
    /// Docker Swarm activity.
    Services(Vec<ServiceEvent>),
    /// Programs executed (WIT 0.1.3).
    Processes(Vec<ProcessEvent>),
}

impl Batch {
    /// How many events it holds.
    pub fn len(&self) -> usize {
        match self {
            Self::Events(e) => e.len(),
            Self::Services(s) => s.len(),
            Self::Processes(p) => p.len(),
        }
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The events, or nothing for a batch of Swarm or process events.
    pub fn into_events(self) -> Vec<Event> {
        match self {
            Self::Events(e) => e,
            Self::Services(_) | Self::Processes(_) => Vec::new(),
        }
    }
}

impl From<Vec<Event>> for Batch {
    fn from(events: Vec<Event>) -> Self {
        Self::Events(events)
    }
}
