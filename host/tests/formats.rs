//! The OCSF and Falco formats of real findings: `vigil replay` of the Falco
//! audit fixtures gives native findings; each is converted, plus a dedup
//! summary, a monitor-mode finding and one with every entity kind.
//!
//! OCSF: validated by py-ocsf-models (an independent implementation of the
//! OCSF schema, from PyPI) through `tests/ocsf/validate.py`, in the venv
//! `scripts/test-deps.sh` makes (run here when missing).
//! Falco: the fields falcosidekick reads, with their types and values.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::vigil;
use serde_json::Value;
use vigil_core::finding_record::{FindingRecord, RecordEntity};
use vigil_core::model::EntityKind;
use vigil_delivery::outputs::{falco, ocsf};
use vigil_test_support::fixtures::{falco_dir, root};

/// Native findings from replaying the Falco audit fixtures.
fn replayed() -> Vec<FindingRecord> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(falco_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let out = vigil()
        .args(["replay", "--no-cache", "--node", "node-1"])
        .args(&files)
        .output()
        .unwrap();
    let findings: Vec<FindingRecord> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        findings.len() >= 5,
        "replay gave {} findings",
        findings.len()
    );
    findings
}

/// The incidents of the issue-12 scenario (`tests/data/incident/`): a
/// finding whose event ids are the ids of the findings it groups, which
/// OCSF's `related_events` links.
fn incidents() -> Vec<FindingRecord> {
    let data = root().join("tests/data/incident");
    let out = vigil()
        .args([
            "replay",
            "--no-cache",
            "--format",
            "vigil",
            "--node",
            "n1",
            "--intel",
        ])
        .arg(data.join("c2.txt"))
        .arg(data.join("seed.jsonl"))
        .output()
        .unwrap();
    let incidents: Vec<FindingRecord> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<FindingRecord>(l).unwrap())
        .filter(|f| f.plugin == "incident")
        .collect();
    assert_eq!(incidents.len(), 2, "{incidents:#?}");
    incidents
}

/// The replayed findings plus the special cases.
fn samples() -> Vec<FindingRecord> {
    let mut v = replayed();
    v.extend(incidents());
    let mut summary = v[0].clone();
    summary.aggregates = Some(summary.id.clone());
    summary.id = "0123456789abcdef01234567".into();
    summary.count = Some(7);
    summary.first_seen = Some("2026-11-26T10:00:00Z".into());
    summary.last_seen = Some("2026-11-26T10:00:41.5Z".into());
    v.push(summary);
    let mut monitor = v[0].clone();
    monitor.monitor = true;
    v.push(monitor);
    let mut every = v[0].clone();
    every.entities = [
        (EntityKind::Container, "3f2a9c0e1b7d", "web"),
        (EntityKind::Pod, "prod/web-7d9c", ""),
        (EntityKind::Node, "node-1", ""),
        (EntityKind::File, "/etc/kubernetes/manifests/x.yaml", ""),
        (EntityKind::Image, "nginx:1.27", ""),
        (EntityKind::User, "system:serviceaccount:prod:web", ""),
        (EntityKind::Address, "203.0.113.9:4444", ""),
    ]
    .into_iter()
    .map(|(kind, id, name)| RecordEntity {
        kind,
        id: id.into(),
        name: name.into(),
        // One checked entity of each outcome, so every output shows both.
        verified: match kind {
            EntityKind::Container => Some(false),
            EntityKind::Pod => Some(true),
            _ => None,
        },
        uid: (kind == EntityKind::Pod).then(|| "5b1c3e8a-4f0e-4d8e-9d7a-0e4c2b1a9f37".into()),
    })
    .collect();
    every.techniques = vec!["T1562.001".into(), "T1610".into(), "T1234".into()];
    v.push(every);
    v
}

fn venv_python() -> PathBuf {
    let venv = std::env::var_os("VIGIL_OCSF_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/ocsf-venv"));
    let python = venv.join("bin/python");
    let ready = |p: &Path| {
        Command::new(p)
            .args(["-c", "import py_ocsf_models"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready(&python) {
        let ok = Command::new("bash")
            .arg(root().join("scripts/test-deps.sh"))
            .status()
            .unwrap()
            .success();
        assert!(
            ok && ready(&python),
            "scripts/test-deps.sh did not make the OCSF venv"
        );
    }
    python
}

#[test]
fn ocsf_detection_findings_pass_py_ocsf_models() {
    let samples = samples();
    let events: Vec<Value> = samples.iter().map(ocsf::detection_finding).collect();
    for (e, f) in events.iter().zip(&samples) {
        assert_eq!(e["class_uid"], 2004);
        assert_eq!(e["category_uid"], 2);
        assert_eq!(e["metadata"]["product"]["name"], "Vigil");
        assert_eq!(e["finding_info"]["analytic"]["uid"], f.rule_id.as_str());
        assert!(
            !e["finding_info"]["attacks"].as_array().unwrap().is_empty() || f.techniques.is_empty()
        );
    }
    let privileged = events
        .iter()
        .find(|e| e["finding_info"]["analytic"]["uid"] == "container-escape/privileged")
        .expect("a privileged finding");
    let attacks = privileged["finding_info"]["attacks"].as_array().unwrap();
    assert!(
        attacks.iter().any(|a| a["technique"]["uid"] == "T1611"
            && a["technique"]["name"] == "Escape to Host"
            && a["tactic"]["name"] == "Privilege Escalation"),
        "{attacks:#?}"
    );
    let resources = privileged["resources"].as_array().unwrap();
    assert!(
        resources
            .iter()
            .any(|r| r["type"] == "pod" && r["namespace"] == "default"),
        "{resources:#?}"
    );
    assert!(
        resources
            .iter()
            .any(|r| r["type"] == "host" && r["uid"] == "node-1")
    );
    let summary = &events[samples.len() - 3];
    assert_eq!(summary["activity_id"], 2);
    assert_eq!(summary["type_uid"], 200402);
    assert_eq!(summary["count"], 7);
    assert_eq!(summary["finding_info"]["uid"], samples[0].id.as_str());
    // An incident links the findings it groups.
    let (incident, record) = events
        .iter()
        .zip(&samples)
        .rfind(|(_, f)| f.plugin == "incident")
        .expect("an incident");
    let related: Vec<&str> = incident["finding_info"]["related_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uid"].as_str().unwrap())
        .collect();
    assert_eq!(related.len(), 3);
    assert_eq!(related, record.event_ids);

    let dir = std::env::temp_dir().join(format!("vigil-ocsf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("events.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&events).unwrap()).unwrap();
    let out = Command::new(venv_python())
        .arg(root().join("tests/ocsf/validate.py"))
        .arg(&file)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("{report}");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "py-ocsf-models refused:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains(&format!("{} events, 0 problems", events.len())),
        "{report}"
    );
}

#[test]
fn falco_events_have_what_falcosidekick_reads() {
    let samples = samples();
    for f in &samples {
        let e = falco::event(f);
        for key in ["output", "priority", "rule", "time", "source", "hostname"] {
            assert!(e[key].is_string(), "{key} in {e:#}");
        }
        assert!(e["output_fields"].is_object());
        assert!(e["tags"].is_array());
        assert_eq!(e["rule"], f.rule_id.as_str());
        assert_eq!(e["hostname"], f.node.as_str());
        assert_eq!(e["source"], "vigil");
        assert_eq!(e["time"], f.time.as_str());
        assert_eq!(e["output_fields"]["vigil.id"], f.id.as_str());
        // falcosidekick parses the priority case-insensitively from this set.
        assert!(
            [
                "Emergency",
                "Alert",
                "Critical",
                "Error",
                "Warning",
                "Notice",
                "Informational",
                "Debug"
            ]
            .contains(&e["priority"].as_str().unwrap())
        );
        assert!(e["output"].as_str().unwrap().contains(&f.title));
    }
    let every = falco::event(samples.last().unwrap());
    let fields = &every["output_fields"];
    assert_eq!(fields["container.id"], "3f2a9c0e1b7d");
    assert_eq!(fields["container.name"], "web");
    assert_eq!(fields["k8s.ns.name"], "prod");
    assert_eq!(fields["k8s.pod.name"], "web-7d9c");
    assert_eq!(fields["container.image"], "nginx:1.27");
    assert_eq!(fields["fd.name"], "/etc/kubernetes/manifests/x.yaml");
    let tags: Vec<&str> = every["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        tags.contains(&"T1610") && tags.contains(&"vigil"),
        "{tags:?}"
    );
    let summary = falco::event(&samples[samples.len() - 3]);
    assert_eq!(summary["output_fields"]["vigil.count"], 7);
    assert!(summary["output"].as_str().unwrap().contains("(7 times)"));
    let monitor = falco::event(&samples[samples.len() - 2]);
    assert!(
        monitor["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "monitor")
    );
}
