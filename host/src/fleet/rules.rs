//! Fleet rules as Wasm plugins: plugins that receive findings (`correlate`,
//! WIT 0.1.2) are handed every node's findings as `vigil fleet` reads them
//! from the stream, and plugins that export `fleet` (WIT 0.1.3) every
//! node's heartbeat, so teams write their fleet rules like any correlation
//! rule (`vigil plugin new --kind correlator`, `export_detector!(T,
//! heartbeats)`), sandboxed like any plugin. A rule may take either or both.
//!
//! Which plugins: the built-ins named in `fleet.rules` and the files of
//! `[plugins] dir`, with `[plugins]`'s settings, policies, limits and
//! signature rules. A plugin that receives neither findings nor heartbeats
//! would never be called here: it is refused at start, naming it.
//!
//! What they are shown: each node's finding as that node recorded it (its
//! plugin, version, node and entities, each marked verified as the node
//! verified it); the fleet verifies nothing itself and never responds, so
//! the node's word is what the rule reasons on. Depth: a node's finding is
//! handed on as 0 deep (records do not carry their depth), and rules hand
//! their findings to each other within the host's depth bound as in `vigil
//! run`.

use std::sync::{Arc, RwLock};

use anyhow::bail;
use vigil_core::finding_record::{FindingRecord, RecordEntity};
use vigil_core::metrics::Registry;
use vigil_core::model::{
    Entity, EntityKind, Finding, Heartbeat, HeartbeatCounter, HeartbeatPlugin, HeartbeatSource,
    KeyValue,
};
use vigil_core::subjects::Verdict;
use vigil_runtime::dispatch::Dispatcher;
use vigil_runtime::feed::{FedFindings, Producer};
use vigil_runtime::plugin_set;
use vigil_runtime::{Clock, EngineSettings, ReplayClock, RunContext, Runtime};

use super::FleetFinding;
use crate::config::VigilConfig;

/// The loaded fleet rules.
pub struct FleetRules {
    dispatcher: Dispatcher,
    /// Whether any rule exports `fleet` (heartbeats are converted only then).
    heartbeats: bool,
    /// Nanoseconds of the last tick: rules are ticked about every second.
    last_tick: u64,
}

const TICK_NS: u64 = 1_000_000_000;

impl FleetRules {
    /// Loads `fleet.rules` and the files of `[plugins] dir`; `None` when
    /// there is neither. A plugin that cannot load, or receives neither
    /// findings nor heartbeats, stops the start with its reason (a fleet
    /// rule silently missing would be a blind spot).
    pub fn load(config: &VigilConfig, registry: &Registry) -> anyhow::Result<Option<Self>> {
        let mut selection = config.plugins.selection();
        selection.builtin = !config.fleet.rules.is_empty();
        selection.builtin_only = Some(config.fleet.rules.clone());
        if !selection.builtin && selection.dir.is_none() {
            return Ok(None);
        }
        let unknown = plugin_set::unknown_names(&selection);
        if !unknown.is_empty() {
            let list: Vec<String> = unknown.iter().map(ToString::to_string).collect();
            bail!("fleet rules: {}", list.join("; "));
        }
        let cache = config.plugins.cache_dir(&config.data_dir);
        let runtime = Runtime::new(&EngineSettings::default(), cache.as_deref())?;
        let intel = crate::run::reload::load_intel(&config.intel)?;
        let ctx = RunContext {
            clock: Clock::Wall,
            intel: Arc::new(RwLock::new(Arc::new(intel))),
            state_dir: Some(config.data_dir.join("state")),
        };
        let (mut runners, refused) = plugin_set::load(&runtime, &selection, &ctx);
        if !refused.is_empty() {
            let list: Vec<String> = refused
                .iter()
                .map(|e| vigil_core::error::chain(e).to_string())
                .collect();
            bail!("fleet rules not loaded: {}", list.join("; "));
        }
        let blind: Vec<&str> = runners
            .iter()
            .filter(|r| !r.takes_findings() && !r.takes_heartbeats())
            .map(|r| r.name())
            .collect();
        if !blind.is_empty() {
            bail!(
                "fleet rules must receive findings or heartbeats (export `correlate`, world `correlator`, or `fleet`, world `fleet-detector`): {} do not",
                blind.join(", ")
            );
        }
        let heartbeats = runners.iter().any(|r| r.takes_heartbeats());
        // Their counters on the fleet's `/metrics`, as in `vigil run`.
        for r in &mut runners {
            let m = registry.plugin(r.name());
            r.set_metrics(m);
        }
        let names: Vec<&str> = runners.iter().map(|r| r.name()).collect();
        tracing::info!(rules = ?names, "fleet: Wasm rules loaded");
        let mut dispatcher = Dispatcher::new(runners, 1, ReplayClock::new());
        dispatcher.node = config.node_name().to_string();
        Ok(Some(Self {
            dispatcher,
            heartbeats,
            last_tick: 0,
        }))
    }

    /// Hands one node's finding to the rules; returns what they report.
    /// `at_ms`: when the stream stored it.
    pub fn hand(&mut self, rec: &FindingRecord, at_ms: u64) -> Vec<FleetFinding> {
        let (finding, verdicts) = from_record(rec);
        let time = vigil_core::time::parse_rfc3339(&rec.time).unwrap_or(at_ms * 1_000_000);
        let mut batch = FedFindings::default();
        batch.push(
            Producer {
                plugin: &rec.plugin,
                version: &rec.plugin_version,
                node: &rec.node,
                time,
                depth: 0,
            },
            &finding,
            &verdicts,
        );
        // The id every output gave it, whatever the entities became since.
        if let Some(e) = batch.events.last_mut() {
            e.id.clone_from(&rec.id);
        }
        let mut out = Vec::new();
        self.dispatcher
            .hand_findings(batch, &mut |p, f, v| out.push(fleet_finding(p, f, v, 1)));
        out
    }

    /// Whether any rule receives heartbeats.
    pub fn takes_heartbeats(&self) -> bool {
        self.heartbeats
    }

    /// Hands one node's heartbeat (its subject already checked) to the
    /// rules that export `fleet`; returns what they report.
    pub fn hand_heartbeat(&mut self, hb: &Heartbeat) -> Vec<FleetFinding> {
        let mut out = Vec::new();
        self.dispatcher
            .hand_heartbeats(std::slice::from_ref(hb), &mut |p, f, v| {
                out.push(fleet_finding(p, f, v, 0));
            });
        out
    }

    /// Ticks the rules when a second has passed; returns what they report.
    pub fn tick(&mut self) -> Vec<FleetFinding> {
        let now = vigil_core::time::wall_now();
        if now.saturating_sub(self.last_tick) < TICK_NS {
            return Vec::new();
        }
        self.last_tick = now;
        let mut out = Vec::new();
        self.dispatcher
            .tick(now, &mut |p, f, v| out.push(fleet_finding(p, f, v, 0)));
        out
    }
}

/// `depth`: 1 for a finding made from the nodes' findings, 0 for one made
/// from heartbeats or on a tick (from no finding).
fn fleet_finding(
    plugin: &vigil_runtime::LoadedPlugin,
    finding: Finding,
    verdicts: Vec<Verdict>,
    depth: u32,
) -> FleetFinding {
    FleetFinding {
        plugin: plugin.info.name.clone(),
        version: plugin.info.version.clone(),
        finding,
        verdicts,
        depth,
    }
}

/// A heartbeat as the rules receive it (WIT `heartbeat`); `at_ms`: when
/// the stream stored it.
pub fn heartbeat_event(hb: &super::picture::Heartbeat, at_ms: u64) -> Heartbeat {
    Heartbeat {
        node: hb.node.clone(),
        version: hb.version.clone(),
        boot: hb.boot,
        seq: hb.seq,
        time: at_ms.saturating_mul(1_000_000),
        interval_ms: hb.interval_ms,
        plugins: hb
            .plugins
            .iter()
            .map(|p| HeartbeatPlugin {
                name: p.name.clone(),
                version: p.version.clone(),
                digest: p.digest.clone(),
            })
            .collect(),
        sources: hb
            .sources
            .iter()
            .map(|(name, running)| HeartbeatSource {
                name: name.clone(),
                running: *running,
            })
            .collect(),
        counters: hb
            .counters
            .whole()
            .into_iter()
            .map(|(name, value)| HeartbeatCounter {
                name: name.to_owned(),
                value,
            })
            .collect(),
    }
}

/// The finding a node recorded, and the node's verdicts on its entities.
fn from_record(rec: &FindingRecord) -> (Finding, Vec<Verdict>) {
    let verdicts = rec.entities.iter().map(verdict).collect();
    let finding = Finding {
        rule_id: rec.rule_id.clone(),
        title: rec.title.clone(),
        severity: rec.severity,
        summary: rec.summary.clone(),
        techniques: rec.techniques.clone(),
        entities: rec
            .entities
            .iter()
            .map(|e| Entity {
                kind: e.kind,
                id: e.id.clone(),
                name: e.name.clone(),
            })
            .collect(),
        evidence: rec
            .evidence
            .iter()
            .map(|(k, v)| KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
        event_ids: rec.event_ids.clone(),
    };
    (finding, verdicts)
}

fn verdict(e: &RecordEntity) -> Verdict {
    match (e.kind, e.verified) {
        (EntityKind::Container | EntityKind::Pod, Some(true)) => Verdict::Verified {
            id: e.id.clone(),
            name: e.name.clone(),
            uid: e.uid.clone(),
        },
        (EntityKind::Container | EntityKind::Pod, _) => Verdict::Unverified,
        _ => Verdict::NotChecked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(kind: EntityKind, verified: Option<bool>) -> RecordEntity {
        RecordEntity {
            kind,
            id: "c0ffee".into(),
            name: "web".into(),
            verified,
            uid: None,
        }
    }

    #[test]
    fn a_heartbeat_reaches_the_rules_with_its_sources_plugins_and_whole_counters() {
        let hb: super::super::picture::Heartbeat = serde_json::from_value(serde_json::json!({
            "schema": "vigil.heartbeat/v1", "node": "n1", "version": "0.2.0",
            "boot": 7, "seq": 3, "interval_ms": 500,
            "plugins": [{"name": "p", "version": "1.0.0", "digest": "ab"}],
            "sources": {"docker": false, "network": true},
            "counters": {"spool_depth": 2, "containers_created": 5, "note": "x", "ratio": 0.5},
        }))
        .unwrap();
        let e = heartbeat_event(&hb, 1_000);
        assert_eq!((e.node.as_str(), e.version.as_str()), ("n1", "0.2.0"));
        assert_eq!((e.boot, e.seq, e.interval_ms), (7, 3, 500));
        assert_eq!(e.time, 1_000_000_000, "the stream's time, in nanoseconds");
        assert_eq!(
            e.plugins,
            [HeartbeatPlugin {
                name: "p".into(),
                version: "1.0.0".into(),
                digest: "ab".into()
            }]
        );
        let sources: Vec<(&str, bool)> = e
            .sources
            .iter()
            .map(|s| (s.name.as_str(), s.running))
            .collect();
        assert_eq!(sources, [("docker", false), ("network", true)]);
        // Whole numbers only, by name.
        let counters: Vec<(&str, u64)> = e
            .counters
            .iter()
            .map(|c| (c.name.as_str(), c.value))
            .collect();
        assert_eq!(counters, [("containers_created", 5), ("spool_depth", 2)]);
    }

    #[test]
    fn the_node_s_verdicts_are_kept_and_unmarked_containers_are_unverified() {
        assert!(matches!(
            verdict(&entity(EntityKind::Container, Some(true))),
            Verdict::Verified { .. }
        ));
        assert_eq!(
            verdict(&entity(EntityKind::Container, Some(false))),
            Verdict::Unverified
        );
        assert_eq!(verdict(&entity(EntityKind::Pod, None)), Verdict::Unverified);
        assert_eq!(
            verdict(&entity(EntityKind::Image, Some(true))),
            Verdict::NotChecked
        );
    }
}
