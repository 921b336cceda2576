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
    assert_eq!(info.subscribes, [EventKind::File, EventKind::Container]);
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
            "exec_allowed_images",
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

// ---- unexpected-exec (process events) ----

fn exec_event(binary: &str, args: &[&str], tty: Option<bool>) -> ProcessEvent {
    ProcessEvent {
        id: format!("p-{binary}"),
        time: T0,
        node: "node-1".into(),
        source: "ebpf".into(),
        pid: 4242,
        namespace_pid: 17,
        parent_pid: 4100,
        parent_name: "runc:[2:INIT]".into(),
        uid: 0,
        binary: binary.into(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        container: Some(ContainerRef {
            id: "c0ffee".repeat(10) + "abcd",
            name: "web".into(),
            image: "nginx:1.25".into(),
            pod: String::new(),
        }),
        container_tty: tty,
        ..ProcessEvent::default()
    }
}

fn run_exec(settings: &str, events: &[ProcessEvent]) -> Vec<Finding> {
    testing::configured::<RuntimeTamper>(settings).on_process_events(events)
}

#[test]
fn a_shell_exec_in_a_container_without_terminal_is_reported() {
    let findings = run_exec(
        "{}",
        &[exec_event("/bin/sh", &["sh", "-c", "id"], Some(false))],
    );
    assert_eq!(rule_ids(&findings), ["runtime-tamper/unexpected-exec"]);
    let f = &findings[0];
    assert_eq!(f.severity, Severity::High);
    // A shell, entered through the runtime (`docker exec`).
    assert_eq!(f.techniques, ["T1059.004", "T1609"]);
    assert_eq!(evidence(f, "binary"), ["/bin/sh"]);
    assert_eq!(evidence(f, "program"), ["sh"]);
    assert_eq!(evidence(f, "args"), ["sh -c id"]);
    assert_eq!(evidence(f, "class"), ["shell"]);
    assert_eq!(evidence(f, "pid"), ["4242"]);
    assert_eq!(evidence(f, "parent-pid"), ["4100"]);
    assert_eq!(evidence(f, "parent"), ["runc:[2:INIT]"]);
    assert_eq!(f.entities[0].kind, EntityKind::Container);
    assert_eq!(f.entities[0].name, "web");
    assert_eq!(f.event_ids, ["p-/bin/sh"]);
    assert!(
        f.summary.contains("container web (image nginx:1.25)"),
        "{}",
        f.summary
    );
}

#[test]
fn a_multi_call_binary_is_judged_by_the_program_it_runs() {
    // busybox runs its applets through /proc/self/exe, argv[0] naming one;
    // `docker exec C busybox sh` names it in argv[1].
    let applet = exec_event("/proc/self/exe", &["sh", "-c", "id"], Some(false));
    let called = exec_event(
        "/bin/busybox",
        &["busybox", "wget", "http://x"],
        Some(false),
    );
    let linked = exec_event("/bin/busybox", &["/bin/nc", "x", "80"], Some(false));
    // Not a shell: argv[1] of another program, an applet not judged.
    let env = exec_event("/usr/bin/env", &["env", "sh"], Some(false));
    let ls = exec_event("/bin/busybox", &["busybox", "ls", "sh"], Some(false));
    let findings = run_exec("{}", &[applet, called, linked, env, ls]);
    assert_eq!(findings.len(), 3, "{findings:?}");
    assert_eq!(evidence(&findings[0], "class"), ["shell"]);
    assert_eq!(evidence(&findings[0], "program"), ["sh"]);
    assert_eq!(evidence(&findings[0], "binary"), ["/proc/self/exe"]);
    assert!(
        findings[0]
            .summary
            .starts_with("Shell `sh` (file `/proc/self/exe`) (sh -c id) ran"),
        "{}",
        findings[0].summary
    );
    assert_eq!(evidence(&findings[1], "program"), ["wget"]);
    assert_eq!(evidence(&findings[1], "class"), ["network-tool"]);
    assert_eq!(evidence(&findings[2], "program"), ["nc"]);
}

#[test]
fn package_managers_and_network_tools_are_ingress_tool_transfer() {
    let mut curl = exec_event("/usr/bin/curl", &["curl", "http://x"], Some(false));
    curl.parent_name = "python3".into();
    let apt = exec_event(
        "/usr/bin/apt-get",
        &["apt-get", "install", "nmap"],
        Some(false),
    );
    let findings = run_exec("{}", &[curl, apt]);
    assert_eq!(findings.len(), 2);
    assert_eq!(
        findings[0].techniques,
        ["T1105"],
        "a child of the service itself"
    );
    assert_eq!(evidence(&findings[0], "class"), ["network-tool"]);
    assert_eq!(findings[1].techniques, ["T1105", "T1609"]);
    assert_eq!(evidence(&findings[1], "class"), ["package-manager"]);
}

#[test]
fn terminals_entrypoints_host_processes_and_other_binaries_are_not_judged() {
    let tty = exec_event("/bin/bash", &["bash"], Some(true));
    let unknown = exec_event("/bin/bash", &["bash"], None);
    let mut entrypoint = exec_event("/bin/sh", &["sh", "-c", "sleep 1"], Some(false));
    entrypoint.namespace_pid = 1;
    let mut host = exec_event("/bin/sh", &["sh"], Some(false));
    host.container = None;
    let other = exec_event("/usr/bin/python3", &["python3"], Some(false));
    // A name that only ends like a shell.
    let fish = exec_event("/usr/bin/fish-sh", &["fish-sh"], Some(false));
    assert!(run_exec("{}", &[tty, unknown, entrypoint, host, other, fish]).is_empty());
}

#[test]
fn allowed_images_and_the_disabled_rule_are_silent() {
    let e = exec_event("/bin/sh", &["sh"], Some(false));
    assert!(
        run_exec(
            r#"{"exec_allowed_images": ["nginx:*"]}"#,
            std::slice::from_ref(&e)
        )
        .is_empty()
    );
    assert!(
        run_exec(
            r#"{"exec_allowed_images": ["nginx:1.25"]}"#,
            std::slice::from_ref(&e)
        )
        .is_empty()
    );
    assert_eq!(
        run_exec(
            r#"{"exec_allowed_images": ["nginx:1.2"]}"#,
            std::slice::from_ref(&e)
        )
        .len(),
        1
    );
    assert!(
        run_exec(
            r#"{"disabled_rules": ["unexpected-exec"]}"#,
            std::slice::from_ref(&e)
        )
        .is_empty()
    );
    let error = RuntimeTamper::default()
        .configure(r#"{"exec_allowed_images": ["", "*"]}"#)
        .unwrap_err();
    let paths: Vec<&str> = error.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["exec_allowed_images[0]", "exec_allowed_images[1]"]);
}

#[test]
fn the_process_filter_names_every_judged_binary_in_containers_only() {
    let detector = testing::configured::<RuntimeTamper>("{}");
    let filter = detector.process_filter();
    assert!(filter.containers_only);
    for name in [
        "sh", "bash", "dash", "ash", "zsh", "apt", "apt-get", "dpkg", "yum", "dnf", "apk", "pip",
        "curl", "wget", "nc", "ncat", "socat", "nmap",
    ] {
        assert!(filter.binaries.iter().any(|b| b == name), "{name}");
    }
    // Container events only as the kind that governs process events.
    let set = detector.subscriptions();
    assert_eq!(set.container.unwrap().actions, [ContainerAction::Destroy]);
    let off = testing::configured::<RuntimeTamper>(r#"{"disabled_rules": ["unexpected-exec"]}"#);
    assert_eq!(off.process_filter().binaries, ["."]);
}

// ---- container-write (write process events) ----

fn write_event(path: &str, container: bool) -> ProcessEvent {
    let mut e = exec_event(
        "/bin/busybox",
        &["sh", "-c", "cat x > /w/runc"],
        Some(false),
    );
    e.id = format!("w-{path}");
    e.source = "file-integrity".into();
    e.action = "write".into();
    e.path = Some(path.into());
    e.namespace_pid = 1;
    if !container {
        e.container = None;
    }
    e
}

#[test]
fn a_container_writing_a_runtime_binary_is_an_escape_naming_the_writer() {
    let findings = run_exec("{}", &[write_event("/usr/bin/runc", true)]);
    assert_eq!(rule_ids(&findings), ["runtime-tamper/container-write"]);
    let f = &findings[0];
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.techniques, ["T1611", "T1554"]);
    assert_eq!(f.entities[0].kind, EntityKind::Container);
    assert_eq!(f.entities[0].name, "web");
    assert_eq!(f.entities[1].kind, EntityKind::File);
    assert_eq!(f.entities[1].id, "/usr/bin/runc");
    assert_eq!(evidence(f, "path"), ["/usr/bin/runc"]);
    assert_eq!(evidence(f, "class"), ["runtime-binary"]);
    assert_eq!(evidence(f, "binary"), ["/bin/busybox"]);
    assert_eq!(evidence(f, "pid"), ["4242"]);
    assert_eq!(evidence(f, "args"), ["sh -c cat x > /w/runc"]);
    assert_eq!(evidence(f, "image"), ["nginx:1.25"]);
    assert_eq!(f.event_ids, ["w-/usr/bin/runc"]);
    assert!(
        f.summary
            .contains("written by `/bin/busybox` (pid 4242) in container web"),
        "{}",
        f.summary
    );
}

#[test]
fn a_container_writing_daemon_json_is_at_least_high_and_orchestration_config_too() {
    let findings = run_exec(
        "{}",
        &[
            write_event("/etc/docker/daemon.json", true),
            write_event("/etc/cni/net.d/10-bridge.conf", true),
        ],
    );
    assert_eq!(findings.len(), 2);
    assert_eq!(findings[0].severity, Severity::High);
    assert_eq!(findings[0].techniques, ["T1611", "T1543.005", "T1562.001"]);
    // Medium by class, raised: a container has no business there at all.
    assert_eq!(findings[1].severity, Severity::High);
}

#[test]
fn host_writers_other_paths_and_the_disabled_rule_are_silent() {
    let host = write_event("/usr/bin/runc", false);
    let other = write_event("/etc/hostname", true);
    let hidden = write_event("/etc/kubernetes/manifests/.swp", true);
    assert!(run_exec("{}", &[host, other, hidden]).is_empty());
    let e = write_event("/usr/bin/runc", true);
    assert!(
        run_exec(
            r#"{"disabled_rules": ["container-write"]}"#,
            std::slice::from_ref(&e)
        )
        .is_empty()
    );
    assert!(
        run_exec(
            r#"{"ignore_paths": ["/usr/bin/runc"]}"#,
            std::slice::from_ref(&e)
        )
        .is_empty()
    );
    // A write is never judged as an exec, and the exec rule off leaves writes on.
    let only_writes = run_exec(
        r#"{"disabled_rules": ["unexpected-exec"]}"#,
        std::slice::from_ref(&e),
    );
    assert_eq!(rule_ids(&only_writes), ["runtime-tamper/container-write"]);
}

#[test]
fn the_process_filter_asks_for_writes_unless_the_rule_is_off() {
    assert!(
        testing::configured::<RuntimeTamper>("{}")
            .process_filter()
            .writes
    );
    let off = testing::configured::<RuntimeTamper>(r#"{"disabled_rules": ["container-write"]}"#);
    assert!(!off.process_filter().writes);
    let execs_off =
        testing::configured::<RuntimeTamper>(r#"{"disabled_rules": ["unexpected-exec"]}"#);
    let f = execs_off.process_filter();
    assert!(f.writes && f.containers_only);
    assert_eq!(f.binaries, ["."]);
}
