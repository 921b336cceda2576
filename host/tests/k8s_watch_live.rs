//! The `k8s-watch` source through the real binary, against a recorded API
//! stream served on loopback: the fake API server of
//! `vigil_test_support::k8s_api` answers the kube client's list and watch
//! requests for Pods, ReplicaSets and Events
//! (watches as chunked streams of `{"type":"ADDED","object":…}` lines).
//! `vigil run` finds it through `$KUBECONFIG`; the watched hostNetwork pod
//! must arrive owned by its Deployment (through its ReplicaSet) and give a
//! `container-escape/host-network` finding. Without a kubeconfig the source
//! must stay off.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::vigil;
use serde_json::{Value, json};
use vigil_test_support::fixtures::kubeconfig;
use vigil_test_support::k8s_api::{Cluster, Collection, FakeApi};
use vigil_test_support::output::read_jsonl;
use vigil_test_support::{TempDir, VigilProcess, without_kubernetes};

/// How long an event may take to show up on a busy CI box.
const DEADLINE: Duration = Duration::from_secs(30);

/// How long Vigil may take to start (compiling the built-in plugins).
const STARTUP: Duration = Duration::from_secs(120);

fn replica_set() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": "web-5d4f", "namespace": "shop", "uid": "rs-uid-1", "resourceVersion": "100",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                 "uid": "dep-uid-1", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}
    })
}

fn host_network_pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "web-5d4f-x7k2p", "generateName": "web-5d4f-", "namespace": "shop",
            "uid": "pod-uid-1", "resourceVersion": "201", "labels": {"app": "web"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d4f",
                                 "uid": "rs-uid-1", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {"hostNetwork": true, "nodeName": "node-1", "serviceAccountName": "default",
                 "containers": [{"name": "web", "image": "nginx:1.27"}]},
        "status": {"phase": "Pending"}
    })
}

fn core_event() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "web-5d4f-x7k2p.1", "namespace": "shop", "uid": "ev-uid-1", "resourceVersion": "301"},
        "involvedObject": {"kind": "Pod", "name": "web-5d4f-x7k2p", "namespace": "shop", "apiVersion": "v1"},
        "reason": "Scheduled", "message": "Successfully assigned shop/web-5d4f-x7k2p to node-1",
        "type": "Normal", "reportingComponent": "default-scheduler", "source": {"component": "default-scheduler"}
    })
}

/// The recorded API: what each list returns and what each watch streams.
fn recorded() -> FakeApi {
    FakeApi::start(
        Cluster::default()
            .with_collection(
                "/api/v1/pods",
                Collection::new(
                    "PodList",
                    vec![],
                    vec![json!({"type": "ADDED", "object": host_network_pod()})],
                    "200",
                ),
            )
            .with_collection(
                "/apis/apps/v1/replicasets",
                Collection::new("ReplicaSetList", vec![replica_set()], vec![], "100"),
            )
            .with_collection(
                "/api/v1/events",
                Collection::new(
                    "EventList",
                    vec![],
                    vec![json!({"type": "ADDED", "object": core_event()})],
                    "300",
                ),
            ),
    )
}

/// A running `vigil run` writing its events to `DIR/events.jsonl`.
struct Vigil {
    process: VigilProcess,
    events: PathBuf,
}

impl Vigil {
    fn start(dir: &Path, kubeconfig: Option<&Path>) -> Self {
        let events = dir.join("events.jsonl");
        let mut cmd = vigil();
        without_kubernetes(&mut cmd, &dir.join("home"));
        if let Some(k) = kubeconfig {
            cmd.env("KUBECONFIG", k);
        }
        let process = VigilProcess::spawn(
            cmd.arg("run")
                .arg("--data-dir")
                .arg(dir.join("data"))
                .args([
                    "--no-cache",
                    "--no-docker",
                    "--no-network",
                    "--no-file-integrity",
                    "--node",
                    "k8s-watch-test",
                ])
                .arg("--emit-events")
                .arg(&events),
        );
        Self { process, events }
    }

    fn watch_events(&self) -> Vec<Value> {
        read_jsonl(&self.events)
            .into_iter()
            .filter(|e| e["source"] == "k8s-watch")
            .collect()
    }

    fn wait_event(&self, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
        self.process.wait_for_showing(
            &format!("a {what} event"),
            DEADLINE,
            || self.watch_events().into_iter().find(&pick),
            || format!("events: {:?}", self.watch_events()),
        )
    }
}

/// The Kubernetes event body of an emitted event (internally tagged).
fn body(e: &Value) -> &Value {
    &e["body"]
}

#[test]
fn watched_pod_is_attributed_to_its_deployment_and_found_on_the_host_network() {
    let dir = TempDir::new("k8s-watch");
    let server = recorded();
    let config = kubeconfig(&dir, server.port());
    let vigil = Vigil::start(&dir, Some(&config));
    vigil
        .process
        .wait_for_stderr("k8s-watch: on (all namespaces, kubeconfig ", STARTUP);

    let pod = vigil.wait_event("pod", |e| body(e)["resource"] == "pods");
    let k = body(&pod);
    assert_eq!(k["verb"], "added", "{pod}");
    assert_eq!(k["namespace"], "shop");
    assert_eq!(k["name"], "web-5d4f-x7k2p");
    assert_eq!(k["audit_id"], "pod-uid-1");
    assert_eq!(k["owner"]["kind"], "Deployment", "{pod}");
    assert_eq!(k["owner"]["name"], "web");
    assert_eq!(k["pod"]["host_network"], true);
    assert_eq!(pod["node"], "k8s-watch-test");

    let finding = vigil
        .process
        .wait_for_rule("container-escape/host-network", DEADLINE);
    assert!(finding.to_string().contains("web"), "{finding}");

    let ev = vigil.wait_event("core event", |e| body(e)["resource"] == "events");
    let k = body(&ev);
    assert_eq!(k["verb"], "Scheduled");
    assert_eq!(k["name"], "web-5d4f-x7k2p");
    assert_eq!(k["user_agent"], "default-scheduler");

    let requests: Vec<String> = server.requests().into_iter().map(|r| r.target).collect();
    for path in [
        "/api/v1/pods?",
        "/apis/apps/v1/replicasets?",
        "/api/v1/events?",
    ] {
        assert!(
            requests
                .iter()
                .any(|r| r.starts_with(path) && r.contains("watch=true")),
            "no watch of {path}: {requests:?}"
        );
    }
    // Exactly one pod event: re-watches and re-lists must not repeat it.
    std::thread::sleep(Duration::from_millis(500));
    let pods = vigil
        .watch_events()
        .into_iter()
        .filter(|e| body(e)["resource"] == "pods")
        .count();
    assert_eq!(pods, 1, "logs:\n{}", vigil.process.stderr_text());
}

#[test]
fn without_a_kubeconfig_the_source_stays_off() {
    let dir = TempDir::new("k8s-watch-off");
    let vigil = Vigil::start(&dir, None);
    vigil.process.wait_for_stderr(
        "k8s-watch: off (no kubeconfig or in-cluster service account)",
        STARTUP,
    );
}
