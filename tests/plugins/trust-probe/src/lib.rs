//! A plugin loaded from a file that behaves: it reports every Kubernetes
//! event as a critical finding about its pod, so that the tests can see
//! what the host grants a plugin from a file (the events it receives,
//! whether its findings reach the response stage). It also subscribes to
//! container events, so that narrowing its kinds is visible.
use vigil_plugin_sdk::prelude::*;

const NAME: &str = "trust-probe";

#[derive(Default)]
struct Probe;

impl Detector for Probe {
    fn describe() -> PluginInfo {
        PluginInfo::builder(NAME, "0.1.0")
            .description("test fixture: reports every Kubernetes event")
            .subscribe(EventKind::Kubernetes)
            .subscribe(EventKind::Container)
            .build()
    }

    fn on_events(&mut self, batch: &[Event]) -> Vec<Finding> {
        batch
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::Kubernetes(k) => Some(
                    Finding::builder(format!("{NAME}/seen"), Severity::Critical)
                        .title("Kubernetes event seen")
                        .entity(
                            EntityKind::Pod,
                            format!("{}/{}", k.namespace, k.name),
                            k.name.clone(),
                        )
                        .event(e.id.clone())
                        .build(),
                ),
                _ => None,
            })
            .collect()
    }
}

export_detector!(Probe);
