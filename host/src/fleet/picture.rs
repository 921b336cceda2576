//! The fleet's picture, as `vigil fleet` builds it from the stream: the
//! nodes with their last heartbeat (server time of the message), plugins
//! and digests, sources, and the findings each node sent; the remote
//! addresses findings named, per node. Pure logic: the rules that turn the
//! picture into fleet findings live here and are tested without NATS.
//!
//! Every fleet finding has a deterministic id (rule, entities, event ids
//! made of what it is about), so the same situation seen again, by this
//! instance or by a standby after a takeover, is the same finding, and the
//! lease bucket's record of reported ids drops the repeat.
//!
//! Container churn summed over the nodes is [`churn`]'s: each heartbeat's
//! `containers_created` less the node's previous one is added to the
//! fleet's window.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::churn::{ChurnRule, FleetChurn};
use vigil_core::finding_record::FindingRecord;
use vigil_core::model::{Entity, EntityKind, Finding, KeyValue, Severity};

/// A heartbeat as read (the fields the fleet uses; unknown ones ignored so
/// newer nodes keep working).
#[derive(Debug, Clone, Deserialize)]
pub struct Heartbeat {
    pub node: String,
    #[serde(default)]
    pub version: String,
    pub interval_ms: u64,
    #[serde(default)]
    pub plugins: Vec<PluginDigest>,
    #[serde(default)]
    pub sources: BTreeMap<String, bool>,
    /// The node's run (its start time): counters restart with it.
    #[serde(default)]
    pub boot: u64,
    /// 1 for the first heartbeat of a run.
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub counters: HeartbeatCounters,
}

/// The heartbeat's counters (since the node's boot).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HeartbeatCounters {
    /// Containers its sources saw created; absent from older nodes.
    #[serde(default)]
    pub containers_created: Option<u64>,
    /// The others, as the node wrote them: handed to the Wasm fleet rules.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl HeartbeatCounters {
    /// Every counter that is a whole number, by name.
    pub fn whole(&self) -> BTreeMap<&str, u64> {
        let mut all: BTreeMap<&str, u64> = self
            .other
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_u64()?)))
            .collect();
        if let Some(n) = self.containers_created {
            all.insert("containers_created", n);
        }
        all
    }
}

/// A node's `containers_created` as last read.
#[derive(Debug, Clone, Copy)]
struct Reading {
    boot: u64,
    created: u64,
    at_ms: u64,
}

/// Whether the last token of a heartbeat's subject (`PREFIX.<token>`) is
/// the one a node named `node` publishes on (`vigil run` makes its node
/// name one subject token). The subject is what NATS permissions bind to a
/// node's credentials; a body naming another node is a node speaking for
/// someone else.
pub fn subject_names(token: &str, node: &str) -> bool {
    crate::run::heartbeat::subject_token(node) == token
}

/// A plugin of a heartbeat.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct PluginDigest {
    pub name: String,
    #[serde(default)]
    pub version: String,
    pub digest: String,
}

/// One node as the fleet knows it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeState {
    /// Server time of its last heartbeat, in milliseconds since the epoch.
    pub last_heartbeat_ms: u64,
    /// Stream sequence of that heartbeat (names a silence in its finding id).
    pub last_seq: u64,
    pub interval_ms: u64,
    pub version: String,
    pub plugins: Vec<PluginDigest>,
    /// Sources that are off on this node.
    pub sources_off: Vec<String>,
    /// Findings of this node read from the stream.
    pub findings: u64,
    /// Whether it is currently reported silent.
    pub silent: bool,
    /// Containers its sources saw created since it booted (last heartbeat).
    pub containers_created: Option<u64>,
    #[serde(skip)]
    churn_reading: Option<Reading>,
}

/// The whole picture.
#[derive(Debug, Default, Serialize)]
pub struct Picture {
    pub nodes: BTreeMap<String, NodeState>,
    /// Remote address → nodes whose findings named it.
    pub remotes: BTreeMap<String, BTreeSet<String>>,
    /// Node → plugin whose digest differs from the fleet's majority.
    pub digest_differs: BTreeMap<String, Vec<String>>,
    /// (node, plugin, digest) found differing at the last check: reported
    /// once when it starts.
    #[serde(skip)]
    differing: BTreeSet<(String, String, String)>,
    /// The churn baseline's summary (`learned` windows, overall mean).
    churn: FleetChurn,
}

/// The rules' parameters (`[fleet]`).
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub missed_heartbeats: u32,
    pub remote_min_nodes: usize,
    pub churn: ChurnRule,
}

impl Picture {
    /// The fleet's churn baseline (stored by the active instance, restored
    /// by the next one).
    pub fn churn(&self) -> &FleetChurn {
        &self.churn
    }

    /// See [`Picture::churn`].
    pub fn churn_mut(&mut self) -> &mut FleetChurn {
        &mut self.churn
    }

    /// Takes a heartbeat stored at `at_ms` (server time) with stream
    /// sequence `seq`; returns the fleet findings it completes.
    pub fn heartbeat(&mut self, hb: Heartbeat, at_ms: u64, seq: u64, rules: Rules) -> Vec<Finding> {
        let prev = self.nodes.get(&hb.node);
        let findings = prev.map_or(0, |n| n.findings);
        if prev.is_some_and(|n| n.last_heartbeat_ms > at_ms) {
            return Vec::new(); // an older one read after a newer (takeover replay)
        }
        let last = prev.and_then(|n| n.churn_reading);
        let reading = hb.counters.containers_created.map(|created| Reading {
            boot: hb.boot,
            created,
            at_ms,
        });
        let delta = reading.map_or(0, |r| {
            churn_delta(last, r, hb.seq, rules.churn.window_secs * 1000)
        });
        let spike = reading.and_then(|_| self.churn.count(&hb.node, delta, at_ms, rules.churn));
        let sources_off = hb
            .sources
            .iter()
            .filter(|(_, on)| !**on)
            .map(|(k, _)| k.clone())
            .collect();
        self.nodes.insert(
            hb.node,
            NodeState {
                last_heartbeat_ms: at_ms,
                last_seq: seq,
                interval_ms: hb.interval_ms.max(1),
                version: hb.version,
                plugins: hb.plugins,
                sources_off,
                findings,
                silent: false,
                containers_created: reading.map(|r| r.created),
                churn_reading: reading.or(last),
            },
        );
        spike.into_iter().collect()
    }

    /// Takes a node's finding; returns the fleet findings it completes.
    pub fn finding(&mut self, rec: &FindingRecord, rules: Rules) -> Vec<Finding> {
        if let Some(n) = self.nodes.get_mut(&rec.node) {
            n.findings += 1;
        } else {
            // Findings before any heartbeat: the node is known, not yet timed.
            self.nodes.insert(
                rec.node.clone(),
                NodeState {
                    last_heartbeat_ms: 0,
                    last_seq: 0,
                    interval_ms: 0,
                    version: String::new(),
                    plugins: Vec::new(),
                    sources_off: Vec::new(),
                    findings: 1,
                    silent: false,
                    containers_created: None,
                    churn_reading: None,
                },
            );
        }
        let mut out = Vec::new();
        for e in rec
            .entities
            .iter()
            .filter(|e| e.kind == EntityKind::Address)
        {
            let nodes = self.remotes.entry(e.id.clone()).or_default();
            if nodes.insert(rec.node.clone()) && nodes.len() == rules.remote_min_nodes {
                out.push(remote_on_nodes(&e.id, nodes));
            }
        }
        out
    }

    /// The time-driven and majority rules at `now_ms`. `watching_since_ms`
    /// is when this instance last (re)gained its view of the stream: a node
    /// cannot be judged silent over a time the fleet itself was not
    /// listening (NATS away, no active instance), so its timeout runs from
    /// the later of its last heartbeat and that instant.
    pub fn check(&mut self, now_ms: u64, watching_since_ms: u64, rules: Rules) -> Vec<Finding> {
        // Windows the fleet did not listen through are not learned as quiet.
        self.churn.watching_since(watching_since_ms, rules.churn);
        self.churn.advance(now_ms, rules.churn);
        let mut out = Vec::new();
        for (name, n) in &mut self.nodes {
            if n.interval_ms == 0 {
                continue;
            }
            let timeout = n.interval_ms * u64::from(rules.missed_heartbeats);
            let from = n.last_heartbeat_ms.max(watching_since_ms);
            let silent = now_ms.saturating_sub(from) > timeout;
            if silent && !n.silent {
                out.push(node_silent(name, n, now_ms));
            }
            n.silent = silent;
        }
        // Reported when a node starts to differ, not at every check: each
        // report costs a claim round trip to the key-value store.
        self.digest_differs.clear();
        let before = std::mem::take(&mut self.differing);
        for (plugin, majority) in self.majorities() {
            for (name, n) in &self.nodes {
                if let Some(p) = n.plugins.iter().find(|p| p.name == plugin)
                    && p.digest != majority
                {
                    self.digest_differs
                        .entry(name.clone())
                        .or_default()
                        .push(plugin.clone());
                    let key = (name.clone(), plugin.clone(), p.digest.clone());
                    if !before.contains(&key) {
                        out.push(digest_differs(name, p, &majority));
                    }
                    self.differing.insert(key);
                }
            }
        }
        out
    }

    /// Each plugin's majority digest, when one digest is held by more than
    /// half of the nodes running it (no majority, no verdict).
    fn majorities(&self) -> Vec<(String, String)> {
        let mut counts: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
        for n in self.nodes.values().filter(|n| !n.silent) {
            for p in &n.plugins {
                *counts
                    .entry(&p.name)
                    .or_default()
                    .entry(&p.digest)
                    .or_default() += 1;
            }
        }
        counts
            .into_iter()
            .filter_map(|(plugin, digests)| {
                let total: usize = digests.values().sum();
                let (digest, n) = digests.into_iter().max_by_key(|(_, n)| *n)?;
                (n * 2 > total).then(|| (plugin.to_owned(), digest.to_owned()))
            })
            .collect()
    }
}

/// Containers created between a node's last reading and this one. A node
/// that restarted counts from 0 again: its first heartbeat (seq 1) counts
/// whole. A first reading of a node already running (a fleet that just
/// started or took over), or a pair of readings further apart than a window
/// (the node or the fleet was away: when they were created is unknown, and
/// piling them into one window would be a spike of the outage), is only
/// where the next delta starts.
fn churn_delta(last: Option<Reading>, now: Reading, seq: u64, window_ms: u64) -> u64 {
    match last {
        Some(l) if l.boot == now.boot && now.at_ms.saturating_sub(l.at_ms) <= window_ms => {
            now.created.saturating_sub(l.created)
        }
        Some(l) if l.boot == now.boot => 0,
        _ if seq == 1 => now.created,
        _ => 0,
    }
}

fn node(name: &str) -> Entity {
    Entity {
        kind: EntityKind::Node,
        id: name.to_owned(),
        name: name.to_owned(),
    }
}

fn kv(key: &str, value: impl ToString) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: value.to_string(),
    }
}

fn node_silent(name: &str, n: &NodeState, now_ms: u64) -> Finding {
    Finding {
        rule_id: "fleet/node-silent".into(),
        title: "Vigil node silent".into(),
        severity: Severity::High,
        summary: format!(
            "node {name} sent no heartbeat for {} s (interval {} ms): its Vigil may have been stopped",
            now_ms.saturating_sub(n.last_heartbeat_ms) / 1000,
            n.interval_ms
        ),
        techniques: vec!["T1562.001".into()],
        entities: vec![node(name)],
        evidence: vec![
            kv("last_heartbeat_seq", n.last_seq),
            kv("interval_ms", n.interval_ms),
        ],
        // The silence after this heartbeat: one finding per silence.
        event_ids: vec![format!("heartbeat-seq:{}", n.last_seq)],
    }
}

fn digest_differs(name: &str, p: &PluginDigest, majority: &str) -> Finding {
    Finding {
        rule_id: "fleet/plugin-digest-differs".into(),
        title: "Plugin digest differs from the fleet".into(),
        severity: Severity::High,
        summary: format!(
            "node {name} runs plugin {} with SHA-256 {} while the fleet's majority runs {majority}: tampered or stale",
            p.name, p.digest
        ),
        techniques: vec!["T1562.001".into()],
        entities: vec![node(name)],
        evidence: vec![
            kv("plugin", &p.name),
            kv("digest", &p.digest),
            kv("majority_digest", majority),
        ],
        event_ids: vec![format!("plugin:{}:{}", p.name, p.digest)],
    }
}

fn remote_on_nodes(addr: &str, nodes: &BTreeSet<String>) -> Finding {
    let list: Vec<&str> = nodes.iter().map(String::as_str).collect();
    Finding {
        rule_id: "fleet/remote-on-nodes".into(),
        title: "Same remote address flagged on several nodes".into(),
        severity: Severity::High,
        summary: format!(
            "remote address {addr} was flagged by findings on {} nodes: {}",
            nodes.len(),
            list.join(", ")
        ),
        techniques: vec!["T1071".into()],
        entities: vec![Entity {
            kind: EntityKind::Address,
            id: addr.to_owned(),
            name: String::new(),
        }],
        evidence: vec![kv("nodes", list.join(", "))],
        event_ids: vec![format!("remote:{addr}")],
    }
}

#[cfg(test)]
mod tests;
