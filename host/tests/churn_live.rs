//! container-churn through `vigil run` and the real Docker daemon of this
//! machine: `docker run --rm` of a container that lives a moment is one
//! `container-churn/short-lived` finding, its lifetime measured from its
//! creation; one on the host's network is raised to medium; the baseline
//! is persisted in the plugin's state. Uses the local image built
//! by `scripts/test-image.sh`; every container has the label `vigil-test=1`
//! and is removed by `--rm` (or at the end, pass or fail).
//!
//! Without a daemon the test is skipped with a message, unless
//! `VIGIL_REQUIRE_DOCKER=1` makes that a failure.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::path::Path;
use std::time::Duration;

use common::vigil;
use serde_json::Value;
use vigil_test_support::docker::{Containers, IMAGE, LABEL, docker, docker_ready};
use vigil_test_support::{TempDir, VigilProcess, unique};

fn start(data_dir: &Path) -> VigilProcess {
    VigilProcess::spawn(vigil().arg("run").arg("--data-dir").arg(data_dir).args([
        "--no-cache",
        "--no-network",
        "--no-file-integrity",
        "--no-k8s-watch",
    ]))
}

/// Waits for the short-lived finding about container `name`.
fn short_lived(vigil: &VigilProcess, name: &str) -> Value {
    vigil.wait_for_finding(
        &format!("container-churn/short-lived for {name}"),
        Duration::from_secs(20),
        |f| {
            f["rule_id"] == "container-churn/short-lived"
                && f["evidence"]["container"].as_str() == Some(name)
        },
    )
}

#[test]
fn run_and_remove_containers_are_short_lived() {
    if !docker_ready() {
        return;
    }
    let data_dir = TempDir::new("churn-live");
    let vigil = start(&data_dir);
    vigil.wait_for_stderr("vigil running", Duration::from_secs(30));
    vigil.wait_for_stderr("docker: on", Duration::from_secs(30));
    // The events stream is subscribed shortly after the source starts.
    std::thread::sleep(Duration::from_millis(500));

    let plain = format!("churn_rm_{}", unique());
    let host_net = format!("churn_rm_hostnet_{}", unique());
    let _guard = Containers(vec![plain.clone(), host_net.clone()]);
    docker(&[
        "run", "--rm", "--name", &plain, "--label", LABEL, IMAGE, "true",
    ]);
    docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--name",
        &host_net,
        "--label",
        LABEL,
        IMAGE,
        "true",
    ]);

    let f = short_lived(&vigil, &plain);
    assert_eq!(f["plugin"], "container-churn");
    assert_eq!(f["severity"], "low");
    assert_eq!(f["evidence"]["lifetime-from"], "create");
    assert_eq!(f["evidence"]["image"], IMAGE);
    assert_eq!(f["evidence"]["exit-code"], "0");
    let lifetime: u64 = f["evidence"]["lifetime-ms"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(lifetime < 60_000, "{f}");

    let f = short_lived(&vigil, &host_net);
    assert_eq!(f["severity"], "medium");
    assert_eq!(f["evidence"]["risky"], "host-network");

    // The baseline is in the plugin's persisted state by the next tick.
    let state = data_dir.join("state/container-churn.state.json");
    let read = || std::fs::read_to_string(&state).unwrap_or_default();
    vigil.wait_for_showing(
        "the persisted churn baseline",
        Duration::from_secs(10),
        || {
            let text = read();
            (text.contains("s/d/image/vigil-test/busybox") && text.contains("s/d/node/"))
                .then_some(())
        },
        || format!("{}: {}", state.display(), read()),
    );
}
