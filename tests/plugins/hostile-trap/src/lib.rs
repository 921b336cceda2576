//! Panics on every batch (a trap, with panic = "abort").
use vigil_plugin_sdk::prelude::*;

const NAME: &str = "hostile-trap";

#[derive(Default)]
struct Boom;

impl Detector for Boom {
    fn describe() -> PluginInfo {
        PluginInfo::builder(NAME, "0.1.0")
            .description("hostile test fixture")
            .subscribe(EventKind::Container)
            .subscribe(EventKind::Kubernetes)
            .build()
    }

    fn on_events(&mut self, batch: &[Event]) -> Vec<Finding> {
        let index = std::hint::black_box(batch.len() + 7);
        let v: Vec<u32> = Vec::new();
        vec![
            Finding::builder("hostile-trap/never", Severity::Info)
                .title(format!("{}", v[index]))
                .build(),
        ]
    }
}

export_detector!(Boom);
