//! Findings as input to plugins (WIT 0.1.2, `correlate`) and the built-in
//! `incident` correlator, through the real binary.
//!
//! - The issue-12 scenario replayed: a host-network container, its
//!   connection to an address of the C2 feed and a change of `runc` on the
//!   same node give three findings of three plugins and ONE incident, first
//!   reported with two findings and then updated (same incident id, not a
//!   new incident) with the third, its timeline in order and its event ids
//!   the three findings' ids.
//! - Two echo plugins (`tests/plugins/hostile-echo`, built twice under two
//!   names) re-emit every finding they are handed: without the depth bound
//!   they would feed each other forever. The replay ends, no plugin is
//!   handed its own findings, no finding is handed on at the bound, and an
//!   entity another plugin was never shown stays unverified through them.
//! - `vigil run` with the file-integrity source: the same loop is bounded
//!   there too, counted in `vigil_plugin_findings_depth_capped_total`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::vigil;
use serde_json::Value;
use vigil_test_support::fixtures::{hostile_plugin, root};
use vigil_test_support::output::stdout_lines;
use vigil_test_support::{TempDir, VigilProcess};

fn seed() -> PathBuf {
    root().join("tests/data/incident/seed.jsonl")
}

fn feed() -> PathBuf {
    root().join("tests/data/incident/c2.txt")
}

fn replay(extra: &[&str], plugin_dir: Option<&Path>) -> Vec<Value> {
    let mut cmd = vigil();
    cmd.args(["replay", "--no-cache", "--format", "vigil", "--node", "n1"])
        .args(extra)
        .arg("--intel")
        .arg(feed());
    if let Some(dir) = plugin_dir {
        cmd.arg("--plugin-dir").arg(dir);
    }
    let out = cmd.arg(seed()).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout_lines(&out)
}

fn by_plugin<'a>(findings: &'a [Value], plugin: &str) -> Vec<&'a Value> {
    findings.iter().filter(|f| f["plugin"] == plugin).collect()
}

fn ev<'a>(f: &'a Value, key: &str) -> &'a str {
    f["evidence"][key].as_str().unwrap_or_default()
}

#[test]
fn three_findings_of_three_plugins_are_one_incident_updated_in_order() {
    let findings = replay(&[], None);
    let id_of = |rule: &str| {
        findings
            .iter()
            .find(|f| f["rule_id"] == rule)
            .unwrap_or_else(|| panic!("no {rule} in {findings:#?}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let escape = id_of("container-escape/host-network");
    let egress = id_of("suspicious-egress/threat-intel");
    let tamper = findings
        .iter()
        .find(|f| f["plugin"] == "runtime-tamper")
        .expect("a runtime-tamper finding")["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let incidents = by_plugin(&findings, "incident");
    assert_eq!(
        incidents.len(),
        2,
        "reported at two plugins, updated at three: {incidents:#?}"
    );
    let (first, update) = (incidents[0], incidents[1]);
    for i in &incidents {
        assert_eq!(i["rule_id"], "incident/correlated");
    }
    assert_eq!(
        ev(first, "incident-id"),
        ev(update, "incident-id"),
        "one incident"
    );
    assert!(ev(first, "incident-id").starts_with("inc-"));
    assert_eq!((ev(first, "revision"), ev(update, "revision")), ("1", "2"));
    assert_eq!(first["event_ids"], serde_json::json!([escape, egress]));
    assert_eq!(
        update["event_ids"],
        serde_json::json!([escape, egress, tamper]),
        "the three findings, in order"
    );
    assert_eq!(ev(update, "findings"), "3");
    assert_eq!(
        ev(update, "plugins"),
        "container-escape,suspicious-egress,runtime-tamper"
    );
    assert!(
        ev(update, "score").parse::<u32>().unwrap() > ev(first, "score").parse::<u32>().unwrap()
    );
    assert_eq!(update["severity"], "critical");
    let timeline: Vec<&str> = ["timeline.01", "timeline.02", "timeline.03"]
        .iter()
        .map(|k| ev(update, k))
        .collect();
    assert!(
        timeline[0].contains("container-escape/host-network") && timeline[0].ends_with(&escape),
        "{timeline:?}"
    );
    assert!(
        timeline[1].contains("suspicious-egress/threat-intel") && timeline[1].ends_with(&egress),
        "{timeline:?}"
    );
    assert!(
        timeline[2].contains("runtime-tamper/") && timeline[2].ends_with(&tamper),
        "{timeline:?}"
    );
    // The container the host verified for container-escape stays verified
    // in the incident: the incident plugin was handed it as verified.
    let container = update["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "container")
        .expect("the container");
    assert_eq!(container["verified"], true, "{container}");
    assert_eq!(container["name"], "evasive_container");

    // Deterministic: the same replay gives the same findings.
    assert_eq!(replay(&[], None), findings);
}

#[test]
fn one_plugin_alone_is_no_incident_and_group_by_is_honoured() {
    let base = TempDir::new("incident-one");
    let first = base.join("first.jsonl");
    let seed_text = std::fs::read_to_string(seed()).unwrap();
    std::fs::write(&first, seed_text.lines().next().unwrap()).unwrap();
    let out = vigil()
        .args(["replay", "--no-cache", "--format", "vigil", "--node", "n1"])
        .arg(&first)
        .output()
        .unwrap();
    let findings = stdout_lines(&out);
    assert_eq!(by_plugin(&findings, "container-escape").len(), 1);
    assert!(by_plugin(&findings, "incident").is_empty(), "{findings:#?}");

    // Grouped by container only, the runc change (about the node) stays out.
    let s = base.join("incident.json");
    std::fs::write(&s, r#"{"group_by":["container"]}"#).unwrap();
    let settings = format!("incident={}", s.display());
    let findings = replay(&["--plugin-settings", &settings], None);
    let incidents = by_plugin(&findings, "incident");
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    assert_eq!(
        ev(incidents[0], "plugins"),
        "container-escape,suspicious-egress"
    );
}

/// A plugin directory with both echoes and the response redirector (which
/// names a container it was never shown).
fn echo_dir(base: &Path) -> PathBuf {
    let dir = base.join("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["hostile-echo", "hostile-echo-twin", "hostile-redirect"] {
        std::fs::copy(hostile_plugin(name), dir.join(format!("{name}.wasm"))).unwrap();
    }
    dir
}

#[test]
fn echoes_are_bounded_by_depth_never_fed_their_own_and_launder_nothing() {
    let base = TempDir::new("incident-echo");
    let dir = echo_dir(&base);
    let settings = base.join("redirect.json");
    std::fs::write(&settings, r#"{"target":"victim_never_shown"}"#).unwrap();
    let settings = format!("hostile-redirect={}", settings.display());
    let started = std::time::Instant::now();
    let findings = replay(&["--plugin-settings", &settings], Some(&dir));
    assert!(started.elapsed() < Duration::from_secs(120));

    for echo in ["hostile-echo", "hostile-echo-twin"] {
        let mine = by_plugin(&findings, echo);
        assert!(!mine.is_empty(), "{echo} was handed nothing: {findings:#?}");
        for f in &mine {
            assert_ne!(
                ev(f, "from-plugin"),
                echo,
                "{echo} was handed its own finding: {f}"
            );
            // Depth 0 and 1 are handed on; the bound (2) is not.
            let depth: u32 = ev(f, "from-depth").parse().unwrap();
            assert!(depth < 2, "{f}");
        }
        // Each echo is handed its twin's depth-1 echoes: a chain, bounded.
        assert!(
            mine.iter().any(|f| ev(f, "from-depth") == "1"),
            "{echo}: {mine:#?}"
        );
        // The redirector's container was never shown to anyone: handed on
        // as unverified, and the echo naming it is not verified either.
        let laundered: Vec<_> = mine
            .iter()
            .filter(|f| ev(f, "from-rule") == "hostile-redirect/redirect")
            .collect();
        assert!(!laundered.is_empty(), "{mine:#?}");
        for f in laundered {
            assert_eq!(ev(f, "from-verdicts"), "unverified", "{f}");
            assert_eq!(f["entities"][0]["id"], "victim_never_shown");
            assert_eq!(f["entities"][0]["verified"], false, "laundered: {f}");
        }
        // container-escape's container was verified for it: still verified.
        let escape = mine
            .iter()
            .find(|f| ev(f, "from-rule") == "container-escape/host-network")
            .expect("an echo of container-escape");
        let c = escape["entities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "container")
            .unwrap();
        assert_eq!(c["verified"], true, "{escape}");
    }
    // No incident is made of the redirector's unverified container.
    for i in by_plugin(&findings, "incident") {
        assert_ne!(ev(i, "grouped-by"), "container:victim_never_shown", "{i}");
    }

    // With depth 0 nothing is handed on at all.
    let none = replay(
        &[
            "--plugin-settings",
            &settings,
            "--plugin-max-finding-depth",
            "0",
        ],
        Some(&dir),
    );
    for p in ["hostile-echo", "hostile-echo-twin", "incident"] {
        assert!(by_plugin(&none, p).is_empty(), "{p}: {none:#?}");
    }
}

#[test]
fn vigil_run_bounds_the_echo_loop_and_counts_it() {
    let base = TempDir::new("incident-run");
    let dir = echo_dir(&base);
    std::fs::remove_file(dir.join("hostile-redirect.wasm")).unwrap();
    let root = base.join("root");
    let runc = root.join("usr/bin/runc");
    std::fs::create_dir_all(runc.parent().unwrap()).unwrap();
    std::fs::write(&runc, "runc v1").unwrap();
    let settings = base.join("runtime-tamper.json");
    std::fs::write(
        &settings,
        serde_json::json!({ "runtime_binaries": [runc] }).to_string(),
    )
    .unwrap();
    let vigil = VigilProcess::spawn(
        vigil()
            .arg("run")
            .arg("--data-dir")
            .arg(base.join("data"))
            .args([
                "--no-docker",
                "--no-network",
                "--no-k8s-watch",
                "--no-cache",
            ])
            .args(["--admin-listen", "127.0.0.1:0", "--node", "incident-run"])
            .arg("--fim-root")
            .arg(&root)
            .arg("--plugin-dir")
            .arg(&dir)
            .arg("--plugin-settings")
            .arg(format!("runtime-tamper={}", settings.display())),
    );
    vigil.wait_for_stderr("file-integrity: watching", Duration::from_secs(120));
    std::fs::write(&runc, "runc v2, longer").unwrap();
    // tamper (0) → each echo (1) → the other echo (2, not handed on).
    vigil.wait_for_findings("two echoes of each depth", Duration::from_secs(60), |fs| {
        ["hostile-echo", "hostile-echo-twin"]
            .iter()
            .all(|p| fs.iter().filter(|f| f["plugin"] == *p).count() >= 2)
    });
    vigil.wait_for_metric(
        "vigil_plugin_findings_depth_capped_total{plugin=\"hostile-echo\"} 1",
        Duration::from_secs(10),
    );
    vigil.wait_for_metric(
        "vigil_plugin_findings_received_total{plugin=\"hostile-echo\"} 2",
        Duration::from_secs(10),
    );
    // Settled: nothing more comes (a loop would keep going).
    std::thread::sleep(Duration::from_millis(1500));
    let findings = vigil.findings();
    for p in ["hostile-echo", "hostile-echo-twin"] {
        let mine: Vec<&Value> = findings.iter().filter(|f| f["plugin"] == p).collect();
        assert_eq!(mine.len(), 2, "{p}: {mine:#?}");
        assert!(mine.iter().all(|f| ev(f, "from-plugin") != p));
    }
    vigil.stop();
}

/// The same story live: `vigil run` against the real Docker daemon, the
/// procfs network source and the file-integrity source (under a temporary
/// root). A host-network container connects to an address of the feed (a
/// listener of this test on 127.0.0.78) and `runc` is rewritten: one
/// incident lists the three findings in order. Other tests' containers
/// may run on this node meanwhile and join through the node, so the check
/// is that the three are in one incident, in order.
#[test]
fn live_host_network_egress_and_runc_change_are_one_incident() {
    use std::net::TcpListener;
    use vigil_test_support::docker::{Containers, docker_ready, run_container};
    use vigil_test_support::unique;

    if !docker_ready() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.78:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().map_while(Result::ok) {
            held.push(conn);
        }
    });
    let base = TempDir::new("incident-live");
    let feed = base.join("c2.txt");
    std::fs::write(&feed, "# test C2\n127.0.0.78/32\n").unwrap();
    let root = base.join("root");
    let runc = root.join("usr/bin/runc");
    std::fs::create_dir_all(runc.parent().unwrap()).unwrap();
    std::fs::write(&runc, "runc v1").unwrap();
    let settings = base.join("runtime-tamper.json");
    std::fs::write(
        &settings,
        serde_json::json!({ "runtime_binaries": [runc] }).to_string(),
    )
    .unwrap();
    let vigil = VigilProcess::spawn(
        vigil()
            .arg("run")
            .arg("--data-dir")
            .arg(base.join("data"))
            .args([
                "--no-cache",
                "--no-k8s-watch",
                "--network-interval-ms",
                "200",
            ])
            .args(["--node", "incident-live", "--fim-root"])
            .arg(&root)
            .arg("--intel")
            .arg(&feed)
            .arg("--plugin-settings")
            .arg(format!("runtime-tamper={}", settings.display())),
    );
    vigil.wait_for_stderr("file-integrity: watching", Duration::from_secs(120));
    vigil.wait_for_stderr(
        "network: on (procfs, every 200 ms)",
        Duration::from_secs(30),
    );

    let name = format!("incident_c2_{}", unique());
    let _guard = Containers(vec![name.clone()]);
    let id = run_container(
        &name,
        &["--network", "host"],
        &["sh", "-c", &format!("sleep 30 | nc 127.0.0.78 {port}")],
    );
    let about_it = |f: &Value, rule: &str| {
        f["rule_id"] == rule
            && f["entities"]
                .as_array()
                .is_some_and(|es| es.iter().any(|e| e["id"] == id.as_str()))
    };
    let escape = vigil.wait_for_finding("host-network", Duration::from_secs(20), |f| {
        about_it(f, "container-escape/host-network")
    });
    let egress = vigil.wait_for_finding("threat-intel", Duration::from_secs(20), |f| {
        about_it(f, "suspicious-egress/threat-intel")
    });
    std::fs::write(&runc, "runc v2, rewritten").unwrap();
    let tamper = vigil.wait_for_finding("runc change", Duration::from_secs(20), |f| {
        f["plugin"] == "runtime-tamper"
    });
    let wanted: Vec<&str> = [&escape, &egress, &tamper]
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    let incident =
        vigil.wait_for_finding("one incident of the three", Duration::from_secs(20), |f| {
            let Some(ids) = f["event_ids"].as_array() else {
                return false;
            };
            let ids: Vec<&str> = ids.iter().filter_map(Value::as_str).collect();
            f["plugin"] == "incident" && {
                // The three, in order (other findings may be between them).
                let mut at = 0;
                ids.iter().for_each(|i| {
                    if at < wanted.len() && *i == wanted[at] {
                        at += 1;
                    }
                });
                at == wanted.len()
            }
        });
    assert_eq!(incident["rule_id"], "incident/correlated");
    let container = incident["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id.as_str())
        .expect("our container among the incident's entities");
    assert_eq!(container["verified"], true);
    // One incident: every report of it so far carries the same id.
    let incident_id = ev(&incident, "incident-id").to_owned();
    let ours: Vec<Value> = vigil
        .findings()
        .into_iter()
        .filter(|f| {
            f["plugin"] == "incident"
                && f["event_ids"]
                    .as_array()
                    .is_some_and(|ids| ids.iter().any(|i| i == wanted[0]))
        })
        .collect();
    assert!(
        ours.iter().all(|f| ev(f, "incident-id") == incident_id),
        "{ours:#?}"
    );
    vigil.stop();
}
