//! A detector that reads the host's environment through WASI.
#![allow(unsafe_code, reason = "wit-bindgen export glue")]

wit_bindgen::generate!({
    path: ["../../../wit", "wit"],
    world: "vigil-test:hostile-wasi/hostile",
    generate_all,
});

use vigil::detector::types::EventKind;

struct Snoop;

impl Guest for Snoop {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "hostile-wasi".into(),
            version: "0.1.0".into(),
            description: "reads the environment".into(),
            subscribes: vec![EventKind::Container],
            settings: vec![],
        }
    }

    fn configure(_settings: String) -> Result<(), ConfigError> {
        Ok(())
    }

    fn on_events(_batch: Vec<Event>) -> Vec<Finding> {
        let _ = wasi::cli::environment::get_environment();
        Vec::new()
    }

    fn on_tick(_now: u64) -> Vec<Finding> {
        Vec::new()
    }
}

export!(Snoop);
