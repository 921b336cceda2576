//! Native tests: a positive and a negative fixture for every rule, the audit
//! stage dedup, the allowlists and the settings.

mod fixtures;

use fixtures::*;
use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::testing::{self, evidence, rule_ids};

use super::*;

fn run(settings: &str, events: &[Event]) -> Vec<Finding> {
    testing::configured::<ContainerEscape>(settings).on_events(events)
}

#[test]
fn describes_itself() {
    let info = ContainerEscape::describe();
    assert_eq!(info.name, "container-escape");
    assert_eq!(
        info.subscribes,
        [EventKind::Container, EventKind::Kubernetes]
    );
    assert!(
        info.settings
            .iter()
            .any(|s| s.name == "sensitive_paths" && s.default_value.contains("\"/etc\""))
    );
}

#[test]
fn a_harmless_container_gives_nothing() {
    assert!(
        run(
            "{}",
            &[docker(
                "e1",
                ContainerAction::Start,
                ContainerSecurity::default()
            )]
        )
        .is_empty()
    );
}

#[test]
fn host_network() {
    let security = ContainerSecurity {
        network_mode: "host".into(),
        ..Default::default()
    };
    let findings = run("{}", &[docker("e1", ContainerAction::Start, security)]);
    assert_eq!(rule_ids(&findings), ["container-escape/host-network"]);
    let finding = &findings[0];
    assert_eq!(finding.severity, Severity::High);
    assert_eq!(finding.techniques, ["T1610", "T1596.004"]);
    assert_eq!(finding.event_ids, ["e1"]);
    assert_eq!(evidence(finding, "network-mode"), ["host"]);
    assert_eq!(evidence(finding, "container"), ["web"]);
    assert_eq!(
        finding.entities[0],
        Entity::new(EntityKind::Container, "c0ffee", "web")
    );
    assert_eq!(
        finding.entities[1],
        Entity::new(EntityKind::Image, "nginx:1.25", "")
    );

    let bridge = ContainerSecurity {
        network_mode: "bridge".into(),
        ..Default::default()
    };
    assert!(run("{}", &[docker("e2", ContainerAction::Start, bridge)]).is_empty());
}

#[test]
fn a_container_is_reported_once_across_create_start_and_inventory() {
    let security = ContainerSecurity {
        network_mode: "host".into(),
        ..Default::default()
    };
    let mut detector = ContainerEscape::default();
    detector.configure("{}").unwrap();
    let first = detector.on_events(&[
        docker("e1", ContainerAction::Create, security.clone()),
        docker("e2", ContainerAction::Start, security.clone()),
    ]);
    assert_eq!(rule_ids(&first), ["container-escape/host-network"]);
    assert_eq!(first[0].event_ids, ["e1"]);
    let again = detector.on_events(&[
        docker("e3", ContainerAction::Running, security.clone()),
        docker("e4", ContainerAction::Start, security.clone()),
    ]);
    assert!(again.is_empty(), "reported twice: {again:?}");
    // Removed, then a new container reuses the id (a test harness does):
    // it is examined afresh.
    let mut destroy = docker("e5", ContainerAction::Destroy, security.clone());
    if let EventBody::Container(c) = &mut destroy.body {
        c.security = None;
    }
    let after = detector.on_events(&[destroy, docker("e6", ContainerAction::Create, security)]);
    assert_eq!(rule_ids(&after), ["container-escape/host-network"]);
}

#[test]
fn host_pid_and_ipc() {
    let security = ContainerSecurity {
        pid_mode: "host".into(),
        ipc_mode: "host".into(),
        ..Default::default()
    };
    let findings = run("{}", &[docker("e1", ContainerAction::Create, security)]);
    assert_eq!(
        rule_ids(&findings),
        ["container-escape/host-pid", "container-escape/host-ipc"]
    );
    assert!(
        findings
            .iter()
            .all(|f| f.techniques == ["T1611"] && f.severity == Severity::High)
    );

    let private = ContainerSecurity {
        pid_mode: "container:abc".into(),
        ipc_mode: "shareable".into(),
        ..Default::default()
    };
    assert!(run("{}", &[docker("e2", ContainerAction::Create, private)]).is_empty());
}

#[test]
fn privileged() {
    let security = ContainerSecurity {
        privileged: true,
        ..Default::default()
    };
    let findings = run("{}", &[docker("e1", ContainerAction::Running, security)]);
    assert_eq!(rule_ids(&findings), ["container-escape/privileged"]);
    assert_eq!(findings[0].severity, Severity::Critical);
    assert_eq!(findings[0].techniques, ["T1611", "T1610"]);
}

#[test]
fn dangerous_capabilities_are_all_listed_in_one_finding() {
    let security = ContainerSecurity {
        cap_add: vec![
            "CAP_SYS_ADMIN".into(),
            "NET_BIND_SERVICE".into(),
            "sys_ptrace".into(),
        ],
        ..Default::default()
    };
    let findings = run("{}", &[docker("e1", ContainerAction::Start, security)]);
    assert_eq!(
        rule_ids(&findings),
        ["container-escape/dangerous-capability"]
    );
    assert_eq!(
        evidence(&findings[0], "capability"),
        ["SYS_ADMIN", "SYS_PTRACE"]
    );

    let benign = ContainerSecurity {
        cap_add: vec!["NET_BIND_SERVICE".into(), "CHOWN".into()],
        ..Default::default()
    };
    assert!(run("{}", &[docker("e2", ContainerAction::Start, benign)]).is_empty());
}

#[test]
fn all_capabilities_always_count_even_with_an_overridden_list() {
    let security = ContainerSecurity {
        cap_add: vec!["ALL".into()],
        ..Default::default()
    };
    let findings = run(
        r#"{"dangerous_capabilities": ["NET_RAW"]}"#,
        &[docker("e1", ContainerAction::Start, security)],
    );
    assert_eq!(evidence(&findings[0], "capability"), ["ALL"]);

    let sys_admin = ContainerSecurity {
        cap_add: vec!["SYS_ADMIN".into()],
        ..Default::default()
    };
    let findings = run(
        r#"{"dangerous_capabilities": ["NET_RAW"]}"#,
        &[docker("e2", ContainerAction::Start, sys_admin)],
    );
    assert!(findings.is_empty());
}

#[test]
fn sensitive_mounts() {
    let security = ContainerSecurity {
        mounts: vec![
            bind("/etc", "/host/etc"),
            bind("/home/me/src", "/src"),
            Mount {
                kind: "volume".into(),
                ..bind("/var/lib/docker/volumes/x", "/data")
            },
        ],
        ..Default::default()
    };
    let findings = run("{}", &[docker("e1", ContainerAction::Start, security)]);
    assert_eq!(rule_ids(&findings), ["container-escape/sensitive-mount"]);
    assert_eq!(findings[0].severity, Severity::High);
    assert_eq!(evidence(&findings[0], "mount.source"), ["/etc"]);
    assert_eq!(evidence(&findings[0], "mount.destination"), ["/host/etc"]);
    assert_eq!(findings[0].techniques, ["T1611"]);
}

#[test]
fn sensitive_mounts_match_equal_under_and_above_but_root_only_exactly() {
    let case = |source: &str| {
        let security = ContainerSecurity {
            mounts: vec![bind(source, "/m")],
            ..Default::default()
        };
        run("{}", &[docker("e", ContainerAction::Start, security)])
            .first()
            .map(|f| f.severity)
    };
    assert_eq!(case("/etc/ssl/"), Some(Severity::High));
    assert_eq!(case("/var"), Some(Severity::Critical)); // contains /var/run/docker.sock
    assert_eq!(case("/run"), Some(Severity::Critical));
    assert_eq!(case("/"), Some(Severity::Critical));
    assert_eq!(case("/tmp/../etc"), Some(Severity::High));
    assert_eq!(case("/var/run/docker.sock"), Some(Severity::Critical));
    assert_eq!(
        case("/run/containerd/containerd.sock"),
        Some(Severity::Critical)
    );
    assert_eq!(case("/var/log"), None);
    assert_eq!(case("/etcetera"), None);
    assert_eq!(case("/home/me"), None);
}

#[test]
fn runtime_socket_hostpath_in_a_pod_is_critical() {
    let security = ContainerSecurity {
        mounts: vec![Mount {
            kind: "host-path".into(),
            ..bind("/var/run/docker.sock", "/var/run/docker.sock")
        }],
        ..Default::default()
    };
    let findings = run(
        "{}",
        &[audit(
            "e1",
            "create",
            "ResponseComplete",
            vec![container("ci", security)],
        )],
    );
    assert_eq!(rule_ids(&findings), ["container-escape/sensitive-mount"]);
    assert_eq!(findings[0].severity, Severity::Critical);
}

#[test]
fn only_configuration_actions_are_inspected() {
    let security = ContainerSecurity {
        privileged: true,
        ..Default::default()
    };
    for action in [
        ContainerAction::Die,
        ContainerAction::Destroy,
        ContainerAction::ExecStart,
        ContainerAction::Stop,
    ] {
        assert!(
            run("{}", &[docker("e", action, security.clone())]).is_empty(),
            "{action}"
        );
    }
    let mut no_security = docker("e", ContainerAction::Start, security);
    if let EventBody::Container(container) = &mut no_security.body {
        container.security = None;
    }
    assert!(run("{}", &[no_security]).is_empty());
}

#[test]
fn a_pod_gives_one_finding_per_rule_listing_every_container() {
    let host = ContainerSecurity {
        network_mode: "host".into(),
        ..Default::default()
    };
    let privileged = ContainerSecurity {
        privileged: true,
        ..host.clone()
    };
    let mut init = container("setup", privileged.clone());
    init.role = ContainerRole::Init;
    let event = audit(
        "e1",
        "create",
        "ResponseComplete",
        vec![
            container("app", privileged),
            init,
            container("sidecar", host),
        ],
    );
    let findings = run("{}", &[event]);
    assert_eq!(
        rule_ids(&findings),
        [
            "container-escape/privileged",
            "container-escape/host-network"
        ]
    );
    assert_eq!(evidence(&findings[0], "container"), ["app", "setup"]);
    assert_eq!(evidence(&findings[0], "container.role"), ["init"]);
    assert_eq!(
        evidence(&findings[1], "container"),
        ["app", "setup", "sidecar"]
    );
    assert_eq!(evidence(&findings[1], "user"), ["kubernetes-admin"]);
    assert_eq!(evidence(&findings[1], "namespace"), ["default"]);
    assert_eq!(
        findings[1].entities[0],
        Entity::new(EntityKind::Pod, "default/web", "")
    );
    assert_eq!(
        findings[1].entities[1],
        Entity::new(EntityKind::Image, "nginx:1.25", "")
    );
}

#[test]
fn an_audit_request_gives_one_finding_across_its_stages() {
    let security = ContainerSecurity {
        privileged: true,
        ..Default::default()
    };
    let stages = [
        "RequestReceived",
        "ResponseStarted",
        "ResponseComplete",
        "Panic",
    ]
    .map(|stage| {
        audit(
            stage,
            "create",
            stage,
            vec![container("app", security.clone())],
        )
    });
    let findings = run("{}", &stages);
    assert_eq!(rule_ids(&findings), ["container-escape/privileged"]);
    assert_eq!(findings[0].event_ids, ["ResponseComplete"]);
}

#[test]
fn refused_and_read_only_requests_are_ignored() {
    let security = ContainerSecurity {
        privileged: true,
        ..Default::default()
    };
    let mut refused = audit(
        "e1",
        "create",
        "ResponseComplete",
        vec![container("app", security.clone())],
    );
    let mut status = audit(
        "e2",
        "patch",
        "ResponseComplete",
        vec![container("app", security.clone())],
    );
    if let EventBody::Kubernetes(request) = &mut refused.body {
        request.response_code = Some(403);
    }
    if let EventBody::Kubernetes(request) = &mut status.body {
        request.subresource = "status".into();
    }
    let get = audit(
        "e3",
        "get",
        "ResponseComplete",
        vec![container("app", security.clone())],
    );
    let deleted = audit("e4", "deleted", "", vec![container("app", security)]);
    assert!(run("{}", &[refused, status, get, deleted]).is_empty());
}

#[test]
fn watch_events_and_ephemeral_containers_are_inspected() {
    let security = ContainerSecurity {
        pid_mode: "host".into(),
        ..Default::default()
    };
    let mut debug = container("debugger", security);
    debug.role = ContainerRole::Ephemeral;
    let mut event = audit("e1", "patch", "ResponseComplete", vec![debug.clone()]);
    if let EventBody::Kubernetes(request) = &mut event.body {
        request.subresource = "ephemeralcontainers".into();
    }
    let watched = audit("e2", "modified", "", vec![debug]);
    let findings = run("{}", &[event, watched]);
    assert_eq!(
        rule_ids(&findings),
        ["container-escape/host-pid", "container-escape/host-pid"]
    );
    assert_eq!(evidence(&findings[0], "container.role"), ["ephemeral"]);
}

#[test]
fn an_unnamed_pod_is_identified_by_its_owner() {
    let security = ContainerSecurity {
        privileged: true,
        ..Default::default()
    };
    let mut event = audit("e1", "create", "", vec![container("app", security)]);
    if let EventBody::Kubernetes(request) = &mut event.body {
        request.name = String::new();
        request.owner = Some(OwnerRef {
            kind: "ReplicaSet".into(),
            name: "web-7d9f".into(),
        });
    }
    let findings = run("{}", &[event]);
    assert_eq!(findings[0].entities[0].id, "default/web-7d9f");
    assert_eq!(evidence(&findings[0], "owner"), ["ReplicaSet/web-7d9f"]);
}

#[test]
fn allowlists() {
    let security = ContainerSecurity {
        network_mode: "host".into(),
        ..Default::default()
    };
    let settings = r#"{"allowlist": {
        "images": ["registry.k8s.io/kube-proxy", "quay.io/calico/*", "nginx:1.25"],
        "namespaces": ["kube-system"],
        "containers": ["node-exporter"]
    }}"#;
    // nginx:1.25 (the fixtures' image) is allowlisted; other tags are not.
    assert!(
        run(
            settings,
            &[docker("e1", ContainerAction::Start, security.clone())]
        )
        .is_empty()
    );
    let mut other_tag = docker("e2", ContainerAction::Start, security.clone());
    let mut named = docker("e3", ContainerAction::Start, security.clone());
    let mut labelled = docker("e4", ContainerAction::Start, security.clone());
    for (event, image, name) in [
        (&mut other_tag, "docker.io/library/nginx:1.26", "web"),
        (&mut named, "prom/node-exporter", "node-exporter"),
        (&mut labelled, "busybox", "k8s_x"),
    ] {
        if let EventBody::Container(container) = &mut event.body {
            container.image = image.into();
            container.name = name.into();
        }
    }
    if let EventBody::Container(container) = &mut labelled.body {
        container
            .labels
            .push(KeyValue::new("io.kubernetes.pod.namespace", "kube-system"));
    }
    assert_eq!(
        rule_ids(&run(settings, &[other_tag, named, labelled])),
        ["container-escape/host-network"]
    );

    let mut proxy = container("kube-proxy", security.clone());
    proxy.image = "registry.k8s.io/kube-proxy:v1.29.0".into();
    let mut calico = container("calico-node", security.clone());
    calico.image = "quay.io/calico/node:v3.27".into();
    let mut lookalike = container("evil", security.clone());
    lookalike.image = "registry.k8s.io/kube-proxy-evil:v1".into();
    let findings = run(
        settings,
        &[audit("e5", "create", "", vec![proxy, calico, lookalike])],
    );
    assert_eq!(evidence(&findings[0], "container"), ["evil"]);

    let mut system = audit("e6", "create", "", vec![container("app", security)]);
    if let EventBody::Kubernetes(request) = &mut system.body {
        request.namespace = "kube-system".into();
    }
    assert!(run(settings, &[system]).is_empty());
}

#[test]
fn disabled_rules_and_overridden_paths() {
    let security = ContainerSecurity {
        privileged: true,
        network_mode: "host".into(),
        mounts: vec![bind("/etc", "/etc"), bind("/srv/secrets", "/s")],
        ..Default::default()
    };
    let settings = r#"{"disabled_rules": ["container-escape/privileged", "host-network"], "sensitive_paths": ["/srv/"]}"#;
    let findings = run(settings, &[docker("e1", ContainerAction::Start, security)]);
    assert_eq!(rule_ids(&findings), ["container-escape/sensitive-mount"]);
    assert_eq!(evidence(&findings[0], "mount.source"), ["/srv/secrets"]);
}

#[test]
fn settings_problems_are_all_reported_with_paths() {
    let mut detector = ContainerEscape::default();
    let error = detector
        .configure(
            r#"{"allowlist": {"images": [""], "pods": []}, "sensitive_paths": ["etc", "/ok"],
                "dangerous_capabilities": ["SYS ADMIN"], "disabled_rules": ["nope"]}"#,
        )
        .unwrap_err();
    let paths: Vec<&str> = error.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["allowlist.pods"]);

    let error = detector
        .configure(
            r#"{"allowlist": {"images": [""]}, "sensitive_paths": ["etc", "/ok"],
                "dangerous_capabilities": ["SYS ADMIN"], "disabled_rules": ["nope"]}"#,
        )
        .unwrap_err();
    let paths: Vec<&str> = error.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "allowlist.images[0]",
            "dangerous_capabilities[0]",
            "sensitive_paths[0]",
            "disabled_rules[0]"
        ]
    );
    assert!(
        error.problems[3].message.contains("host-network"),
        "{error:?}"
    );

    assert!(detector.configure("").is_ok());
    assert_eq!(detector.config(), &Config::default());
}

#[test]
fn log_driver_none_is_reported_for_docker_only() {
    let security = ContainerSecurity {
        log_driver: "none".into(),
        ..Default::default()
    };
    let findings = run(
        "{}",
        &[docker("e1", ContainerAction::Start, security.clone())],
    );
    assert_eq!(rule_ids(&findings), ["container-escape/log-driver-none"]);
    assert_eq!(findings[0].severity, Severity::Medium);
    assert_eq!(findings[0].techniques, ["T1562.006"]);
    assert_eq!(evidence(&findings[0], "log-driver"), ["none"]);

    // A pod has no log driver of its own, whatever a normaliser copies in.
    let pod = audit("e2", "create", "", vec![container("app", security)]);
    assert!(run("{}", &[pod]).is_empty());
    for driver in ["json-file", "journald", ""] {
        let logged = ContainerSecurity {
            log_driver: driver.into(),
            ..Default::default()
        };
        assert!(run("{}", &[docker("e3", ContainerAction::Start, logged)]).is_empty());
    }
}

#[test]
fn seccomp_and_apparmor_unconfined() {
    let security = ContainerSecurity {
        seccomp_profile: "Unconfined".into(),
        apparmor_profile: "unconfined".into(),
        ..Default::default()
    };
    let findings = run(
        "{}",
        &[docker("e1", ContainerAction::Create, security.clone())],
    );
    assert_eq!(
        rule_ids(&findings),
        [
            "container-escape/seccomp-unconfined",
            "container-escape/apparmor-unconfined"
        ]
    );
    assert!(
        findings
            .iter()
            .all(|f| f.severity == Severity::High && f.techniques == ["T1611", "T1562.001"])
    );
    assert_eq!(evidence(&findings[0], "seccomp-profile"), ["unconfined"]);
    assert_eq!(evidence(&findings[1], "apparmor-profile"), ["unconfined"]);

    let pod = run(
        "{}",
        &[audit("e2", "create", "", vec![container("app", security)])],
    );
    assert_eq!(rule_ids(&pod), rule_ids(&findings));

    let confined = ContainerSecurity {
        seccomp_profile: "runtime/default".into(),
        apparmor_profile: "docker-default".into(),
        ..Default::default()
    };
    let profile_named_unconfined = ContainerSecurity {
        seccomp_profile: "localhost/unconfined".into(),
        apparmor_profile: String::new(),
        ..Default::default()
    };
    assert!(
        run(
            "{}",
            &[
                docker("e3", ContainerAction::Start, confined),
                docker("e4", ContainerAction::Start, profile_named_unconfined)
            ]
        )
        .is_empty()
    );
}

#[test]
fn unconfined_profiles_of_a_privileged_container_are_evidence_of_privileged() {
    // Docker reports every privileged container as AppArmor-unconfined.
    let security = ContainerSecurity {
        privileged: true,
        seccomp_profile: "unconfined".into(),
        apparmor_profile: "unconfined".into(),
        ..Default::default()
    };
    let findings = run(
        "{}",
        &[docker("e1", ContainerAction::Start, security.clone())],
    );
    assert_eq!(rule_ids(&findings), ["container-escape/privileged"]);
    assert_eq!(evidence(&findings[0], "privileged"), ["true"]);
    assert_eq!(evidence(&findings[0], "seccomp-profile"), ["unconfined"]);
    assert_eq!(evidence(&findings[0], "apparmor-profile"), ["unconfined"]);

    // Turning `privileged` off does not bring them back as findings of their own.
    let disabled = r#"{"disabled_rules": ["privileged"]}"#;
    assert!(run(disabled, &[docker("e2", ContainerAction::Start, security)]).is_empty());
}

#[test]
fn host_cgroupns_is_reported_with_privilege_by_default() {
    let cgroupns = |cap_add: &[&str], privileged: bool| ContainerSecurity {
        cgroupns_mode: "host".into(),
        cap_add: cap_add.iter().map(|c| (*c).to_owned()).collect(),
        privileged,
        ..Default::default()
    };
    // The cgroup v1 default for every container: not reported.
    assert!(
        run(
            "{}",
            &[docker("e1", ContainerAction::Start, cgroupns(&[], false))]
        )
        .is_empty()
    );
    let findings = run(
        r#"{"disabled_rules": ["dangerous-capability"]}"#,
        &[docker(
            "e2",
            ContainerAction::Start,
            cgroupns(&["cap_sys_admin"], false),
        )],
    );
    assert_eq!(rule_ids(&findings), ["container-escape/host-cgroupns"]);
    assert_eq!(findings[0].severity, Severity::Medium);
    assert_eq!(findings[0].techniques, ["T1611"]);
    assert_eq!(evidence(&findings[0], "cgroupns-mode"), ["host"]);
    assert_eq!(evidence(&findings[0], "capability"), ["SYS_ADMIN"]);

    let findings = run(
        "{}",
        &[docker("e3", ContainerAction::Start, cgroupns(&[], true))],
    );
    assert_eq!(
        rule_ids(&findings),
        [
            "container-escape/privileged",
            "container-escape/host-cgroupns"
        ]
    );
    assert_eq!(evidence(&findings[1], "privileged"), ["true"]);

    // Other capabilities do not let it mount cgroupfs.
    let ptrace = run(
        "{}",
        &[docker(
            "e4",
            ContainerAction::Start,
            cgroupns(&["SYS_PTRACE"], false),
        )],
    );
    assert_eq!(rule_ids(&ptrace), ["container-escape/dangerous-capability"]);
    let private = ContainerSecurity {
        cgroupns_mode: "private".into(),
        privileged: true,
        ..Default::default()
    };
    assert_eq!(
        rule_ids(&run("{}", &[docker("e5", ContainerAction::Start, private)])),
        ["container-escape/privileged"]
    );
}

#[test]
fn host_cgroupns_always() {
    let security = ContainerSecurity {
        cgroupns_mode: "HOST".into(),
        ..Default::default()
    };
    let findings = run(
        r#"{"host_cgroupns": "always"}"#,
        &[docker("e1", ContainerAction::Start, security.clone())],
    );
    assert_eq!(rule_ids(&findings), ["container-escape/host-cgroupns"]);
    assert_eq!(evidence(&findings[0], "cgroupns-mode"), ["host"]);
    assert!(
        run(
            r#"{"host_cgroupns": "with-privilege"}"#,
            &[docker("e2", ContainerAction::Start, security)]
        )
        .is_empty()
    );
}

#[test]
fn host_devices_are_listed_in_one_finding() {
    let device = |devices: &[&str]| ContainerSecurity {
        devices: devices.iter().map(|d| (*d).to_owned()).collect(),
        ..Default::default()
    };
    let findings = run(
        "{}",
        &[docker(
            "e1",
            ContainerAction::Start,
            device(&["/dev/fuse", "/dev/net/tun"]),
        )],
    );
    assert_eq!(rule_ids(&findings), ["container-escape/host-device"]);
    assert_eq!(findings[0].severity, Severity::High);
    assert_eq!(findings[0].techniques, ["T1611"]);
    assert_eq!(
        evidence(&findings[0], "device"),
        ["/dev/fuse", "/dev/net/tun"]
    );

    for critical in [
        "/dev/sda",
        "/dev/sda1",
        "/dev/nvme0n1p2",
        "/dev/vda",
        "/dev/xvdb",
        "/dev/mmcblk0",
        "/dev/dm-0",
        "/dev/mapper/vg-root",
        "/dev/disk/by-uuid/1234",
        "/dev/mem",
        "/dev/kmem",
        "/dev/port",
        "/dev/kmsg",
        "/dev/sdb:/dev/xvdb:rwm",
    ] {
        let findings = run(
            "{}",
            &[docker(
                "e2",
                ContainerAction::Start,
                device(&["/dev/fuse", critical]),
            )],
        );
        assert_eq!(findings[0].severity, Severity::Critical, "{critical}");
        assert_eq!(evidence(&findings[0], "device"), ["/dev/fuse", critical]);
    }
    for high in [
        "/dev/snd",
        "/dev/ttyUSB0",
        "/dev/dri/renderD128",
        "/dev/memory_bandwidth",
    ] {
        let findings = run(
            "{}",
            &[docker("e3", ContainerAction::Start, device(&[high]))],
        );
        assert_eq!(findings[0].severity, Severity::High, "{high}");
    }

    assert!(run("{}", &[docker("e4", ContainerAction::Start, device(&[]))]).is_empty());
    assert!(
        run(
            "{}",
            &[docker("e5", ContainerAction::Start, device(&[" "]))]
        )
        .is_empty()
    );
}

#[test]
fn every_new_rule_can_be_disabled() {
    let security = ContainerSecurity {
        cgroupns_mode: "host".into(),
        devices: vec!["/dev/kmsg".into()],
        seccomp_profile: "unconfined".into(),
        apparmor_profile: "unconfined".into(),
        log_driver: "none".into(),
        ..Default::default()
    };
    let all = run(
        r#"{"host_cgroupns": "always"}"#,
        &[docker("e1", ContainerAction::Start, security.clone())],
    );
    assert_eq!(
        rule_ids(&all),
        [
            "container-escape/host-cgroupns",
            "container-escape/host-device",
            "container-escape/seccomp-unconfined",
            "container-escape/apparmor-unconfined",
            "container-escape/log-driver-none"
        ]
    );
    let none = run(
        r#"{"host_cgroupns": "always", "disabled_rules": ["host-cgroupns", "container-escape/host-device",
            "seccomp-unconfined", "apparmor-unconfined", "log-driver-none"]}"#,
        &[docker("e2", ContainerAction::Start, security)],
    );
    assert!(none.is_empty(), "{none:?}");
}

#[test]
fn an_unknown_host_cgroupns_mode_is_reported_with_the_others() {
    let mut detector = ContainerEscape::default();
    let error = detector
        .configure(r#"{"host_cgroupns": "sometimes", "disabled_rules": ["host-userns"]}"#)
        .unwrap_err();
    let paths: Vec<&str> = error.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["disabled_rules[0]", "host_cgroupns"]);
    assert!(
        error.problems[1].message.contains("with-privilege"),
        "{error:?}"
    );
    assert!(
        error.problems[0].message.contains("log-driver-none"),
        "{error:?}"
    );
    assert!(
        ContainerEscape::describe()
            .settings
            .iter()
            .any(|s| s.name == "host_cgroupns" && s.default_value == "\"with-privilege\"")
    );
}
