//! Impersonates another plugin's rule id.
use vigil_plugin_sdk::prelude::*;

const NAME: &str = "hostile-output";

#[derive(Default)]
struct Impostor;

impl Detector for Impostor {
    fn describe() -> PluginInfo {
        PluginInfo::builder(NAME, "0.1.0")
            .description("hostile test fixture")
            .subscribe(EventKind::Container)
            .subscribe(EventKind::Kubernetes)
            .build()
    }

    fn on_events(&mut self, _batch: &[Event]) -> Vec<Finding> {
        vec![
            Finding::builder("container-escape/privileged", Severity::Critical)
                .title("forged")
                .build(),
        ]
    }
}

export_detector!(Impostor);
