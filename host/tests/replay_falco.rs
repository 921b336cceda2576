//! `vigil replay` on the real Kubernetes audit events recorded by Falco,
//! through every built-in plugin: findings exactly for the
//! container-relevant positives (container-escape's pod specs,
//! k8s-evasion's exec, attach and pods in system namespaces), none for
//! their benign counterparts nor for the positives of rules that are not
//! about containers (RBAC, secrets, config maps, namespaces), a located
//! error for the malformed file.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests and benchmarks fail loudly on broken fixtures"
)]

mod common;

use std::ffi::OsStr;
use std::process::Output;

use common::vigil;
use serde_json::Value;
use vigil_test_support::TempDir;
use vigil_test_support::fixtures::{falco, falco_dir};
use vigil_test_support::output::{rules, stdout_lines};

/// `vigil replay --no-cache FILES…`, on the default node name.
fn replay_files(files: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Output {
    vigil()
        .args(["replay", "--no-cache"])
        .args(files)
        .output()
        .expect("run vigil")
}

/// Replays the recorded Falco event `file` as node `test-node`: its exit
/// status and findings.
fn replay(file: &str) -> (Output, Vec<Value>) {
    let out = vigil()
        .args(["replay", "--no-cache", "--node", "test-node"])
        .arg(falco(file))
        .output()
        .expect("run vigil");
    let findings = stdout_lines(&out);
    // Every container and pod a finding names is a subject of an event it
    // cites (issue 10): each must arrive verified.
    for f in &findings {
        for e in f["entities"].as_array().into_iter().flatten() {
            if e["kind"] == "container" || e["kind"] == "pod" {
                assert_eq!(e["verified"], true, "{file}: {f:#}");
            }
        }
    }
    (out, findings)
}

/// [`replay`], which must succeed: the findings.
fn replay_ok(file: &str) -> Vec<Value> {
    let (out, findings) = replay(file);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    findings
}

/// Each of `files` replays without error and without a finding.
fn assert_each_yields_nothing(files: &[&str]) {
    for file in files {
        let findings = replay_ok(file);
        assert!(findings.is_empty(), "{file}: {findings:?}");
    }
}

#[test]
fn positives_yield_a_container_escape_finding() {
    for (file, rule, container) in [
        (
            "create_nginx_pod_hostnetwork.json",
            "container-escape/host-network",
            None,
        ),
        (
            "create_nginx_pod_privileged.json",
            "container-escape/privileged",
            None,
        ),
        (
            "create_nginx_pod_privileged_2nd_container.json",
            "container-escape/privileged",
            Some("mysql"),
        ),
        (
            "create_nginx_pod_no_secctx_1st_container_privileged_2nd_container.json",
            "container-escape/privileged",
            None,
        ),
        (
            "create_nginx_pod_sensitive_mount.json",
            "container-escape/sensitive-mount",
            None,
        ),
        (
            "create_nginx_pod_sensitive_mount_2nd_container.json",
            "container-escape/sensitive-mount",
            None,
        ),
    ] {
        let findings = replay_ok(file);
        let got = rules(&findings);
        assert_eq!(
            got,
            vec![rule.to_owned()],
            "{file}: exactly one finding of the expected rule"
        );
        let f = &findings[0];
        assert_eq!(f["schema"], "vigil.finding/v1");
        assert_eq!(f["node"], "test-node");
        assert_eq!(f["plugin"], "container-escape");
        let techniques: Vec<&str> = f["techniques"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t.as_str())
            .collect();
        assert!(
            techniques.iter().any(|t| *t == "T1610" || *t == "T1611"),
            "{file}: {techniques:?}"
        );
        assert!(
            f["entities"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "pod"),
            "{file}: a pod entity"
        );
        assert!(!f["event_ids"].as_array().unwrap().is_empty());
        if let Some(c) = container {
            assert!(
                f["evidence"].to_string().contains(c),
                "{file}: evidence names container {c}: {}",
                f["evidence"]
            );
        }
    }
}

#[test]
fn positives_yield_a_k8s_evasion_finding() {
    for (file, rule, severity, pod) in [
        (
            "exec_pod.json",
            "k8s-evasion/pod-exec",
            "medium",
            "default/nginx-deployment-7998647bdf-phvq7",
        ),
        (
            "attach_pod.json",
            "k8s-evasion/pod-attach",
            "medium",
            "default/nginx-deployment-7998647bdf-phvq7",
        ),
        // Created by the ReplicaSet controller for a ReplicaSet whose
        // Deployment's creation is not in the file: attributed to nobody,
        // hence medium rather than high.
        (
            "create_pod_kube_system_namespace.json",
            "k8s-evasion/system-namespace-pod",
            "medium",
            "kube-system/nginx-deployment-7998647bdf-7q2sp",
        ),
        (
            "create_pod_kube_public_namespace.json",
            "k8s-evasion/system-namespace-pod",
            "medium",
            "kube-public/nginx-deployment-7998647bdf-tlpkp",
        ),
    ] {
        let findings = replay_ok(file);
        assert_eq!(
            rules(&findings),
            vec![rule.to_owned()],
            "{file}: exactly one finding of the expected rule, from no other plugin"
        );
        let f = &findings[0];
        assert_eq!(f["plugin"], "k8s-evasion");
        assert_eq!(f["severity"], severity, "{file}");
        assert_eq!(f["node"], "test-node");
        let entities = f["entities"].as_array().unwrap();
        assert!(
            entities
                .iter()
                .any(|e| e["kind"] == "pod" && e["id"] == pod),
            "{file}: pod entity {pod}: {entities:?}"
        );
        assert!(!f["event_ids"].as_array().unwrap().is_empty());
        let techniques = f["techniques"].to_string();
        assert!(
            techniques.contains("T1609") || techniques.contains("T1610"),
            "{file}: {techniques}"
        );
    }
    // The exec's evidence explains it: who ran what, where.
    let (_, findings) = replay("exec_pod.json");
    let evidence = &findings[0]["evidence"];
    assert_eq!(evidence["user"], "minikube-user");
    assert_eq!(evidence["command"], "bash");
    assert_eq!(evidence["container"], "nginx1");
    assert_eq!(evidence["stage"], "ResponseStarted");
    let (_, findings) = replay("create_pod_kube_system_namespace.json");
    let evidence = &findings[0]["evidence"];
    assert_eq!(
        evidence["user"],
        "system:serviceaccount:kube-system:replicaset-controller"
    );
    assert_eq!(evidence["creator"], "unknown");
    assert_eq!(evidence["owners"], "ReplicaSet/nginx-deployment-7998647bdf");
}

/// Falco positives of rules that are not about containers (RBAC, secrets,
/// config maps, service accounts, namespaces, services): none of the pack's
/// plugins reports them.
#[test]
fn positives_that_are_not_about_containers_yield_nothing() {
    assert_each_yields_nothing(&[
        "anonymous_creates_namespace_foo.json",
        "attach_cluster_admin_role.json",
        "create_cluster_role_pod_exec.json",
        "create_cluster_role_wildcard_resources.json",
        "create_cluster_role_wildcard_verbs.json",
        "create_cluster_role_write_privileges.json",
        "create_configmap_sensitive_values.json",
        "create_kube_system_secret.json",
        "create_nginx_service_nodeport.json",
        "create_serviceaccount_kube_public_namespace.json",
        "create_serviceaccount_kube_system_namespace.json",
        "create_service_account_token_secret.json",
        "delete_cluster_role_kube_aggregator.json",
        "modify_cluster_role_node_problem_detector.json",
        "some-user_creates_namespace_foo.json",
    ]);
}

#[test]
fn benign_counterparts_yield_nothing() {
    assert_each_yields_nothing(&[
        "create_nginx_pod_nohostnetwork.json",
        "create_nginx_pod_unprivileged.json",
        "create_nginx_pod_unsensitive_mount.json",
        // A user's Deployment in an ordinary namespace, and its deletion
        // (not a security agent's).
        "create_deployment.json",
        "delete_deployment.json",
        "delete_namespace_foo.json",
    ]);
}

#[test]
fn malformed_file_is_a_clear_error_with_status_2() {
    let (out, findings) = replay("fal_01_003.json");
    assert_eq!(out.status.code(), Some(2));
    assert!(findings.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one clear line: {stderr}");
    assert!(
        lines[0].contains("fal_01_003.json:1:") && lines[0].contains("kind"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
}

#[test]
fn a_bad_file_does_not_stop_the_others() {
    let out = replay_files([
        falco("fal_01_003.json"),
        falco("create_nginx_pod_privileged.json"),
        falco("create_nginx_pod_hostnetwork.json"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        rules(&stdout_lines(&out)),
        vec![
            "container-escape/privileged",
            "container-escape/host-network"
        ]
    );
}

#[test]
fn whole_corpus_is_only_the_container_relevant_positives() {
    let mut files: Vec<_> = std::fs::read_dir(falco_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let out = replay_files(&files);
    assert_eq!(
        out.status.code(),
        Some(2),
        "fal_01_003.json is in the corpus"
    );
    // The built-in correlator groups findings of these plugins about the
    // same pod, image or node into incidents: each may only link findings
    // of this replay. The detectors' own findings are checked below.
    let (incidents, findings): (Vec<_>, Vec<_>) = stdout_lines(&out)
        .into_iter()
        .partition(|f| f["plugin"] == "incident");
    for i in &incidents {
        for id in i["event_ids"].as_array().unwrap() {
            assert!(findings.iter().any(|f| f["id"] == *id), "{i}");
        }
    }
    // Six pod creations are container-escape's positives (two of the
    // recorded files share an audit id, so count findings, not ids); exec,
    // attach and the pods created in kube-system and kube-public are
    // k8s-evasion's. runtime-tamper and monitoring-tamper have nothing to
    // say about these events (no file events; no security agent deleted).
    let mut got = rules(&findings);
    got.sort();
    assert_eq!(
        got,
        [
            "container-escape/host-network",
            "container-escape/privileged",
            "container-escape/privileged",
            "container-escape/privileged",
            "container-escape/sensitive-mount",
            "container-escape/sensitive-mount",
            "k8s-evasion/pod-attach",
            "k8s-evasion/pod-exec",
            "k8s-evasion/system-namespace-pod",
            "k8s-evasion/system-namespace-pod",
        ],
        "{findings:#?}"
    );
    for f in &findings {
        let rule = f["rule_id"].as_str().unwrap();
        assert_eq!(
            rule.split('/').next(),
            f["plugin"].as_str(),
            "rule ids are prefixed with their plugin: {f}"
        );
    }
}

#[test]
fn garbage_never_panics() {
    let dir = TempDir::new("garbage");
    let cases: [&[u8]; 8] = [
        b"\xff\xfe\x00",
        b"[",
        b"{\"kind\":\"EventList\",\"items\":[1]}",
        b"[1,2]",
        b"{\"kind\":\"Event\",\"requestObject\":{\"kind\":\"Pod\",\"spec\":{\"containers\":7}}}",
        b"{}",
        b"\"str\"",
        b"{\"body\":{\"kind\":\"nope\"}}",
    ];
    for (i, case) in cases.iter().enumerate() {
        let p = dir.join(format!("case{i}.json"));
        std::fs::write(&p, case).unwrap();
        let out = replay_files([&p]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "case {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&format!("case{i}.json:")),
            "case {i}"
        );
    }
}
