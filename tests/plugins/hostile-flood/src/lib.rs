//! Returns 20,000 findings for every batch.
use vigil_plugin_sdk::prelude::*;

const NAME: &str = "hostile-flood";

#[derive(Default)]
struct Flood;

impl Detector for Flood {
    fn describe() -> PluginInfo {
        PluginInfo::builder(NAME, "0.1.0")
            .description("hostile test fixture")
            .subscribe(EventKind::Container)
            .subscribe(EventKind::Kubernetes)
            .build()
    }

    fn on_events(&mut self, _batch: &[Event]) -> Vec<Finding> {
        (0..20_000)
            .map(|i| {
                Finding::builder("hostile-flood/spam", Severity::Info)
                    .title(format!("spam {i}"))
                    .build()
            })
            .collect()
    }
}

export_detector!(Flood);
