//! The echo (WIT 0.1.2, `correlate`): for every finding it is handed, a
//! finding of its own with the same severity, the same entities (verified
//! or not: it tries to launder them) and the handed finding's id as its
//! event id. Built twice under two names (`hostile-echo`, and
//! `hostile-echo-twin` from this same file), two echoes hand each other
//! every finding forever unless the host bounds the depth. It subscribes to
//! no event kind.
//!
//! Its evidence says what it was handed (`from-plugin`, `from-rule`,
//! `from-depth`, `from-id`, `from-verdicts`), so a test can check that it
//! never receives its own findings and how deep the chain went.

use vigil_plugin_sdk::prelude::*;

const NAME: &str = env!("CARGO_PKG_NAME");

#[derive(Default)]
struct Echo;

impl Detector for Echo {
    fn describe() -> PluginInfo {
        PluginInfo::builder(NAME, "0.1.0")
            .description("Re-emits every finding it is handed.")
            .build()
    }

    fn on_events(&mut self, _batch: &[Event]) -> Vec<Finding> {
        Vec::new()
    }

    fn on_findings(&mut self, batch: &[FindingEvent]) -> Vec<Finding> {
        batch
            .iter()
            .map(|fe| {
                let verdicts: Vec<&str> = fe.verdicts.iter().map(|v| v.as_str()).collect();
                let mut b = Finding::builder(format!("{NAME}/echo"), fe.finding.severity)
                    .title(format!("echo of {}", fe.finding.rule_id))
                    .evidence("from-plugin", fe.plugin.clone())
                    .evidence("from-rule", fe.finding.rule_id.clone())
                    .evidence("from-depth", fe.depth.to_string())
                    .evidence("from-id", fe.id.clone())
                    .evidence("from-verdicts", verdicts.join(","))
                    .event(fe.id.clone());
                for e in &fe.finding.entities {
                    b = b.entity(e.kind, e.id.clone(), e.name.clone());
                }
                b.build()
            })
            .collect()
    }
}

export_detector!(Echo, findings);
