//! Unit tests of the Docker source: Engine events into container events,
//! lifetimes, resume cursor, version refusal parsing, configuration.

use crate::Source as _;
use bollard::models::EventMessage;

use super::config::DockerConfig;
use super::events::{
    DockerEvent, Enrich, EventError, GAP_RAW_ACTION, Mapped, gap_body, map, since_param, verb,
};
use super::stream::Cursor;
use super::tracker::Tracker;
use vigil_core::model::{ContainerAction, ContainerEvent, ExecInfo};
use vigil_normalize::docker_inspect::Inspect;

const ID: &str = "3c86fbf440d32cb481da39138a98ba35a8e60ada936499f34fcfc2018df6768f";

/// A container event as Docker 20.10 writes it on `GET /events`.
fn container_json(action: &str, extra: &str, time_nano: u64) -> String {
    format!(
        r#"{{"status":"{action}","id":"{ID}","from":"busybox","Type":"container","Action":"{action}","Actor":{{"ID":"{ID}","Attributes":{{"image":"busybox","name":"probe1","vigil-test":"1"{extra}}}}},"scope":"local","time":{},"timeNano":{time_nano}}}"#,
        time_nano / 1_000_000_000
    )
}

fn parse(json: &str) -> Result<DockerEvent, EventError> {
    let m: EventMessage = serde_json::from_str(json).expect("test JSON is an EventMessage");
    DockerEvent::try_from(m)
}

fn container(json: &str) -> (ContainerEvent, Enrich) {
    match map(&parse(json).expect("valid event")).expect("mapped") {
        Mapped::Container { event, enrich } => (*event, enrich),
        other => panic!("not a container event: {other:?} for {json}"),
    }
}

#[test]
fn create_and_start_ask_for_an_inspect() {
    for (action, expected) in [
        ("create", ContainerAction::Create),
        ("start", ContainerAction::Start),
    ] {
        let (e, enrich) = container(&container_json(action, "", 1_795_682_419_039_734_743));
        assert_eq!(e.action, expected);
        assert_eq!(e.raw_action, action);
        assert_eq!(e.id, ID);
        assert_eq!(e.name, "probe1");
        assert_eq!(e.image, "busybox");
        assert_eq!(
            e.labels,
            vec![vigil_core::model::KeyValue::new("vigil-test", "1")],
            "labels are the attributes Docker did not add"
        );
        assert_eq!(enrich, Enrich::Container);
    }
}

#[test]
fn kill_die_and_exec_die_carry_signal_and_exit_codes() {
    let (kill, _) = container(&container_json("kill", r#","signal":"9""#, 1));
    assert_eq!(
        (kill.action, kill.signal.as_str()),
        (ContainerAction::Kill, "9")
    );
    let (die, enrich) = container(&container_json("die", r#","exitCode":"137""#, 2));
    assert_eq!(
        (die.action, die.exit_code, enrich),
        (ContainerAction::Die, Some(137), Enrich::Nothing)
    );
    let (exec_die, _) = container(&container_json(
        "exec_die",
        r#","execID":"abc","exitCode":"0""#,
        3,
    ));
    assert_eq!(
        (exec_die.action, exec_die.exit_code),
        (ContainerAction::ExecDie, Some(0))
    );
    assert!(
        exec_die
            .labels
            .iter()
            .all(|l| l.key != "execID" && l.key != "exitCode")
    );
}

#[test]
fn exec_events_keep_the_command_and_ask_for_the_exec() {
    let (e, enrich) = container(&container_json(
        "exec_start: sh -c id",
        r#","execID":"6b75""#,
        4,
    ));
    assert_eq!(e.action, ContainerAction::ExecStart);
    assert_eq!(e.raw_action, "exec_start: sh -c id");
    assert_eq!(
        e.exec,
        Some(ExecInfo {
            command: "sh -c id".into(),
            ..ExecInfo::default()
        })
    );
    assert_eq!(enrich, Enrich::Exec("6b75".into()));
    let (e, enrich) = container(&container_json("exec_create: ls", "", 5));
    assert_eq!(
        (e.action, enrich),
        (ContainerAction::ExecCreate, Enrich::Nothing),
        "no execID: nothing to inspect"
    );
}

#[test]
fn every_documented_container_action_maps() {
    use ContainerAction as A;
    let cases = [
        ("destroy", A::Destroy),
        ("pause", A::Pause),
        ("unpause", A::Unpause),
        ("oom", A::Oom),
        ("rename", A::Rename),
        ("restart", A::Restart),
        ("stop", A::Stop),
        ("attach", A::Attach),
        ("update", A::Update),
        ("health_status: healthy", A::Other),
        ("copy", A::Other),
        ("export", A::Other),
    ];
    for (action, expected) in cases {
        let (e, _) = container(&container_json(action, "", 6));
        assert_eq!(e.action, expected, "{action}");
        assert_eq!(e.raw_action, action);
    }
}

#[test]
fn network_connect_names_the_container_and_network() {
    let json = format!(
        r#"{{"Type":"network","Action":"connect","Actor":{{"ID":"16a24f93","Attributes":{{"container":"{ID}","name":"bridge","type":"bridge"}}}},"scope":"local","time":1,"timeNano":1795682419061979422}}"#
    );
    let (e, enrich) = container(&json);
    assert_eq!(
        (e.action, e.id.as_str(), e.network.as_str(), enrich),
        (
            ContainerAction::NetworkConnect,
            ID,
            "bridge",
            Enrich::Nothing
        )
    );
    assert!(e.labels.is_empty());
    let created = json.replace(r#""Action":"connect""#, r#""Action":"create""#);
    assert_eq!(
        map(&parse(&created).expect("valid")).expect("mapped"),
        Mapped::Ignored
    );
    let no_container = json.replace("\"container\"", "\"other\"");
    assert_eq!(
        map(&parse(&no_container).expect("valid")),
        Err(EventError::Missing("Actor.Attributes.container"))
    );
}

#[test]
fn malformed_events_are_rejected_with_a_reason() {
    let unknown = container_json("teleport", "", 7);
    assert!(matches!(
        map(&parse(&unknown).expect("valid")),
        Err(EventError::UnknownAction { .. })
    ));
    let bad_exit = container_json("die", r#","exitCode":"lots""#, 8);
    assert!(matches!(
        map(&parse(&bad_exit).expect("valid")),
        Err(EventError::Attribute {
            name: "exitCode",
            ..
        })
    ));
    assert_eq!(
        parse(r#"{"Type":"image","Action":"pull","Actor":{"ID":"x"},"timeNano":1}"#),
        Err(EventError::Type(Some(
            bollard::models::EventMessageTypeEnum::IMAGE
        )))
    );
    assert_eq!(
        parse(r#"{"Type":"container","Actor":{"ID":"x"},"timeNano":1}"#),
        Err(EventError::Missing("Action"))
    );
    assert_eq!(
        parse(r#"{"Type":"container","Action":"die","timeNano":1}"#),
        Err(EventError::Missing("Actor"))
    );
    assert_eq!(
        parse(r#"{"Type":"container","Action":"die","Actor":{"ID":""},"timeNano":1}"#),
        Err(EventError::Missing("Actor.ID"))
    );
    assert_eq!(
        parse(r#"{"Type":"container","Action":"die","Actor":{"ID":"x"},"timeNano":-5}"#),
        Err(EventError::Time(-5))
    );
    assert_eq!(
        parse(r#"{"Type":"container","Action":"die","Actor":{"ID":"x"}}"#),
        Err(EventError::Missing("timeNano"))
    );
    let seconds_only =
        parse(r#"{"Type":"container","Action":"die","Actor":{"ID":"x"},"time":3}"#).expect("valid");
    assert_eq!(seconds_only.time_nano, 3_000_000_000);
}

#[test]
fn verbs_and_since() {
    assert_eq!(
        verb("exec_start: sh -c 'a: b'"),
        ("exec_start", Some("sh -c 'a: b'"))
    );
    assert_eq!(verb("die"), ("die", None));
    assert_eq!(
        since_param(1_795_682_419_039_734_743),
        "1795682419.039734743"
    );
    assert_eq!(since_param(5), "0.000000005");
}

#[test]
fn die_and_destroy_carry_the_lifetime() {
    let mut t = Tracker::new(10);
    let s = 1_000_000_000_000;
    let mut start = ContainerEvent {
        action: ContainerAction::Start,
        id: "c".into(),
        name: "n".into(),
        image: "i".into(),
        ..ContainerEvent::default()
    };
    t.observe(&mut start, s);
    assert_eq!(start.lifetime_ms, None);
    let mut connect = ContainerEvent {
        action: ContainerAction::NetworkConnect,
        id: "c".into(),
        ..ContainerEvent::default()
    };
    t.observe(&mut connect, s + 1);
    assert_eq!(
        (connect.name.as_str(), connect.image.as_str()),
        ("n", "i"),
        "network events get the name and image"
    );
    let mut die = ContainerEvent {
        action: ContainerAction::Die,
        id: "c".into(),
        ..ContainerEvent::default()
    };
    t.observe(&mut die, s + 1_500_000_000);
    assert_eq!(die.lifetime_ms, Some(1_500));
    let mut destroy = ContainerEvent {
        action: ContainerAction::Destroy,
        id: "c".into(),
        ..ContainerEvent::default()
    };
    t.observe(&mut destroy, s + 9_000_000_000);
    assert_eq!(
        (destroy.lifetime_ms, destroy.name.as_str()),
        (Some(1_500), "n"),
        "destroy carries the run time, start to die"
    );
    assert_eq!(t.tracked(), 0, "destroy forgets the container");

    let mut t = Tracker::new(1);
    t.running("a", "a", "i", Some(s));
    let mut other = ContainerEvent {
        action: ContainerAction::Start,
        id: "b".into(),
        ..ContainerEvent::default()
    };
    t.observe(&mut other, s);
    assert_eq!(t.tracked(), 1, "bounded");
    let mut die = ContainerEvent {
        action: ContainerAction::Die,
        id: "a".into(),
        ..ContainerEvent::default()
    };
    t.observe(&mut die, s + 2_000_000);
    assert_eq!(
        die.lifetime_ms,
        Some(2),
        "inventoried containers are timed from their StartedAt"
    );
}

#[test]
fn cursor_resumes_before_the_latest_event_and_drops_replays() {
    let mut c = Cursor::new(100);
    assert_eq!(c.since(), 100);
    assert!(!c.has_seen_any());
    let e = parse(&container_json("die", r#","exitCode":"0""#, 5_000_000_000)).expect("valid");
    assert!(!c.is_seen(&e));
    c.record(&e);
    assert!(c.is_seen(&e) && c.has_seen_any());
    assert_eq!(
        c.since(),
        4_000_000_000,
        "a second of slack: events are not strictly time-ordered"
    );
    let same_time_other_action =
        parse(&container_json("destroy", "", 5_000_000_000)).expect("valid");
    assert!(!c.is_seen(&same_time_other_action));
    c.skip_to(9_000_000_000);
    assert_eq!(c.since(), 9_000_000_000);
}

#[test]
fn config_reports_every_problem_and_rejects_unknown_fields() {
    let bad = DockerConfig {
        socket: "relative.sock".into(),
        request_timeout_ms: 0,
        initial_backoff_ms: 10,
        max_backoff_ms: 5,
        ..DockerConfig::default()
    };
    let err = bad.validated().expect_err("invalid");
    let paths: Vec<_> = err.0.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "docker.socket",
            "docker.request_timeout_ms",
            "docker.max_backoff_ms"
        ]
    );
    assert!(serde_json::from_str::<DockerConfig>(r#"{"sokcet":"/x"}"#).is_err());
    let ok: DockerConfig = serde_json::from_str(r#"{"socket":"/run/docker.sock"}"#).expect("valid");
    assert_eq!(
        ok.validated().expect("valid").max_backoff,
        std::time::Duration::from_secs(5)
    );
}

#[test]
fn inspect_completes_create_events() {
    let i: Inspect = serde_json::from_str(
        r#"{"Id":"abc","Name":"/evasive","Image":"sha256:1","State":{"Running":false,"ExitCode":1,"StartedAt":"2024-01-01T00:00:00Z","FinishedAt":"2024-01-01T00:00:01Z"},
            "Config":{"Image":"busybox","Labels":{"a":"b"}},"HostConfig":{"NetworkMode":"host","Privileged":true}}"#,
    )
    .expect("inspect");
    let mut e = ContainerEvent {
        action: ContainerAction::Create,
        raw_action: "create".into(),
        id: "abc".into(),
        ..ContainerEvent::default()
    };
    super::events::complete_with_inspect(&mut e, &i);
    let sec = e.security.as_ref().expect("security");
    assert_eq!((sec.network_mode.as_str(), sec.privileged), ("host", true));
    assert_eq!(
        (
            e.action,
            e.raw_action.as_str(),
            e.name.as_str(),
            e.image_digest.as_str()
        ),
        (ContainerAction::Create, "create", "evasive", "sha256:1")
    );
    assert_eq!(
        (e.exit_code, e.lifetime_ms),
        (None, None),
        "a create event does not carry the container's later death"
    );
}

#[test]
fn a_gap_is_a_container_event_plugins_can_see() {
    let body = gap_body(
        "1764150000.000000001",
        "the daemon replayed nothing from before the break (restarted?)",
    );
    let vigil_core::model::EventBody::Container(c) = &body else {
        panic!("not a container event: {body:?}");
    };
    assert_eq!(c.action, ContainerAction::Other);
    assert_eq!(c.raw_action, GAP_RAW_ACTION);
    assert_eq!(c.raw_action, "vigil-events-gap");
    assert!(c.id.is_empty() && c.name.is_empty() && c.security.is_none());
    assert_eq!(
        c.labels,
        vec![
            vigil_core::model::KeyValue::new("vigil.gap.since", "1764150000.000000001"),
            vigil_core::model::KeyValue::new(
                "vigil.gap.reason",
                "the daemon replayed nothing from before the break (restarted?)"
            ),
        ]
    );
    // Its Vigil JSON (what `--emit-events` writes and `vigil replay` reads).
    let event = vigil_core::model::Event {
        id: "docker:1".into(),
        time: 1,
        node: "n1".into(),
        source: "docker".into(),
        body,
    };
    let json = serde_json::to_value(&event).expect("serialise");
    assert_eq!(json["body"]["kind"], "container");
    assert_eq!(json["body"]["action"], "other");
    assert_eq!(json["body"]["raw_action"], "vigil-events-gap");
    assert_eq!(json["source"], "docker");
}

#[test]
fn swarm_events_map_to_changes_with_their_attributes() {
    use super::events::SwarmChange;
    use vigil_core::model::{KeyValue, SwarmObject};
    // As Docker 26 writes them on a manager (`docker service scale web=3`).
    let scale = r#"{"Type":"service","Action":"update","Actor":{"ID":"x7rbjuf24z0gwhg6h5lwrxgfc","Attributes":{"name":"web","replicas.new":"3","replicas.old":"2"}},"scope":"swarm","time":1796226661,"timeNano":1796226661356594904}"#;
    let Mapped::Swarm(change) = map(&parse(scale).expect("valid")).expect("mapped") else {
        panic!("not a swarm change")
    };
    assert_eq!(
        change,
        SwarmChange {
            object: SwarmObject::Service,
            action: "update".into(),
            id: "x7rbjuf24z0gwhg6h5lwrxgfc".into(),
            name: "web".into(),
            changes: vec![
                KeyValue::new("replicas.new", "3"),
                KeyValue::new("replicas.old", "2")
            ],
        }
    );
    assert!(change.wants_spec());
    let removed = scale.replace(r#""Action":"update""#, r#""Action":"remove""#);
    let Mapped::Swarm(removed) = map(&parse(&removed).expect("valid")).expect("mapped") else {
        panic!("not a swarm change")
    };
    assert!(
        !removed.wants_spec(),
        "a removed service cannot be inspected"
    );
    let node = r#"{"Type":"node","Action":"update","Actor":{"ID":"bjsyhj24pxl03cz5qztfp0iht","Attributes":{"name":"vm","state.new":"ready","state.old":"unknown"}},"scope":"swarm","time":1796226658,"timeNano":1796226658256825754}"#;
    let Mapped::Swarm(node) = map(&parse(node).expect("valid")).expect("mapped") else {
        panic!("not a swarm change")
    };
    assert_eq!((node.object, node.name.as_str()), (SwarmObject::Node, "vm"));
    assert!(!node.wants_spec());
    let odd = scale.replace(r#""Action":"update""#, r#""Action":"explode""#);
    assert!(matches!(
        map(&parse(&odd).expect("valid")),
        Err(EventError::UnknownAction {
            scope: "service",
            ..
        })
    ));
}

#[test]
fn secret_and_config_events_map_to_changes_without_a_spec() {
    use super::events::SwarmChange;
    use vigil_core::model::SwarmObject;
    // As a manager's stream carries them (`docker secret create db_password -`,
    // `docker config rm nginx_conf`).
    let secret = r#"{"Type":"secret","Action":"create","Actor":{"ID":"k3bqhzv6ycj5grbq3x2m0nq8a","Attributes":{"name":"db_password"}},"scope":"swarm","time":1796226670,"timeNano":1796226670123456789}"#;
    let config = r#"{"Type":"config","Action":"remove","Actor":{"ID":"q0u8v4w1e9o2x3r5t6y7u8i9o","Attributes":{"name":"nginx_conf"}},"scope":"swarm","time":1796226671,"timeNano":1796226671000000001}"#;
    for (json, object, action, id, name) in [
        (
            secret,
            SwarmObject::Secret,
            "create",
            "k3bqhzv6ycj5grbq3x2m0nq8a",
            "db_password",
        ),
        (
            config,
            SwarmObject::Config,
            "remove",
            "q0u8v4w1e9o2x3r5t6y7u8i9o",
            "nginx_conf",
        ),
    ] {
        let e = parse(json).expect("valid");
        let Mapped::Swarm(change) = map(&e).expect("mapped") else {
            panic!("not a swarm change: {json}")
        };
        assert_eq!(
            change,
            SwarmChange {
                object,
                action: action.into(),
                id: id.into(),
                name: name.into(),
                changes: vec![],
            }
        );
        assert!(!change.wants_spec(), "only services are inspected");
    }
    // An update of a secret (its labels) maps too; an action Docker does
    // not document for secrets is refused with the object's kind.
    let updated = secret.replace(r#""Action":"create""#, r#""Action":"update""#);
    assert!(matches!(
        map(&parse(&updated).expect("valid")),
        Ok(Mapped::Swarm(SwarmChange {
            object: SwarmObject::Secret,
            ..
        }))
    ));
    let odd = config.replace(r#""Action":"remove""#, r#""Action":"rotate""#);
    assert!(matches!(
        map(&parse(&odd).expect("valid")),
        Err(EventError::UnknownAction {
            scope: "config",
            ..
        })
    ));
}
