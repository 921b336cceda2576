//! The timeline against the real Docker Engine, through the real binary:
//! `vigil run` with the docker source records each container's events and
//! the findings about it; `vigil timeline` reads them from the admin
//! endpoint while it runs and from the data directory once it stopped; the
//! ring and age bounds hold and are counted; a quarantine's evidence bundle
//! carries the target's timeline.
//!
//! Every container has the label `vigil-test=1` and a unique name, and is
//! removed at the end, pass or fail. Without a daemon the tests are skipped
//! with a message, unless `VIGIL_REQUIRE_DOCKER=1` makes that a failure.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::vigil;
use serde_json::Value;
use vigil_test_support::docker::{Containers, docker, docker_ready, run_container};
use vigil_test_support::net::http_get;
use vigil_test_support::{TempDir, VigilProcess, unique, without_kubernetes};

const DEADLINE: Duration = Duration::from_secs(30);

/// `vigil run` with the docker source only, `[timeline]` as given, the
/// admin endpoint on a free loopback port; once its event stream is open.
fn start(dir: &Path, timeline: &str, extra: &[&str]) -> VigilProcess {
    let config = dir.join("vigil.toml");
    std::fs::write(&config, format!("[timeline]\n{timeline}\n")).unwrap();
    let mut cmd = vigil();
    without_kubernetes(&mut cmd, &dir.join("home"));
    let v = VigilProcess::spawn(
        cmd.arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args([
                "--node",
                "timeline-live-test",
                "--no-network",
                "--no-file-integrity",
                "--no-k8s-watch",
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .args(extra),
    );
    v.wait_for_stderr("docker: event stream open", Duration::from_secs(180));
    v
}

/// `GET /timeline?entity=ENTITY`: status and JSON body.
fn get(v: &VigilProcess, entity: &str) -> (u16, Value) {
    let (status, body) = http_get(v.admin_addr(), &format!("/timeline?entity={entity}"));
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (status, json)
}

/// `vigil timeline ARGS…`.
fn timeline(args: &[&str]) -> Output {
    vigil().arg("timeline").args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The first word of each container event's summary (its action), in order.
fn actions(view: &Value) -> Vec<String> {
    view["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "container")
        .map(|i| {
            i["summary"]
                .as_str()
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn findings<'a>(view: &'a Value, rule: &str) -> Vec<&'a Value> {
    view["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "finding" && i["rule_id"] == rule)
        .collect()
}

/// Whether `want` appears in `have` in this order (other items between).
fn in_order(have: &[String], want: &[&str]) -> bool {
    let mut it = have.iter();
    want.iter().all(|w| it.any(|h| h == w))
}

fn metric(v: &VigilProcess, name: &str) -> u64 {
    v.metrics()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// A host-network container created, started and stopped: its events in
/// order and the container-escape finding about it, by name and by id,
/// from the admin endpoint (JSON and text); a busy container's ring keeps
/// only the newest events (counted); an unknown entity is a clear "none",
/// a malformed one an error; after the host stopped, `--data-dir` reads
/// the same timeline from the file it wrote (0600).
#[test]
fn a_containers_events_and_findings_in_order_from_the_host_and_its_data_dir() {
    if !docker_ready() {
        return;
    }
    let dir = TempDir::new("timeline-live");
    let v = start(
        dir.path(),
        "events_per_entity = 8\npersist_interval_secs = 0",
        &[],
    );
    let admin = format!("http://{}", v.admin_addr());
    let tag = unique();
    let name = format!("tl_hostnet_{tag}");
    let busy = format!("tl_busy_{tag}");
    let _cleanup = Containers(vec![name.clone(), busy.clone()]);

    let id = run_container(&name, &["--network", "host"], &["sleep", "300"]);
    docker(&["stop", "-t", "0", &name]);
    let entity = format!("container:{name}");
    let view = v.wait_for_showing(
        "the container's create, start, die, stop and its finding",
        DEADLINE,
        || {
            let (status, view) = get(&v, &entity);
            (status == 200
                && in_order(&actions(&view), &["create", "start", "die", "stop"])
                && !findings(&view, "container-escape/host-network").is_empty())
            .then_some(view)
        },
        || format!("{:#}", get(&v, &entity).1),
    );
    assert_eq!(view["entity"]["kind"], "container");
    assert_eq!(view["entity"]["id"], id.as_str());
    assert_eq!(view["entity"]["name"], name.as_str());
    let times: Vec<u64> = view["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["time"].as_u64().unwrap())
        .collect();
    assert!(times.is_sorted(), "{view:#}");
    let f = findings(&view, "container-escape/host-network")[0];
    assert_eq!(f["source"], "container-escape");
    assert!(f["severity"].is_string(), "{f:#}");
    // By id and by short id, the same entity.
    for by in [id.clone(), id[..12].to_owned()] {
        let (status, same) = get(&v, &format!("container:{by}"));
        assert_eq!(status, 200);
        assert_eq!(same["entity"]["id"], id.as_str());
    }

    // The CLI against the running host: text, one line per item, in order.
    let out = timeline(&[&entity, "--admin", &admin]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let lines: Vec<&str> = printed.lines().collect();
    assert!(
        lines[0].starts_with(&format!("container {id} name={name}")),
        "{printed}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" finding ") && l.contains("container-escape/host-network")),
        "{printed}"
    );
    let create = lines
        .iter()
        .position(|l| l.contains(" container ") && l.contains(&format!("create {name}")))
        .unwrap();
    let stop = lines
        .iter()
        .position(|l| l.contains(&format!("stop {name}")))
        .unwrap();
    assert!(create < stop, "{printed}");
    let out = timeline(&[&entity, "--admin", &admin, "--format", "json"]);
    assert!(out.status.success());
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["entity"]["id"], id.as_str());

    // The ring: 2 + 12 events into a ring of 8.
    let overflow_before = metric(&v, "vigil_timeline_ring_overflow_total");
    run_container(&busy, &[], &["sleep", "300"]);
    for _ in 0..6 {
        docker(&["pause", &busy]);
        docker(&["unpause", &busy]);
    }
    let busy_entity = format!("container:{busy}");
    let view = v.wait_for_showing(
        "the busy container's ring full of its last pauses and unpauses, the rest counted",
        DEADLINE,
        || {
            let (_, view) = get(&v, &busy_entity);
            let a = actions(&view);
            (a.len() == 8
                && a.iter().all(|x| x == "pause" || x == "unpause")
                && a.last().map(String::as_str) == Some("unpause")
                && metric(&v, "vigil_timeline_ring_overflow_total") >= overflow_before + 6)
                .then_some(view)
        },
        || format!("{:#}\n{}", get(&v, &busy_entity).1, v.metrics()),
    );
    assert_eq!(view["items"].as_array().unwrap().len(), 8, "{view:#}");
    assert!(metric(&v, "vigil_timeline_events_recorded_total") >= 18);
    assert!(metric(&v, "vigil_timeline_findings_recorded_total") >= 1);

    // Unknown: 404 and a clear "none" (exit 1); malformed: 400 / exit 2.
    let (status, none) = get(&v, &format!("container:nothing_{tag}"));
    assert_eq!(status, 404);
    assert!(none["entity"].is_null(), "{none:#}");
    let out = timeline(&[&format!("container:nothing_{tag}"), "--admin", &admin]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).starts_with(&format!("no timeline for container:nothing_{tag}")),
        "{}",
        text(&out.stdout)
    );
    for bad in ["web", "host:web", "container:a%2Fb", "pod:Shop/web"] {
        let (status, body) = get(&v, bad);
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].as_str().unwrap().contains("entity"), "{body}");
    }
    let (status, body) = get(&v, "container:web&limit=1");
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unknown parameter")
    );
    let out = timeline(&["container:a/b", "--admin", &admin]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("container \"a/b\""),
        "{}",
        text(&out.stderr)
    );

    // Stopped: the data directory has it.
    v.stop();
    let data = dir.path().join("data");
    let file = data.join("timeline.json");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let out = timeline(&[
        &entity,
        "--data-dir",
        data.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stored: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stored["entity"]["id"], id.as_str());
    assert!(
        in_order(&actions(&stored), &["create", "start", "die", "stop"]),
        "{stored:#}"
    );
    assert!(!findings(&stored, "container-escape/host-network").is_empty());
    let out = timeline(&[&entity, "--admin", &admin]);
    assert_eq!(out.status.code(), Some(2), "no host answers any more");
    assert!(text(&out.stderr).contains("cannot read the timeline from the admin endpoint"));
    let empty = TempDir::new("timeline-live-empty");
    let out = timeline(&[&entity, "--data-dir", empty.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no timeline in"),
        "{}",
        text(&out.stderr)
    );
}

/// Items older than `max_age_secs` are gone from the answer and counted.
#[test]
fn events_past_the_age_bound_are_dropped_and_counted() {
    if !docker_ready() {
        return;
    }
    let dir = TempDir::new("timeline-age");
    let v = start(
        dir.path(),
        "max_age_secs = 3\npersist_interval_secs = 0",
        &[],
    );
    let name = format!("tl_age_{}", unique());
    let _cleanup = Containers(vec![name.clone()]);
    run_container(&name, &[], &["sleep", "300"]);
    let entity = format!("container:{name}");
    v.wait_until("the container's start", DEADLINE, || {
        in_order(&actions(&get(&v, &entity).1), &["create", "start"])
    });
    std::thread::sleep(Duration::from_secs(4));
    let (status, view) = get(&v, &entity);
    assert!(
        status == 404 || view["items"].as_array().unwrap().is_empty(),
        "{status} {view:#}"
    );
    assert!(metric(&v, "vigil_timeline_expired_total") >= 2);
}

/// A quarantine's evidence bundle has `timeline.json`: the target's events
/// and the finding that triggered it, listed in the manifest.
#[test]
fn the_evidence_bundle_of_a_quarantine_has_the_targets_timeline() {
    if !docker_ready() {
        return;
    }
    let dir = TempDir::new("timeline-evidence");
    let tag = unique();
    let include = format!("*_{tag}");
    let v = start(
        dir.path(),
        "persist_interval_secs = 0",
        &[
            "--response",
            "enforce",
            "--response-rule",
            "container-escape/*",
            "--response-include",
            &include,
        ],
    );
    let name = format!("tl_evasive_{tag}");
    let mut cleanup = Containers(vec![name.clone()]);
    let id = run_container(&name, &["--network", "host"], &["sleep", "300"]);
    // By id too: Vigil renames what it quarantines.
    cleanup.0.push(id.clone());
    let data = dir.path().join("data");
    let record = v.wait_for("the quarantine record", DEADLINE, || {
        let out = vigil()
            .args(["quarantine", "list", "--json", "--data-dir"])
            .arg(&data)
            .output()
            .unwrap();
        serde_json::from_slice::<Vec<Value>>(&out.stdout)
            .ok()?
            .into_iter()
            .find(|r| r["target"] == id.as_str() && r["state"] == "quarantined")
    });
    let evidence = PathBuf::from(record["evidence_dir"].as_str().unwrap());
    let read = |f: &str| std::fs::read_to_string(evidence.join(f)).unwrap();
    let t: Value = serde_json::from_str(&read("timeline.json")).unwrap();
    assert_eq!(t["entity"]["id"], id.as_str(), "{t:#}");
    // The create event is the one the finding cites; the start may arrive
    // after the evidence was taken (the finding fires on the create: a full
    // run here once had the bundle written before the start came in).
    assert!(actions(&t).iter().any(|a| a == "create"), "{t:#}");
    assert!(
        !findings(&t, "container-escape/host-network").is_empty(),
        "{t:#}"
    );
    // The manifest is written once the pass ended, just after the record's state.
    let manifest = v.wait_for("the evidence manifest", DEADLINE, || {
        std::fs::read_to_string(evidence.join("manifest.json"))
            .ok()
            .and_then(|m| serde_json::from_str::<Value>(&m).ok())
    });
    assert!(
        manifest["timeline.json"]["sha256"].is_string(),
        "{manifest:#}"
    );
    let mode = std::fs::metadata(evidence.join("timeline.json"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}
