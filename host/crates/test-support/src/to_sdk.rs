//! Copies host model values into the plugin SDK's types, so a plugin's
//! logic can run natively on exactly the events the host would lower into
//! the component (the parity test and the native benchmark baseline).
//! The copy mirrors what the Wasm boundary does: every string is copied.

use vigil_core::model as h;
use vigil_plugin_sdk as s;

macro_rules! enum_map {
    ($fn:ident, $from:ty, $to:ty, [$($v:ident),* $(,)?]) => {
        pub fn $fn(x: $from) -> $to {
            match x { $(<$from>::$v => <$to>::$v,)* }
        }
    };
}

enum_map!(
    action,
    h::ContainerAction,
    s::ContainerAction,
    [
        Create,
        Start,
        Restart,
        Stop,
        Die,
        Kill,
        Destroy,
        Pause,
        Unpause,
        ExecCreate,
        ExecStart,
        ExecDie,
        Oom,
        Rename,
        Update,
        Attach,
        NetworkConnect,
        NetworkDisconnect,
        Running,
        Other
    ]
);
enum_map!(
    role,
    h::ContainerRole,
    s::ContainerRole,
    [Main, Init, Ephemeral]
);
enum_map!(protocol, h::Protocol, s::Protocol, [Tcp, Udp]);
enum_map!(
    direction,
    h::Direction,
    s::Direction,
    [Inbound, Outbound, Listen, Unknown]
);
enum_map!(
    file_change,
    h::FileChange,
    s::FileChange,
    [Created, Modified, Metadata, Deleted]
);
enum_map!(
    severity_back,
    s::Severity,
    h::Severity,
    [Info, Low, Medium, High, Critical]
);
enum_map!(
    entity_kind_back,
    s::EntityKind,
    h::EntityKind,
    [Container, Pod, Node, File, Image, User, Address]
);

fn kv(x: &h::KeyValue) -> s::KeyValue {
    s::KeyValue {
        key: x.key.clone(),
        value: x.value.clone(),
    }
}

fn security(x: &h::ContainerSecurity) -> s::ContainerSecurity {
    s::ContainerSecurity {
        network_mode: x.network_mode.clone(),
        pid_mode: x.pid_mode.clone(),
        ipc_mode: x.ipc_mode.clone(),
        userns_mode: x.userns_mode.clone(),
        cgroupns_mode: x.cgroupns_mode.clone(),
        uts_mode: x.uts_mode.clone(),
        privileged: x.privileged,
        cap_add: x.cap_add.clone(),
        cap_drop: x.cap_drop.clone(),
        devices: x.devices.clone(),
        mounts: x
            .mounts
            .iter()
            .map(|m| s::Mount {
                source: m.source.clone(),
                destination: m.destination.clone(),
                read_only: m.read_only,
                kind: m.kind.clone(),
            })
            .collect(),
        user: x.user.clone(),
        allow_privilege_escalation: x.allow_privilege_escalation,
        read_only_rootfs: x.read_only_rootfs,
        seccomp_profile: x.seccomp_profile.clone(),
        apparmor_profile: x.apparmor_profile.clone(),
        log_driver: x.log_driver.clone(),
        restart_policy: x.restart_policy.clone(),
    }
}

fn container_ref(x: &h::ContainerRef) -> s::ContainerRef {
    s::ContainerRef {
        id: x.id.clone(),
        name: x.name.clone(),
        image: x.image.clone(),
        pod: x.pod.clone(),
    }
}

fn file_state(x: &h::FileState) -> s::FileState {
    s::FileState {
        sha256: x.sha256.clone(),
        size: x.size,
        mode: x.mode,
        uid: x.uid,
        gid: x.gid,
        mtime: x.mtime,
    }
}

pub fn event(e: &h::Event) -> s::Event {
    let body = match &e.body {
        h::EventBody::Container(c) => s::EventBody::Container(s::ContainerEvent {
            action: action(c.action),
            raw_action: c.raw_action.clone(),
            id: c.id.clone(),
            name: c.name.clone(),
            image: c.image.clone(),
            image_digest: c.image_digest.clone(),
            runtime: c.runtime.clone(),
            labels: c.labels.iter().map(kv).collect(),
            security: c.security.as_ref().map(security),
            actor: c.actor.clone(),
            exit_code: c.exit_code,
            signal: c.signal.clone(),
            exec: c.exec.as_ref().map(|x| s::ExecInfo {
                command: x.command.clone(),
                user: x.user.clone(),
                privileged: x.privileged,
                tty: x.tty,
            }),
            network: c.network.clone(),
            lifetime_ms: c.lifetime_ms,
        }),
        h::EventBody::Kubernetes(k) => s::EventBody::Kubernetes(s::KubernetesEvent {
            verb: k.verb.clone(),
            resource: k.resource.clone(),
            subresource: k.subresource.clone(),
            api_group: k.api_group.clone(),
            namespace: k.namespace.clone(),
            name: k.name.clone(),
            user: k.user.clone(),
            groups: k.groups.clone(),
            stage: k.stage.clone(),
            response_code: k.response_code,
            request_uri: k.request_uri.clone(),
            source_ips: k.source_ips.clone(),
            user_agent: k.user_agent.clone(),
            audit_id: k.audit_id.clone(),
            pod: k.pod.as_ref().map(|p| s::PodSpec {
                host_network: p.host_network,
                host_pid: p.host_pid,
                host_ipc: p.host_ipc,
                service_account: p.service_account.clone(),
                node_name: p.node_name.clone(),
                containers: p
                    .containers
                    .iter()
                    .map(|c| s::PodContainer {
                        role: role(c.role),
                        name: c.name.clone(),
                        image: c.image.clone(),
                        security: security(&c.security),
                    })
                    .collect(),
            }),
            owner: k.owner.as_ref().map(|o| s::OwnerRef {
                kind: o.kind.clone(),
                name: o.name.clone(),
            }),
        }),
        h::EventBody::Network(n) => s::EventBody::Network(s::NetworkEvent {
            protocol: protocol(n.protocol),
            local_address: n.local_address.clone(),
            local_port: n.local_port,
            remote_address: n.remote_address.clone(),
            remote_port: n.remote_port,
            direction: direction(n.direction),
            state: n.state.clone(),
            container: n.container.as_ref().map(container_ref),
            host_network: n.host_network,
        }),
        h::EventBody::File(f) => s::EventBody::File(s::FileEvent {
            path: f.path.clone(),
            change: file_change(f.change),
            before: f.before.as_ref().map(file_state),
            after: f.after.as_ref().map(file_state),
        }),
    };
    s::Event {
        id: e.id.clone(),
        time: e.time,
        node: e.node.clone(),
        source: e.source.clone(),
        body,
    }
}

/// A finding from the SDK back into the host's type, for comparison.
pub fn finding_back(f: s::Finding) -> h::Finding {
    h::Finding {
        rule_id: f.rule_id,
        title: f.title,
        severity: severity_back(f.severity),
        summary: f.summary,
        techniques: f.techniques,
        entities: f
            .entities
            .into_iter()
            .map(|e| h::Entity {
                kind: entity_kind_back(e.kind),
                id: e.id,
                name: e.name,
            })
            .collect(),
        evidence: f
            .evidence
            .into_iter()
            .map(|kv| h::KeyValue {
                key: kv.key,
                value: kv.value,
            })
            .collect(),
        event_ids: f.event_ids,
    }
}

enum_map!(
    severity,
    h::Severity,
    s::Severity,
    [Info, Low, Medium, High, Critical]
);
enum_map!(
    entity_kind,
    h::EntityKind,
    s::EntityKind,
    [Container, Pod, Node, File, Image, User, Address]
);
enum_map!(
    verdict,
    h::EntityVerdict,
    s::EntityVerdict,
    [NotChecked, Unverified, Verified]
);

/// A host finding in the SDK's type.
pub fn finding(f: &h::Finding) -> s::Finding {
    s::Finding {
        rule_id: f.rule_id.clone(),
        title: f.title.clone(),
        severity: severity(f.severity),
        summary: f.summary.clone(),
        techniques: f.techniques.clone(),
        entities: f
            .entities
            .iter()
            .map(|e| s::Entity {
                kind: entity_kind(e.kind),
                id: e.id.clone(),
                name: e.name.clone(),
            })
            .collect(),
        evidence: f.evidence.iter().map(kv).collect(),
        event_ids: f.event_ids.clone(),
    }
}

/// A finding handed on (`correlate`) in the SDK's type: what
/// `on-findings` would have received.
pub fn finding_event(e: &h::FindingEvent) -> s::FindingEvent {
    s::FindingEvent {
        id: e.id.clone(),
        plugin: e.plugin.clone(),
        plugin_version: e.plugin_version.clone(),
        time: e.time,
        node: e.node.clone(),
        depth: e.depth,
        finding: finding(&e.finding),
        verdicts: e.verdicts.iter().copied().map(verdict).collect(),
    }
}
