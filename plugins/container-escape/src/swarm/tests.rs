//! Swarm services: one finding per service and risky spec, naming the
//! service, with the task containers seen as entities; task containers of a
//! known service give no finding of their own.

use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::testing::{self, evidence, rule_ids};

use crate::ContainerEscape;

const SECOND: u64 = 1_000_000_000;

fn spec(version: u64, replicas: u64, security: ContainerSecurity) -> ServiceSpec {
    ServiceSpec {
        id: "svc1".into(),
        name: "probe".into(),
        version,
        image: "vigil-test/busybox:latest".into(),
        replicas: Some(replicas),
        networks: vec!["host".into()],
        security,
        ..ServiceSpec::default()
    }
}

fn service(id: &str, time: u64, action: &str, spec: Option<ServiceSpec>) -> ServiceEvent {
    ServiceEvent {
        id: id.into(),
        time,
        node: "n1".into(),
        action: action.into(),
        object_id: "svc1".into(),
        name: "probe".into(),
        service: spec,
        ..ServiceEvent::default()
    }
}

fn task(n: u32, security: ContainerSecurity) -> Event {
    Event::new(
        format!("t{n}"),
        2 * SECOND,
        EventBody::Container(ContainerEvent {
            action: ContainerAction::Start,
            id: format!("task{n}"),
            name: format!("probe.{n}.abc"),
            image: "vigil-test/busybox:latest".into(),
            labels: vec![KeyValue::new("com.docker.swarm.service.id", "svc1")],
            security: Some(security),
            ..Default::default()
        }),
    )
}

fn host() -> ContainerSecurity {
    ContainerSecurity {
        network_mode: "host".into(),
        ..Default::default()
    }
}

#[test]
fn a_host_network_service_is_one_finding_with_its_tasks() {
    let mut d = testing::configured::<ContainerEscape>("{}");
    assert!(
        d.on_service_events(&[service("s1", SECOND, "create", Some(spec(11, 2, host())))])
            .is_empty()
    );
    // The create's companion update: same settings, no second finding.
    assert!(
        d.on_service_events(&[service("s2", SECOND, "update", Some(spec(12, 2, host())))])
            .is_empty()
    );
    assert!(
        d.on_events(&[task(1, host())]).is_empty(),
        "no finding per task"
    );
    let findings = d.on_events(&[task(2, host())]);
    assert_eq!(rule_ids(&findings), ["container-escape/swarm-service"]);
    let f = &findings[0];
    assert_eq!(f.severity, Severity::High);
    assert_eq!(evidence(f, "service"), ["probe"]);
    assert_eq!(evidence(f, "spec-version"), ["12"]);
    assert_eq!(evidence(f, "network-mode"), ["host"]);
    assert_eq!(evidence(f, "task-containers"), ["2"]);
    assert!(f.summary.contains("probe"), "{}", f.summary);
    assert_eq!(
        f.entities[0],
        Entity::new(EntityKind::Container, "task1", "probe.1.abc")
    );
    assert_eq!(
        f.entities[1],
        Entity::new(EntityKind::Container, "task2", "probe.2.abc")
    );
    // The service event, then the events that showed each task container:
    // the host verifies the containers against the events a finding cites.
    assert_eq!(f.event_ids, ["s1", "t1", "t2"]);
    // A scale keeps the settings: nothing new, and its tasks stay quiet.
    assert!(
        d.on_service_events(&[service(
            "s3",
            3 * SECOND,
            "update",
            Some(spec(13, 3, host()))
        )])
        .is_empty()
    );
    assert!(d.on_events(&[task(3, host())]).is_empty());
    assert!(d.on_tick(60 * SECOND).is_empty());
}

#[test]
fn an_update_adding_a_risky_setting_is_reported_again_after_the_wait() {
    let mut d = testing::configured::<ContainerEscape>(r#"{"service_task_wait_ms": 500}"#);
    d.on_service_events(&[service("s1", SECOND, "create", Some(spec(11, 5, host())))]);
    let first = d.on_tick(SECOND + SECOND / 2);
    assert_eq!(rule_ids(&first), ["container-escape/swarm-service"]);
    assert_eq!(evidence(&first[0], "task-containers"), ["0"]);
    let mut wider = host();
    wider.cap_add = vec!["SYS_ADMIN".into()];
    wider.mounts = vec![Mount {
        source: "/var/run/docker.sock".into(),
        destination: "/var/run/docker.sock".into(),
        read_only: false,
        kind: "bind".into(),
    }];
    d.on_service_events(&[service(
        "s2",
        10 * SECOND,
        "update",
        Some(spec(14, 5, wider)),
    )]);
    assert!(d.on_tick(10 * SECOND).is_empty(), "waits for tasks");
    let second = d.on_tick(11 * SECOND);
    assert_eq!(rule_ids(&second), ["container-escape/swarm-service"]);
    assert_eq!(second[0].severity, Severity::Critical, "docker.sock");
    assert_eq!(evidence(&second[0], "spec-version"), ["14"]);
    assert!(evidence(&second[0], "rules")[0].contains("dangerous-capability"));
}

#[test]
fn harmless_services_and_other_objects_give_nothing_and_removal_forgets() {
    let mut d = testing::configured::<ContainerEscape>("{}");
    let plain = ContainerSecurity::default();
    d.on_service_events(&[service(
        "s1",
        SECOND,
        "create",
        Some(spec(2, 1, plain.clone())),
    )]);
    assert!(d.on_events(&[task(1, plain)]).is_empty());
    let node = ServiceEvent {
        object: SwarmObject::Node,
        ..service("n", SECOND, "update", Some(spec(3, 1, host())))
    };
    assert!(d.on_service_events(&[node]).is_empty());
    assert!(d.on_tick(60 * SECOND).is_empty());
    // Removed: its task containers are containers again.
    d.on_service_events(&[service("s2", SECOND, "remove", None)]);
    assert_eq!(
        rule_ids(&d.on_events(&[task(9, host())])),
        ["container-escape/host-network"]
    );
}

#[test]
fn an_added_capability_that_is_not_dangerous_still_marks_the_service() {
    let mut d = testing::configured::<ContainerEscape>(r#"{"service_task_wait_ms": 0}"#);
    let caps = ContainerSecurity {
        cap_add: vec!["CHOWN".into()],
        ..Default::default()
    };
    d.on_service_events(&[service("s1", SECOND, "create", Some(spec(2, 1, caps)))]);
    let f = d.on_tick(SECOND);
    assert_eq!(rule_ids(&f), ["container-escape/swarm-service"]);
    assert_eq!(f[0].severity, Severity::Medium);
    assert_eq!(evidence(&f[0], "cap-add"), ["CHOWN"]);
}

#[test]
fn the_rule_can_be_disabled_and_tasks_are_then_containers() {
    let mut d = testing::configured::<ContainerEscape>(r#"{"disabled_rules": ["swarm-service"]}"#);
    d.on_service_events(&[service("s1", SECOND, "create", Some(spec(2, 1, host())))]);
    assert!(d.on_tick(60 * SECOND).is_empty());
    assert_eq!(
        rule_ids(&d.on_events(&[task(1, host())])),
        ["container-escape/host-network"]
    );
}

#[test]
fn a_too_long_wait_is_refused() {
    let err = ContainerEscape::default().configure(r#"{"service_task_wait_ms": 600000}"#);
    assert!(err.unwrap_err().problems[0].path == "service_task_wait_ms");
}
