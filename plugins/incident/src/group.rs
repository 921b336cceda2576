//! The open incidents: which findings belong together, and when an incident
//! has grown enough to be reported again.
//!
//! A finding is keyed by its entities of the configured kinds (containers
//! and pods only when the host verified them: an unverified name is what a
//! plugin claims, and must not pull findings into an incident). It joins the
//! open incident of its most specific key (`group_by` order); with none, it
//! opens one. Its other keys then point at that incident too, so a later
//! finding about the same node or image joins it. An incident is reported
//! once findings of `min_plugins` plugins are in it, and again only when a
//! new finding (a new rule or new entities: a repeat of a listed finding
//! does not count) raised its membership.
//!
//! A Docker Swarm service is a key too (`service`): findings name it in
//! evidence (see [`GroupKind::Service`]), not checked by the host, like an
//! image or a node.

use std::collections::HashMap;

use vigil_plugin_sdk::{Entity, EntityKind, EntityVerdict, FindingEvent, Severity};

use crate::config::{Config, GroupKind};

/// A grouping key: what and which (an entity's id, a service's name).
pub type Key = (GroupKind, String);

/// One finding of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The host's id of the finding.
    pub id: String,
    /// The plugin that reported it.
    pub plugin: String,
    /// Its rule.
    pub rule_id: String,
    /// Its severity.
    pub severity: Severity,
    /// When the host accepted it.
    pub time: u64,
    /// Its techniques.
    pub techniques: Vec<String>,
    /// Rule and entity ids: a repeat of a listed finding has the same.
    signature: String,
}

/// An open incident.
#[derive(Debug, Clone)]
pub struct Incident {
    /// Stable for the incident's life: from its first finding.
    pub id: String,
    /// The key it was opened on (`kind`, id).
    pub key: Key,
    /// The findings, in the order they arrived (timeline order).
    pub members: Vec<Member>,
    /// Findings that were not listed (over `max_members`).
    pub unlisted: u64,
    /// Every entity of its findings, first seen first, with the host's verdict.
    pub entities: Vec<(Entity, EntityVerdict)>,
    /// Time of its latest finding.
    pub last: u64,
    /// Members when it was last reported (0: never).
    pub reported: usize,
    /// Times it was reported.
    pub revision: u32,
}

impl Incident {
    /// The distinct plugins of its findings, in order of first appearance.
    pub fn plugins(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for m in &self.members {
            if !out.contains(&m.plugin.as_str()) {
                out.push(&m.plugin);
            }
        }
        out
    }

    /// The score: each listed finding by its severity, plus 5 for every
    /// plugin beyond the first (independent sources agreeing), at most 100.
    pub fn score(&self) -> u32 {
        let findings: u32 = self.members.iter().map(|m| weight(m.severity)).sum();
        let plugins = u32::try_from(self.plugins().len()).unwrap_or(u32::MAX);
        (findings + 5 * plugins.saturating_sub(1)).min(100)
    }
}

/// A severity's contribution to the score.
fn weight(s: Severity) -> u32 {
    match s {
        Severity::Info => 1,
        Severity::Low => 2,
        Severity::Medium => 4,
        Severity::High => 7,
        Severity::Critical => 10,
    }
}

/// The open incidents and the keys that lead to them.
#[derive(Debug, Default, Clone)]
pub struct Incidents {
    open: HashMap<String, Incident>,
    keys: HashMap<Key, String>,
}

impl Incidents {
    /// Closes the incidents with no finding for a window before `now`.
    pub fn expire(&mut self, now: u64, config: &Config) {
        let ended: Vec<String> = self
            .open
            .values()
            .filter(|i| i.last.saturating_add(config.window_ns) < now)
            .map(|i| i.id.clone())
            .collect();
        for id in ended {
            self.close(&id);
        }
    }

    fn close(&mut self, id: &str) {
        self.open.remove(id);
        self.keys.retain(|_, v| v != id);
    }

    /// How many incidents are open.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Adds a finding; returns the incident to report when it grew enough.
    pub fn add(&mut self, fe: &FindingEvent, config: &Config) -> Option<&Incident> {
        let keys = keys(fe, config);
        if keys.is_empty() {
            return None;
        }
        self.expire(fe.time, config);
        let id = match keys.iter().find_map(|k| self.keys.get(k)).cloned() {
            Some(id) => id,
            None => self.open_incident(fe, &keys[0], config),
        };
        for k in keys {
            self.keys.entry(k).or_insert_with(|| id.clone());
        }
        let incident = self.open.get_mut(&id)?;
        incident.last = incident.last.max(fe.time);
        let signature = signature(fe);
        if incident.members.iter().any(|m| m.signature == signature) {
            return None;
        }
        if incident.members.len() >= config.max_members {
            incident.unlisted += 1;
            return None;
        }
        incident.members.push(Member {
            id: fe.id.clone(),
            plugin: fe.plugin.clone(),
            rule_id: fe.finding.rule_id.clone(),
            severity: fe.finding.severity,
            time: fe.time,
            techniques: fe.finding.techniques.clone(),
            signature,
        });
        for (e, v) in fe.finding.entities.iter().zip(&fe.verdicts) {
            if !incident.entities.iter().any(|(known, _)| known == e) {
                incident.entities.push((e.clone(), *v));
            }
        }
        let grown = incident.members.len() > incident.reported;
        if incident.plugins().len() >= config.min_plugins && grown {
            incident.reported = incident.members.len();
            incident.revision += 1;
            return Some(incident);
        }
        None
    }

    fn open_incident(&mut self, fe: &FindingEvent, key: &Key, config: &Config) -> String {
        if self.open.len() >= config.max_open
            && let Some(oldest) = self
                .open
                .values()
                .min_by_key(|i| i.last)
                .map(|i| i.id.clone())
        {
            self.close(&oldest);
        }
        let id = incident_id(&fe.id, key);
        self.open.insert(
            id.clone(),
            Incident {
                id: id.clone(),
                key: key.clone(),
                members: Vec::new(),
                unlisted: 0,
                entities: Vec::new(),
                last: fe.time,
                reported: 0,
                revision: 0,
            },
        );
        id
    }
}

/// The finding's grouping keys, most preferred kind first.
fn keys(fe: &FindingEvent, config: &Config) -> Vec<Key> {
    let mut out = Vec::new();
    let mut push = |key: Key| {
        if !key.1.is_empty() && !out.contains(&key) {
            out.push(key);
        }
    };
    for kind in &config.group_by {
        match kind {
            GroupKind::Entity(kind) => {
                for (e, v) in fe.finding.entities.iter().zip(&fe.verdicts) {
                    let checked = matches!(e.kind, EntityKind::Container | EntityKind::Pod);
                    if e.kind != *kind || (checked && *v != EntityVerdict::Verified) {
                        continue;
                    }
                    push((GroupKind::Entity(e.kind), e.id.clone()));
                }
            }
            GroupKind::Service => {
                for name in services(fe) {
                    push((GroupKind::Service, name.to_owned()));
                }
            }
        }
    }
    out
}

/// The Swarm services a finding names: evidence `service`, or a `scope` of
/// `service:NAME`.
fn services(fe: &FindingEvent) -> impl Iterator<Item = &str> {
    fe.finding
        .evidence
        .iter()
        .filter_map(|kv| match kv.key.as_str() {
            "service" => Some(kv.value.as_str()),
            "scope" => kv.value.strip_prefix("service:"),
            _ => None,
        })
}

fn signature(fe: &FindingEvent) -> String {
    let mut s = fe.finding.rule_id.clone();
    for e in &fe.finding.entities {
        s.push('\0');
        s.push_str(&e.id);
    }
    s
}

/// `inc-` and 16 hex digits of a hash of the first finding and its key:
/// stable across updates and replays.
fn incident_id(first: &str, key: &Key) -> String {
    // FNV-1a, 64 bits: no dependency, and stability is all that is needed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in first
        .bytes()
        .chain([0])
        .chain(key.0.as_str().bytes())
        .chain([0])
        .chain(key.1.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("inc-{h:016x}")
}
