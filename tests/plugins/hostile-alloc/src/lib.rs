//! Allocates and touches memory without bound on every batch.
use vigil_plugin_sdk::prelude::*;

const NAME: &str = "hostile-alloc";

#[derive(Default)]
struct Hog {
    kept: Vec<Vec<u8>>,
}

impl Detector for Hog {
    fn describe() -> PluginInfo {
        PluginInfo::builder(NAME, "0.1.0")
            .description("hostile test fixture")
            .subscribe(EventKind::Container)
            .subscribe(EventKind::Kubernetes)
            .build()
    }

    fn on_events(&mut self, _batch: &[Event]) -> Vec<Finding> {
        loop {
            let mut block = vec![0u8; 1 << 20];
            block[4096] = 1;
            self.kept.push(std::hint::black_box(block));
        }
    }
}

export_detector!(Hog);
