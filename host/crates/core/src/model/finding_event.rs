//! Findings as input to plugins (WIT 0.1.2, `interface correlate`): a
//! finding the host accepted, with who reported it, when, where, how deep it
//! is, and the host's verdict on each of its entities.

use serde::{Deserialize, Serialize};
use wasmtime::component::{ComponentType, Lift, Lower};

use super::{Finding, Timestamp};
use crate::subjects::Verdict;

/// What the host concluded about one entity of a handed-on finding.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash,
)]
#[component(enum)]
#[repr(u8)]
#[serde(rename_all = "snake_case")]
pub enum EntityVerdict {
    #[component(name = "not-checked")]
    NotChecked,
    #[component(name = "unverified")]
    Unverified,
    #[component(name = "verified")]
    Verified,
}

impl From<&Verdict> for EntityVerdict {
    fn from(v: &Verdict) -> Self {
        match v {
            Verdict::NotChecked => Self::NotChecked,
            Verdict::Unverified => Self::Unverified,
            Verdict::Verified { .. } => Self::Verified,
        }
    }
}

/// Another plugin's finding as a correlating plugin receives it.
///
/// Invariant: `verdicts` has one entry per entity of `finding`, and an
/// entity marked [`EntityVerdict::Verified`] carries the full id and name
/// the host matched, so that a receiving plugin naming it names exactly
/// what the reporting plugin was shown.
#[derive(ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[component(record)]
pub struct FindingEvent {
    #[component(name = "id")]
    pub id: String,
    #[component(name = "plugin")]
    pub plugin: String,
    #[component(name = "plugin-version")]
    pub plugin_version: String,
    #[component(name = "time")]
    pub time: Timestamp,
    #[component(name = "node")]
    pub node: String,
    #[component(name = "depth")]
    pub depth: u32,
    #[component(name = "finding")]
    pub finding: Finding,
    #[component(name = "verdicts")]
    pub verdicts: Vec<EntityVerdict>,
}
