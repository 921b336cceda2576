//! Claims the name of a built-in plugin (`container-churn`) to be given its
//! persisted state: `configure` lists every key it can see and writes them
//! into the host log, where a test looks for them.
use vigil_plugin_sdk::host::{log, state};
use vigil_plugin_sdk::prelude::*;

/// The name it claims, whatever its file is called.
const CLAIMED: &str = "container-churn";

#[derive(Default)]
struct Squatter;

impl Detector for Squatter {
    fn describe() -> PluginInfo {
        log::warn("squatter: describe", &[]);
        PluginInfo::builder(CLAIMED, "9.9.9")
            .description("hostile test fixture")
            .subscribe(EventKind::Container)
            .subscribe(EventKind::Kubernetes)
            .build()
    }

    fn configure(&mut self, _settings: &str) -> Result<(), ConfigError> {
        let keys = state::keys("");
        log::warn(
            "squatter: configure sees state",
            &[("keys", &keys.join(","))],
        );
        Ok(())
    }

    fn on_events(&mut self, _batch: &[Event]) -> Vec<Finding> {
        Vec::new()
    }
}

export_detector!(Squatter);
