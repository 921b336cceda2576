//! Native tests: positives and negatives per rule, the audit-stage dedup,
//! attribution through controllers (and across a restart), the settings.

use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::testing::{self, evidence, rule_ids};

use super::*;

const EXEC_URI: &str = "/api/v1/namespaces/default/pods/web-7d9f8-x2x4q/exec?command=bash&container=app&stdin=true&stdout=true&tty=true";

/// An audit event (`kubernetes-admin`, code 201 at ResponseComplete, 101 at ResponseStarted).
fn audit(
    id: &str,
    verb: &str,
    resource: &str,
    subresource: &str,
    namespace: &str,
    name: &str,
    stage: &str,
) -> Event {
    let mut event = Event::new(
        id,
        1,
        EventBody::Kubernetes(KubernetesEvent {
            verb: verb.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            namespace: namespace.into(),
            name: name.into(),
            user: "kubernetes-admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            stage: stage.into(),
            response_code: Some(if stage == "ResponseStarted" { 101 } else { 201 }),
            audit_id: format!("audit-{id}"),
            source_ips: vec!["10.0.0.7".into()],
            user_agent: "kubectl/v1.30.0".into(),
            ..Default::default()
        }),
    );
    event.source = "k8s-audit".into();
    event
}

fn with(mut event: Event, f: impl FnOnce(&mut KubernetesEvent)) -> Event {
    if let EventBody::Kubernetes(request) = &mut event.body {
        f(request);
    }
    event
}

fn exec(id: &str, stage: &str) -> Event {
    with(
        audit(
            id,
            "create",
            "pods",
            "exec",
            "default",
            "web-7d9f8-x2x4q",
            stage,
        ),
        |r| {
            r.request_uri = EXEC_URI.into();
            r.audit_id = "exec-1".into();
        },
    )
}

fn pod_spec(images: &[&str]) -> PodSpec {
    PodSpec {
        containers: images
            .iter()
            .enumerate()
            .map(|(i, image)| PodContainer {
                role: ContainerRole::Main,
                name: format!("c{i}"),
                image: (*image).into(),
                security: ContainerSecurity::default(),
            })
            .collect(),
        ..Default::default()
    }
}

/// A pod create in `namespace` by `user`, owned by `owner` (`Kind/name`).
fn pod_create(
    id: &str,
    namespace: &str,
    name: &str,
    user: &str,
    owner: Option<(&str, &str)>,
) -> Event {
    with(
        audit(
            id,
            "create",
            "pods",
            "",
            namespace,
            name,
            "ResponseComplete",
        ),
        |r| {
            r.user = user.into();
            r.pod = Some(pod_spec(&["evil/miner:1"]));
            r.owner = owner.map(|(kind, name)| OwnerRef {
                kind: kind.into(),
                name: name.into(),
            });
        },
    )
}

fn run(detector: &mut K8sEvasion, events: &[Event]) -> Vec<Finding> {
    detector.on_events(events)
}

fn detector(settings: &str) -> K8sEvasion {
    testing::configured(settings)
}

const RS_CONTROLLER: &str = "system:serviceaccount:kube-system:replicaset-controller";
const DEPLOY_CONTROLLER: &str = "system:serviceaccount:kube-system:deployment-controller";

#[test]
fn describes_itself() {
    let info = K8sEvasion::describe();
    assert_eq!(info.name, "k8s-evasion");
    assert_eq!(info.subscribes, [EventKind::Kubernetes]);
    assert!(
        info.settings
            .iter()
            .any(|s| s.name == "protected_namespaces"
                && s.default_value == r#"["kube-system","kube-public"]"#)
    );
}

#[test]
fn exec_is_reported_once_at_response_started() {
    let mut d = detector("{}");
    let findings = run(
        &mut d,
        &[
            exec("e0", "RequestReceived"),
            exec("e1", "ResponseStarted"),
            exec("e1", "ResponseStarted"), // delivered twice (at-least-once webhook)
            exec("e2", "ResponseComplete"),
        ],
    );
    assert_eq!(rule_ids(&findings), ["k8s-evasion/pod-exec"]);
    let f = &findings[0];
    assert_eq!(f.severity, Severity::Medium);
    assert_eq!(f.techniques, ["T1609"]);
    assert_eq!(f.event_ids, ["e1"]);
    assert_eq!(evidence(f, "command"), ["bash"]);
    assert_eq!(evidence(f, "container"), ["app"]);
    assert_eq!(evidence(f, "tty"), ["true"]);
    assert_eq!(evidence(f, "stdin"), ["true"]);
    assert_eq!(evidence(f, "stage"), ["ResponseStarted"]);
    assert_eq!(evidence(f, "user"), ["kubernetes-admin"]);
    assert_eq!(evidence(f, "source-ips"), ["10.0.0.7"]);
    assert_eq!(
        f.entities,
        [
            Entity::new(EntityKind::Pod, "default/web-7d9f8-x2x4q", ""),
            Entity::new(EntityKind::User, "kubernetes-admin", "")
        ]
    );
    assert!(f.summary.contains("ran `bash`"), "{}", f.summary);
    assert!(f.summary.contains("interactive terminal"), "{}", f.summary);

    // A policy that omits ResponseStarted: ResponseComplete is reported (once).
    vigil_plugin_sdk::testing::reset();
    let mut d = detector("{}");
    let findings = run(
        &mut d,
        &[
            exec("e3", "ResponseComplete"),
            exec("e3", "ResponseComplete"),
        ],
    );
    assert_eq!(rule_ids(&findings), ["k8s-evasion/pod-exec"]);
    assert_eq!(findings[0].event_ids, ["e3"]);
}

#[test]
fn exec_dedup_survives_a_restart() {
    let mut d = detector("{}");
    assert_eq!(run(&mut d, &[exec("e1", "ResponseStarted")]).len(), 1);
    // A new instance (the host restarted, same state): ResponseComplete is not new.
    let mut again = detector("{}");
    assert!(run(&mut again, &[exec("e2", "ResponseComplete")]).is_empty());
}

#[test]
fn refused_allowlisted_and_unrelated_requests_give_nothing() {
    let refused = with(exec("e1", "ResponseComplete"), |r| {
        r.response_code = Some(403)
    });
    let other_verb = audit(
        "e2",
        "get",
        "pods",
        "log",
        "default",
        "web",
        "ResponseComplete",
    );
    let status = audit(
        "e3",
        "patch",
        "pods",
        "status",
        "default",
        "web",
        "ResponseComplete",
    );
    let secret = audit(
        "e4",
        "create",
        "secrets",
        "",
        "kube-system",
        "x",
        "ResponseComplete",
    );
    let mut d = detector("{}");
    assert!(run(&mut d, &[refused, other_verb, status, secret]).is_empty());

    let mut d = detector(r#"{"allowlist": {"users": ["kubernetes-*"]}}"#);
    assert!(run(&mut d, &[exec("e5", "ResponseStarted")]).is_empty());
    let mut d = detector(r#"{"allowlist": {"namespaces": ["default"]}}"#);
    assert!(run(&mut d, &[exec("e6", "ResponseStarted")]).is_empty());
    let mut d = detector(r#"{"disabled_rules": ["pod-exec"]}"#);
    assert!(run(&mut d, &[exec("e7", "ResponseStarted")]).is_empty());
}

#[test]
fn attach_and_port_forward() {
    let attach = with(
        audit(
            "e1",
            "create",
            "pods",
            "attach",
            "kube-system",
            "etcd-cp",
            "ResponseStarted",
        ),
        |r| {
            r.request_uri = "/api/v1/namespaces/kube-system/pods/etcd-cp/attach?container=etcd&stdin=true&stdout=true".into()
        },
    );
    let forward = with(
        audit(
            "e2",
            "get",
            "pods",
            "portforward",
            "default",
            "db-0",
            "ResponseStarted",
        ),
        |r| r.request_uri = "/api/v1/namespaces/default/pods/db-0/portforward?ports=5432".into(),
    );
    let mut d = detector("{}");
    let findings = run(&mut d, &[attach, forward]);
    assert_eq!(
        rule_ids(&findings),
        ["k8s-evasion/pod-attach", "k8s-evasion/port-forward"]
    );
    // In a protected namespace: raised to high.
    assert_eq!(findings[0].severity, Severity::High);
    assert_eq!(evidence(&findings[0], "protected-namespace"), ["true"]);
    assert_eq!(evidence(&findings[0], "container"), ["etcd"]);
    assert_eq!(findings[1].severity, Severity::Medium);
    assert_eq!(findings[1].techniques, ["T1572"]);
    assert_eq!(evidence(&findings[1], "ports"), ["5432"]);
    assert!(findings[1].summary.contains("port(s) 5432"));
}

#[test]
fn ephemeral_containers_at_response_complete() {
    let mut spec = pod_spec(&["nginx:1.25"]);
    spec.containers.push(PodContainer {
        role: ContainerRole::Ephemeral,
        name: "debugger-x7".into(),
        image: "busybox:1.36".into(),
        security: ContainerSecurity::default(),
    });
    let request = |id: &str, stage: &str| {
        with(
            audit(
                id,
                "patch",
                "pods",
                "ephemeralcontainers",
                "default",
                "web",
                stage,
            ),
            |r| {
                r.pod = Some(spec.clone());
                r.audit_id = "debug-1".into();
            },
        )
    };
    let mut d = detector("{}");
    let findings = run(
        &mut d,
        &[
            request("e1", "RequestReceived"),
            request("e2", "ResponseComplete"),
        ],
    );
    assert_eq!(rule_ids(&findings), ["k8s-evasion/ephemeral-container"]);
    let f = &findings[0];
    assert_eq!(f.severity, Severity::High);
    assert_eq!(f.techniques, ["T1609", "T1610"]);
    assert_eq!(evidence(f, "ephemeral-container"), ["debugger-x7"]);
    assert_eq!(evidence(f, "image"), ["busybox:1.36"]);
    assert!(
        f.entities
            .contains(&Entity::new(EntityKind::Image, "busybox:1.36", ""))
    );

    // A plain pod update is not an ephemeral container.
    let update = audit(
        "e3",
        "update",
        "pods",
        "",
        "default",
        "web",
        "ResponseComplete",
    );
    assert!(run(&mut d, &[update]).is_empty());
}

#[test]
fn a_pod_created_directly_in_a_system_namespace() {
    let mut d = detector("{}");
    let findings = run(
        &mut d,
        &[
            pod_create("e1", "kube-system", "miner", "alice", None),
            pod_create("e2", "default", "miner", "alice", None),
            pod_create("e3", "kube-public", "mirror", "system:node:n1", None),
        ],
    );
    assert_eq!(rule_ids(&findings), ["k8s-evasion/system-namespace-pod"]);
    let f = &findings[0];
    assert_eq!(f.severity, Severity::High);
    assert_eq!(f.techniques, ["T1610", "T1036.005"]);
    assert_eq!(evidence(f, "creator"), ["alice"]);
    assert_eq!(evidence(f, "creator.source"), ["request"]);
    assert_eq!(evidence(f, "image"), ["evil/miner:1"]);
    assert_eq!(
        f.entities[..2],
        [
            Entity::new(EntityKind::Pod, "kube-system/miner", ""),
            Entity::new(EntityKind::User, "alice", "")
        ]
    );
    // Trusted add-on images are not reported.
    let coredns = with(
        pod_create("e4", "kube-system", "coredns-x", "alice", None),
        |r| {
            r.pod = Some(pod_spec(&["registry.k8s.io/coredns/coredns:v1.11.1"]));
        },
    );
    assert!(run(&mut d, &[coredns]).is_empty());
    // Refused or not final: nothing.
    let refused = with(pod_create("e5", "kube-system", "x", "alice", None), |r| {
        r.response_code = Some(403);
    });
    let received = with(pod_create("e6", "kube-system", "y", "alice", None), |r| {
        r.stage = "RequestReceived".into();
    });
    assert!(run(&mut d, &[refused, received]).is_empty());
}

/// alice creates Deployment `web` in kube-system; the controllers create its
/// ReplicaSet and three pods.
fn deployment_rollout(namespace: &str) -> Vec<Event> {
    let mut events = vec![
        with(
            audit(
                "d1",
                "create",
                "deployments",
                "",
                namespace,
                "web",
                "ResponseComplete",
            ),
            |r| r.user = "alice".into(),
        ),
        with(
            audit(
                "d2",
                "create",
                "replicasets",
                "",
                namespace,
                "web-7d9f8",
                "ResponseComplete",
            ),
            |r| {
                r.user = DEPLOY_CONTROLLER.into();
                r.owner = Some(OwnerRef {
                    kind: "Deployment".into(),
                    name: "web".into(),
                });
            },
        ),
    ];
    for (i, suffix) in ["x2x4q", "b7k2m", "zz9pl"].iter().enumerate() {
        events.push(pod_create(
            &format!("p{i}"),
            namespace,
            &format!("web-7d9f8-{suffix}"),
            RS_CONTROLLER,
            Some(("ReplicaSet", "web-7d9f8")),
        ));
    }
    events
}

#[test]
fn replicaset_pods_are_attributed_to_the_deployment_creator_once() {
    let mut d = detector("{}");
    let findings = run(&mut d, &deployment_rollout("kube-system"));
    assert_eq!(rule_ids(&findings), ["k8s-evasion/system-namespace-pod"]);
    let f = &findings[0];
    assert_eq!(f.severity, Severity::High);
    assert_eq!(f.event_ids, ["p0"]);
    assert_eq!(evidence(f, "creator"), ["alice"]);
    assert_eq!(evidence(f, "creator.source"), ["owner chain"]);
    assert_eq!(evidence(f, "user"), [RS_CONTROLLER]);
    assert_eq!(
        evidence(f, "owners"),
        ["ReplicaSet/web-7d9f8 → Deployment/web"]
    );
    assert!(f.summary.contains("on behalf of alice"), "{}", f.summary);
    assert!(
        f.entities
            .contains(&Entity::new(EntityKind::User, "alice", ""))
    );

    // The same rollout in an ordinary namespace gives nothing.
    let mut d = detector("{}");
    assert!(run(&mut d, &deployment_rollout("default")).is_empty());

    // A system identity's Deployment (a control-plane add-on) gives nothing.
    let mut d = detector("{}");
    let mut rollout = deployment_rollout("kube-system");
    rollout[0] = with(rollout[0].clone(), |r| {
        r.user = "system:serviceaccount:kube-system:addon-manager".into();
    });
    assert!(run(&mut d, &rollout).is_empty());
}

#[test]
fn a_controller_pod_of_an_unseen_workload_is_medium() {
    let mut d = detector("{}");
    let findings = run(
        &mut d,
        &[
            pod_create(
                "p1",
                "kube-system",
                "nginx-7998647bdf-",
                RS_CONTROLLER,
                Some(("ReplicaSet", "nginx-7998647bdf")),
            ),
            pod_create(
                "p2",
                "kube-system",
                "nginx-7998647bdf-",
                RS_CONTROLLER,
                Some(("ReplicaSet", "nginx-7998647bdf")),
            ),
        ],
    );
    assert_eq!(rule_ids(&findings), ["k8s-evasion/system-namespace-pod"]);
    assert_eq!(findings[0].severity, Severity::Medium);
    assert_eq!(evidence(&findings[0], "creator"), ["unknown"]);
    assert_eq!(
        evidence(&findings[0], "owners"),
        ["ReplicaSet/nginx-7998647bdf"]
    );
    assert!(findings[0].summary.contains("whose creator is unknown"));
}

#[test]
fn watched_pods_are_attributed_and_deduplicated_with_audit() {
    let watched = |id: &str, name: &str| {
        let mut event = Event::new(
            id,
            1,
            EventBody::Kubernetes(KubernetesEvent {
                verb: "added".into(),
                resource: "pods".into(),
                namespace: "kube-system".into(),
                name: name.into(),
                audit_id: format!("uid-{name}"),
                pod: Some(pod_spec(&["evil/miner:1"])),
                owner: Some(OwnerRef {
                    kind: "Deployment".into(),
                    name: "web".into(),
                }),
                ..Default::default()
            }),
        );
        event.source = "k8s-watch".into();
        event
    };
    // Without the Deployment's creator, a watched pod proves nothing (the
    // watcher lists every existing pod at start).
    let mut d = detector("{}");
    assert!(run(&mut d, &[watched("w0", "web-7d9f8-aaaaa")]).is_empty());

    // alice's Deployment seen by audit, its pods by the watcher only.
    let mut d = detector("{}");
    let deployment = with(
        audit(
            "d1",
            "create",
            "deployments",
            "",
            "kube-system",
            "web",
            "ResponseComplete",
        ),
        |r| r.user = "alice".into(),
    );
    let findings = run(
        &mut d,
        &[
            deployment,
            watched("w1", "web-7d9f8-x2x4q"),
            watched("w2", "web-7d9f8-b7k2m"),
        ],
    );
    assert_eq!(rule_ids(&findings), ["k8s-evasion/system-namespace-pod"]);
    assert_eq!(evidence(&findings[0], "creator"), ["alice"]);
    assert_eq!(evidence(&findings[0], "source"), ["k8s-watch"]);
    // The audit record of a pod of the same Deployment (through its
    // ReplicaSet, learnt from the watched pod's name) is the same workload.
    let audited = pod_create(
        "p1",
        "kube-system",
        "web-7d9f8-zz9pl",
        RS_CONTROLLER,
        Some(("ReplicaSet", "web-7d9f8")),
    );
    assert!(run(&mut d, &[audited]).is_empty());
}

#[test]
fn attribution_survives_a_restart_and_enriches_exec() {
    let mut d = detector("{}");
    let deployment = with(
        audit(
            "d1",
            "create",
            "deployments",
            "",
            "default",
            "web",
            "ResponseComplete",
        ),
        |r| r.user = "alice".into(),
    );
    let watched = with(
        audit("w1", "added", "pods", "", "default", "web-7d9f8-x2x4q", ""),
        |r| {
            r.user = String::new();
            r.response_code = None;
            r.owner = Some(OwnerRef {
                kind: "Deployment".into(),
                name: "web".into(),
            });
        },
    );
    assert!(run(&mut d, &[deployment, watched]).is_empty());

    let mut again = detector("{}");
    let findings = run(&mut again, &[exec("e1", "ResponseStarted")]);
    assert_eq!(evidence(&findings[0], "pod.owners"), ["Deployment/web"]);
    assert_eq!(evidence(&findings[0], "pod.workload-creator"), ["alice"]);
}

#[test]
fn maps_are_bounded() {
    let mut d = detector(r#"{"max_tracked_objects": 16}"#);
    let events: Vec<Event> = (0..50)
        .map(|i| {
            with(
                audit(
                    &format!("d{i}"),
                    "create",
                    "deployments",
                    "",
                    "default",
                    &format!("web{i}"),
                    "ResponseComplete",
                ),
                |r| r.user = "alice".into(),
            )
        })
        .collect();
    assert!(run(&mut d, &events).is_empty());
    let creators = vigil_plugin_sdk::testing::state()
        .keys()
        .filter(|k| k.starts_with("creator/"))
        .count();
    assert_eq!(creators, 16);
}

#[test]
fn settings_problems_are_all_reported_with_paths() {
    let mut d = K8sEvasion::default();
    let error = d
        .configure(
            r#"{"protected_namespaces": [""], "trusted_images": ["ok", " "], "allowlist": {"users": [""]},
                "max_tracked_objects": 3, "disabled_rules": ["pod-shell"]}"#,
        )
        .unwrap_err();
    let paths: Vec<&str> = error.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "protected_namespaces[0]",
            "trusted_images[1]",
            "allowlist.users[0]",
            "max_tracked_objects",
            "disabled_rules[0]"
        ]
    );
    assert!(error.problems[4].message.contains("system-namespace-pod"));
    let error = d.configure(r#"{"allowlist": {"groups": []}}"#).unwrap_err();
    assert_eq!(error.problems[0].path, "allowlist.groups");
    assert!(d.configure("").is_ok());
    assert_eq!(d.config(), &Config::default());
}
