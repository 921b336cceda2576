//! The multi-probe (WIT 0.1.3): one plugin exporting more than one side
//! interface, `export_detector!(T, findings, processes)` (built with the
//! feature `all`, as `multi-probe-all`: `findings, services, processes`).
//! It reports each thing it is handed, so a test sees that every export
//! named reaches the plugin: `<name>/process` for a process event (its id
//! as the event id, its binary in evidence), `<name>/finding` for another
//! plugin's finding (the rule in evidence), `<name>/service` for a Swarm
//! event (the object's name and the action in evidence). It subscribes to
//! container events (the side exports need them) and reports none.

use vigil_plugin_sdk::prelude::*;

const NAME: &str = env!("CARGO_PKG_NAME");

#[derive(Default)]
struct Probe;

impl Detector for Probe {
    fn describe() -> PluginInfo {
        PluginInfo::builder(NAME, "0.1.0")
            .description("Reports every process event, Swarm event and finding it is handed.")
            .subscribe(EventKind::Container)
            .build()
    }

    fn on_events(&mut self, _batch: &[Event]) -> Vec<Finding> {
        Vec::new()
    }

    fn on_process_events(&mut self, batch: &[ProcessEvent]) -> Vec<Finding> {
        batch
            .iter()
            .map(|p| {
                Finding::builder(format!("{NAME}/process"), Severity::Info)
                    .title("process event received")
                    .evidence("binary", p.binary.clone())
                    .event(p.id.clone())
                    .build()
            })
            .collect()
    }

    fn on_service_events(&mut self, batch: &[ServiceEvent]) -> Vec<Finding> {
        batch
            .iter()
            .map(|s| {
                Finding::builder(format!("{NAME}/service"), Severity::Info)
                    .title("service event received")
                    .evidence("name", s.name.clone())
                    .evidence("action", s.action.clone())
                    .event(s.id.clone())
                    .build()
            })
            .collect()
    }

    fn on_findings(&mut self, batch: &[FindingEvent]) -> Vec<Finding> {
        batch
            .iter()
            .map(|fe| {
                Finding::builder(format!("{NAME}/finding"), Severity::Info)
                    .title("finding received")
                    .evidence("from-rule", fe.finding.rule_id.clone())
                    .event(fe.id.clone())
                    .build()
            })
            .collect()
    }
}

#[cfg(not(feature = "all"))]
export_detector!(Probe, findings, processes);
#[cfg(feature = "all")]
export_detector!(Probe, findings, services, processes);
