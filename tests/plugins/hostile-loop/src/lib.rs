//! Spins forever on every batch.
use vigil_plugin_sdk::prelude::*;

const NAME: &str = "hostile-loop";

#[derive(Default)]
struct Spin;

impl Detector for Spin {
    fn describe() -> PluginInfo {
        PluginInfo::builder(NAME, "0.1.0")
            .description("hostile test fixture")
            .subscribe(EventKind::Container)
            .subscribe(EventKind::Kubernetes)
            .build()
    }

    fn on_events(&mut self, batch: &[Event]) -> Vec<Finding> {
        let mut n: u64 = batch.len() as u64;
        loop {
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

export_detector!(Spin);
