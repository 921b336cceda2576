//! A node's heartbeat as a fleet rule receives it (WIT 0.1.3, `interface
//! fleet`): the host's types for the WIT `heartbeat` record and its parts.
//! Only `vigil fleet` builds them, from the `vigil.heartbeat/v1` messages it
//! reads; they travel beside events and reach only plugins that export
//! `fleet`.

use serde::{Deserialize, Serialize};
use wasmtime::component::{ComponentType, Lift, Lower};

use super::Timestamp;

/// A plugin a node runs, with its digest (see `wit/types.wit`).
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
pub struct HeartbeatPlugin {
    #[component(name = "name")]
    pub name: String,
    #[component(name = "version")]
    pub version: String,
    #[component(name = "digest")]
    pub digest: String,
}

/// A node's source and whether it runs.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
pub struct HeartbeatSource {
    #[component(name = "name")]
    pub name: String,
    #[component(name = "running")]
    pub running: bool,
}

/// One of a node's counters, since it booted.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
pub struct HeartbeatCounter {
    #[component(name = "name")]
    pub name: String,
    #[component(name = "value")]
    pub value: u64,
}

/// One node's heartbeat as `vigil fleet` read it (see `wit/types.wit`).
///
/// Invariant: `node` is the node the message's subject names (the fleet
/// skips a heartbeat whose body speaks for another node before building
/// one of these); the rest is the node's own word.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
pub struct Heartbeat {
    #[component(name = "node")]
    pub node: String,
    #[component(name = "version")]
    pub version: String,
    #[component(name = "boot")]
    pub boot: Timestamp,
    #[component(name = "seq")]
    pub seq: u64,
    #[component(name = "time")]
    pub time: Timestamp,
    #[component(name = "interval-ms")]
    pub interval_ms: u64,
    #[component(name = "plugins")]
    pub plugins: Vec<HeartbeatPlugin>,
    #[component(name = "sources")]
    pub sources: Vec<HeartbeatSource>,
    #[component(name = "counters")]
    pub counters: Vec<HeartbeatCounter>,
}
