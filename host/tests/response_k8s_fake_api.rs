//! The Kubernetes quarantine through the real binary, against the FAKE API
//! server of `vigil_test_support::k8s_api` on loopback (no cluster exists in
//! CI): it keeps pods and NetworkPolicies in memory, applies JSON merge
//! patches to pod labels, answers 409 AlreadyExists like the API server, and
//! records every request (method, path, content type, body) so the test can
//! check exactly what Vigil sent. What a real API server and network plugin
//! do with the label and the policy is not tested here.
//!
//! The findings come from the `k8s-audit-log` source reading recorded audit
//! events (Falco's fixtures: privileged and host-network nginx pods);
//! `vigil run` and `vigil quarantine release` find the fake API through
//! `$KUBECONFIG`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::vigil;
use serde_json::{Value, json};
use vigil_test_support::fixtures::{append, audit_line, falco_event, kubeconfig};
use vigil_test_support::k8s_api::{Cluster, FakeApi, Request};
use vigil_test_support::{TempDir, VigilProcess, without_kubernetes};

const DEADLINE: Duration = Duration::from_secs(30);
/// How long Vigil may take to start (compiling the built-in plugins) or to
/// log what the test waits for.
const STARTUP: Duration = Duration::from_secs(180);
const PRIVILEGED_POD: &str = "nginx-deployment-5cdcc99dbf-rgw6z";
const HOST_NETWORK_POD: &str = "nginx-deployment-754c877bcd-zh5qx";

/// The pod labels the fake API holds now.
fn pod_labels(api: &FakeApi, name: &str) -> Value {
    api.cluster().pods[&("default".to_owned(), name.to_owned())]["metadata"]["labels"].clone()
}

fn policies(api: &FakeApi) -> Vec<Value> {
    api.cluster().policies.values().cloned().collect()
}

/// The pod the recorded create made: with the uid its audit event's
/// `responseObject` shows, which the host verifies (and the responder
/// requires: it does not act on a pod by name alone).
fn pod(name: &str, host_network: bool) -> Value {
    let fixture = if host_network {
        "create_nginx_pod_hostnetwork.json"
    } else {
        "create_nginx_pod_privileged.json"
    };
    let created = falco_event(fixture);
    assert_eq!(created["responseObject"]["metadata"]["name"], name);
    let uid = created["responseObject"]["metadata"]["uid"].clone();
    assert!(uid.is_string(), "{fixture} shows no pod uid");
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": uid,
                     "resourceVersion": "1", "labels": {"app": "nginx"}},
        "spec": {"hostNetwork": host_network, "containers": [{"name": "nginx", "image": "nginx"}]},
        "status": {"phase": "Running"}
    })
}

fn recorded(name: &str, audit_id: &str) -> String {
    audit_line(&falco_event(name), audit_id)
}

/// `vigil` finding the fake API through `$KUBECONFIG`.
fn vigil_on(dir: &Path, kubeconfig: &Path) -> Command {
    let mut cmd = vigil();
    without_kubernetes(&mut cmd, &dir.join("home")).env("KUBECONFIG", kubeconfig);
    cmd
}

/// `vigil run` on the audit log, once it follows the file.
fn start(dir: &Path, kubeconfig: &Path, audit_log: &Path, mode: &str) -> VigilProcess {
    let v = VigilProcess::spawn(
        vigil_on(dir, kubeconfig)
            .arg("run")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args([
                "--no-docker",
                "--no-network",
                "--no-file-integrity",
                "--no-k8s-watch",
                "--no-admin",
                "--node",
                "k8s-response-test",
                "--response",
                mode,
                "--response-rule",
                "container-escape/*",
            ])
            .arg("--audit-log")
            .arg(audit_log),
    );
    v.wait_for_stderr("k8s-audit-log: following file", STARTUP);
    v
}

fn quarantine(dir: &Path, kubeconfig: &Path, args: &[&str]) -> Output {
    vigil_on(dir, kubeconfig)
        .arg("quarantine")
        .args(args)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .output()
        .unwrap()
}

fn records(dir: &Path, kubeconfig: &Path) -> Vec<Value> {
    let out = quarantine(dir, kubeconfig, &["list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn wait_record(
    dir: &Path,
    kubeconfig: &Path,
    vigil: &VigilProcess,
    pod: &str,
    state: &str,
) -> Value {
    let target = format!("default/{pod}");
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

fn outcomes(record: &Value, action: &str) -> Vec<String> {
    record["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == action)
        .map(|a| a["outcome"].as_str().unwrap().to_owned())
        .collect()
}

/// Enforce: the pod is labelled and a deny-all policy selecting the label
/// is created; a second finding sends nothing; a host-network pod is
/// labelled but recorded as not isolated; release removes both.
#[test]
fn pod_is_labelled_and_isolated_by_a_deny_all_policy_then_released() {
    let dir = TempDir::new("k8s-response");
    let mut cluster = Cluster::default();
    for (name, host) in [(PRIVILEGED_POD, false), (HOST_NETWORK_POD, true)] {
        cluster
            .pods
            .insert(("default".into(), name.into()), pod(name, host));
    }
    let api = FakeApi::start(cluster);
    let config = kubeconfig(&dir, api.port());
    let log = dir.join("audit.log");
    append(&log, "");
    let vigil = start(&dir, &config, &log, "enforce");

    append(&log, &recorded("create_nginx_pod_privileged.json", "one"));
    let record = wait_record(&dir, &config, &vigil, PRIVILEGED_POD, "quarantined");
    let qid = record["id"].as_str().unwrap().to_owned();
    assert_eq!(record["kind"], "kubernetes");
    assert_eq!(record["rule"], "container-escape/privileged");
    assert_eq!(outcomes(&record, "label"), ["ok"]);
    assert_eq!(outcomes(&record, "network-policy"), ["ok"]);
    assert_eq!(
        pod_labels(&api, PRIVILEGED_POD)["vigil.dev/quarantine"],
        qid.as_str()
    );
    assert_eq!(
        pod_labels(&api, PRIVILEGED_POD)["app"],
        "nginx",
        "other labels are kept"
    );

    let writes = api.writes();
    assert_eq!(writes.len(), 2, "{writes:#?}");
    let patch = &writes[0];
    assert_eq!(patch.method, "PATCH");
    assert_eq!(
        patch.path,
        format!("/api/v1/namespaces/default/pods/{PRIVILEGED_POD}")
    );
    assert_eq!(patch.content_type, "application/merge-patch+json");
    assert_eq!(
        patch.body,
        json!({"metadata": {"labels": {"vigil.dev/quarantine": qid}}})
    );
    let create = &writes[1];
    assert_eq!(create.method, "POST");
    assert_eq!(
        create.path,
        "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies"
    );
    let policy = &create.body;
    assert_eq!(policy["kind"], "NetworkPolicy");
    assert_eq!(
        policy["metadata"]["name"],
        format!("vigil-quarantine-{qid}").as_str()
    );
    assert_eq!(
        policy["spec"]["podSelector"],
        json!({"matchLabels": {"vigil.dev/quarantine": qid}})
    );
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert!(
        policy["spec"].get("ingress").is_none() && policy["spec"].get("egress").is_none(),
        "deny all: no rule"
    );

    let bundle = PathBuf::from(record["evidence_dir"].as_str().unwrap());
    let pod_json: Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("pod.json")).unwrap()).unwrap();
    assert_eq!(pod_json["metadata"]["name"], PRIVILEGED_POD);
    assert!(
        pod_json["metadata"]["labels"]
            .get("vigil.dev/quarantine")
            .is_none(),
        "taken before the label"
    );
    assert!(
        std::fs::read_to_string(bundle.join("findings.jsonl"))
            .unwrap()
            .contains("container-escape/privileged")
    );

    // The same pod again: nothing new sent.
    append(&log, &recorded("create_nginx_pod_privileged.json", "two"));
    vigil.wait_for_stderr("response: target already handled", STARTUP);
    assert_eq!(api.writes().len(), 2, "{:#?}", api.writes());

    // A host-network pod: labelled, policy created, but NetworkPolicies do not apply to it.
    append(
        &log,
        &recorded("create_nginx_pod_hostnetwork.json", "three"),
    );
    let partial = wait_record(&dir, &config, &vigil, HOST_NETWORK_POD, "partial");
    assert_eq!(outcomes(&partial, "label"), ["ok"]);
    assert_eq!(outcomes(&partial, "isolate"), ["skipped"]);
    assert_eq!(policies(&api).len(), 2);

    // Release.
    let out = quarantine(&dir, &config, &["release", &qid]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("quarantine {qid}: released")),
        "{text}"
    );
    assert!(
        pod_labels(&api, PRIVILEGED_POD)
            .get("vigil.dev/quarantine")
            .is_none()
    );
    assert_eq!(policies(&api).len(), 1);
    let writes = api.writes();
    let release: Vec<&Request> = writes
        .iter()
        .filter(|r| r.path.contains(PRIVILEGED_POD) || r.path.ends_with(&qid))
        .skip(1)
        .collect();
    assert_eq!(release[0].method, "PATCH");
    assert_eq!(
        release[0].body,
        json!({"metadata": {"labels": {"vigil.dev/quarantine": null}}})
    );
    assert_eq!(release[1].method, "DELETE");
    assert_eq!(
        release[1].path,
        format!(
            "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies/vigil-quarantine-{qid}"
        )
    );
}

/// Create-or-get: the policy exists already (409); Vigil reads it back,
/// checks it selects the pod, and counts the quarantine as complete.
#[test]
fn an_existing_policy_is_read_back_not_duplicated() {
    let dir = TempDir::new("k8s-response-409");
    let mut cluster = Cluster {
        conflict_on_create: true,
        ..Cluster::default()
    };
    cluster.pods.insert(
        ("default".into(), PRIVILEGED_POD.into()),
        pod(PRIVILEGED_POD, false),
    );
    let api = FakeApi::start(cluster);
    let config = kubeconfig(&dir, api.port());
    let log = dir.join("audit.log");
    append(&log, "");
    let vigil = start(&dir, &config, &log, "enforce");
    append(&log, &recorded("create_nginx_pod_privileged.json", "one"));
    let record = wait_record(&dir, &config, &vigil, PRIVILEGED_POD, "quarantined");
    assert_eq!(
        outcomes(&record, "network-policy"),
        ["skipped"],
        "{record:#}"
    );
    let qid = record["id"].as_str().unwrap();
    let gets: Vec<Request> = api
        .requests()
        .into_iter()
        .filter(|r| {
            r.method == "GET"
                && r.path
                    .ends_with(&format!("networkpolicies/vigil-quarantine-{qid}"))
        })
        .collect();
    assert_eq!(gets.len(), 1);
    assert_eq!(policies(&api).len(), 1);
}

/// Dry-run: the pod is read, nothing is written; the plan is recorded.
#[test]
fn dry_run_sends_no_write_to_the_api() {
    let dir = TempDir::new("k8s-response-dry");
    let mut cluster = Cluster::default();
    cluster.pods.insert(
        ("default".into(), PRIVILEGED_POD.into()),
        pod(PRIVILEGED_POD, false),
    );
    let api = FakeApi::start(cluster);
    let config = kubeconfig(&dir, api.port());
    let log = dir.join("audit.log");
    append(&log, "");
    let vigil = start(&dir, &config, &log, "dry-run");
    append(&log, &recorded("create_nginx_pod_privileged.json", "one"));
    wait_record(&dir, &config, &vigil, PRIVILEGED_POD, "dry-run");
    // The record exists from the claim on; the plan is complete once the
    // last planned action is logged.
    vigil.wait_for_stderr("response (dry-run): would evidence", STARTUP);
    let record = wait_record(&dir, &config, &vigil, PRIVILEGED_POD, "dry-run");
    assert_eq!(outcomes(&record, "label"), ["planned"]);
    assert_eq!(outcomes(&record, "network-policy"), ["planned"]);
    assert!(api.writes().is_empty(), "{:#?}", api.writes());
    assert!(
        pod_labels(&api, PRIVILEGED_POD)
            .get("vigil.dev/quarantine")
            .is_none()
    );
}

/// A pod the host verified by `namespace/name` only (the audit event's
/// response body shows no uid, so nothing ties the finding to one pod):
/// the responder reads the pod, records why, and writes nothing — a name
/// alone may name a pod deleted and created again since (issue 10).
#[test]
fn a_pod_without_a_verified_uid_is_looked_up_and_not_acted_on() {
    let dir = TempDir::new("k8s-response-no-uid");
    let mut cluster = Cluster::default();
    cluster.pods.insert(
        ("default".into(), PRIVILEGED_POD.into()),
        pod(PRIVILEGED_POD, false),
    );
    let api = FakeApi::start(cluster);
    let config = kubeconfig(&dir, api.port());
    let log = dir.join("audit.log");
    append(&log, "");
    let vigil = start(&dir, &config, &log, "enforce");
    let mut created = falco_event("create_nginx_pod_privileged.json");
    let uid = created["responseObject"]["metadata"]["uid"].take();
    assert!(uid.is_string());
    created["responseObject"]["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("uid");
    append(&log, &audit_line(&created, "no-uid"));
    let record = wait_record(&dir, &config, &vigil, PRIVILEGED_POD, "failed");
    let inspect: Vec<&Value> = record["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "inspect")
        .collect();
    assert_eq!(inspect.len(), 1, "{record:#}");
    assert_eq!(inspect[0]["outcome"], "failed", "{record:#}");
    let detail = inspect[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("(uid {uid} now)"))
            && detail.contains("does not act on a pod by name alone"),
        "{record:#}"
    );
    assert!(outcomes(&record, "label").is_empty(), "{record:#}");
    vigil.wait_for_stderr("does not act on a pod by name alone", DEADLINE);
    assert!(
        api.gets(&format!("/api/v1/namespaces/default/pods/{PRIVILEGED_POD}")) >= 1,
        "the pod was read: {:#?}",
        api.requests()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(api.writes().is_empty(), "{:#?}", api.writes());
}
