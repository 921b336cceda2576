use std::collections::HashMap;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod};
use kube::runtime::watcher;

use super::config::{Environment, Mode, WatchConfig};
use super::events::event_body;
use super::owners::{controller_of, resolve_owner};
use super::pods::{Tracker, pod_event};
use vigil_core::model::{EventBody, KubernetesEvent, OwnerRef};

fn owner(kind: &str, name: &str) -> OwnerRef {
    OwnerRef {
        kind: kind.into(),
        name: name.into(),
    }
}

fn pod(json: serde_json::Value) -> Pod {
    serde_json::from_value(json).expect("pod")
}

fn web_pod() -> Pod {
    pod(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "web-5d4f-abcde", "namespace": "shop", "uid": "u-1", "resourceVersion": "10",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d4f", "uid": "rs-1", "controller": true}]
        },
        "spec": {"hostNetwork": true, "nodeName": "n1", "containers": [{"name": "app", "image": "nginx:1"}]}
    }))
}

/// A lookup over (namespace, ReplicaSet) → its controller.
fn table(rows: &[(&str, &str, OwnerRef)]) -> HashMap<(String, String), OwnerRef> {
    rows.iter()
        .map(|(ns, n, o)| ((ns.to_string(), n.to_string()), o.clone()))
        .collect()
}

fn kube(body: EventBody) -> KubernetesEvent {
    match body {
        EventBody::Kubernetes(k) => k,
        other => panic!("not a kubernetes event: {other:?}"),
    }
}

#[test]
fn replica_set_owner_resolves_to_its_deployment() {
    let t = table(&[("shop", "web-5d4f", owner("Deployment", "web"))]);
    let lookup = |ns: &str, n: &str| t.get(&(ns.to_owned(), n.to_owned())).cloned();
    let got = resolve_owner("shop", Some(owner("ReplicaSet", "web-5d4f")), &lookup);
    assert_eq!(got, Some(owner("Deployment", "web")));
    // Same name in another namespace: not the same ReplicaSet.
    let got = resolve_owner("other", Some(owner("ReplicaSet", "web-5d4f")), &lookup);
    assert_eq!(got, Some(owner("ReplicaSet", "web-5d4f")));
}

#[test]
fn direct_owners_and_unknown_replica_sets_stay() {
    let lookup = |_: &str, _: &str| Some(owner("Deployment", "never"));
    for kind in ["DaemonSet", "Job", "StatefulSet"] {
        assert_eq!(
            resolve_owner("ns", Some(owner(kind, "x")), &lookup),
            Some(owner(kind, "x"))
        );
    }
    assert_eq!(resolve_owner("ns", None, &lookup), None);
    let none = |_: &str, _: &str| None;
    assert_eq!(
        resolve_owner("ns", Some(owner("ReplicaSet", "bare")), &none),
        Some(owner("ReplicaSet", "bare"))
    );
}

#[test]
fn controller_of_prefers_the_controller_reference() {
    let rs: ReplicaSet = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web-5d4f", "namespace": "shop", "ownerReferences": [
            {"apiVersion": "v1", "kind": "Thing", "name": "t", "uid": "1"},
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "2", "controller": true}
        ]}
    }))
    .expect("rs");
    assert_eq!(
        controller_of(&rs.metadata),
        Some(owner("Deployment", "web"))
    );
    assert_eq!(controller_of(&ReplicaSet::default().metadata), None);
}

#[test]
fn pod_event_reuses_the_pod_normaliser_and_resolves_the_owner() {
    let t = table(&[("shop", "web-5d4f", owner("Deployment", "web"))]);
    let lookup = |ns: &str, n: &str| t.get(&(ns.to_owned(), n.to_owned())).cloned();
    let k = kube(pod_event("added", &web_pod(), &lookup).expect("event"));
    assert_eq!(k.verb, "added");
    assert_eq!(k.resource, "pods");
    assert_eq!(k.namespace, "shop");
    assert_eq!(k.name, "web-5d4f-abcde");
    assert_eq!(k.audit_id, "u-1");
    assert_eq!(k.owner, Some(owner("Deployment", "web")));
    let spec = k.pod.expect("pod spec");
    assert!(spec.host_network);
    assert_eq!(spec.node_name, "n1");
    assert_eq!(spec.containers.len(), 1);
}

#[test]
fn tracker_names_verbs_and_skips_unchanged_relists() {
    let mut t = Tracker::default();
    let p = web_pod();
    let verb = |t: &mut Tracker, e: watcher::Event<Pod>| t.verb(&e).map(|(v, _)| v);
    assert_eq!(verb(&mut t, watcher::Event::Init), None);
    assert_eq!(
        verb(&mut t, watcher::Event::InitApply(p.clone())),
        Some("added")
    );
    assert_eq!(verb(&mut t, watcher::Event::InitDone), None);
    // A re-list with the same resourceVersion: nothing new.
    assert_eq!(verb(&mut t, watcher::Event::InitApply(p.clone())), None);
    let mut changed = p.clone();
    changed.metadata.resource_version = Some("11".into());
    assert_eq!(
        verb(&mut t, watcher::Event::Apply(changed)),
        Some("modified")
    );
    assert_eq!(
        verb(&mut t, watcher::Event::Delete(p.clone())),
        Some("deleted")
    );
    assert_eq!(verb(&mut t, watcher::Event::Apply(p)), Some("added"));
}

#[test]
fn core_events_normalise_with_reason_as_verb() {
    let e: CoreEvent = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web.1", "namespace": "shop", "uid": "e-1"},
        "involvedObject": {"kind": "Pod", "name": "web-5d4f-abcde", "namespace": "shop"},
        "reason": "BackOff", "reportingComponent": "kubelet", "message": "Back-off restarting"
    }))
    .expect("event");
    let k = kube(event_body(&e));
    assert_eq!(k.verb, "BackOff");
    assert_eq!(k.resource, "events");
    assert_eq!(k.name, "web-5d4f-abcde");
    assert_eq!(k.namespace, "shop");
    assert_eq!(k.user_agent, "kubelet");
    assert_eq!(k.audit_id, "e-1");
    assert!(k.request_uri.is_empty());
}

fn env_in(dir: &std::path::Path) -> Environment {
    Environment {
        kubeconfig_var: None,
        home: Some(dir.to_owned()),
        service_host: false,
        token: dir.join("token"),
    }
}

#[test]
fn auto_is_off_without_credentials_and_on_with_them() {
    let dir = std::env::temp_dir().join(format!("vigil-k8s-watch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let auto = WatchConfig::default();
    let err = auto.settings(&env_in(&dir)).expect_err("off");
    assert_eq!(err, "no kubeconfig or in-cluster service account");
    // --k8s-watch forces it on.
    let on = WatchConfig {
        mode: Mode::On,
        namespace: None,
    };
    assert!(on.settings(&env_in(&dir)).is_ok());
    // In-cluster: token plus KUBERNETES_SERVICE_HOST.
    std::fs::write(dir.join("token"), "t").expect("token");
    let mut env = env_in(&dir);
    assert!(auto.settings(&env).is_err());
    env.service_host = true;
    let s = auto.settings(&env).expect("on");
    assert_eq!(s.credentials, "in-cluster service account");
    assert_eq!(s.scope(), "all namespaces");
    // ~/.kube/config.
    std::fs::create_dir_all(dir.join(".kube")).expect("dir");
    std::fs::write(dir.join(".kube/config"), "").expect("config");
    let s = auto.settings(&env_in(&dir)).expect("on");
    assert!(s.credentials.starts_with("kubeconfig "));
    // --no-k8s-watch wins; a bad namespace is refused.
    let off = WatchConfig {
        mode: Mode::Off,
        namespace: None,
    };
    assert!(off.settings(&env_in(&dir)).is_err());
    let bad = WatchConfig {
        mode: Mode::Auto,
        namespace: Some("Bad_NS".into()),
    };
    assert!(bad.settings(&env_in(&dir)).is_err());
    let ns = WatchConfig {
        mode: Mode::Auto,
        namespace: Some("shop".into()),
    };
    assert_eq!(
        ns.settings(&env_in(&dir)).expect("on").scope(),
        "namespace shop"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
