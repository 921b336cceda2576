//! "Only verified targets" for pods, through the real binary: the responder
//! acts on a pod only when the pod the API server returns for its
//! `namespace/name` has the uid the host verified from the events behind
//! the finding. Audit events carry no pod uid (see
//! `response_k8s_fake_api.rs`), so here the finding comes from the
//! `k8s-watch` source, whose pod events do.
//!
//! One FAKE API server on loopback (`vigil_test_support::k8s_api`; the
//! kubeconfig points to it) serves both
//! sides: the recorded list/watch stream of the pod watcher (a hostNetwork
//! pod with uid `pod-uid-1`, which gives `container-escape/host-network`)
//! and the pod GET / label PATCH / NetworkPolicy POST of the quarantine,
//! recording every request. When the pod the GET returns has another uid
//! (the pod was deleted and recreated under the same name), no write may
//! reach the API; when it has the verified uid, the quarantine happens.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::vigil;
use serde_json::{Value, json};
use vigil_test_support::fixtures::kubeconfig;
use vigil_test_support::k8s_api::{Cluster, Collection, FakeApi};
use vigil_test_support::{TempDir, VigilProcess, without_kubernetes};

const DEADLINE: Duration = Duration::from_secs(30);
/// How long Vigil may take to start (compiling the built-in plugins).
const STARTUP: Duration = Duration::from_secs(180);
const NAMESPACE: &str = "shop";
const POD: &str = "web-5d4f-x7k2p";
/// The uid the pod watcher showed: the one the host verified.
const VERIFIED_UID: &str = "pod-uid-1";

/// The pod as the watcher streamed it.
fn watched_pod() -> Value {
    pod_with_uid(VERIFIED_UID)
}

fn pod_with_uid(uid: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": POD, "generateName": "web-5d4f-", "namespace": NAMESPACE,
            "uid": uid, "resourceVersion": "201", "labels": {"app": "web"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d4f",
                                 "uid": "rs-uid-1", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {"hostNetwork": true, "nodeName": "node-1", "serviceAccountName": "default",
                 "containers": [{"name": "web", "image": "nginx:1.27"}]},
        "status": {"phase": "Running"}
    })
}

fn replica_set() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": "web-5d4f", "namespace": NAMESPACE, "uid": "rs-uid-1", "resourceVersion": "100",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                 "uid": "dep-uid-1", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}
    })
}

/// The fake API: the watcher's recorded collections (the hostNetwork pod
/// with the verified uid, its ReplicaSet, no core events) and, for the
/// quarantine's GET, the pod `served`.
fn fake_api(served: Value) -> FakeApi {
    FakeApi::start(
        Cluster::default()
            .with_pod(served)
            .with_collection(
                "/api/v1/pods",
                Collection::new(
                    "PodList",
                    vec![],
                    vec![json!({"type": "ADDED", "object": watched_pod()})],
                    "200",
                ),
            )
            .with_collection(
                "/apis/apps/v1/replicasets",
                Collection::new("ReplicaSetList", vec![replica_set()], vec![], "100"),
            )
            .with_collection(
                "/api/v1/events",
                Collection::new("EventList", vec![], vec![], "300"),
            ),
    )
}

/// `vigil` finding the fake API through `$KUBECONFIG`.
fn vigil_on(dir: &Path, kubeconfig: &Path) -> Command {
    let mut cmd = vigil();
    without_kubernetes(&mut cmd, &dir.join("home")).env("KUBECONFIG", kubeconfig);
    cmd
}

/// `vigil run` with the pod watcher on, pod quarantine enforced and the
/// admin endpoint on a free loopback port (for `/metrics`).
fn start(dir: &Path, kubeconfig: &Path) -> VigilProcess {
    let v = VigilProcess::spawn(
        vigil_on(dir, kubeconfig)
            .arg("run")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args([
                "--no-cache",
                "--no-docker",
                "--no-network",
                "--no-file-integrity",
                "--admin-listen",
                "127.0.0.1:0",
                "--node",
                "k8s-pod-uid-test",
                "--response",
                "enforce",
                "--response-rule",
                "container-escape/*",
            ]),
    );
    v.wait_for_stderr("k8s-watch: on (all namespaces, kubeconfig ", STARTUP);
    v
}

fn records(dir: &Path, kubeconfig: &Path) -> Vec<Value> {
    let out = vigil_on(dir, kubeconfig)
        .args(["quarantine", "list", "--json", "--data-dir"])
        .arg(dir.join("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn wait_record(dir: &Path, kubeconfig: &Path, vigil: &VigilProcess, state: &str) -> Value {
    let target = format!("{NAMESPACE}/{POD}");
    vigil.wait_for_showing(
        &format!("a {state} record for {target}"),
        DEADLINE,
        || {
            records(dir, kubeconfig)
                .into_iter()
                .find(|r| r["target"] == target.as_str() && r["state"] == state)
        },
        || format!("records: {:#}", Value::Array(records(dir, kubeconfig))),
    )
}

fn actions(record: &Value, action: &str) -> Vec<(String, String)> {
    record["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == action)
        .map(|a| {
            (
                a["outcome"].as_str().unwrap().to_owned(),
                a["detail"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The pod was deleted and recreated under the same name after the watcher
/// showed it: the API returns another uid, so the pod is not the one the
/// finding is about. Nothing is written; the record and the log say why.
#[test]
fn a_recreated_pod_with_another_uid_is_not_acted_on() {
    let dir = TempDir::new("k8s-pod-uid-mismatch");
    let api = fake_api(pod_with_uid("pod-uid-recreated"));
    let config = kubeconfig(&dir, api.port());
    let vigil = start(&dir, &config);

    vigil.wait_for_rule("container-escape/host-network", DEADLINE);
    let record = wait_record(&dir, &config, &vigil, "failed");
    assert_eq!(record["kind"], "kubernetes", "{record:#}");
    assert_eq!(record["rule"], "container-escape/host-network");
    let inspect = actions(&record, "inspect");
    assert_eq!(inspect.len(), 1, "{record:#}");
    assert_eq!(inspect[0].0, "failed");
    assert!(
        inspect[0].1.contains("\"pod-uid-recreated\"")
            && inspect[0]
                .1
                .contains(&format!("not the verified \"{VERIFIED_UID}\""))
            && inspect[0].1.ends_with("a different pod; not acted on"),
        "{record:#}"
    );
    assert!(actions(&record, "label").is_empty(), "{record:#}");
    assert!(actions(&record, "network-policy").is_empty(), "{record:#}");
    vigil.wait_for_stderr("response: inspect FAILED", DEADLINE);
    vigil.wait_for_stderr("a different pod; not acted on", DEADLINE);
    vigil.wait_for_stderr(
        &format!("response: quarantine of kubernetes {POD}"),
        DEADLINE,
    );

    assert!(
        api.gets(&format!("/api/v1/namespaces/{NAMESPACE}/pods/{POD}")) >= 1,
        "the pod was read: {:#?}",
        api.requests()
    );
    // Give a stray write time to arrive before checking there is none.
    std::thread::sleep(Duration::from_millis(500));
    assert!(api.writes().is_empty(), "{:#?}", api.writes());
}

/// The API returns the pod with the verified uid: it is labelled and a
/// deny-all policy selecting the label is created (host network: the
/// policy does not apply to it, so the record is partial).
#[test]
fn the_pod_with_the_verified_uid_is_quarantined() {
    let dir = TempDir::new("k8s-pod-uid-match");
    let api = fake_api(watched_pod());
    let config = kubeconfig(&dir, api.port());
    let vigil = start(&dir, &config);

    vigil.wait_for_rule("container-escape/host-network", DEADLINE);
    let record = wait_record(&dir, &config, &vigil, "partial");
    let qid = record["id"].as_str().unwrap().to_owned();
    assert_eq!(record["rule"], "container-escape/host-network");
    assert!(
        actions(&record, "inspect")
            .iter()
            .all(|(outcome, _)| outcome != "failed"),
        "{record:#}"
    );
    assert_eq!(
        actions(&record, "label")
            .into_iter()
            .map(|a| a.0)
            .collect::<Vec<_>>(),
        ["ok"],
        "{record:#}"
    );
    assert_eq!(
        actions(&record, "isolate")
            .into_iter()
            .map(|a| a.0)
            .collect::<Vec<_>>(),
        ["skipped"],
        "{record:#}"
    );

    vigil.wait_for_metric("vigil_response_partial_total 1", DEADLINE);
    vigil.wait_for_metric("vigil_response_actions_failed_total 0", DEADLINE);

    let writes = api.writes();
    assert_eq!(writes.len(), 2, "{writes:#?}");
    assert_eq!(writes[0].method, "PATCH");
    assert_eq!(
        writes[0].path,
        format!("/api/v1/namespaces/{NAMESPACE}/pods/{POD}")
    );
    assert_eq!(
        writes[0].body,
        json!({"metadata": {"labels": {"vigil.dev/quarantine": qid}}})
    );
    assert_eq!(writes[1].method, "POST");
    assert_eq!(
        writes[1].path,
        format!("/apis/networking.k8s.io/v1/namespaces/{NAMESPACE}/networkpolicies")
    );
    assert_eq!(
        writes[1].body["spec"]["podSelector"],
        json!({"matchLabels": {"vigil.dev/quarantine": qid}})
    );
}
