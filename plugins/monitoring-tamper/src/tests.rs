//! Native tests: positives and negatives per rule, folding of one stop's
//! events, the gap marker, and the settings.

use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::testing::{self, evidence, rule_ids};

use super::*;

const T0: u64 = 1_764_150_000_000_000_000;
const SEC: u64 = 1_000_000_000;

fn docker(id: &str, time: u64, action: ContainerAction, name: &str, image: &str) -> Event {
    let mut event = Event::new(
        id,
        time,
        EventBody::Container(ContainerEvent {
            action,
            raw_action: action.as_str().into(),
            id: format!("id-{name}"),
            name: name.into(),
            image: image.into(),
            ..Default::default()
        }),
    );
    event.node = "node-1".into();
    event.source = "docker".into();
    event
}

fn with(mut event: Event, f: impl FnOnce(&mut ContainerEvent)) -> Event {
    if let EventBody::Container(c) = &mut event.body {
        f(c);
    }
    event
}

fn kill(id: &str, time: u64, signal: &str) -> Event {
    with(
        docker(
            id,
            time,
            ContainerAction::Kill,
            "falco",
            "falcosecurity/falco:0.37.1",
        ),
        |c| c.signal = signal.into(),
    )
}

fn audit_delete(id: &str, resource: &str, namespace: &str, name: &str, user: &str) -> Event {
    let mut event = Event::new(
        id,
        T0,
        EventBody::Kubernetes(KubernetesEvent {
            verb: "delete".into(),
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
            user: user.into(),
            stage: "ResponseComplete".into(),
            response_code: Some(200),
            audit_id: format!("audit-{id}"),
            ..Default::default()
        }),
    );
    event.source = "k8s-audit".into();
    event
}

fn file(
    id: &str,
    path: &str,
    change: FileChange,
    before: Option<FileState>,
    after: Option<FileState>,
) -> Event {
    Event::new(
        id,
        T0,
        EventBody::File(FileEvent {
            path: path.into(),
            change,
            before,
            after,
        }),
    )
}

fn state(sha256: &str, size: u64, mtime: u64, mode: u32) -> FileState {
    FileState {
        sha256: sha256.into(),
        size,
        mode,
        uid: 0,
        gid: 0,
        mtime,
    }
}

fn run(settings: &str, events: &[Event]) -> Vec<Finding> {
    testing::configured::<MonitoringTamper>(settings).on_events(events)
}

#[test]
fn describes_itself() {
    let info = MonitoringTamper::describe();
    assert_eq!(info.name, "monitoring-tamper");
    assert_eq!(
        info.subscribes,
        [EventKind::Container, EventKind::Kubernetes, EventKind::File]
    );
    assert!(
        info.settings
            .iter()
            .any(|s| s.name == "fold_window_secs" && s.default_value == "60")
    );
}

#[test]
fn docker_stop_of_an_agent_is_one_finding() {
    // `docker stop falco`: kill (TERM), die, stop; then SIGKILL ten seconds later.
    let findings = run(
        "{}",
        &[
            kill("e1", T0, "15"),
            with(
                docker(
                    "e2",
                    T0 + SEC,
                    ContainerAction::Die,
                    "falco",
                    "falcosecurity/falco:0.37.1",
                ),
                |c| {
                    c.exit_code = Some(143);
                },
            ),
            docker(
                "e3",
                T0 + SEC,
                ContainerAction::Stop,
                "falco",
                "falcosecurity/falco:0.37.1",
            ),
            kill("e4", T0 + 10 * SEC, "9"),
            docker(
                "e5",
                T0 + 11 * SEC,
                ContainerAction::Destroy,
                "falco",
                "falcosecurity/falco:0.37.1",
            ),
        ],
    );
    assert_eq!(rule_ids(&findings), ["monitoring-tamper/agent-stopped"]);
    let f = &findings[0];
    assert_eq!(f.severity, Severity::High);
    assert_eq!(f.techniques, ["T1562.001", "T1489"]);
    assert_eq!(f.event_ids, ["e1"]);
    assert_eq!(evidence(f, "matched"), ["image=falcosecurity/*"]);
    assert_eq!(evidence(f, "signal"), ["15"]);
    assert!(f.summary.contains("was sent SIGTERM"), "{}", f.summary);
    assert_eq!(
        f.entities[..2],
        [
            Entity::new(EntityKind::Container, "id-falco", "falco"),
            Entity::new(EntityKind::Image, "falcosecurity/falco:0.37.1", "")
        ]
    );

    // After the window, a new stop is a new finding.
    let later = run("{}", &[kill("e1", T0, "9"), kill("e2", T0 + 61 * SEC, "9")]);
    assert_eq!(later.len(), 2);
    let folded = run(
        r#"{"fold_window_secs": 120}"#,
        &[kill("e1", T0, "9"), kill("e2", T0 + 61 * SEC, "9")],
    );
    assert_eq!(folded.len(), 1);
}

#[test]
fn a_die_without_a_request_is_medium_and_pauses_are_their_own() {
    let died = with(
        docker(
            "e1",
            T0,
            ContainerAction::Die,
            "vigil",
            "registry.local:5000/vigil:0.1",
        ),
        |c| c.exit_code = Some(137),
    );
    let findings = run("{}", &[died]);
    assert_eq!(rule_ids(&findings), ["monitoring-tamper/agent-stopped"]);
    assert_eq!(findings[0].severity, Severity::Medium);
    assert_eq!(evidence(&findings[0], "exit-code"), ["137"]);
    assert!(findings[0].summary.contains("without a stop or kill"));

    let findings = run(
        "{}",
        &[
            docker(
                "e1",
                T0,
                ContainerAction::Pause,
                "falco",
                "falcosecurity/falco:0.37.1",
            ),
            docker(
                "e2",
                T0 + SEC,
                ContainerAction::Unpause,
                "falco",
                "falcosecurity/falco:0.37.1",
            ),
            kill("e3", T0 + 2 * SEC, "9"),
        ],
    );
    assert_eq!(
        rule_ids(&findings),
        [
            "monitoring-tamper/agent-paused",
            "monitoring-tamper/agent-stopped"
        ]
    );
    assert_eq!(findings[0].severity, Severity::High);

    // SIGSTOP freezes it like a pause; SIGHUP (Falco reloads its rules) is no stop.
    let findings = run(
        "{}",
        &[kill("e1", T0, "SIGSTOP"), kill("e2", T0 + 2 * SEC, "1")],
    );
    assert_eq!(rule_ids(&findings), ["monitoring-tamper/agent-paused"]);
    assert!(findings[0].summary.contains("SIGSTOP"));
}

#[test]
fn agents_by_image_label_or_name_and_nothing_else() {
    let by_label = with(
        docker(
            "e1",
            T0,
            ContainerAction::Stop,
            "k8s_agent_x",
            "registry.local/sec/agent:2",
        ),
        |c| {
            c.labels
                .push(KeyValue::new("io.kubernetes.container.name", "tetragon"))
        },
    );
    let by_name = docker("e2", T0, ContainerAction::Stop, "vigil-node", "busybox");
    let findings = run("{}", &[by_label, by_name]);
    assert_eq!(
        findings
            .iter()
            .flat_map(|f| evidence(f, "matched"))
            .collect::<Vec<_>>(),
        ["label=io.kubernetes.container.name=tetragon", "name=vigil*"]
    );

    // Other containers, and agents starting or running, give nothing.
    assert!(
        run(
            "{}",
            &[
                docker("e1", T0, ContainerAction::Stop, "web", "nginx:1.25"),
                docker(
                    "e2",
                    T0,
                    ContainerAction::Start,
                    "falco",
                    "falcosecurity/falco:0.37.1"
                ),
                docker(
                    "e3",
                    T0,
                    ContainerAction::ExecDie,
                    "falco",
                    "falcosecurity/falco:0.37.1"
                ),
            ]
        )
        .is_empty()
    );
    // Replaced lists.
    let settings = r#"{"agents": {"images": ["corp/edr-*"], "names": [], "labels": ["corp.edr"]}}"#;
    assert!(
        run(
            settings,
            &[docker(
                "e1",
                T0,
                ContainerAction::Stop,
                "falco",
                "falcosecurity/falco"
            )]
        )
        .is_empty()
    );
    assert_eq!(
        run(
            settings,
            &[docker(
                "e2",
                T0,
                ContainerAction::Stop,
                "x",
                "corp/edr-sensor:5"
            )]
        )
        .len(),
        1
    );
}

#[test]
fn the_docker_gap_marker_is_a_finding() {
    let gap = with(
        docker("g1", T0 + 30 * SEC, ContainerAction::Other, "", ""),
        |c| {
            c.raw_action = GAP_RAW_ACTION.into();
            c.id = String::new();
            c.labels = vec![
                KeyValue::new(GAP_SINCE_LABEL, "1764150000.000000000"),
                KeyValue::new(
                    GAP_REASON_LABEL,
                    "the daemon replayed nothing from before the break (restarted?)",
                ),
            ];
        },
    );
    let findings = run("{}", std::slice::from_ref(&gap));
    assert_eq!(rule_ids(&findings), ["monitoring-tamper/docker-events-gap"]);
    let f = &findings[0];
    assert_eq!(f.severity, Severity::Medium);
    assert_eq!(f.techniques, ["T1562.006"]);
    assert_eq!(
        evidence(f, "last-event-before-gap"),
        ["2025-11-26T09:40:00Z"]
    );
    assert_eq!(evidence(f, "gap-seconds"), ["30"]);
    assert_eq!(evidence(f, "source"), ["docker"]);
    assert!(evidence(f, "reason")[0].contains("restarted"));
    assert_eq!(f.entities, [Entity::new(EntityKind::Node, "node-1", "")]);

    // Another `other` action is not a gap.
    let other = with(
        docker(
            "o1",
            T0,
            ContainerAction::Other,
            "falco",
            "falcosecurity/falco",
        ),
        |c| {
            c.raw_action = "health_status: unhealthy".into();
        },
    );
    assert!(run("{}", &[other]).is_empty());
    assert!(run(r#"{"disabled_rules": ["docker-events-gap"]}"#, &[gap]).is_empty());
}

#[test]
fn agent_deletions_through_the_api() {
    let findings = run(
        "{}",
        &[
            audit_delete("e1", "daemonsets", "falco", "falco", "mallory"),
            audit_delete("e2", "namespaces", "", "vigil", "mallory"),
            audit_delete("e3", "pods", "kube-system", "tetragon-x7k2p", "mallory"),
            audit_delete("e3", "pods", "kube-system", "tetragon-x7k2p", "mallory"), // delivered twice
        ],
    );
    let got = testing::rule_severities(&findings);
    assert_eq!(
        got,
        [
            ("monitoring-tamper/agent-deleted", Severity::High),
            ("monitoring-tamper/agent-deleted", Severity::High),
            ("monitoring-tamper/agent-deleted", Severity::Medium),
        ]
    );
    assert_eq!(evidence(&findings[0], "matched"), ["namespace=falco"]);
    assert_eq!(evidence(&findings[1], "matched"), ["namespace=vigil"]);
    assert_eq!(evidence(&findings[2], "matched"), ["name=tetragon*"]);
    assert!(
        findings[0]
            .summary
            .contains("mallory deleted daemonset falco/falco"),
        "{}",
        findings[0].summary
    );
    assert_eq!(findings[0].techniques, ["T1562.001"]);

    // Controllers, other workloads, refusals and non-final stages give nothing.
    let refused = {
        let mut e = audit_delete("e4", "daemonsets", "falco", "falco", "mallory");
        if let EventBody::Kubernetes(k) = &mut e.body {
            k.response_code = Some(403);
        }
        e
    };
    let received = {
        let mut e = audit_delete("e5", "daemonsets", "falco", "falco", "mallory");
        if let EventBody::Kubernetes(k) = &mut e.body {
            k.stage = "RequestReceived".into();
        }
        e
    };
    assert!(
        run(
            "{}",
            &[
                audit_delete(
                    "e1",
                    "pods",
                    "falco",
                    "falco-abcde",
                    "system:serviceaccount:kube-system:daemon-set-controller"
                ),
                audit_delete(
                    "e2",
                    "deployments",
                    "default",
                    "nginx-deployment",
                    "minikube-user"
                ),
                audit_delete("e3", "configmaps", "falco", "falco-rules", "mallory"),
                refused,
                received,
            ]
        )
        .is_empty()
    );
}

fn pod_container(id: &str, time: u64, pod: &str) -> Event {
    with(
        docker(
            id,
            time,
            ContainerAction::Kill,
            "k8s_falco_falco-abcde",
            "falcosecurity/falco:0.37.1",
        ),
        |c| {
            c.signal = "15".into();
            c.labels = vec![
                KeyValue::new("io.kubernetes.pod.namespace", "falco"),
                KeyValue::new("io.kubernetes.pod.name", pod),
            ];
        },
    )
}

fn detector(settings: &str) -> MonitoringTamper {
    testing::configured(settings)
}

#[test]
fn containers_of_a_deleted_agent_pod_are_the_same_behaviour() {
    // The deletion's audit event first, then the kubelet stopping the container.
    let mut d = detector("{}");
    let findings = d.on_events(&[
        audit_delete("a1", "daemonsets", "falco", "falco", "mallory"),
        pod_container("d1", T0 + 5 * SEC, "falco-abcde"),
    ]);
    assert_eq!(rule_ids(&findings), ["monitoring-tamper/agent-deleted"]);
    assert!(d.on_tick(T0 + 100 * SEC).is_empty());

    // The other order (the engine event came first): the stop was held back,
    // and the deletion drops it.
    let mut d = detector("{}");
    assert!(
        d.on_events(&[pod_container("d1", T0 + 5 * SEC, "falco-abcde")])
            .is_empty()
    );
    let findings = d.on_events(&[audit_delete(
        "a1",
        "pods",
        "falco",
        "falco-abcde",
        "mallory",
    )]);
    assert_eq!(rule_ids(&findings), ["monitoring-tamper/agent-deleted"]);
    assert_eq!(findings[0].severity, Severity::Medium);
    assert!(d.on_tick(T0 + 100 * SEC).is_empty());

    // A rollout: the DaemonSet controller deletes the pod; nothing at all.
    let mut d = detector("{}");
    assert!(
        d.on_events(&[pod_container("d1", T0 + 5 * SEC, "falco-abcde")])
            .is_empty()
    );
    let controller = "system:serviceaccount:kube-system:daemon-set-controller";
    assert!(
        d.on_events(&[audit_delete(
            "a1",
            "pods",
            "falco",
            "falco-abcde",
            controller
        )])
        .is_empty()
    );
    assert!(d.on_tick(T0 + 100 * SEC).is_empty());
}

#[test]
fn a_pod_container_stop_without_a_deletion_is_released_after_the_hold() {
    let mut d = detector("{}");
    assert!(
        d.on_events(&[pod_container("d1", T0 + 5 * SEC, "falco-abcde")])
            .is_empty()
    );
    assert!(d.on_tick(T0 + 19 * SEC).is_empty(), "held for 15 s");
    let findings = d.on_tick(T0 + 20 * SEC);
    assert_eq!(rule_ids(&findings), ["monitoring-tamper/agent-stopped"]);
    assert_eq!(evidence(&findings[0], "pod.name"), ["falco-abcde"]);
    assert!(
        findings[0]
            .entities
            .contains(&Entity::new(EntityKind::Pod, "falco/falco-abcde", ""))
    );
    assert!(d.on_tick(T0 + 100 * SEC).is_empty(), "released once");

    // At the end of a replay (the final tick: the input has ended) all are
    // released, however short they were held.
    let mut d = detector("{}");
    assert!(
        d.on_events(&[pod_container("d1", T0 + 5 * SEC, "falco-abcde")])
            .is_empty()
    );
    testing::set_input_ended(true);
    assert_eq!(d.on_tick(T0 + 5 * SEC).len(), 1);
    testing::set_input_ended(false);

    // Without a hold, at once.
    let mut d = detector(r#"{"pod_hold_secs": 0}"#);
    assert_eq!(
        d.on_events(&[pod_container("d1", T0, "falco-abcde")]).len(),
        1
    );
}

/// The final tick of a replay releases what is held, whatever the clock
/// says; an ordinary tick at the same time keeps it. The clock standing at
/// the latest event time no longer means the end (it does on every tick of
/// a replay, and the plugin no longer sees every event's time).
#[test]
fn held_findings_are_released_when_the_input_ends_and_only_then() {
    let mut d = detector(r#"{"pod_hold_secs": 3600}"#);
    assert!(
        d.on_events(&[pod_container("d1", T0 + 5 * SEC, "falco-abcde")])
            .is_empty()
    );
    // An ordinary tick at (and after) the latest event: still held.
    assert!(d.on_tick(T0 + 5 * SEC).is_empty(), "the input goes on");
    assert!(d.on_tick(T0 + 600 * SEC).is_empty(), "within the hour");
    // A deletion could still come and explain it: a later event of another
    // pod's container is not such an event.
    assert!(
        d.on_events(&[pod_container("d2", T0 + 700 * SEC, "falco-fghij")])
            .is_empty()
    );
    testing::set_input_ended(true);
    let findings = d.on_tick(T0 + 700 * SEC);
    testing::set_input_ended(false);
    assert_eq!(
        rule_ids(&findings),
        [
            "monitoring-tamper/agent-stopped",
            "monitoring-tamper/agent-stopped"
        ]
    );
    let pods: Vec<&str> = findings
        .iter()
        .flat_map(|f| evidence(f, "pod.name"))
        .collect();
    assert_eq!(pods, ["falco-abcde", "falco-fghij"]);
    assert!(d.on_tick(T0 + 800 * SEC).is_empty(), "released once");

    // The input ended with nothing held: nothing.
    let mut d = detector("{}");
    testing::set_input_ended(true);
    assert!(d.on_tick(T0).is_empty());
}

/// It reads only what its rules judge: the container actions of a stop,
/// pause or the gap marker, deletions through the API, and the audit
/// configuration's files.
#[test]
fn subscribes_to_what_its_rules_read() {
    let d = detector("{}");
    let set = d.subscriptions();
    let actions = set.container.as_ref().unwrap().actions.clone();
    // Every action subscribed to is one a rule judges: alone, on an agent's
    // container, it is reported (`other` is the gap marker's, tested apart).
    assert!(actions.contains(&ContainerAction::Other), "the gap marker");
    for &action in &actions {
        let event = match action {
            ContainerAction::Other => continue,
            ContainerAction::Kill => kill("e", T0, "SIGKILL"),
            _ => docker("e", T0, action, "falco", "falcosecurity/falco:0.37.1"),
        };
        assert!(!run("{}", &[event]).is_empty(), "{action:?}");
    }
    // Every action left out is one no rule judges.
    for action in [
        ContainerAction::Create,
        ContainerAction::Start,
        ContainerAction::Restart,
        ContainerAction::Unpause,
        ContainerAction::ExecCreate,
        ContainerAction::ExecStart,
        ContainerAction::ExecDie,
        ContainerAction::Rename,
        ContainerAction::Update,
        ContainerAction::Attach,
        ContainerAction::NetworkConnect,
        ContainerAction::NetworkDisconnect,
        ContainerAction::Running,
    ] {
        assert!(!actions.contains(&action));
        assert!(
            run(
                "{}",
                &[docker(
                    "e",
                    T0,
                    action,
                    "falco",
                    "falcosecurity/falco:0.37.1"
                )]
            )
            .is_empty(),
            "{action:?}"
        );
    }
    let k8s = set.kubernetes.as_ref().unwrap();
    assert_eq!(k8s.verbs, ["delete", "deletecollection"]);
    assert_eq!(
        k8s.resources,
        [
            "pods",
            "daemonsets",
            "deployments",
            "statefulsets",
            "replicasets",
            "namespaces"
        ]
    );
    assert_eq!(k8s.subresources, [""]);
    assert_eq!(k8s.stages, ["", "ResponseComplete"]);
    assert_eq!(
        k8s.pod_spec,
        PodSpecUse::WhenPresent,
        "a pod's images may name an agent"
    );
    // `/etc/kubernetes/audit/`'s prefix covers the three files beside it.
    assert_eq!(
        set.file.as_ref().unwrap().path_prefixes,
        ["/etc/kubernetes/audit"]
    );
    assert!(set.network.is_none());

    // The file prefixes follow the settings.
    let d = detector(
        r#"{"audit_config_paths": ["/srv/apiserver/audit-*.yaml", "/etc/k8s/policy.yaml"]}"#,
    );
    assert_eq!(
        d.subscriptions().file.unwrap().path_prefixes,
        ["/etc/k8s/policy.yaml", "/srv/apiserver/audit-"]
    );
}

#[test]
fn audit_configuration_changes() {
    let h1 = "a".repeat(64);
    let h2 = "b".repeat(64);
    let findings = run(
        "{}",
        &[
            file(
                "e1",
                "/etc/kubernetes/audit-policy.yaml",
                FileChange::Modified,
                Some(state(&h1, 300, T0 - SEC, 0o100_600)),
                Some(state(&h2, 120, T0, 0o100_600)),
            ),
            file(
                "e2",
                "/etc/kubernetes/audit/webhook.yaml",
                FileChange::Modified,
                Some(state(&h1, 300, T0 - SEC, 0o100_600)),
                Some(state(&h2, 300, T0 - SEC, 0o100_600)),
            ),
            file(
                "e3",
                "/etc/kubernetes/audit/new.yaml",
                FileChange::Created,
                None,
                Some(state(&h1, 1, T0, 0o100_600)),
            ),
            file(
                "e4",
                "/etc/kubernetes/audit-webhook.yaml",
                FileChange::Metadata,
                Some(state(&h1, 1, T0, 0o100_600)),
                Some(state(&h1, 1, T0, 0o100_644)),
            ),
            file(
                "e5",
                "/etc/kubernetes/audit-webhook.yaml",
                FileChange::Metadata,
                Some(state(&h1, 1, T0, 0o100_600)),
                Some(state(&h1, 1, T0, 0o100_666)),
            ),
            file(
                "e6",
                "/etc/kubernetes/audit-policy.yaml",
                FileChange::Deleted,
                Some(state(&h2, 1, T0, 0o100_600)),
                None,
            ),
        ],
    );
    let got: Vec<Severity> = findings.iter().map(|f| f.severity).collect();
    assert_eq!(
        got,
        [
            Severity::High,
            Severity::Critical,
            Severity::Medium,
            Severity::Low,
            Severity::High,
            Severity::High
        ]
    );
    assert!(
        findings
            .iter()
            .all(|f| f.rule_id == "monitoring-tamper/audit-config-changed")
    );
    assert_eq!(findings[0].techniques, ["T1562.008"]);
    assert_eq!(findings[1].techniques, ["T1562.008", "T1070.006"]);
    assert_eq!(evidence(&findings[0], "size.before"), ["300"]);
    assert_eq!(evidence(&findings[0], "size.after"), ["120"]);
    assert_eq!(
        evidence(&findings[1], "pattern"),
        ["/etc/kubernetes/audit/"]
    );
    assert_eq!(
        evidence(&findings[1], "inconsistency"),
        ["content hash changed; size and mtime unchanged"]
    );
    assert_eq!(evidence(&findings[4], "mode.after"), ["0666"]);

    // Runtime paths are runtime-tamper's; nothing here.
    assert!(
        run(
            "{}",
            &[file(
                "e7",
                "/etc/docker/daemon.json",
                FileChange::Modified,
                Some(state(&h1, 1, T0, 0o100_644)),
                Some(state(&h2, 2, T0, 0o100_644))
            )]
        )
        .is_empty()
    );
}

#[test]
fn settings_problems_are_all_reported_with_paths() {
    let mut detector = MonitoringTamper::default();
    let error = detector
        .configure(
            r#"{"agents": {"images": [""], "namespaces": ["ok", ""], "pods": []}, "audit_config_paths": ["relative"],
                "fold_window_secs": 100000, "disabled_rules": ["agent-killed"]}"#,
        )
        .unwrap_err();
    let paths: Vec<&str> = error.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["agents.pods"]);
    let error = detector
        .configure(
            r#"{"agents": {"images": [""], "namespaces": ["ok", ""]}, "audit_config_paths": ["relative"],
                "fold_window_secs": 100000, "pod_hold_secs": 3601, "disabled_rules": ["agent-killed"]}"#,
        )
        .unwrap_err();
    let paths: Vec<&str> = error.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "agents.images[0]",
            "agents.namespaces[1]",
            "audit_config_paths[0]",
            "fold_window_secs",
            "pod_hold_secs",
            "disabled_rules[0]"
        ]
    );
    assert!(error.problems[5].message.contains("docker-events-gap"));
    assert!(detector.configure("").is_ok());
    assert_eq!(detector.config(), &Config::default());
}

fn global_service(id: &str, mode: ServiceMode, source: &str, image: &str) -> ServiceEvent {
    ServiceEvent {
        id: id.into(),
        time: 1,
        node: "n1".into(),
        action: "create".into(),
        object_id: "svc1".into(),
        name: "node-tools".into(),
        service: Some(ServiceSpec {
            id: "svc1".into(),
            name: "node-tools".into(),
            version: 12,
            image: image.into(),
            mode,
            replicas: None,
            security: ContainerSecurity {
                mounts: vec![Mount {
                    source: source.into(),
                    destination: "/host".into(),
                    read_only: false,
                    kind: "bind".into(),
                }],
                ..ContainerSecurity::default()
            },
            ..ServiceSpec::default()
        }),
        ..ServiceEvent::default()
    }
}

#[test]
fn a_global_service_mounting_the_runtime_is_reported_once() {
    let mut d = testing::configured::<MonitoringTamper>("{}");
    let f = d.on_service_events(&[global_service(
        "s1",
        ServiceMode::Global,
        "/var/run/docker.sock",
        "alpine:3",
    )]);
    assert_eq!(
        rule_ids(&f),
        ["monitoring-tamper/global-service-runtime-mount"]
    );
    assert_eq!(evidence(&f[0], "service"), ["node-tools"]);
    assert_eq!(
        evidence(&f[0], "runtime-mounts"),
        ["/var/run/docker.sock:/host:rw"]
    );
    // The same mounts at the next version: nothing new.
    assert!(
        d.on_service_events(&[global_service(
            "s2",
            ServiceMode::Global,
            "/var/run/docker.sock",
            "alpine:3"
        )])
        .is_empty()
    );
    // /var/lib (above /var/lib/docker) counts too.
    assert_eq!(
        d.on_service_events(&[global_service(
            "s3",
            ServiceMode::Global,
            "/var/lib",
            "alpine:3"
        )])
        .len(),
        1
    );
}

#[test]
fn replicated_services_other_mounts_and_agents_are_not_reported() {
    let mut d = testing::configured::<MonitoringTamper>("{}");
    assert!(
        d.on_service_events(&[global_service(
            "s1",
            ServiceMode::Replicated,
            "/var/run/docker.sock",
            "alpine:3"
        )])
        .is_empty()
    );
    assert!(
        d.on_service_events(&[global_service(
            "s2",
            ServiceMode::Global,
            "/srv/data",
            "alpine:3"
        )])
        .is_empty()
    );
    assert!(
        d.on_service_events(&[global_service(
            "s3",
            ServiceMode::Global,
            "/var/run/docker.sock",
            "falcosecurity/falco:0.39"
        )])
        .is_empty()
    );
}
