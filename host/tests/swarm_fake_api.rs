//! The Swarm side of the Docker source through `vigil run`, against a fake
//! Engine API on a Unix socket (`vigil_test_support::docker::engine_api`):
//! what the real engine cannot be made to do.
//!
//! - A malformed service answer, in the inventory (a spec without a name:
//!   the normaliser refuses it) and on an event (not a service at all: the
//!   client refuses it), is one error line naming the service and one count
//!   in `vigil_source_rejected_total{source="docker"}` each; the other
//!   services are reported and the source goes on.
//! - Secret and config events are followed (logged with their object kind).
//! - The daemon stops and comes back without its events (a restart): the
//!   gap is reported and the service inventory is sent again, so a service
//!   created while the daemon was down is reported; a service reported
//!   before is not reported again (same risky settings).
//!
//! Needs no Docker daemon.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::vigil;
use serde_json::Value;
use vigil_test_support::docker::engine_api::{Engine, FakeEngine, service_event, swarm_event};
use vigil_test_support::{TempDir, VigilProcess, without_kubernetes};

const DEADLINE: Duration = Duration::from_secs(30);
const UNREADABLE: &str = "cannot read a swarm service's spec";

/// A service inspect answer: host networking (through the swarm network
/// `hostnet`, named `host` by `GET /networks`), three replicas. Each service
/// has an image of its own: with no task on this node, a finding's entities
/// are its image and node only, and the delivery's dedup (rule and
/// entities) would merge two services of one image.
fn host_network_service(id: &str, name: &str, version: u64) -> String {
    serde_json::json!({
        "ID": id,
        "Version": {"Index": version},
        "CreatedAt": "2026-12-02T15:50:58.333874281Z",
        "UpdatedAt": "2026-12-02T15:51:01.356594904Z",
        "Spec": {"Name": name, "TaskTemplate": {
            "ContainerSpec": {"Image": format!("vigil-test/{name}:1"), "Args": ["sleep", "300"]},
            "Networks": [{"Target": "hostnet"}]},
            "Mode": {"Replicated": {"Replicas": 3}}}
    })
    .to_string()
}

fn start(dir: &Path, socket: &Path) -> VigilProcess {
    let config = dir.join("vigil.toml");
    // A short replay wait: the fake daemon replays nothing after a restart.
    std::fs::write(
        &config,
        "[sources.docker]\nreplay_wait_ms = 300\ninitial_backoff_ms = 50\nmax_backoff_ms = 200\n",
    )
    .unwrap();
    let mut cmd = vigil();
    without_kubernetes(&mut cmd, &dir.join("home"));
    VigilProcess::spawn(
        cmd.arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--docker-socket")
            .arg(socket)
            .args([
                "--log",
                "info,vigil_sources::docker=debug",
                "--node",
                "swarm-fake-test",
                "--no-cache",
                "--no-network",
                "--no-ebpf",
                "--no-file-integrity",
                "--no-k8s-watch",
                "--admin-listen",
                "127.0.0.1:0",
            ]),
    )
}

fn is_service_finding(f: &Value, service: &str) -> bool {
    f["rule_id"] == "container-escape/swarm-service" && f["evidence"]["service"] == service
}

/// The log lines that say a service's spec was unreadable.
fn unreadable(v: &VigilProcess) -> Vec<String> {
    v.stderr_text()
        .lines()
        .filter(|l| l.contains(UNREADABLE))
        .map(str::to_owned)
        .collect()
}

fn rejected(v: &VigilProcess) -> u64 {
    v.metrics()
        .lines()
        .find_map(|l| {
            l.strip_prefix("vigil_source_rejected_total{source=\"docker\"} ")?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn count(v: &VigilProcess, needle: &str) -> usize {
    v.stderr_text().matches(needle).count()
}

#[test]
fn malformed_services_are_one_error_each_and_a_restart_resends_the_inventory() {
    let dir = TempDir::new("swarm-fake");
    let now = epoch_nanos();
    let mut engine = Engine::default();
    engine.networks.insert("hostnet".into(), "host".into());
    engine.services.insert(
        "svc-good".into(),
        host_network_service("svc-good", "fake_good", 10),
    );
    // Not a service the normaliser can read: no name.
    engine.services.insert(
        "svc-nameless".into(),
        r#"{"ID":"svc-nameless","Version":{"Index":3},"Spec":{"TaskTemplate":{}}}"#.into(),
    );
    let fake = FakeEngine::start(&dir.join("engine.sock"), engine);
    let v = start(dir.path(), fake.path());
    v.wait_for_stderr("this node is a manager", DEADLINE);
    v.wait_for_stderr("inventory of swarm services sent", DEADLINE);
    v.wait_for_stderr("docker: event stream open", DEADLINE);

    // The inventory: the readable service is reported, the other is one
    // error line naming it.
    v.wait_for_finding("swarm-service for fake_good", DEADLINE, |f| {
        is_service_finding(f, "fake_good")
    });
    let errors = unreadable(&v);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].contains("svc-nameless"), "{errors:#?}");
    assert!(errors[0].contains("Spec.Name"), "{errors:#?}");
    assert_eq!(rejected(&v), 1);

    // Events: a secret and a config, a service whose answer is not a
    // service at all, then a good one: the source went on.
    fake.engine().services.insert(
        "svc-garbled".into(),
        r#"{"ID":"svc-garbled","Version":{"Index":"seven"},"Spec":"?"}"#.into(),
    );
    fake.engine().services.insert(
        "svc-after".into(),
        host_network_service("svc-after", "fake_after", 4),
    );
    fake.emit(&swarm_event(
        "secret",
        "create",
        "sec1",
        "db_password",
        now + 1,
    ));
    fake.emit(&swarm_event(
        "config",
        "create",
        "cfg1",
        "nginx_conf",
        now + 2,
    ));
    fake.emit(&service_event(
        "create",
        "svc-garbled",
        "fake_garbled",
        now + 3,
    ));
    fake.emit(&service_event("create", "svc-after", "fake_after", now + 4));
    v.wait_for_finding("swarm-service for fake_after", DEADLINE, |f| {
        is_service_finding(f, "fake_after")
    });
    let log = v.stderr_text();
    for (object, name) in [("secret", "db_password"), ("config", "nginx_conf")] {
        let followed = log.lines().any(|l| {
            l.contains("docker: swarm event")
                && (l.contains(&format!("object=\"{object}\""))
                    || l.contains(&format!("object={object}")))
                && l.contains(name)
        });
        assert!(followed, "{object} {name} not followed:\n{log}");
    }
    let errors = unreadable(&v);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[1].contains("svc-garbled"), "{errors:#?}");
    assert_eq!(rejected(&v), 2);
    assert!(
        log.lines().any(|l| l.contains("docker: swarm event")
            && l.contains("action=create")
            && l.contains("fake_garbled")),
        "the garbled service's event went on without its spec:\n{log}"
    );

    // The daemon restarts; meanwhile a service is created and the
    // malformed ones are removed.
    let inventories = count(&v, "inventory of swarm services sent");
    fake.stop_daemon();
    v.wait_for_stderr("docker: event stream interrupted", DEADLINE);
    {
        let mut e = fake.engine();
        e.services.remove("svc-nameless");
        e.services.remove("svc-garbled");
        e.services.insert(
            "svc-gap".into(),
            host_network_service("svc-gap", "fake_gap", 2),
        );
    }
    fake.start_daemon();
    v.wait_for_stderr("DOCKER EVENTS MAY HAVE BEEN LOST", DEADLINE);
    v.wait_for_finding("swarm-service for fake_gap", DEADLINE, |f| {
        is_service_finding(f, "fake_gap")
    });
    v.wait_until("the inventory sent again", DEADLINE, || {
        count(&v, "inventory of swarm services sent") > inventories
    });
    // Still running: reported again in the inventory, not as a new finding.
    std::thread::sleep(Duration::from_millis(1500));
    let findings = v.findings();
    for name in ["fake_good", "fake_after", "fake_gap"] {
        assert_eq!(
            findings
                .iter()
                .filter(|f| is_service_finding(f, name))
                .count(),
            1,
            "{name}: {findings:#?}"
        );
    }
    assert_eq!(unreadable(&v).len(), 2);
    assert_eq!(rejected(&v), 2);
    let timeline =
        vigil_test_support::net::http_get(v.admin_addr(), "/timeline?entity=service:fake_gap");
    assert_eq!(timeline.0, 200, "{}", timeline.1);
    assert!(
        timeline.1.contains("service running fake_gap"),
        "{}",
        timeline.1
    );
    let requests = fake.requests();
    assert!(
        requests
            .iter()
            .filter(|r| r.contains("/services/svc-gap"))
            .count()
            >= 1,
        "{requests:#?}"
    );
    v.stop();
}

/// Now, nanoseconds since the epoch (event times of the fake stream).
fn epoch_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}
