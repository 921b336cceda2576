//! A corpus of events covering every container-escape rule: the Falco
//! audit fixtures plus synthetic Docker containers.

use vigil_core::model::{
    ContainerAction, ContainerEvent, ContainerSecurity, Event, EventBody, Mount,
};
use vigil_normalize::{Format, Origin, for_each_record};

use crate::fixtures::falco_dir;

/// Every Falco fixture plus synthetic Docker containers covering each rule.
pub fn corpus() -> Vec<Event> {
    let mut events = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(falco_dir())
        .expect("the Falco fixtures")
        .map(|e| e.expect("a Falco fixture").path())
        .collect();
    files.sort();
    let origin = Origin {
        node: "n",
        source: "replay",
    };
    for f in files {
        for_each_record(
            "f",
            &std::fs::read(&f).expect("read a Falco fixture"),
            Format::Auto,
            &origin,
            |e| events.append(e),
            |_| {},
        );
    }
    let docker = |i: usize, sec: ContainerSecurity| Event {
        id: format!("d{i}"),
        time: 1_700_000_000_000_000_000 + i as u64,
        node: "n".into(),
        source: "docker".into(),
        body: EventBody::Container(ContainerEvent {
            action: ContainerAction::Start,
            id: format!("c{i}"),
            name: format!("name{i}"),
            image: "busybox".into(),
            security: Some(sec),
            ..Default::default()
        }),
    };
    let mount = |src: &str| Mount {
        source: src.into(),
        destination: "/host".into(),
        read_only: false,
        kind: "bind".into(),
    };
    let cases = [
        ContainerSecurity {
            network_mode: "host".into(),
            ..Default::default()
        },
        ContainerSecurity {
            pid_mode: "host".into(),
            ipc_mode: "host".into(),
            ..Default::default()
        },
        ContainerSecurity {
            privileged: true,
            ..Default::default()
        },
        ContainerSecurity {
            cap_add: vec!["SYS_ADMIN".into(), "NET_RAW".into()],
            ..Default::default()
        },
        ContainerSecurity {
            mounts: vec![mount("/var/run/docker.sock"), mount("/etc")],
            ..Default::default()
        },
        ContainerSecurity {
            mounts: vec![mount("/srv/data")],
            ..Default::default()
        },
        ContainerSecurity::default(),
        ContainerSecurity {
            log_driver: "none".into(),
            ..Default::default()
        },
        ContainerSecurity {
            seccomp_profile: "unconfined".into(),
            apparmor_profile: "unconfined".into(),
            ..Default::default()
        },
        // Folded into the privileged finding's evidence.
        ContainerSecurity {
            privileged: true,
            apparmor_profile: "unconfined".into(),
            ..Default::default()
        },
        ContainerSecurity {
            cgroupns_mode: "host".into(),
            cap_add: vec!["SYS_ADMIN".into()],
            ..Default::default()
        },
        // The cgroup v1 default: not reported by default.
        ContainerSecurity {
            cgroupns_mode: "host".into(),
            ..Default::default()
        },
        ContainerSecurity {
            devices: vec!["/dev/fuse".into(), "/dev/sda".into()],
            ..Default::default()
        },
        ContainerSecurity {
            devices: vec!["/dev/net/tun".into()],
            ..Default::default()
        },
    ];
    events.extend(cases.into_iter().enumerate().map(|(i, s)| docker(i, s)));
    events
}

/// A live-like mix without pod specs: container lifecycle events (one in
/// four inspected), sockets, file changes and audit events of the common
/// kind (reads and writes that carry no pod spec).
pub fn typical(n: usize) -> Vec<Event> {
    use vigil_core::model::{
        Direction, FileChange, FileEvent, FileState, KeyValue, KubernetesEvent, NetworkEvent,
        Protocol,
    };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("ev-{i}");
        let time = 1_700_000_000_000_000_000 + i as u64;
        let body = match i % 8 {
            0 => EventBody::Container(ContainerEvent {
                action: ContainerAction::Start,
                raw_action: "start".into(),
                id: format!("{:064x}", i),
                name: format!("web-{i}"),
                image: "registry.local/shop/web:1.4.2".into(),
                labels: vec![
                    KeyValue::new("com.docker.compose.project", "shop"),
                    KeyValue::new("com.docker.compose.service", "web"),
                ],
                security: Some(ContainerSecurity {
                    network_mode: "bridge".into(),
                    mounts: vec![Mount {
                        source: "shop_data".into(),
                        destination: "/data".into(),
                        read_only: false,
                        kind: "volume".into(),
                    }],
                    log_driver: "json-file".into(),
                    restart_policy: "unless-stopped".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            1 | 2 => EventBody::Container(ContainerEvent {
                action: if i % 8 == 1 {
                    ContainerAction::Die
                } else {
                    ContainerAction::Destroy
                },
                raw_action: "die".into(),
                id: format!("{:064x}", i),
                name: format!("job-{i}"),
                image: "busybox:1.36".into(),
                exit_code: Some(0),
                lifetime_ms: Some(1200),
                ..Default::default()
            }),
            3 | 4 => EventBody::Network(NetworkEvent {
                protocol: Protocol::Tcp,
                local_address: "172.17.0.5".into(),
                local_port: 40_000 + (i % 20_000) as u16,
                remote_address: "10.0.3.7".into(),
                remote_port: 5432,
                direction: Direction::Outbound,
                state: "ESTABLISHED".into(),
                container: Some(vigil_core::model::ContainerRef {
                    id: format!("{:064x}", i),
                    name: "web".into(),
                    image: "registry.local/shop/web:1.4.2".into(),
                    pod: String::new(),
                }),
                host_network: false,
            }),
            5 => EventBody::File(FileEvent {
                path: "/etc/docker/daemon.json".into(),
                change: FileChange::Modified,
                before: Some(FileState {
                    sha256: "a".repeat(64),
                    size: 120,
                    mode: 0o100644,
                    uid: 0,
                    gid: 0,
                    mtime: time - 1_000_000_000,
                }),
                after: Some(FileState {
                    sha256: "b".repeat(64),
                    size: 131,
                    mode: 0o100644,
                    uid: 0,
                    gid: 0,
                    mtime: time,
                }),
            }),
            _ => EventBody::Kubernetes(KubernetesEvent {
                verb: "get".into(),
                resource: "configmaps".into(),
                namespace: "shop".into(),
                name: "web-config".into(),
                user: "system:serviceaccount:shop:web".into(),
                groups: vec![
                    "system:serviceaccounts".into(),
                    "system:authenticated".into(),
                ],
                stage: "ResponseComplete".into(),
                response_code: Some(200),
                request_uri: "/api/v1/namespaces/shop/configmaps/web-config".into(),
                source_ips: vec!["10.0.1.12".into()],
                user_agent: "web/v1.4.2".into(),
                audit_id: format!("{i:032x}"),
                ..Default::default()
            }),
        };
        out.push(Event {
            id,
            time,
            node: "node-a".into(),
            source: "bench".into(),
            body,
        });
    }
    out
}
