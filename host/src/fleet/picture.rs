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

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

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
}

/// The whole picture.
#[derive(Debug, Default, Serialize)]
pub struct Picture {
    pub nodes: BTreeMap<String, NodeState>,
    /// Remote address → nodes whose findings named it.
    pub remotes: BTreeMap<String, BTreeSet<String>>,
    /// Node → plugin whose digest differs from the fleet's majority.
    pub digest_differs: BTreeMap<String, Vec<String>>,
}

/// The rules' parameters (`[fleet]`).
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub missed_heartbeats: u32,
    pub remote_min_nodes: usize,
}

impl Picture {
    /// Takes a heartbeat stored at `at_ms` (server time) with stream sequence `seq`.
    pub fn heartbeat(&mut self, hb: Heartbeat, at_ms: u64, seq: u64) {
        let findings = self.nodes.get(&hb.node).map_or(0, |n| n.findings);
        if self
            .nodes
            .get(&hb.node)
            .is_some_and(|n| n.last_heartbeat_ms > at_ms)
        {
            return; // an older one read after a newer (takeover replay)
        }
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
            },
        );
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
        self.digest_differs.clear();
        for (plugin, majority) in self.majorities() {
            for (name, n) in &self.nodes {
                if let Some(p) = n.plugins.iter().find(|p| p.name == plugin)
                    && p.digest != majority
                {
                    self.digest_differs
                        .entry(name.clone())
                        .or_default()
                        .push(plugin.clone());
                    out.push(digest_differs(name, p, &majority));
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
