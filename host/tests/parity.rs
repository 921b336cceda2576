//! container-escape run natively (as a Rust library) and as the embedded
//! Wasm component gives identical findings on the same events.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests and benchmarks fail loudly on broken fixtures"
)]

use std::sync::{Arc, RwLock};

use container_escape::ContainerEscape;
use vigil_plugin_sdk::Detector;
use vigil_runtime::{
    CallOutcome, Clock, EngineSettings, Identity, PluginLimits, PluginOrigin, PluginSpec,
    ReplayClock, RunContext, Runtime,
};
use vigil_test_support::{corpus, to_sdk};

#[test]
fn native_and_wasm_give_identical_findings() {
    let events = corpus::corpus();
    let mut native = ContainerEscape::default();
    native.configure("{}").unwrap();
    let sdk_events: Vec<_> = events.iter().map(to_sdk::event).collect();
    let native_findings: Vec<_> = native
        .on_events(&sdk_events)
        .into_iter()
        .map(to_sdk::finding_back)
        .collect();

    let runtime = Runtime::new(&EngineSettings::default(), None).unwrap();
    let ctx = RunContext {
        clock: Clock::Replay(ReplayClock::new()),
        intel: Arc::new(RwLock::new(Arc::default())),
        state_dir: None,
    };
    let spec = PluginSpec {
        origin: PluginOrigin::Builtin("container-escape"),
        identity: Identity::Named("container-escape".into()),
        bytes: Arc::from(vigil_runtime::builtin::bytes("container-escape").unwrap()),
        settings: "{}".into(),
        limits: PluginLimits::default(),
        policy: Default::default(),
    };
    let mut runner = runtime.load(spec, &ctx).unwrap();
    let CallOutcome::Findings(wasm_findings) = runner.on_events(&events) else {
        panic!("the component failed")
    };

    assert!(
        native_findings.len() >= 10,
        "the corpus exercises the rules: {}",
        native_findings.len()
    );
    assert_eq!(native_findings, wasm_findings);
    let rules: std::collections::BTreeSet<&str> =
        wasm_findings.iter().map(|f| f.rule_id.as_str()).collect();
    for r in [
        "host-network",
        "host-pid",
        "host-ipc",
        "privileged",
        "dangerous-capability",
        "sensitive-mount",
        "log-driver-none",
        "seccomp-unconfined",
        "apparmor-unconfined",
        "host-cgroupns",
        "host-device",
    ] {
        assert!(
            rules.contains(format!("container-escape/{r}").as_str()),
            "{r} exercised: {rules:?}"
        );
    }
}
