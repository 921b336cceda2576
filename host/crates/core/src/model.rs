//! The event model: the host's own Rust types for the WIT `types` interface.
//!
//! These types are handed to wasmtime's `bindgen!` through `with`, so the
//! host normalises straight into the shapes a plugin receives: no copy
//! between an internal model and the contract on the hot path. The
//! `ComponentType`/`Lift`/`Lower` derives are checked against the WIT when a
//! plugin is linked, so a drift between this file and `wit/types.wit` fails
//! at load (and in the test suite), never silently.
//!
//! The serde shape (snake_case fields, `kind`-tagged bodies) is Vigil's
//! native JSON event format, read by `vigil replay --format vigil`.

mod finding;
mod finding_event;
mod heartbeat;
mod linker;
pub mod packed;
mod process;
mod subscription;
mod swarm;

pub use finding::{
    ConfigError, ConfigProblem, Entity, EntityKind, Finding, PluginInfo, SettingInfo, Severity,
};
pub use finding_event::{EntityVerdict, FindingEvent};
pub use heartbeat::{Heartbeat, HeartbeatCounter, HeartbeatPlugin, HeartbeatSource};
pub use linker::{Host, HostWithStore, add_to_linker};
pub use process::{
    MULTI_CALL_BINARIES, PROCESS_BODY_KIND, PROCESS_EXEC, PROCESS_WRITE, ParsedProcessRecord,
    ProcessEvent, ProcessFilter, ProcessRecord, read_process_record,
};
pub use subscription::{
    ContainerFilter, FileFilter, KubernetesFilter, NetworkFilter, PodSpecUse, SubscriptionSet,
};
pub use swarm::{Batch, ServiceEvent, ServiceFilter, ServiceMode, ServiceSpec, SwarmObject};

use serde::{Deserialize, Serialize};
use wasmtime::component::{ComponentType, Lift, Lower};

/// Nanoseconds since the Unix epoch.
pub type Timestamp = u64;

/// A key and a value (labels, evidence, log fields).
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
pub struct KeyValue {
    /// The key.
    #[component(name = "key")]
    pub key: String,
    /// The value.
    #[component(name = "value")]
    pub value: String,
}

impl KeyValue {
    /// Builds a pair from anything string-like.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// The kind of an event, used for subscriptions and routing.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash,
)]
#[component(enum)]
#[repr(u8)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    #[component(name = "container")]
    Container,
    #[component(name = "kubernetes")]
    Kubernetes,
    #[component(name = "network")]
    Network,
    #[component(name = "file")]
    File,
}

impl EventKind {
    /// Every kind, for plugins and tests that need them all.
    pub const ALL: [EventKind; 4] = [Self::Container, Self::Kubernetes, Self::Network, Self::File];

    /// The kind's name as written in WIT and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Container => "container",
            Self::Kubernetes => "kubernetes",
            Self::Network => "network",
            Self::File => "file",
        }
    }
}

/// One mount of a container.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
#[serde(default)]
pub struct Mount {
    #[component(name = "source")]
    pub source: String,
    #[component(name = "destination")]
    pub destination: String,
    #[component(name = "read-only")]
    pub read_only: bool,
    #[component(name = "kind")]
    pub kind: String,
}

/// Security-relevant configuration of one container (see `wit/types.wit`).
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
#[serde(default)]
pub struct ContainerSecurity {
    #[component(name = "network-mode")]
    pub network_mode: String,
    #[component(name = "pid-mode")]
    pub pid_mode: String,
    #[component(name = "ipc-mode")]
    pub ipc_mode: String,
    #[component(name = "userns-mode")]
    pub userns_mode: String,
    #[component(name = "cgroupns-mode")]
    pub cgroupns_mode: String,
    #[component(name = "uts-mode")]
    pub uts_mode: String,
    #[component(name = "privileged")]
    pub privileged: bool,
    #[component(name = "cap-add")]
    pub cap_add: Vec<String>,
    #[component(name = "cap-drop")]
    pub cap_drop: Vec<String>,
    #[component(name = "devices")]
    pub devices: Vec<String>,
    #[component(name = "mounts")]
    pub mounts: Vec<Mount>,
    #[component(name = "user")]
    pub user: String,
    #[component(name = "allow-privilege-escalation")]
    pub allow_privilege_escalation: Option<bool>,
    #[component(name = "read-only-rootfs")]
    pub read_only_rootfs: bool,
    #[component(name = "seccomp-profile")]
    pub seccomp_profile: String,
    #[component(name = "apparmor-profile")]
    pub apparmor_profile: String,
    #[component(name = "log-driver")]
    pub log_driver: String,
    #[component(name = "restart-policy")]
    pub restart_policy: String,
}

/// What happened to a container.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
#[component(enum)]
#[repr(u8)]
#[serde(rename_all = "kebab-case")]
pub enum ContainerAction {
    #[component(name = "create")]
    Create,
    #[component(name = "start")]
    Start,
    #[component(name = "restart")]
    Restart,
    #[component(name = "stop")]
    Stop,
    #[component(name = "die")]
    Die,
    #[component(name = "kill")]
    Kill,
    #[component(name = "destroy")]
    Destroy,
    #[component(name = "pause")]
    Pause,
    #[component(name = "unpause")]
    Unpause,
    #[component(name = "exec-create")]
    ExecCreate,
    #[component(name = "exec-start")]
    ExecStart,
    #[component(name = "exec-die")]
    ExecDie,
    #[component(name = "oom")]
    Oom,
    #[component(name = "rename")]
    Rename,
    #[component(name = "update")]
    Update,
    #[component(name = "attach")]
    Attach,
    #[component(name = "network-connect")]
    NetworkConnect,
    #[component(name = "network-disconnect")]
    NetworkDisconnect,
    #[component(name = "running")]
    Running,
    #[component(name = "other")]
    #[default]
    Other,
}

/// A command run inside a container.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
#[serde(default)]
pub struct ExecInfo {
    #[component(name = "command")]
    pub command: String,
    #[component(name = "user")]
    pub user: String,
    #[component(name = "privileged")]
    pub privileged: bool,
    #[component(name = "tty")]
    pub tty: bool,
}

/// A container lifecycle event.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
#[serde(default)]
pub struct ContainerEvent {
    #[component(name = "action")]
    pub action: ContainerAction,
    #[component(name = "raw-action")]
    pub raw_action: String,
    #[component(name = "id")]
    pub id: String,
    #[component(name = "name")]
    pub name: String,
    #[component(name = "image")]
    pub image: String,
    #[component(name = "image-digest")]
    pub image_digest: String,
    #[component(name = "runtime")]
    pub runtime: String,
    #[component(name = "labels")]
    pub labels: Vec<KeyValue>,
    #[component(name = "security")]
    pub security: Option<ContainerSecurity>,
    #[component(name = "actor")]
    pub actor: String,
    #[component(name = "exit-code")]
    pub exit_code: Option<i32>,
    #[component(name = "signal")]
    pub signal: String,
    #[component(name = "exec")]
    pub exec: Option<ExecInfo>,
    #[component(name = "network")]
    pub network: String,
    #[component(name = "lifetime-ms")]
    pub lifetime_ms: Option<u64>,
}

/// Which list of a pod spec a container comes from.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
#[component(enum)]
#[repr(u8)]
#[serde(rename_all = "snake_case")]
pub enum ContainerRole {
    #[component(name = "main")]
    #[default]
    Main,
    #[component(name = "init")]
    Init,
    #[component(name = "ephemeral")]
    Ephemeral,
}

/// One container of a pod.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
#[serde(default)]
pub struct PodContainer {
    #[component(name = "role")]
    pub role: ContainerRole,
    #[component(name = "name")]
    pub name: String,
    #[component(name = "image")]
    pub image: String,
    #[component(name = "security")]
    pub security: ContainerSecurity,
}

/// The security-relevant part of a pod spec.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
#[serde(default)]
pub struct PodSpec {
    #[component(name = "host-network")]
    pub host_network: bool,
    #[component(name = "host-pid")]
    pub host_pid: bool,
    #[component(name = "host-ipc")]
    pub host_ipc: bool,
    #[component(name = "service-account")]
    pub service_account: String,
    #[component(name = "node-name")]
    pub node_name: String,
    #[component(name = "containers")]
    pub containers: Vec<PodContainer>,
}

/// The controller owning an object.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
#[serde(default)]
pub struct OwnerRef {
    #[component(name = "kind")]
    pub kind: String,
    #[component(name = "name")]
    pub name: String,
}

/// Kubernetes API activity.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
#[serde(default)]
pub struct KubernetesEvent {
    #[component(name = "verb")]
    pub verb: String,
    #[component(name = "resource")]
    pub resource: String,
    #[component(name = "subresource")]
    pub subresource: String,
    #[component(name = "api-group")]
    pub api_group: String,
    #[component(name = "namespace")]
    pub namespace: String,
    #[component(name = "name")]
    pub name: String,
    #[component(name = "user")]
    pub user: String,
    #[component(name = "groups")]
    pub groups: Vec<String>,
    #[component(name = "stage")]
    pub stage: String,
    #[component(name = "response-code")]
    pub response_code: Option<u16>,
    #[component(name = "request-uri")]
    pub request_uri: String,
    #[component(name = "source-ips")]
    pub source_ips: Vec<String>,
    #[component(name = "user-agent")]
    pub user_agent: String,
    #[component(name = "audit-id")]
    pub audit_id: String,
    #[component(name = "pod")]
    pub pod: Option<PodSpec>,
    #[component(name = "owner")]
    pub owner: Option<OwnerRef>,
}

/// A transport protocol.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
#[component(enum)]
#[repr(u8)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    #[component(name = "tcp")]
    #[default]
    Tcp,
    #[component(name = "udp")]
    Udp,
}

/// Which way a connection goes, seen from the container.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
#[component(enum)]
#[repr(u8)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[component(name = "inbound")]
    Inbound,
    #[component(name = "outbound")]
    Outbound,
    #[component(name = "listen")]
    Listen,
    #[component(name = "unknown")]
    #[default]
    Unknown,
}

/// A reference to a container.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
#[serde(default)]
pub struct ContainerRef {
    #[component(name = "id")]
    pub id: String,
    #[component(name = "name")]
    pub name: String,
    #[component(name = "image")]
    pub image: String,
    #[component(name = "pod")]
    pub pod: String,
}

/// A socket or flow attributed to a container.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
#[serde(default)]
pub struct NetworkEvent {
    #[component(name = "protocol")]
    pub protocol: Protocol,
    #[component(name = "local-address")]
    pub local_address: String,
    #[component(name = "local-port")]
    pub local_port: u16,
    #[component(name = "remote-address")]
    pub remote_address: String,
    #[component(name = "remote-port")]
    pub remote_port: u16,
    #[component(name = "direction")]
    pub direction: Direction,
    #[component(name = "state")]
    pub state: String,
    #[component(name = "container")]
    pub container: Option<ContainerRef>,
    #[component(name = "host-network")]
    pub host_network: bool,
}

/// What happened to a watched file.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
#[component(enum)]
#[repr(u8)]
#[serde(rename_all = "snake_case")]
pub enum FileChange {
    #[component(name = "created")]
    Created,
    #[component(name = "modified")]
    #[default]
    Modified,
    #[component(name = "metadata")]
    Metadata,
    #[component(name = "deleted")]
    Deleted,
}

/// A file's state.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
#[serde(default)]
pub struct FileState {
    #[component(name = "sha256")]
    pub sha256: String,
    #[component(name = "size")]
    pub size: u64,
    #[component(name = "mode")]
    pub mode: u32,
    #[component(name = "uid")]
    pub uid: u32,
    #[component(name = "gid")]
    pub gid: u32,
    #[component(name = "mtime")]
    pub mtime: Timestamp,
}

/// A file-integrity change.
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
#[serde(default)]
pub struct FileEvent {
    #[component(name = "path")]
    pub path: String,
    #[component(name = "change")]
    pub change: FileChange,
    #[component(name = "before")]
    pub before: Option<FileState>,
    #[component(name = "after")]
    pub after: Option<FileState>,
}

/// The body of an event.
#[expect(
    clippy::large_enum_variant,
    reason = "events are lowered into plugins by reference, in place; boxing would cost an allocation per event"
)]
#[derive(ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[component(variant)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    #[component(name = "container")]
    Container(ContainerEvent),
    #[component(name = "kubernetes")]
    Kubernetes(KubernetesEvent),
    #[component(name = "network")]
    Network(NetworkEvent),
    #[component(name = "file")]
    File(FileEvent),
}

impl EventBody {
    /// The kind plugins subscribe to.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Container(_) => EventKind::Container,
            Self::Kubernetes(_) => EventKind::Kubernetes,
            Self::Network(_) => EventKind::Network,
            Self::File(_) => EventKind::File,
        }
    }
}

/// One normalised event.
#[derive(ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[component(record)]
pub struct Event {
    /// Unique id.
    #[component(name = "id")]
    #[serde(default)]
    pub id: String,
    /// When it happened, nanoseconds since the epoch.
    #[component(name = "time")]
    #[serde(default)]
    pub time: Timestamp,
    /// The node it was seen on.
    #[component(name = "node")]
    #[serde(default)]
    pub node: String,
    /// The collector that produced it.
    #[component(name = "source")]
    #[serde(default)]
    pub source: String,
    /// What happened.
    #[component(name = "body")]
    pub body: EventBody,
}

impl Event {
    /// The kind plugins subscribe to.
    pub fn kind(&self) -> EventKind {
        self.body.kind()
    }
}
