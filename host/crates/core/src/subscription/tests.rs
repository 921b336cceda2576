use super::*;
use crate::model::{
    ContainerAction, ContainerEvent, ContainerFilter, Direction, FileEvent, KubernetesEvent,
    NetworkEvent, PodSpec,
};

fn event(body: EventBody) -> Event {
    Event {
        id: "e".into(),
        time: 1,
        node: String::new(),
        source: String::new(),
        body,
    }
}

fn k8s(verb: &str, resource: &str, sub: &str, stage: &str, pod: bool) -> Event {
    event(EventBody::Kubernetes(KubernetesEvent {
        verb: verb.into(),
        resource: resource.into(),
        subresource: sub.into(),
        stage: stage.into(),
        pod: pod.then(PodSpec::default),
        ..Default::default()
    }))
}

const ALL: [EventKind; 4] = EventKind::ALL;

fn problems(set: SubscriptionSet) -> Vec<String> {
    Subscription::new(&ALL, &ALL, set).unwrap_err().problems
}

#[test]
fn no_export_means_every_event_of_its_kinds() {
    let s = Subscription::everything(&[EventKind::Kubernetes]);
    assert_eq!(
        s.delivery(&k8s("get", "secrets", "", "", false)),
        Delivery::Whole
    );
    assert_eq!(
        s.delivery(&k8s("create", "pods", "", "", true)),
        Delivery::Whole
    );
    let file = event(EventBody::File(FileEvent::default()));
    assert_eq!(s.delivery(&file), Delivery::Skip);
    assert!(!s.declared());
    assert_eq!(s.describe(), ["kubernetes: every event"]);
}

#[test]
fn kubernetes_lists_are_anded_and_case_insensitive() {
    let set = SubscriptionSet {
        kubernetes: Some(KubernetesFilter {
            resources: vec!["Pods".into()],
            subresources: vec![String::new(), "ephemeralcontainers".into()],
            verbs: vec!["create".into(), "ADDED".into()],
            stages: vec![String::new(), "responsecomplete".into()],
            pod_spec: PodSpecUse::Required,
        }),
        ..Default::default()
    };
    let s = Subscription::new(&ALL, &ALL, set).unwrap();
    let whole = Delivery::Whole;
    assert_eq!(
        s.delivery(&k8s("create", "pods", "", "ResponseComplete", true)),
        whole
    );
    assert_eq!(s.delivery(&k8s("added", "pods", "", "", true)), whole);
    assert_eq!(
        s.delivery(&k8s("create", "pods", "ephemeralcontainers", "", true)),
        whole
    );
    // Each list must match.
    let skip = Delivery::Skip;
    assert_eq!(
        s.delivery(&k8s("create", "pods", "", "RequestReceived", true)),
        skip
    );
    assert_eq!(
        s.delivery(&k8s("delete", "pods", "", "ResponseComplete", true)),
        skip
    );
    assert_eq!(
        s.delivery(&k8s("create", "secrets", "", "ResponseComplete", true)),
        skip
    );
    assert_eq!(
        s.delivery(&k8s("create", "pods", "exec", "ResponseComplete", true)),
        skip
    );
    // Required: no pod spec, no event.
    assert_eq!(
        s.delivery(&k8s("create", "pods", "", "ResponseComplete", false)),
        skip
    );
    // Stored normalised, shown as such.
    assert_eq!(
        s.describe()[1],
        "kubernetes: resources pods; subresources (none), ephemeralcontainers; verbs create, added; \
         stages (none), ResponseComplete; only with a pod spec"
    );
}

#[test]
fn unused_pod_spec_is_left_out() {
    let set = SubscriptionSet {
        kubernetes: Some(KubernetesFilter {
            pod_spec: PodSpecUse::Unused,
            ..Default::default()
        }),
        ..Default::default()
    };
    let s = Subscription::new(&ALL, &ALL, set).unwrap();
    assert_eq!(
        s.delivery(&k8s("create", "pods", "", "", true)),
        Delivery::WithoutPod
    );
    assert_eq!(
        s.delivery(&k8s("create", "pods", "", "", false)),
        Delivery::Whole
    );
}

#[test]
fn container_network_and_file_filters() {
    let set = SubscriptionSet {
        container: Some(ContainerFilter {
            actions: vec![ContainerAction::Start],
        }),
        network: Some(NetworkFilter {
            directions: vec![Direction::Outbound],
            ports: vec![443],
        }),
        file: Some(FileFilter {
            path_prefixes: vec!["/etc/kubernetes/".into()],
        }),
        ..Default::default()
    };
    let s = Subscription::new(&ALL, &ALL, set).unwrap();
    let container = |action| {
        event(EventBody::Container(ContainerEvent {
            action,
            ..Default::default()
        }))
    };
    assert_eq!(
        s.delivery(&container(ContainerAction::Start)),
        Delivery::Whole
    );
    assert_eq!(s.delivery(&container(ContainerAction::Die)), Delivery::Skip);
    let net = |direction, local_port, remote_port| {
        event(EventBody::Network(NetworkEvent {
            direction,
            local_port,
            remote_port,
            ..Default::default()
        }))
    };
    assert_eq!(
        s.delivery(&net(Direction::Outbound, 50000, 443)),
        Delivery::Whole
    );
    assert_eq!(
        s.delivery(&net(Direction::Outbound, 443, 50000)),
        Delivery::Whole
    );
    assert_eq!(
        s.delivery(&net(Direction::Inbound, 50000, 443)),
        Delivery::Skip
    );
    assert_eq!(
        s.delivery(&net(Direction::Outbound, 50000, 80)),
        Delivery::Skip
    );
    let file = |path: &str| {
        event(EventBody::File(FileEvent {
            path: path.into(),
            ..Default::default()
        }))
    };
    assert_eq!(
        s.delivery(&file("/etc/kubernetes/manifests/a.yaml")),
        Delivery::Whole
    );
    assert_eq!(s.delivery(&file("/etc/passwd")), Delivery::Skip);
    assert_eq!(
        s.describe(),
        [
            "container: actions start",
            "kubernetes: every event",
            "network: directions outbound; ports 443",
            "file: path prefixes /etc/kubernetes/"
        ]
    );
}

#[test]
fn unknown_names_are_refused_naming_them() {
    let got = problems(SubscriptionSet {
        kubernetes: Some(KubernetesFilter {
            resources: vec![
                "pods/exec".into(),
                "pod".into(),
                "Bad Name".into(),
                "widgets".into(),
            ],
            subresources: vec!["exec".into(), "a/b".into()],
            verbs: vec!["crate".into(), "create".into()],
            stages: vec!["Done".into()],
            pod_spec: PodSpecUse::WhenPresent,
        }),
        ..Default::default()
    });
    assert_eq!(got.len(), 6, "{got:#?}");
    assert!(got[0].starts_with("kubernetes.resources[0]: \"pods/exec\" names a subresource"));
    assert!(
        got[1].contains("kubernetes.resources[1]: unknown resource \"pod\""),
        "{got:?}"
    );
    assert!(got[1].contains("(pods)"));
    assert!(got[2].starts_with("kubernetes.resources[2]: \"bad name\" is not"));
    assert!(got[3].starts_with("kubernetes.subresources[1]: \"a/b\""));
    assert!(got[4].starts_with("kubernetes.verbs[0]: unknown verb \"crate\""));
    assert!(got[5].starts_with("kubernetes.stages[0]: unknown stage \"Done\""));
}

#[test]
fn bad_ports_paths_and_sizes_are_refused() {
    let got = problems(SubscriptionSet {
        network: Some(NetworkFilter {
            directions: vec![],
            ports: vec![80, 0],
        }),
        file: Some(FileFilter {
            path_prefixes: vec!["etc/".into(), "/var/../etc".into(), "/ok".into()],
        }),
        container: Some(ContainerFilter {
            actions: vec![ContainerAction::Start; MAX_ENTRIES + 1],
        }),
        ..Default::default()
    });
    assert_eq!(got.len(), 4, "{got:#?}");
    assert!(got[0].starts_with(&format!("container.actions: {} entries", MAX_ENTRIES + 1)));
    assert!(got[1].starts_with("network.ports[1]: port 0"));
    assert!(got[2].starts_with("file.path-prefixes[0]: \"etc/\" is not an absolute path"));
    assert!(got[3].starts_with("file.path-prefixes[1]"));
}

#[test]
fn a_filter_cannot_widen_beyond_the_kinds() {
    let set = SubscriptionSet {
        file: Some(FileFilter::default()),
        network: Some(NetworkFilter::default()),
        ..Default::default()
    };
    let err =
        Subscription::new(&[EventKind::Network], &[EventKind::Network], set.clone()).unwrap_err();
    assert_eq!(
        err.problems,
        ["file: a filter for file events, a kind it does not subscribe to"]
    );
    // A kind it subscribes to but the policy withholds: the filter is kept,
    // the kind still not delivered.
    let s = Subscription::new(
        &[EventKind::Network, EventKind::File],
        &[EventKind::Network],
        set,
    )
    .unwrap();
    let file = event(EventBody::File(FileEvent::default()));
    assert_eq!(s.delivery(&file), Delivery::Skip);
    assert_eq!(s.kinds(), [EventKind::Network]);
}

#[test]
fn control_characters_in_refused_names_are_escaped() {
    let got = problems(SubscriptionSet {
        kubernetes: Some(KubernetesFilter {
            verbs: vec!["get\n2026 INFO forged".into()],
            ..Default::default()
        }),
        ..Default::default()
    });
    assert!(!got[0].contains('\n'), "{got:?}");
}

fn swarm(object: crate::model::SwarmObject, action: &str) -> ServiceEvent {
    ServiceEvent {
        object,
        action: action.into(),
        ..Default::default()
    }
}

#[test]
fn service_filters_need_container_and_known_actions() {
    use crate::model::SwarmObject;
    let everything = Subscription::everything(&[EventKind::Container]);
    assert!(
        !everything.wants_service(&swarm(SwarmObject::Service, "create")),
        "a plugin without the `services` export gets no Swarm events"
    );
    let filter = ServiceFilter {
        objects: vec![SwarmObject::Service],
        actions: vec!["CREATE".into(), "update".into()],
    };
    let s = everything
        .clone()
        .with_services(&[EventKind::Container], filter.clone())
        .unwrap();
    assert!(s.wants_service(&swarm(SwarmObject::Service, "create")));
    assert!(s.wants_service(&swarm(SwarmObject::Service, "update")));
    assert!(!s.wants_service(&swarm(SwarmObject::Service, "remove")));
    assert!(!s.wants_service(&swarm(SwarmObject::Node, "update")));
    assert_eq!(
        s.describe(),
        [
            "container: every event",
            "services: objects service; actions create, update"
        ]
    );

    // Not subscribed to container, and an unknown action: both named.
    let bad = ServiceFilter {
        objects: vec![],
        actions: vec!["scale".into()],
    };
    let err = Subscription::everything(&[EventKind::File])
        .with_services(&[EventKind::File], bad)
        .unwrap_err();
    assert_eq!(err.problems.len(), 2, "{err}");
    assert!(err.problems[0].contains("container"), "{err}");
    assert!(
        err.problems[1].contains("services.actions[0]: unknown action \"scale\""),
        "{err}"
    );

    // Subscribed, but the policy withholds container events: never called.
    let withheld = Subscription::everything(&[EventKind::File])
        .with_services(&[EventKind::Container, EventKind::File], filter)
        .unwrap();
    assert!(withheld.services().is_none());
    assert!(!withheld.wants_service(&swarm(SwarmObject::Service, "create")));
}

fn exec(binary: &str, container: bool) -> ProcessEvent {
    ProcessEvent {
        action: crate::model::PROCESS_EXEC.into(),
        binary: binary.into(),
        container: container.then(|| crate::model::ContainerRef {
            id: "c1".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn process_filters_need_container_events_and_match_file_names() {
    let everything = Subscription::everything(&[EventKind::Container]);
    assert!(everything.processes().is_none());
    assert!(!everything.wants_process(&exec("/bin/sh", true)));

    let filter = ProcessFilter {
        binaries: vec!["sh".into(), "curl".into()],
        containers_only: true,
        writes: false,
    };
    let s = everything
        .clone()
        .with_processes(&[EventKind::Container], filter.clone())
        .unwrap();
    assert!(s.wants_process(&exec("/bin/sh", true)));
    assert!(s.wants_process(&exec("/usr/bin/curl", true)));
    assert!(!s.wants_process(&exec("/bin/bash", true)), "exact names");
    assert!(!s.wants_process(&exec("/bin/sh", false)), "containers only");
    // A multi-call binary goes by argv[0] (its applets through
    // /proc/self/exe, a symlink), or, called as itself, by argv[1].
    let with_args = |binary: &str, args: &[&str]| ProcessEvent {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        ..exec(binary, true)
    };
    assert!(s.wants_process(&with_args("/proc/self/exe", &["sh", "-c", "id"])));
    assert!(s.wants_process(&with_args("/bin/busybox", &["busybox", "sh", "-c", "id"])));
    assert!(s.wants_process(&with_args("/bin/busybox", &["/bin/busybox", "/bin/sh"])));
    assert!(s.wants_process(&with_args("/bin/busybox", &["curl", "-s", "x"])));
    assert!(
        !s.wants_process(&with_args("/bin/busybox", &["busybox", "ls", "sh"])),
        "only argv[1] names the applet"
    );
    assert!(
        !s.wants_process(&with_args("/usr/bin/env", &["env", "sh"])),
        "argv[1] only after a multi-call binary's own name"
    );
    assert!(!s.wants_process(&with_args("/proc/self/exe", &[])));
    assert_eq!(
        s.describe(),
        [
            "container: every event",
            "processes: binaries sh, curl; containers only"
        ]
    );
    let all = everything
        .clone()
        .with_processes(&[EventKind::Container], ProcessFilter::default())
        .unwrap();
    assert!(all.wants_process(&exec("/opt/x", false)));
    assert_eq!(all.describe()[1], "processes: every event");

    // Not subscribed to container, and malformed names: each named.
    let bad = ProcessFilter {
        binaries: vec!["/bin/sh".into(), String::new(), "ok".into()],
        containers_only: false,
        writes: false,
    };
    let err = Subscription::everything(&[EventKind::File])
        .with_processes(&[EventKind::File], bad)
        .unwrap_err();
    assert_eq!(err.problems.len(), 3, "{err}");
    assert!(err.problems[0].contains("container"), "{err}");
    assert!(
        err.problems[1].starts_with("processes.binaries[0]: \"/bin/sh\""),
        "{err}"
    );
    assert!(
        err.problems[2].starts_with("processes.binaries[1]"),
        "{err}"
    );

    // Subscribed, but the policy withholds container events: never called.
    let withheld = Subscription::everything(&[EventKind::File])
        .with_processes(&[EventKind::Container, EventKind::File], filter)
        .unwrap();
    assert!(withheld.processes().is_none());
    assert!(!withheld.wants_process(&exec("/bin/sh", true)));
}

fn write(binary: &str, container: bool) -> ProcessEvent {
    ProcessEvent {
        action: crate::model::PROCESS_WRITE.into(),
        path: Some("/usr/bin/runc".into()),
        ..exec(binary, container)
    }
}

#[test]
fn writes_reach_only_plugins_that_ask_for_them_whatever_the_binary() {
    let exec_only = Subscription::everything(&[EventKind::Container])
        .with_processes(&[EventKind::Container], ProcessFilter::default())
        .unwrap();
    assert!(exec_only.wants_process(&exec("/bin/dd", true)));
    assert!(
        !exec_only.wants_process(&write("/bin/dd", true)),
        "not asked for"
    );

    let filter = ProcessFilter {
        binaries: vec!["sh".into()],
        containers_only: true,
        writes: true,
    };
    let s = Subscription::everything(&[EventKind::Container])
        .with_processes(&[EventKind::Container], filter)
        .unwrap();
    assert!(
        s.wants_process(&write("/bin/dd", true)),
        "binaries: execs only"
    );
    assert!(
        !s.wants_process(&write("/bin/dd", false)),
        "containers only"
    );
    assert!(!s.wants_process(&exec("/bin/dd", true)));
    assert_eq!(
        s.describe()[1],
        "processes: binaries sh; containers only; writes to watched files"
    );
}
