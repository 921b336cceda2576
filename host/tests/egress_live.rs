//! suspicious-egress through `vigil run`, the real Docker daemon and the
//! procfs network source: a host-network container (the seed's evasive
//! container) connecting to an address on a threat-intel feed is one
//! `suspicious-egress/threat-intel` finding about that container, naming the
//! feed entry. Loopback only: the "C2" is a listener of this test on
//! 127.0.0.79. Uses the local image built by `scripts/test-image.sh`; every
//! container has the label `vigil-test=1` and is removed at the end.
//!
//! Without a daemon the test is skipped with a message, unless
//! `VIGIL_REQUIRE_DOCKER=1` makes that a failure.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use common::vigil;
use vigil_test_support::docker::{Containers, IMAGE, docker_ready, run_container};
use vigil_test_support::{TempDir, VigilProcess, unique};

fn start(data_dir: &Path, feed: &Path) -> VigilProcess {
    VigilProcess::spawn(
        vigil()
            .arg("run")
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--no-cache",
                "--no-file-integrity",
                "--no-k8s-watch",
                "--network-interval-ms",
                "200",
            ])
            .arg("--intel")
            .arg(feed),
    )
}

#[test]
fn a_container_reaching_a_listed_address_is_reported() {
    if !docker_ready() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.79:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().map_while(Result::ok) {
            held.push(conn);
        }
    });
    let dir = TempDir::new("egress-live");
    let feed = dir.join(format!("vigil-egress-live-{}.txt", unique()));
    std::fs::write(&feed, "# test C2\n127.0.0.79/32\n").unwrap();

    let vigil = start(&dir.join("data"), &feed);
    vigil.wait_for_stderr(
        "network: on (procfs, every 200 ms)",
        Duration::from_secs(30),
    );

    let name = format!("egress_c2_{}", unique());
    let _guard = Containers(vec![name.clone()]);
    // `sleep | nc`: nc's stdin stays open, so the connection does too.
    let id = run_container(
        &name,
        &["--network", "host"],
        &["sh", "-c", &format!("sleep 30 | nc 127.0.0.79 {port}")],
    );

    let f = vigil.wait_for_finding(
        &format!("suspicious-egress/threat-intel for {name}"),
        Duration::from_secs(20),
        |f| {
            f["rule_id"] == "suspicious-egress/threat-intel"
                && f["evidence"]["container"].as_str() == Some(name.as_str())
        },
    );
    assert_eq!(f["plugin"], "suspicious-egress");
    assert_eq!(f["severity"], "high");
    assert_eq!(
        f["evidence"]["feed"],
        feed.file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(f["evidence"]["feed-entry"], "127.0.0.79/32");
    assert_eq!(f["evidence"]["host-network"], "true");
    assert_eq!(f["evidence"]["remote-port"], port.to_string());
    assert_eq!(f["evidence"]["image"], IMAGE);
    assert_eq!(f["entities"][0]["id"], id);
}
