//! The finding as Vigil writes it: one JSON object per line, schema
//! `vigil.finding/v1`, described by `schemas/finding.schema.json`. Fields
//! are only ever added to this schema; renaming or removing one is a new
//! schema version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{Entity, EntityKind, Finding, Severity};
use crate::subjects::Verdict;
use crate::time::format_rfc3339;

/// The schema name written in every record.
pub const SCHEMA: &str = "vigil.finding/v1";

/// A finding with the context the host adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingRecord {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Stable id: a digest of the rule, the entities and the event ids, so
    /// the same finding replayed twice has the same id.
    pub id: String,
    /// When the host emitted it (replay: the time of the latest event seen), RFC 3339 UTC.
    pub time: String,
    /// The node the host runs on (replay: `--node`).
    pub node: String,
    /// The plugin that reported it.
    pub plugin: String,
    /// That plugin's version.
    pub plugin_version: String,
    /// `plugin/rule`.
    pub rule_id: String,
    pub title: String,
    pub severity: Severity,
    pub summary: String,
    /// MITRE ATT&CK technique ids.
    pub techniques: Vec<String>,
    /// What the finding is about, each checked by the host where it can be
    /// (see [`RecordEntity::verified`]).
    pub entities: Vec<RecordEntity>,
    /// Evidence keys and values; repeated keys are joined with `, `.
    pub evidence: BTreeMap<String, String>,
    pub event_ids: Vec<String>,
    /// Set only on a dedup summary: how many identical findings (same rule,
    /// same entities) were seen in the window, the first one (delivered on
    /// its own when it happened, id in `aggregates`) included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// On a dedup summary: when the first of the `count` findings was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    /// On a dedup summary: when the last of the `count` findings was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// On a dedup summary: the `id` of the first finding of the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregates: Option<String>,
    /// Reported by a plugin in monitor mode: recorded, not sent to alerting outputs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub monitor: bool,
}

/// A finding's record id: a digest of its rule, the entity ids and the event
/// ids as the plugin gave them, so the same finding always has the same id
/// (the one plugins that receive findings are handed, too).
pub fn finding_id(f: &Finding) -> String {
    let mut h = Sha256::new();
    h.update(f.rule_id.as_bytes());
    for e in &f.entities {
        h.update([0]);
        h.update(e.id.as_bytes());
    }
    for id in &f.event_ids {
        h.update([1]);
        h.update(id.as_bytes());
    }
    crate::text::hex(&h.finalize()[..12])
}

impl FindingRecord {
    /// Wraps a plugin's finding.
    pub fn new(f: Finding, plugin: &str, plugin_version: &str, node: &str, time: u64) -> Self {
        let id = finding_id(&f);
        let mut evidence: BTreeMap<String, String> = BTreeMap::new();
        for kv in f.evidence {
            evidence
                .entry(kv.key)
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&kv.value);
                })
                .or_insert(kv.value);
        }
        Self {
            schema: SCHEMA.to_owned(),
            id,
            time: format_rfc3339(time),
            node: node.to_owned(),
            plugin: plugin.to_owned(),
            plugin_version: plugin_version.to_owned(),
            rule_id: f.rule_id,
            title: f.title,
            severity: f.severity,
            summary: f.summary,
            techniques: f.techniques,
            entities: f.entities.into_iter().map(RecordEntity::from).collect(),
            evidence,
            event_ids: f.event_ids,
            count: None,
            first_seen: None,
            last_seen: None,
            aggregates: None,
            monitor: false,
        }
    }

    /// Applies the host's verdicts on the entities (one per entity, in order,
    /// from [`crate::subjects::SubjectWindow::check`]): a verified container
    /// gets its full id and its name as the plugin's events showed them, a
    /// verified pod its uid when the events showed one, and every checked
    /// entity its `verified` mark. The record's `id` stays the digest of what
    /// the plugin said, so it does not depend on the window.
    pub fn apply_verdicts(&mut self, verdicts: &[Verdict]) {
        for (e, v) in self.entities.iter_mut().zip(verdicts) {
            match v {
                Verdict::NotChecked => {}
                Verdict::Unverified => e.verified = Some(false),
                Verdict::Verified { id, name, uid } => {
                    e.verified = Some(true);
                    e.id.clone_from(id);
                    if !name.is_empty() {
                        e.name.clone_from(name);
                    }
                    e.uid.clone_from(uid);
                }
            }
        }
    }

    /// The dedup key: the rule and the entities (kind and id, in order),
    /// not the event ids, so the same thing seen again has the same key.
    pub fn dedup_key(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.rule_id.as_bytes());
        for e in &self.entities {
            h.update([0]);
            h.update(e.kind.as_str().as_bytes());
            h.update([1]);
            h.update(e.id.as_bytes());
        }
        crate::text::hex(&h.finalize()[..12])
    }

    /// Occurrences this record stands for (1 unless it is a dedup summary).
    pub fn occurrences(&self) -> u64 {
        self.count.unwrap_or(1)
    }
}

/// An entity as the record carries it: what the plugin said, corrected and
/// marked by the host. Serialised like the WIT `entity` plus two optional
/// fields, so the schema only gains fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecordEntity {
    pub kind: EntityKind,
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// For `container` and `pod` entities: `true` when the host matched it to
    /// a subject of an event it handed that plugin recently (and filled in the
    /// full container id), `false` when it could not; the response stage acts
    /// only on `true`. Absent for the kinds the host does not check, and on
    /// records written before this field existed (treated as unverified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// For a verified `pod`: its uid, when the events the plugin was shown
    /// carried it (the pod watcher, kubelet container labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

impl RecordEntity {
    /// Whether the host verified this entity.
    pub fn is_verified(&self) -> bool {
        self.verified == Some(true)
    }
}

impl From<Entity> for RecordEntity {
    fn from(e: Entity) -> Self {
        Self {
            kind: e.kind,
            id: e.id,
            name: e.name,
            verified: None,
            uid: None,
        }
    }
}
