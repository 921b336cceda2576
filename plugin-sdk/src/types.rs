//! The WIT data model (`vigil:detector/types@0.1.2`) as Rust types, plus
//! small conveniences: constructors, `as_str`/`Display` for the enums, and
//! `Default` for the large records so tests can fill in only what matters.
//!
//! Every type derives `Debug`, `Clone`, `PartialEq`, `Eq` and `Hash`; the
//! enums also `Copy` and `Ord`. Field names are the WIT names in snake case.
//! Strings the source did not know are empty, never invented.

use core::fmt;

pub use crate::bindings::vigil::detector::log::Level;
pub use crate::bindings::vigil::detector::state::StateError;
pub use crate::bindings::vigil::detector::threat_intel::IpMatch;
pub use crate::bindings::vigil::detector::types::{
    ConfigError, ConfigProblem, ContainerAction, ContainerEvent, ContainerRef, ContainerRole,
    ContainerSecurity, Direction, Entity, EntityKind, EntityVerdict, Event, EventBody, EventKind,
    ExecInfo, FileChange, FileEvent, FileState, Finding, FindingEvent, KeyValue, KubernetesEvent,
    Mount, NetworkEvent, OwnerRef, PluginInfo, PodContainer, PodSpec, Protocol, SettingInfo,
    Severity, Timestamp,
};
pub use crate::bindings::vigil::detector::types::{
    ContainerFilter, FileFilter, KubernetesFilter, NetworkFilter, PodSpecUse, SubscriptionSet,
};

impl KeyValue {
    /// A key and its value.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

impl Entity {
    /// An entity; `name` may be empty when it would repeat the id.
    pub fn new(kind: EntityKind, id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind,
            id: id.into(),
            name: name.into(),
        }
    }
}

impl ConfigProblem {
    /// A problem at a JSON path (`allowlist.images[2]`; empty for the whole document).
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl ConfigError {
    /// A refusal with a single problem.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            problems: vec![ConfigProblem::new(path, message)],
        }
    }
}

impl From<ConfigProblem> for ConfigError {
    fn from(problem: ConfigProblem) -> Self {
        Self {
            problems: vec![problem],
        }
    }
}

impl Event {
    /// An event with an empty `node` and `source`.
    pub fn new(id: impl Into<String>, time: Timestamp, body: EventBody) -> Self {
        Self {
            id: id.into(),
            time,
            node: String::new(),
            source: String::new(),
            body,
        }
    }

    /// The kind of the event, from its body.
    #[must_use]
    pub fn kind(&self) -> EventKind {
        match self.body {
            EventBody::Container(_) => EventKind::Container,
            EventBody::Kubernetes(_) => EventKind::Kubernetes,
            EventBody::Network(_) => EventKind::Network,
            EventBody::File(_) => EventKind::File,
        }
    }
}

impl FindingEvent {
    /// The entities of the finding the host verified for the plugin that
    /// reported it (containers and pods it was shown), with their full ids.
    /// Only these are verified again when a finding of yours names them.
    pub fn verified_entities(&self) -> impl Iterator<Item = &Entity> {
        self.finding
            .entities
            .iter()
            .zip(&self.verdicts)
            .filter(|(_, v)| **v == EntityVerdict::Verified)
            .map(|(e, _)| e)
    }
}

/// Generates `as_str` (the WIT spelling) and `Display` for a WIT enum.
macro_rules! wit_names {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// The WIT spelling of this case.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wit_names!(Severity { Info => "info", Low => "low", Medium => "medium", High => "high", Critical => "critical" });
wit_names!(EventKind { Container => "container", Kubernetes => "kubernetes", Network => "network", File => "file" });
wit_names!(EntityKind {
    Container => "container", Pod => "pod", Node => "node", File => "file",
    Image => "image", User => "user", Address => "address",
});
wit_names!(EntityVerdict { NotChecked => "not-checked", Unverified => "unverified", Verified => "verified" });
wit_names!(ContainerRole { Main => "main", Init => "init", Ephemeral => "ephemeral" });
wit_names!(Level { Trace => "trace", Debug => "debug", Info => "info", Warn => "warn", Error => "error" });
wit_names!(ContainerAction {
    Create => "create", Start => "start", Restart => "restart", Stop => "stop", Die => "die",
    Kill => "kill", Destroy => "destroy", Pause => "pause", Unpause => "unpause",
    ExecCreate => "exec-create", ExecStart => "exec-start", ExecDie => "exec-die", Oom => "oom",
    Rename => "rename", Update => "update", Attach => "attach",
    NetworkConnect => "network-connect", NetworkDisconnect => "network-disconnect",
    Running => "running", Other => "other",
});

/// An empty configuration: every mode empty (engine default), nothing added,
/// nothing mounted, not privileged.
impl Default for ContainerSecurity {
    fn default() -> Self {
        Self {
            network_mode: String::new(),
            pid_mode: String::new(),
            ipc_mode: String::new(),
            userns_mode: String::new(),
            cgroupns_mode: String::new(),
            uts_mode: String::new(),
            privileged: false,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            devices: Vec::new(),
            mounts: Vec::new(),
            user: String::new(),
            allow_privilege_escalation: None,
            read_only_rootfs: false,
            seccomp_profile: String::new(),
            apparmor_profile: String::new(),
            log_driver: String::new(),
            restart_policy: String::new(),
        }
    }
}

/// Every string empty, action [`ContainerAction::Other`], no security section.
impl Default for ContainerEvent {
    fn default() -> Self {
        Self {
            action: ContainerAction::Other,
            raw_action: String::new(),
            id: String::new(),
            name: String::new(),
            image: String::new(),
            image_digest: String::new(),
            runtime: String::new(),
            labels: Vec::new(),
            security: None,
            actor: String::new(),
            exit_code: None,
            signal: String::new(),
            exec: None,
            network: String::new(),
            lifetime_ms: None,
        }
    }
}

/// Every string and list empty, no pod, no owner, no response code.
impl Default for KubernetesEvent {
    fn default() -> Self {
        Self {
            verb: String::new(),
            resource: String::new(),
            subresource: String::new(),
            api_group: String::new(),
            namespace: String::new(),
            name: String::new(),
            user: String::new(),
            groups: Vec::new(),
            stage: String::new(),
            response_code: None,
            request_uri: String::new(),
            source_ips: Vec::new(),
            user_agent: String::new(),
            audit_id: String::new(),
            pod: None,
            owner: None,
        }
    }
}

/// No host namespaces, no service account, not scheduled, no containers.
impl Default for PodSpec {
    fn default() -> Self {
        Self {
            host_network: false,
            host_pid: false,
            host_ipc: false,
            service_account: String::new(),
            node_name: String::new(),
            containers: Vec::new(),
        }
    }
}
