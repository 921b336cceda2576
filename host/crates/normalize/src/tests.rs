use super::*;
use vigil_core::model::{ContainerRole, EventBody};

fn fixture(name: &str) -> Vec<u8> {
    let p = format!(
        "{}/../../../tests/data/k8s-audit/falco-0.34.1/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

const ORIGIN: Origin<'static> = Origin {
    node: "node-a",
    source: "replay",
};

fn read(name: &str, data: &[u8], format: Format) -> (Vec<Event>, Vec<InputError>) {
    let (mut events, mut errors) = (Vec::new(), Vec::new());
    for_each_record(
        name,
        data,
        format,
        &ORIGIN,
        |e| events.append(e),
        |e| errors.push(e),
    );
    (events, errors)
}

#[test]
fn privileged_second_container_is_normalised() {
    let (events, errors) = read(
        "p.json",
        &fixture("create_nginx_pod_privileged_2nd_container.json"),
        Format::Auto,
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(events.len(), 1);
    let EventBody::Kubernetes(k) = &events[0].body else {
        panic!("not kubernetes")
    };
    assert_eq!(
        (k.verb.as_str(), k.resource.as_str(), k.namespace.as_str()),
        ("create", "pods", "default")
    );
    assert_eq!(
        k.name, "nginx-deployment-544b59f8b8-ffkxm",
        "name comes from the response object"
    );
    assert_eq!(
        k.owner.as_ref().map(|o| o.kind.as_str()),
        Some("ReplicaSet")
    );
    let pod = k.pod.as_ref().expect("pod spec");
    assert_eq!(pod.containers.len(), 2);
    assert!(!pod.containers[0].security.privileged);
    assert!(pod.containers[1].security.privileged);
    assert_eq!(pod.containers[1].role, ContainerRole::Main);
    assert_eq!(
        events[0].time,
        vigil_core::time::parse_rfc3339("2018-10-25T17:53:07Z")
            .unwrap_or_default()
            .max(events[0].time)
    );
    assert!(events[0].id.starts_with("k8s-audit:f83ecd50-"));
}

#[test]
fn host_network_and_sensitive_mounts_are_normalised() {
    let (events, _) = read(
        "h.json",
        &fixture("create_nginx_pod_hostnetwork.json"),
        Format::K8sAudit,
    );
    let EventBody::Kubernetes(k) = &events[0].body else {
        panic!()
    };
    let pod = k.pod.as_ref().unwrap();
    assert!(pod.host_network);
    assert!(
        pod.containers
            .iter()
            .all(|c| c.security.network_mode == "host")
    );

    let (events, _) = read(
        "m.json",
        &fixture("create_nginx_pod_sensitive_mount_2nd_container.json"),
        Format::K8sAudit,
    );
    let EventBody::Kubernetes(k) = &events[0].body else {
        panic!()
    };
    let mounts: Vec<_> = k
        .pod
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .flat_map(|c| c.security.mounts.iter())
        .filter(|m| m.kind == "host-path")
        .collect();
    assert!(mounts.iter().any(|m| m.source == "/etc"), "{mounts:?}");
}

#[test]
fn malformed_audit_record_is_located_and_explained() {
    let (events, errors) = read("fal_01_003.json", &fixture("fal_01_003.json"), Format::Auto);
    assert!(events.is_empty());
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, 1);
    assert!(
        errors[0].reason.contains("invalid Kubernetes audit event")
            && errors[0].reason.contains("kind"),
        "{}",
        errors[0]
    );
}

#[test]
fn bad_lines_do_not_stop_the_rest() {
    let good = String::from_utf8(fixture("exec_pod.json")).unwrap();
    let input = format!(
        "{}\nnot json\n{{\"kind\":\"Pod\"}}\n\n{}\n\u{0}\n",
        good.trim(),
        good.trim()
    );
    let (events, errors) = read("mixed.jsonl", input.as_bytes(), Format::Auto);
    assert_eq!(events.len(), 2);
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 3, 6], "{errors:?}");
    assert!(
        errors[1].reason.contains("kind is \"Pod\""),
        "{}",
        errors[1]
    );
}

#[test]
fn event_lists_and_pretty_printed_documents() {
    let one = String::from_utf8(fixture("attach_pod.json")).unwrap();
    let list = format!(
        "{{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"items\":[{0},{0}]}}",
        one.trim()
    );
    let (events, errors) = read("list.json", list.as_bytes(), Format::Auto);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(events.len(), 2);
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&one).unwrap())
            .unwrap();
    let (events, errors) = read(
        "pretty.json",
        format!("{pretty}\n{pretty}\n").as_bytes(),
        Format::Auto,
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(events.len(), 2);
}

#[test]
fn docker_inspect_array() {
    let doc = r#"[{"Id":"abc123","Name":"/evasive","Created":"2024-05-01T10:00:00Z",
      "State":{"Running":true,"StartedAt":"2024-05-01T10:00:01.5Z","FinishedAt":"0001-01-01T00:00:00Z"},
      "Image":"sha256:feed","Config":{"Image":"busybox:vigil","User":"","Labels":{"a":"b"}},
      "HostConfig":{"NetworkMode":"host","Privileged":false,"CapAdd":["cap_sys_admin"],"SecurityOpt":["seccomp=unconfined","apparmor:unconfined"],
        "LogConfig":{"Type":"none"},"RestartPolicy":{"Name":"always"},"Devices":[{"PathOnHost":"/dev/kmsg"}]},
      "Mounts":[{"Type":"bind","Source":"/var/run/docker.sock","Destination":"/var/run/docker.sock","RW":true}]}]"#;
    let (events, errors) = read("inspect.json", doc.as_bytes(), Format::Auto);
    assert!(errors.is_empty(), "{errors:?}");
    let EventBody::Container(c) = &events[0].body else {
        panic!()
    };
    assert_eq!(c.name, "evasive");
    let s = c.security.as_ref().unwrap();
    assert_eq!(
        (
            s.network_mode.as_str(),
            s.log_driver.as_str(),
            s.seccomp_profile.as_str(),
            s.apparmor_profile.as_str()
        ),
        ("host", "none", "unconfined", "unconfined")
    );
    assert_eq!(s.cap_add, vec!["SYS_ADMIN".to_owned()]);
    assert_eq!(s.devices, vec!["/dev/kmsg".to_owned()]);
    assert_eq!(s.mounts[0].source, "/var/run/docker.sock");
    assert!(!s.mounts[0].read_only);
}

#[test]
fn vigil_events_round_trip() {
    let (events, _) = read(
        "p.json",
        &fixture("create_nginx_pod_privileged.json"),
        Format::Auto,
    );
    let line = serde_json::to_string(&events[0]).unwrap();
    assert!(line.contains("\"kind\":\"kubernetes\""), "{line}");
    let (again, errors) = read("v.jsonl", line.as_bytes(), Format::Auto);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(again, events);
}

#[test]
fn every_fixture_but_the_malformed_one_normalises() {
    let dir = format!(
        "{}/../../../tests/data/k8s-audit/falco-0.34.1",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (events, errors) = read(&name, &std::fs::read(&path).unwrap(), Format::Auto);
        if name == "fal_01_003.json" {
            assert_eq!(errors.len(), 1);
        } else {
            assert!(errors.is_empty(), "{name}: {errors:?}");
            assert!(!events.is_empty(), "{name}");
            n += 1;
        }
    }
    assert_eq!(n, 46);
}

/// Normalising slices of the records, whatever their size, gives what one
/// pass gives: the same events and errors in the same order (what lets
/// `vigil replay --threads` and the audit log source normalise in parallel).
#[test]
fn records_normalised_in_slices_equal_one_pass() {
    let mut data = Vec::new();
    for (i, name) in [
        "create_nginx_pod_privileged.json",
        "exec_pod.json",
        "fal_01_003.json",
        "create_nginx_pod_hostnetwork.json",
    ]
    .iter()
    .cycle()
    .take(23)
    .enumerate()
    {
        data.extend(fixture(name).trim_ascii());
        data.push(b'\n');
        if i == 9 {
            data.extend(b"{\"kind\": \"Event\", \"auditID\": \xff}\n\n");
        }
    }
    let (events, errors) = read("s.jsonl", &data, Format::K8sAudit);
    assert_eq!(
        errors.len(),
        7,
        "six malformed fixtures and the non-UTF-8 line"
    );
    assert_eq!(events.len(), 17);
    let mut split_errors = Vec::new();
    let records = split_records("s.jsonl", &data, &mut |e| split_errors.push(e));
    assert!(split_errors.is_empty());
    assert_eq!(records.len(), 24);
    for size in [1, 2, 5, 100] {
        let (mut got_events, mut got_errors) = (Vec::new(), Vec::new());
        for chunk in records.chunks(size) {
            for segment in normalise_records("s.jsonl", chunk, Format::K8sAudit, &ORIGIN) {
                match segment {
                    Segment::Events(e) => got_events.extend(e),
                    Segment::Error(e) => got_errors.push(e),
                    Segment::Processes(p) => panic!("no process events in audit input: {p:?}"),
                }
            }
        }
        assert_eq!(got_events, events, "slices of {size}");
        assert_eq!(got_errors, errors, "slices of {size}");
    }
}

#[test]
fn vigil_input_carries_process_events_in_order_beside_events() {
    use vigil_core::model::{ProcessEvent, ProcessRecord};
    let exec = |id: &str| ProcessEvent {
        id: id.into(),
        time: 2,
        source: "ebpf".into(),
        action: "exec".into(),
        binary: "/bin/sh".into(),
        args: vec!["sh".into()],
        ..Default::default()
    };
    let line = |p: &ProcessEvent| serde_json::to_string(&ProcessRecord(p)).unwrap();
    let start =
        r#"{"id":"c-start","time":1,"body":{"kind":"container","action":"start","id":"c1"}}"#;
    let data = format!(
        "{start}\n{}\n{}\n{{\"id\":\"bad\",\"body\":{{\"kind\":\"process\",\"pid\":-1}}}}\n{}\n{start}\n",
        line(&exec("p1")),
        line(&exec("p2")),
        line(&exec("p3")),
    );
    let records = split_records("v.jsonl", data.as_bytes(), &mut |e| panic!("{e}"));
    let kinds: Vec<String> = normalise_records("v.jsonl", &records, Format::Vigil, &ORIGIN)
        .into_iter()
        .map(|s| match s {
            Segment::Events(e) => format!("events {}", e.len()),
            Segment::Processes(p) => {
                let ids: Vec<&str> = p.iter().map(|p| p.id.as_str()).collect();
                format!("processes {}", ids.join(","))
            }
            Segment::Error(e) => format!("error {}: {}", e.line, e.reason),
        })
        .collect();
    assert_eq!(kinds.len(), 5, "{kinds:?}");
    assert_eq!(kinds[0], "events 1");
    assert_eq!(kinds[1], "processes p1,p2");
    assert!(
        kinds[2].starts_with("error 4: invalid Vigil event: field `body.pid`")
            || kinds[2].starts_with("error 4: invalid Vigil event:"),
        "{kinds:?}"
    );
    assert_eq!(kinds[3], "processes p3");
    assert_eq!(kinds[4], "events 1");
    // The round trip keeps every field.
    let back = &normalise_records("v.jsonl", &records[1..2], Format::Auto, &ORIGIN);
    assert!(
        matches!(&back[0], Segment::Processes(p) if p[0] == exec("p1")),
        "{back:?}"
    );

    // A reader of events only says what it skipped.
    let mut errors = Vec::new();
    let mut n = 0;
    for_each_record(
        "v.jsonl",
        data.as_bytes(),
        Format::Auto,
        &ORIGIN,
        |e| n += e.len(),
        |e| errors.push(e.to_string()),
    );
    assert_eq!(n, 2);
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(errors[0].contains("a process event"), "{errors:?}");
}
