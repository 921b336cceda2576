//! A fleet rule that reads heartbeats only (`export_detector!(T,
//! heartbeats)`, WIT 0.1.3 `fleet`): it subscribes to no event kind and
//! does not take findings, so `vigil fleet` loads it only because it
//! exports `fleet`. It reports a node whose heartbeat shows the `docker`
//! source off (the fleet expects it on everywhere), once per node run:
//! the event id names the node's boot, so the same heartbeat handed again
//! (a redelivery, the replay after a takeover) is the same finding.
use std::collections::BTreeSet;

use vigil_plugin_sdk::prelude::*;

const NAME: &str = "fleet-probe";
/// The source every node of the fleet is expected to run.
const EXPECTED: &str = "docker";

#[derive(Default)]
struct Probe {
    /// (node, boot) already reported by this instance.
    reported: BTreeSet<(String, u64)>,
}

impl Detector for Probe {
    fn describe() -> PluginInfo {
        PluginInfo::builder(NAME, "0.1.0")
            .description("test fixture: a node whose heartbeat shows the docker source off")
            .build()
    }

    fn on_events(&mut self, _batch: &[Event]) -> Vec<Finding> {
        Vec::new()
    }

    fn on_heartbeats(&mut self, batch: &[Heartbeat]) -> Vec<Finding> {
        batch
            .iter()
            .filter(|hb| hb.source_running(EXPECTED) == Some(false))
            .filter(|hb| self.reported.insert((hb.node.clone(), hb.boot)))
            .map(|hb| {
                Finding::builder(format!("{NAME}/source-off"), Severity::Medium)
                    .title("Vigil node runs without its docker source")
                    .summary(format!(
                        "node {} (Vigil {}) reports the {EXPECTED} source off (heartbeat {})",
                        hb.node, hb.version, hb.seq
                    ))
                    .entity(EntityKind::Node, hb.node.clone(), hb.node.clone())
                    .evidence("source", EXPECTED)
                    .evidence("seq", hb.seq.to_string())
                    .evidence(
                        "containers_created",
                        hb.counter("containers_created")
                            .map_or_else(|| "-".to_owned(), |n| n.to_string()),
                    )
                    .event(format!("{}/{}", hb.node, hb.boot))
                    .build()
            })
            .collect()
    }
}

export_detector!(Probe, heartbeats);
