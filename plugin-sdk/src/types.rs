//! The WIT data model (`vigil:detector/types@0.1.3`) as Rust types, plus
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
pub use crate::bindings::vigil::detector::types::{
    Heartbeat, HeartbeatCounter, HeartbeatPlugin, HeartbeatSource,
};
pub use crate::bindings::vigil::detector::types::{ProcessEvent, ProcessFilter};
pub use crate::bindings::vigil::detector::types::{
    ServiceEvent, ServiceFilter, ServiceMode, ServiceSpec, SwarmObject,
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
wit_names!(ServiceMode { Replicated => "replicated", Global => "global", ReplicatedJob => "replicated-job", GlobalJob => "global-job" });
wit_names!(SwarmObject { Service => "service", Node => "node", Secret => "secret", Config => "config" });
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

/// Nothing known: every string and list empty, version 0, one replica.
impl Default for ServiceSpec {
    fn default() -> Self {
        Self {
            id: String::new(),
            name: String::new(),
            version: 0,
            image: String::new(),
            mode: ServiceMode::Replicated,
            replicas: Some(1),
            networks: Vec::new(),
            security: ContainerSecurity::default(),
            labels: Vec::new(),
            created_at: 0,
            updated_at: 0,
        }
    }
}

/// A service `update` with nothing known: no spec, no changes.
impl Default for ServiceEvent {
    fn default() -> Self {
        Self {
            id: String::new(),
            time: 0,
            node: String::new(),
            source: String::new(),
            object: SwarmObject::Service,
            action: String::new(),
            object_id: String::new(),
            name: String::new(),
            service: None,
            changes: Vec::new(),
            actor: String::new(),
        }
    }
}

impl ServiceSpec {
    /// The value of the service label `key`, if set.
    #[must_use]
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.key == key)
            .map(|l| l.value.as_str())
    }
}

impl ServiceEvent {
    /// The value the engine reported for the change `key` (`replicas.new` …).
    #[must_use]
    pub fn change(&self, key: &str) -> Option<&str> {
        self.changes
            .iter()
            .find(|c| c.key == key)
            .map(|c| c.value.as_str())
    }
}

/// An `exec` of nothing known on the host: no binary, no arguments, no
/// container.
impl Default for ProcessEvent {
    fn default() -> Self {
        Self {
            id: String::new(),
            time: 0,
            node: String::new(),
            source: String::new(),
            action: "exec".to_owned(),
            pid: 0,
            namespace_pid: 0,
            parent_pid: 0,
            parent_name: String::new(),
            uid: 0,
            binary: String::new(),
            args: Vec::new(),
            args_truncated: false,
            container: None,
            container_tty: None,
            path: None,
        }
    }
}

/// Multi-call binaries that, called by their own name, run the program
/// their first argument names (`busybox sh -c …`), as busybox does: see
/// [`ProcessEvent::program_names`].
pub const MULTI_CALL_BINARIES: &[&str] = &["busybox", "toybox"];

impl ProcessEvent {
    /// The executed file's name: the last component of `binary` (`sh` for
    /// `/bin/sh`).
    #[must_use]
    pub fn binary_name(&self) -> &str {
        last_component(&self.binary)
    }

    /// The names the program goes by, as the host's process filter matches
    /// them (`binaries`): the executed file's name, then the last component
    /// of `argv[0]`, then — when `argv[0]` names a multi-call binary
    /// ([`MULTI_CALL_BINARIES`]) — that of `argv[1]`, the program it runs.
    /// Empty names are left out; a name may repeat.
    ///
    /// A multi-call binary is one file under many names: busybox runs its
    /// applets through `/proc/self/exe` with `argv[0]` `sh`, is called
    /// through a symlink `sh`, or as `busybox sh`. Judging by any of the
    /// names only widens what a rule sees.
    pub fn program_names(&self) -> impl Iterator<Item = &str> {
        let argv0 = self.args.first().map(|a| last_component(a));
        let applet = argv0
            .filter(|n| MULTI_CALL_BINARIES.contains(n))
            .and_then(|_| self.args.get(1))
            .map(|a| last_component(a));
        [Some(self.binary_name()), argv0, applet]
            .into_iter()
            .flatten()
            .filter(|n| !n.is_empty())
    }

    /// The watched file a `write` event is about (`None` for an `exec`):
    /// the process wrote to it, as the `file-integrity` source saw.
    #[must_use]
    pub fn written_path(&self) -> Option<&str> {
        if self.action == "write" {
            self.path.as_deref()
        } else {
            None
        }
    }
}

/// A heartbeat of nothing: no node, no plugins, no sources, no counters
/// (for tests to fill in what matters).
impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            node: String::new(),
            version: String::new(),
            boot: 0,
            seq: 0,
            time: 0,
            interval_ms: 0,
            plugins: Vec::new(),
            sources: Vec::new(),
            counters: Vec::new(),
        }
    }
}

impl Heartbeat {
    /// Whether the node's source `name` runs: `None` when the heartbeat
    /// does not name it.
    #[must_use]
    pub fn source_running(&self, name: &str) -> Option<bool> {
        self.sources
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.running)
    }

    /// The node's counter `name` (since it booted), when the heartbeat has it.
    #[must_use]
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.counters
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.value)
    }

    /// The digest the node gives for its plugin `name`, when it runs one.
    #[must_use]
    pub fn plugin_digest(&self, name: &str) -> Option<&str> {
        self.plugins
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.digest.as_str())
    }
}

fn last_component(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or_default()
}
