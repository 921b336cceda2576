//! Docker Swarm through `vigil run` and the real Docker Engine of this
//! machine: the test makes the engine a single-node swarm (`docker swarm
//! init`) and leaves it afterwards, pass or fail. A service with host
//! networking and six replicas is one `container-escape/swarm-service`
//! finding naming the service (and no finding per task container) within
//! 2 s; an update that changes its risky settings is one more; a scale is
//! not; the scale and the removal reach the source. A scale from 1 to 40
//! replicas is a `container-churn/spike` of the service (warm-up 0). Uses
//! the local image of `scripts/test-image.sh` (`--no-resolve-image`: no
//! registry). In that run, a third-party plugin exporting all three side
//! interfaces (`tests/plugins/multi-probe-all`:
//! `export_detector!(T, findings, services, processes)`) gets the service's
//! Swarm events and container-churn's finding: the combined world loads and
//! each export is called. The service's timeline (`vigil timeline service:NAME`, from
//! the admin endpoint while the host runs and from its data directory once
//! it stopped) holds its create and update events, its task containers'
//! events and the finding, in order.
//!
//! The swarm is the engine's, so one test holds it at a time, across test
//! binaries and worktrees too: [`SwarmLock`] is an exclusive lock on a file
//! in the temporary directory. A swarm this test did not make is used and
//! kept; one it made (recorded in a marker file, so that a run killed before
//! its cleanup is recognised by the next) is left at the end, pass or fail.
//! Other tests' containers are untouched; their vigil may see this test's
//! services and task containers (every one has the label `vigil-test=1`).
//!
//! Without a daemon the test is skipped with a message, unless
//! `VIGIL_REQUIRE_DOCKER=1` makes that a failure.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::vigil;
use serde_json::Value;
use vigil_test_support::docker::{IMAGE, LABEL, docker, docker_ready};
use vigil_test_support::fixtures::hostile_plugin;
use vigil_test_support::net::http_get;
use vigil_test_support::{TempDir, VigilProcess, unique};

/// The engine's swarm, held by one test at a time (of any process).
struct SwarmLock(#[expect(dead_code, reason = "held for its lock")] File);

impl SwarmLock {
    fn take() -> Self {
        let path = std::env::temp_dir().join("vigil-swarm-live.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .expect("open the swarm lock file");
        file.lock().expect("lock the swarm lock file");
        Self(file)
    }
}

/// Records that the swarm was made by this test (removed once it is left).
fn marker() -> PathBuf {
    std::env::temp_dir().join("vigil-swarm-live.joined")
}

/// The swarm state of the engine for one test: initialised by the test
/// (then left when dropped), with the test's services removed when dropped.
/// Declared after the [`SwarmLock`] it needs, so dropped before it.
struct Swarm {
    joined_here: bool,
    services: Vec<String>,
}

impl Swarm {
    fn init(_lock: &SwarmLock) -> Self {
        let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
        // Active with the marker: made by a run of this test that was killed
        // before it could leave. Active without it: someone else's, kept.
        let joined_here = state != "active" || marker().exists();
        if state != "active" {
            std::fs::write(marker(), b"vigil swarm_live").expect("write the swarm marker");
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
            let _ = std::fs::remove_file(marker());
        }
    }
}

/// `vigil run` with the Docker source only and the admin endpoint on a
/// free loopback port; container-churn without a warm-up, so that a burst
/// is a spike at once; a timeline ring large enough for a service's
/// replaced tasks (an update restarts every one).
fn start(data_dir: &Path, events: &Path) -> VigilProcess {
    start_with(data_dir, events, &[])
}

/// [`start`] with more arguments (`--plugin-dir`).
fn start_with(data_dir: &Path, events: &Path, extra: &[&std::ffi::OsStr]) -> VigilProcess {
    let config = data_dir.join("vigil.toml");
    std::fs::write(
        &config,
        "[timeline]\nevents_per_entity = 1024\npersist_interval_secs = 0\n\n\
         [plugins.settings.container-churn]\nwarmup_hours = 0\n",
    )
    .unwrap();
    VigilProcess::spawn(
        vigil()
            .arg("run")
            .arg("--config")
            .arg(&config)
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
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .args(extra),
    )
}

/// `vigil timeline ARGS… --format json`, which must find the entity.
fn timeline(args: &[&str]) -> Value {
    let out = vigil()
        .arg("timeline")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vigil timeline {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One line per item of a timeline view: `KIND SUMMARY` (`service service
/// create NAME …`; findings: `finding RULE SUMMARY`), in the view's order.
fn lines(view: &Value) -> Vec<String> {
    view["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let kind = i["kind"].as_str().unwrap_or_default();
            let summary = i["summary"].as_str().unwrap_or_default();
            match i["rule_id"].as_str() {
                Some(rule) => format!("{kind} {rule} {summary}"),
                None => format!("{kind} {summary}"),
            }
        })
        .collect()
}

/// The index of the first line with `prefix` at or after `from`.
fn find(lines: &[String], from: usize, prefix: &str) -> Option<usize> {
    lines[from..]
        .iter()
        .position(|l| l.starts_with(prefix))
        .map(|i| i + from)
}

/// A service's timeline: its creation, then a task container's creation,
/// then the first finding; a scale (an update), then the `--cap-add`
/// update, then the second finding; times in order.
fn check_service_timeline(view: &Value, name: &str, id: &str) {
    assert_eq!(view["entity"]["kind"], "service", "{view:#}");
    assert_eq!(view["entity"]["id"], id, "{view:#}");
    assert_eq!(view["entity"]["name"], name, "{view:#}");
    let times: Vec<u64> = view["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["time"].as_u64().unwrap())
        .collect();
    assert!(times.is_sorted(), "{view:#}");
    let l = lines(view);
    let show = || l.join("\n");
    let rule = "finding container-escape/swarm-service";
    let created = find(&l, 0, &format!("service service create {name} "))
        .unwrap_or_else(|| panic!("no service creation:\n{}", show()));
    let task = find(&l, created, &format!("container create {name}."))
        .unwrap_or_else(|| panic!("no task container created after the service:\n{}", show()));
    let first =
        find(&l, task, rule).unwrap_or_else(|| panic!("no finding after the tasks:\n{}", show()));
    let scaled = find(&l, first, &format!("service service update {name} "))
        .unwrap_or_else(|| panic!("no update after the finding:\n{}", show()));
    let second = find(&l, scaled + 1, rule)
        .unwrap_or_else(|| panic!("no second finding after the updates:\n{}", show()));
    assert!(
        l[scaled + 1..second]
            .iter()
            .any(|x| x.starts_with(&format!("service service update {name} "))),
        "the --cap-add update before the second finding:\n{}",
        show()
    );
    // The task containers, by their names (`NAME.SLOT.TASK`): the six of
    // the first spec (the finding waited for them, up to a second).
    let tasks = l
        .iter()
        .filter(|x| x.starts_with(&format!("container create {name}.")))
        .count();
    assert!(tasks >= 6, "{tasks} task creations:\n{}", show());
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
    let lock = SwarmLock::take();
    let mut swarm = Swarm::init(&lock);
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

    // The service's timeline, from the running host: its events, its tasks'
    // and both findings, in order (the admin endpoint and the CLI).
    let entity = format!("service:{name}");
    let admin = format!("http://{}", vigil.admin_addr());
    let view = vigil.wait_for_showing(
        "the service's timeline with both findings",
        Duration::from_secs(20),
        || {
            let (status, body) =
                http_get(vigil.admin_addr(), &format!("/timeline?entity={entity}"));
            let view: Value = serde_json::from_str(&body).ok()?;
            let findings = lines(&view)
                .iter()
                .filter(|l| l.starts_with("finding container-escape/swarm-service"))
                .count();
            (status == 200 && findings == 2).then_some(view)
        },
        || http_get(vigil.admin_addr(), &format!("/timeline?entity={entity}")).1,
    );
    check_service_timeline(&view, &name, &id);
    let cli = timeline(&[&entity, "--admin", &admin]);
    check_service_timeline(&cli, &name, &id);

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
    // Stopped: the data directory has the same timeline, and the removal.
    let stored = timeline(&[&entity, "--data-dir", data_dir.path().to_str().unwrap()]);
    check_service_timeline(&stored, &name, &id);
    assert!(
        lines(&stored)
            .iter()
            .any(|l| l.starts_with(&format!("service service remove {name}"))),
        "{stored:#}"
    );
}

#[test]
fn a_scale_up_to_40_is_a_churn_spike_of_the_service() {
    if !docker_ready() {
        return;
    }
    let lock = SwarmLock::take();
    let mut swarm = Swarm::init(&lock);
    let data_dir = TempDir::new("swarm-churn");
    let events = data_dir.join("events.jsonl");
    let plugins = data_dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(
        hostile_plugin("multi-probe-all"),
        plugins.join("multi-probe-all.wasm"),
    )
    .unwrap();
    let vigil = start_with(
        &data_dir,
        &events,
        &["--plugin-dir".as_ref(), plugins.as_os_str()],
    );
    vigil.wait_for_stderr("plugin=\"multi-probe-all\"", Duration::from_secs(60));
    vigil.wait_for_stderr("vigil running", Duration::from_secs(30));
    vigil.wait_for_stderr("this node is a manager", Duration::from_secs(30));
    vigil.wait_for_stderr("inventory of swarm services sent", Duration::from_secs(30));

    let name = format!("vigil_churn_{}", unique());
    swarm.service(&name, &["--replicas", "1"], &["sleep", "300"]);
    vigil.wait_until("the creation seen", Duration::from_secs(10), || {
        vigil.stderr_text().lines().any(|l| {
            l.contains("docker: swarm event") && l.contains("action=create") && l.contains(&name)
        })
    });
    // The probe gets the service's Swarm event (its `services` export).
    vigil.wait_for_finding(
        &format!("multi-probe-all/service for {name}"),
        Duration::from_secs(20),
        |f| f["rule_id"] == "multi-probe-all/service" && f["evidence"]["name"] == name.as_str(),
    );
    docker(&["service", "scale", "--detach", &format!("{name}=40")]);
    let scope = format!("service:{name}");
    let f = vigil.wait_for_finding(
        &format!("container-churn/spike for {name}"),
        Duration::from_secs(60),
        |f| {
            f["rule_id"] == "container-churn/spike"
                && f["evidence"]["scope"]
                    .as_str()
                    .is_some_and(|s| s.split(',').any(|s| s.trim() == scope))
        },
    );
    assert_eq!(f["plugin"], "container-churn");
    assert!(f["summary"].as_str().unwrap().contains(&name), "{f}");
    // ... and container-churn's finding (its `findings` export).
    vigil.wait_for_finding(
        "multi-probe-all/finding from container-churn/spike",
        Duration::from_secs(20),
        |f| {
            f["rule_id"] == "multi-probe-all/finding"
                && f["evidence"]["from-rule"] == "container-churn/spike"
        },
    );
    vigil.stop();
}
