//! Docker Swarm through `vigil run` and the real Docker Engine of this
//! machine: the test makes the engine a single-node swarm (`docker swarm
//! init`) and leaves it afterwards, pass or fail. A service with host
//! networking and six replicas is one `container-escape/swarm-service`
//! finding naming the service (and no finding per task container); an
//! update that changes its risky settings is one more; a scale is not; the
//! scale and the removal reach the source. Uses the local image of
//! `scripts/test-image.sh` (`--no-resolve-image`: no registry).
//!
//! The swarm is the engine's, shared by every test of this binary: they
//! take [`SWARM`] in turn. Other test binaries' containers are untouched
//! (their vigil may see this test's service events; nothing they assert
//! counts them).
//!
//! Without a daemon the test is skipped with a message, unless
//! `VIGIL_REQUIRE_DOCKER=1` makes that a failure.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::vigil;
use serde_json::Value;
use vigil_test_support::docker::{IMAGE, LABEL, docker, docker_ready};
use vigil_test_support::{TempDir, VigilProcess, unique};

/// The engine's swarm, one test at a time.
static SWARM: Mutex<()> = Mutex::new(());

/// The swarm state of the engine for one test: initialised by the test
/// (then left when dropped), with the test's services removed when dropped.
struct Swarm {
    joined_here: bool,
    services: Vec<String>,
}

impl Swarm {
    fn init() -> Self {
        let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
        let joined_here = state != "active";
        if joined_here {
            docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
        }
        Self {
            joined_here,
            services: Vec::new(),
        }
    }

    /// `docker service create --detach --name NAME …` of the test image.
    fn service(&mut self, name: &str, opts: &[&str], cmd: &[&str]) -> String {
        self.services.push(name.to_owned());
        let mut args = vec![
            "service",
            "create",
            "--detach",
            "--no-resolve-image",
            "--name",
            name,
            "--label",
            LABEL,
            "--container-label",
            LABEL,
        ];
        args.extend_from_slice(opts);
        args.push(IMAGE);
        args.extend_from_slice(cmd);
        docker(&args)
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        let quiet = |args: &[&str]| {
            let _ = Command::new("docker")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        for s in &self.services {
            quiet(&["service", "rm", s]);
        }
        if self.joined_here {
            quiet(&["swarm", "leave", "--force"]);
        }
    }
}

fn start(data_dir: &Path, events: &Path) -> VigilProcess {
    VigilProcess::spawn(
        vigil()
            .arg("run")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--emit-events")
            .arg(events)
            .args([
                "--log",
                "info,vigil_sources::docker=debug",
                "--no-cache",
                "--no-network",
                "--no-file-integrity",
                "--no-k8s-watch",
            ]),
    )
}

fn is_service_finding(f: &Value, service: &str) -> bool {
    f["rule_id"] == "container-escape/swarm-service" && f["evidence"]["service"] == service
}

/// Running task containers of `service` on this node.
fn tasks(service: &str) -> Vec<String> {
    let filter = format!("label=com.docker.swarm.service.name={service}");
    docker(&["ps", "-q", "--no-trunc", "--filter", &filter])
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_host_network_service_is_one_finding_per_risky_spec() {
    if !docker_ready() {
        return;
    }
    let _one_at_a_time = SWARM
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut swarm = Swarm::init();
    let data_dir = TempDir::new("swarm-live");
    let events = data_dir.join("events.jsonl");
    let vigil = start(&data_dir, &events);
    vigil.wait_for_stderr("vigil running", Duration::from_secs(30));
    vigil.wait_for_stderr("this node is a manager", Duration::from_secs(30));
    vigil.wait_for_stderr("inventory of swarm services sent", Duration::from_secs(30));

    let name = format!("vigil_swarm_{}", unique());
    let created = Instant::now();
    let id = swarm.service(
        &name,
        &["--network", "host", "--replicas", "6"],
        &["sleep", "300"],
    );
    let (at, f) = vigil.wait_for_finding_with_arrival(
        &format!("swarm-service for {name}"),
        Duration::from_secs(20),
        |f| is_service_finding(f, &name),
    );
    let latency = at.duration_since(created);
    assert!(latency < Duration::from_secs(2), "{latency:?}: {f}");
    assert_eq!(f["plugin"], "container-escape");
    assert_eq!(f["severity"], "high");
    assert_eq!(f["evidence"]["service-id"], id.as_str());
    assert_eq!(f["evidence"]["network-mode"], "host");
    assert_eq!(f["evidence"]["replicas"], "6");
    assert_eq!(f["evidence"]["mode"], "replicated");
    assert!(f["summary"].as_str().unwrap().contains(&name), "{f}");
    let first_version: u64 = f["evidence"]["spec-version"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // All six tasks run here (one node); none gives a finding of its own.
    vigil.wait_until("six running tasks", Duration::from_secs(30), || {
        tasks(&name).len() == 6
    });
    std::thread::sleep(Duration::from_secs(2));
    let task_ids = tasks(&name);
    let findings = vigil.findings();
    let about_service: Vec<&Value> = findings
        .iter()
        .filter(|f| is_service_finding(f, &name))
        .collect();
    assert_eq!(about_service.len(), 1, "{findings:#?}");
    let per_task: Vec<&Value> = findings
        .iter()
        .filter(|f| {
            f["rule_id"] != "container-escape/swarm-service"
                && f["plugin"] == "container-escape"
                && task_ids.iter().any(|t| f.to_string().contains(t.as_str()))
        })
        .collect();
    assert!(
        per_task.is_empty(),
        "task containers reported on their own: {per_task:#?}"
    );
    let entities = f["entities"].to_string();
    assert!(
        task_ids.iter().any(|t| entities.contains(t.as_str())),
        "the finding names task containers: {f}"
    );

    // Scaling keeps the risky settings: no new finding, but the source sees it.
    docker(&["service", "scale", "--detach", &format!("{name}=7")]);
    vigil.wait_for_stderr("\"replicas.new\"", Duration::from_secs(10));
    // A new risky setting is a new spec to report.
    docker(&[
        "service",
        "update",
        "--detach",
        "--cap-add",
        "SYS_ADMIN",
        &name,
    ]);
    let second = vigil.wait_for_finding(
        &format!("a second swarm-service for {name}"),
        Duration::from_secs(20),
        |f| {
            is_service_finding(f, &name)
                && f["evidence"]["spec-version"] != first_version.to_string().as_str()
        },
    );
    let second_version: u64 = second["evidence"]["spec-version"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(second_version > first_version, "{second}");
    assert!(
        second["evidence"]["capability"]
            .as_str()
            .unwrap_or_default()
            .contains("SYS_ADMIN")
            || second.to_string().contains("SYS_ADMIN"),
        "{second}"
    );

    docker(&["service", "rm", &name]);
    swarm.services.clear();
    vigil.wait_until("the removal seen", Duration::from_secs(10), || {
        vigil.stderr_text().lines().any(|l| {
            l.contains("docker: swarm event") && l.contains("action=remove") && l.contains(&name)
        })
    });
    let all = vigil.findings();
    assert_eq!(
        all.iter().filter(|f| is_service_finding(f, &name)).count(),
        2,
        "one finding per risky spec: {all:#?}"
    );
    vigil.stop();
}
