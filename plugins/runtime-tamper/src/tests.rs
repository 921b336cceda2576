//! Native tests: a positive and a negative fixture per rule, severities by
//! class, timestomping, approvals and the settings.

use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::testing::{self, evidence, rule_ids};

use super::*;

const T0: u64 = 1_764_150_000_000_000_000;
const H1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const H2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

fn state(sha256: &str, size: u64, mtime: u64) -> FileState {
    FileState {
        sha256: sha256.into(),
        size,
        mode: 0o100_755,
        uid: 0,
        gid: 0,
        mtime,
    }
}

fn file(
    id: &str,
    path: &str,
    change: FileChange,
    before: Option<FileState>,
    after: Option<FileState>,
) -> Event {
    let mut event = Event::new(
        id,
        T0,
        EventBody::File(FileEvent {
            path: path.into(),
            change,
            before,
            after,
        }),
    );
    event.node = "node-1".into();
    event.source = "file-integrity".into();
    event
}

/// A content change: new hash, new size, new mtime.
fn modified(id: &str, path: &str) -> Event {
    file(
        id,
        path,
        FileChange::Modified,
        Some(state(H1, 100, T0 - 1_000)),
        Some(state(H2, 120, T0)),
    )
}

fn run(settings: &str, events: &[Event]) -> Vec<Finding> {
    testing::configured::<RuntimeTamper>(settings).on_events(events)
}

#[test]
fn describes_itself() {
    let info = RuntimeTamper::describe();
    assert_eq!(info.name, "runtime-tamper");
    assert_eq!(info.subscribes, [EventKind::File]);
    let names: Vec<&str> = info.settings.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "runtime_binaries",
            "daemon_configs",
            "runtime_configs",
            "static_pod_dirs",
            "orchestration_configs",
            "severities",
            "approved_sha256",
            "ignore_paths",
            "disabled_rules"
        ]
    );
    assert!(info.settings[0].default_value.contains("\"/usr/bin/runc\""));
    assert!(
        info.settings[5]
            .default_value
            .contains("\"runtime-binary\":\"critical\"")
    );
}

#[test]
fn severity_follows_the_path_class() {
    let findings = run(
        "{}",
        &[
            modified("e1", "/usr/bin/runc"),
            modified("e2", "/usr/local/bin/containerd-shim-runc-v2"),
            modified("e3", "/etc/docker/daemon.json"),
            modified("e4", "/etc/containerd/config.toml"),
            modified("e5", "/etc/systemd/system/docker.service.d/override.conf"),
            modified("e6", "/etc/cni/net.d/10-calico.conflist"),
            modified("e7", "/var/lib/kubelet/config.yaml"),
            modified("e8", "/etc/kubernetes/manifests/kube-apiserver.yaml"),
        ],
    );
    let got = testing::rule_severities(&findings);
    assert_eq!(
        got,
        [
            ("runtime-tamper/runtime-binary-changed", Severity::Critical),
            ("runtime-tamper/runtime-binary-changed", Severity::Critical),
            ("runtime-tamper/daemon-config-changed", Severity::High),
            ("runtime-tamper/runtime-config-changed", Severity::High),
            ("runtime-tamper/runtime-config-changed", Severity::High),
            (
                "runtime-tamper/orchestration-config-changed",
                Severity::Medium
            ),
            (
                "runtime-tamper/orchestration-config-changed",
                Severity::Medium
            ),
            ("runtime-tamper/static-pod-changed", Severity::High),
        ]
    );
    let runc = &findings[0];
    assert_eq!(runc.techniques, ["T1554"]);
    assert_eq!(runc.event_ids, ["e1"]);
    assert_eq!(
        runc.entities,
        [
            Entity::new(EntityKind::File, "/usr/bin/runc", ""),
            Entity::new(EntityKind::Node, "node-1", "")
        ]
    );
    assert_eq!(evidence(runc, "class"), ["runtime-binary"]);
    assert_eq!(evidence(runc, "pattern"), ["/usr/bin/runc"]);
    assert_eq!(evidence(runc, "change"), ["modified"]);
    assert_eq!(evidence(runc, "sha256.before"), [H1]);
    assert_eq!(evidence(runc, "sha256.after"), [H2]);
    assert_eq!(evidence(runc, "size.before"), ["100"]);
    assert_eq!(evidence(runc, "size.after"), ["120"]);
    assert_eq!(evidence(runc, "mtime.after"), ["2025-11-26T09:40:00Z"]);
    assert!(runc.summary.contains("/usr/bin/runc was modified"));
    // The daemon.json finding names what to review in the new content.
    assert!(evidence(&findings[2], "review")[0].contains("insecure-registries"));
    assert_eq!(findings[2].techniques, ["T1543.005", "T1562.001"]);
}

#[test]
fn unwatched_and_unclassified_paths_give_nothing() {
    assert!(
        run(
            "{}",
            &[
                modified("e1", "/etc/passwd"),
                modified("e2", "/usr/bin/runcx"),
                modified("e3", "/etc/docker/daemon.json.bak"),
                modified("e4", "/etc/cni/net.d/sub/x.conf"),
                // The audit configuration is monitoring-tamper's.
                modified("e5", "/etc/kubernetes/audit-policy.yaml"),
                modified("e6", "/etc/kubernetes/audit/webhook.yaml"),
            ]
        )
        .is_empty()
    );
}

#[test]
fn a_new_static_pod_manifest() {
    let created = file(
        "e1",
        "/etc/kubernetes/manifests/backdoor.yaml",
        FileChange::Created,
        None,
        Some(state(H1, 420, T0)),
    );
    let findings = run("{}", &[created]);
    assert_eq!(rule_ids(&findings), ["runtime-tamper/static-pod-created"]);
    let f = &findings[0];
    assert_eq!(f.severity, Severity::High);
    assert_eq!(f.techniques, ["T1610", "T1543.005"]);
    assert!(
        f.summary
            .starts_with("New static pod manifest /etc/kubernetes/manifests/backdoor.yaml")
    );
    assert_eq!(evidence(f, "sha256.after"), [H1]);
    assert!(evidence(f, "sha256.before").is_empty());
    assert_eq!(evidence(f, "mode"), ["0755"]);
    assert_eq!(evidence(f, "owner"), ["0:0"]);

    // The kubelet ignores hidden files: an editor's swap file is not a pod.
    let swap = file(
        "e2",
        "/etc/kubernetes/manifests/.backdoor.yaml.swp",
        FileChange::Created,
        None,
        Some(state(H1, 4096, T0)),
    );
    assert!(run("{}", &[swap]).is_empty());

    // A deleted manifest (a static pod removed) is a change, not a creation.
    let deleted = file(
        "e3",
        "/etc/kubernetes/manifests/etcd.yaml",
        FileChange::Deleted,
        Some(state(H1, 420, T0)),
        None,
    );
    let findings = run("{}", &[deleted]);
    assert_eq!(rule_ids(&findings), ["runtime-tamper/static-pod-changed"]);
    assert!(findings[0].summary.contains("was deleted"));
    assert!(evidence(&findings[0], "sha256.after").is_empty());
}

#[test]
fn inconsistent_change_is_one_finding_instead_of_the_class_one() {
    let stomped = file(
        "e1",
        "/usr/bin/runc",
        FileChange::Modified,
        Some(state(H1, 100, T0 - 5)),
        Some(state(H2, 100, T0 - 5)),
    );
    let findings = run("{}", std::slice::from_ref(&stomped));
    assert_eq!(rule_ids(&findings), ["runtime-tamper/inconsistent-change"]);
    let f = &findings[0];
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.techniques, ["T1070.006", "T1554"]);
    assert_eq!(
        evidence(f, "inconsistency"),
        ["content hash changed; size and mtime unchanged"]
    );
    assert_eq!(evidence(f, "size.before"), evidence(f, "size.after"));
    assert_eq!(evidence(f, "mtime.before"), evidence(f, "mtime.after"));
    assert_ne!(evidence(f, "sha256.before"), evidence(f, "sha256.after"));

    // On a lower class the severity is still the inconsistent one.
    let mut cni = stomped.clone();
    if let EventBody::File(f) = &mut cni.body {
        f.path = "/etc/cni/net.d/10-flannel.conflist".into();
    }
    let findings = run("{}", &[cni.clone()]);
    assert_eq!(findings[0].severity, Severity::Critical);
    assert_eq!(findings[0].techniques, ["T1070.006", "T1543.005"]);
    let findings = run(r#"{"severities": {"inconsistent": "high"}}"#, &[cni]);
    assert_eq!(findings[0].severity, Severity::High);

    // Disabled: the change is still reported under its class.
    let findings = run(r#"{"disabled_rules": ["inconsistent-change"]}"#, &[stomped]);
    assert_eq!(
        rule_ids(&findings),
        ["runtime-tamper/runtime-binary-changed"]
    );
    assert_eq!(
        evidence(&findings[0], "inconsistency"),
        ["content hash changed; size and mtime unchanged"]
    );
}

#[test]
fn consistent_changes_are_not_inconsistent() {
    for (after, why) in [
        (state(H2, 101, T0 - 5), "size changed"),
        (state(H2, 100, T0), "mtime changed"),
    ] {
        let event = file(
            "e1",
            "/usr/bin/runc",
            FileChange::Modified,
            Some(state(H1, 100, T0 - 5)),
            Some(after),
        );
        assert_eq!(
            rule_ids(&run("{}", &[event])),
            ["runtime-tamper/runtime-binary-changed"],
            "{why}"
        );
    }
    // An unknown mtime (0) proves nothing.
    let unknown = file(
        "e2",
        "/usr/bin/runc",
        FileChange::Modified,
        Some(state(H1, 100, 0)),
        Some(state(H2, 100, 0)),
    );
    assert_eq!(
        rule_ids(&run("{}", &[unknown])),
        ["runtime-tamper/runtime-binary-changed"]
    );
}

#[test]
fn metadata_changes_are_one_step_lower_unless_risky() {
    let chmod = |before_mode: u32, after_mode: u32, after_uid: u32| {
        let mut before = state(H1, 100, T0);
        before.mode = before_mode;
        let mut after = before.clone();
        after.mode = after_mode;
        after.uid = after_uid;
        file(
            "e1",
            "/usr/bin/dockerd",
            FileChange::Metadata,
            Some(before),
            Some(after),
        )
    };
    let benign = run("{}", &[chmod(0o100_755, 0o100_750, 0)]);
    assert_eq!(benign[0].severity, Severity::High);
    assert_eq!(evidence(&benign[0], "mode.before"), ["0755"]);
    assert_eq!(evidence(&benign[0], "mode.after"), ["0750"]);
    assert!(evidence(&benign[0], "sha256.before").is_empty());
    assert!(benign[0].summary.contains("re-permissioned"));

    let setuid = run("{}", &[chmod(0o100_755, 0o104_755, 0)]);
    assert_eq!(setuid[0].severity, Severity::Critical);
    assert_eq!(evidence(&setuid[0], "risk"), ["setuid/setgid bit added"]);

    let writable = run("{}", &[chmod(0o100_755, 0o100_777, 0)]);
    assert_eq!(writable[0].severity, Severity::Critical);
    assert_eq!(
        evidence(&writable[0], "risk"),
        ["group/world write permission added"]
    );

    let chown = run("{}", &[chmod(0o100_755, 0o100_755, 1000)]);
    assert_eq!(chown[0].severity, Severity::Critical);
    assert_eq!(evidence(&chown[0], "uid.after"), ["1000"]);
    assert_eq!(evidence(&chown[0], "risk"), ["owner changed from root"]);
}

#[test]
fn approved_hashes_and_ignored_paths_are_silent() {
    let settings = format!(
        r#"{{"approved_sha256": ["sha256:{}"], "ignore_paths": ["/etc/cni/net.d/*.tmp"]}}"#,
        H2.to_ascii_uppercase()
    );
    assert!(
        run(
            &settings,
            &[
                modified("e1", "/etc/docker/daemon.json"),
                modified("e2", "/etc/cni/net.d/10-calico.conflist.tmp"),
            ]
        )
        .is_empty()
    );
    // Another content is still reported, and so is a deletion.
    let mut other = modified("e3", "/etc/docker/daemon.json");
    if let EventBody::File(f) = &mut other.body {
        f.after = Some(state(H1, 1, T0));
    }
    let deleted = file(
        "e4",
        "/etc/docker/daemon.json",
        FileChange::Deleted,
        Some(state(H2, 120, T0)),
        None,
    );
    assert_eq!(
        rule_ids(&run(&settings, &[other, deleted])),
        [
            "runtime-tamper/daemon-config-changed",
            "runtime-tamper/daemon-config-changed"
        ]
    );
    // Timestomping to an approved content is still reported.
    let stomped = file(
        "e5",
        "/etc/docker/daemon.json",
        FileChange::Modified,
        Some(state(H1, 120, T0)),
        Some(state(H2, 120, T0)),
    );
    assert_eq!(
        rule_ids(&run(&settings, &[stomped])),
        ["runtime-tamper/inconsistent-change"]
    );
}

#[test]
fn classes_severities_and_rules_can_be_changed() {
    let settings = r#"{
        "orchestration_configs": ["/opt/cni/conf/"],
        "runtime_binaries": ["/opt/bin/runc"],
        "severities": {"orchestration-config": "HIGH", "runtime-binary": "medium"},
        "disabled_rules": ["runtime-tamper/daemon-config-changed"]
    }"#;
    let findings = run(
        settings,
        &[
            modified("e1", "/opt/cni/conf/10-x.conf"),
            modified("e2", "/etc/cni/net.d/10-x.conf"),
            modified("e3", "/opt/bin/runc"),
            modified("e4", "/usr/bin/runc"),
            modified("e5", "/etc/docker/daemon.json"),
        ],
    );
    let got = testing::rule_severities(&findings);
    assert_eq!(
        got,
        [
            (
                "runtime-tamper/orchestration-config-changed",
                Severity::High
            ),
            ("runtime-tamper/runtime-binary-changed", Severity::Medium),
        ]
    );
    assert_eq!(evidence(&findings[0], "pattern"), ["/opt/cni/conf/"]);
}

#[test]
fn settings_problems_are_all_reported_with_paths() {
    let mut detector = RuntimeTamper::default();
    let error = detector
        .configure(
            r#"{"runtime_binaries": ["usr/bin/runc", "/usr/bin/ok"], "static_pod_dirs": ["/etc/kubernetes/manifests"],
                "severities": {"runtime-binary": "urgent", "inconsistent": "nope"},
                "approved_sha256": ["abc"], "ignore_paths": ["/a/../b"], "disabled_rules": ["nope"]}"#,
        )
        .unwrap_err();
    let paths: Vec<&str> = error.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "runtime_binaries[0]",
            "severities.runtime-binary",
            "static_pod_dirs[0]",
            "severities.inconsistent",
            "approved_sha256[0]",
            "ignore_paths[0]",
            "disabled_rules[0]"
        ]
    );
    assert!(error.problems[6].message.contains("inconsistent-change"));

    let error = detector
        .configure(r#"{"severities": {"runtime_binary": "high"}, "paths": []}"#)
        .unwrap_err();
    let paths: Vec<&str> = error.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["paths", "severities.runtime_binary"]);

    assert!(detector.configure("").is_ok());
    assert_eq!(detector.config(), &Config::default());
}
