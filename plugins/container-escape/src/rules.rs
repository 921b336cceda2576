//! The rules, and the check of one container's security configuration
//! against them.

use vigil_plugin_sdk::util::rules::RuleSet;
use vigil_plugin_sdk::view::ContainerSecurityView;
use vigil_plugin_sdk::{KeyValue, Severity};

use crate::config::{Config, HostCgroupns, normalize_capability, normalize_path};

/// A rule of this plugin; its id is `container-escape/<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// `privileged`: every capability and device; escaping is trivial.
    Privileged,
    /// `host-network`: the host's network namespace.
    HostNetwork,
    /// `host-pid`: the host's PID namespace.
    HostPid,
    /// `host-ipc`: the host's IPC namespace.
    HostIpc,
    /// `host-cgroupns`: the host's cgroup namespace (by default only when the
    /// container can also mount cgroupfs: privileged or `SYS_ADMIN`).
    HostCgroupns,
    /// `dangerous-capability`: an added capability that opens a way out.
    DangerousCapability,
    /// `sensitive-mount`: a sensitive host path bind-mounted in.
    SensitiveMount,
    /// `host-device`: host devices passed in.
    HostDevice,
    /// `seccomp-unconfined`: no seccomp filter.
    SeccompUnconfined,
    /// `apparmor-unconfined`: no AppArmor profile.
    AppArmorUnconfined,
    /// `log-driver-none`: the container's output is discarded (Docker).
    LogDriverNone,
    /// `swarm-service`: a Docker Swarm service whose spec matches any of the
    /// rules above (or adds capabilities): reported once per service and
    /// spec, instead of once per task container.
    SwarmService,
}

impl Rule {
    /// Every rule, in the order findings are emitted.
    pub const ALL: [Rule; 12] = [
        Rule::Privileged,
        Rule::HostNetwork,
        Rule::HostPid,
        Rule::HostIpc,
        Rule::HostCgroupns,
        Rule::DangerousCapability,
        Rule::SensitiveMount,
        Rule::HostDevice,
        Rule::SeccompUnconfined,
        Rule::AppArmorUnconfined,
        Rule::LogDriverNone,
        Rule::SwarmService,
    ];

    /// The short name (`host-network`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Rule::Privileged => "privileged",
            Rule::HostNetwork => "host-network",
            Rule::HostPid => "host-pid",
            Rule::HostIpc => "host-ipc",
            Rule::HostCgroupns => "host-cgroupns",
            Rule::DangerousCapability => "dangerous-capability",
            Rule::SensitiveMount => "sensitive-mount",
            Rule::HostDevice => "host-device",
            Rule::SeccompUnconfined => "seccomp-unconfined",
            Rule::AppArmorUnconfined => "apparmor-unconfined",
            Rule::LogDriverNone => "log-driver-none",
            Rule::SwarmService => "swarm-service",
        }
    }

    /// The rule id of its findings (`container-escape/host-network`).
    #[must_use]
    pub const fn id(self) -> &'static str {
        match self {
            Rule::Privileged => "container-escape/privileged",
            Rule::HostNetwork => "container-escape/host-network",
            Rule::HostPid => "container-escape/host-pid",
            Rule::HostIpc => "container-escape/host-ipc",
            Rule::HostCgroupns => "container-escape/host-cgroupns",
            Rule::DangerousCapability => "container-escape/dangerous-capability",
            Rule::SensitiveMount => "container-escape/sensitive-mount",
            Rule::HostDevice => "container-escape/host-device",
            Rule::SeccompUnconfined => "container-escape/seccomp-unconfined",
            Rule::AppArmorUnconfined => "container-escape/apparmor-unconfined",
            Rule::LogDriverNone => "container-escape/log-driver-none",
            Rule::SwarmService => "container-escape/swarm-service",
        }
    }

    /// The severity of its findings (a sensitive mount exposing a runtime
    /// socket, and a host disk, memory or kernel-log device, are raised to
    /// critical).
    #[must_use]
    pub const fn severity(self) -> Severity {
        match self {
            Rule::Privileged => Severity::Critical,
            Rule::HostCgroupns | Rule::LogDriverNone => Severity::Medium,
            Rule::HostNetwork
            | Rule::HostPid
            | Rule::HostIpc
            | Rule::DangerousCapability
            | Rule::SensitiveMount
            | Rule::HostDevice
            | Rule::SeccompUnconfined
            | Rule::AppArmorUnconfined
            | Rule::SwarmService => Severity::High,
        }
    }

    /// MITRE ATT&CK techniques.
    #[must_use]
    pub const fn techniques(self) -> &'static [&'static str] {
        match self {
            // Deploy Container; the seed data also maps evasion through the
            // host network to Search Open Technical Databases: Scan Databases.
            Rule::HostNetwork => &["T1610", "T1596.004"],
            Rule::Privileged => &["T1611", "T1610"],
            Rule::HostPid
            | Rule::HostIpc
            | Rule::HostCgroupns
            | Rule::DangerousCapability
            | Rule::SensitiveMount
            | Rule::HostDevice => &["T1611"],
            // Escape to Host; Impair Defenses: Disable or Modify Tools.
            Rule::SeccompUnconfined | Rule::AppArmorUnconfined => &["T1611", "T1562.001"],
            // Impair Defenses: Indicator Blocking.
            Rule::LogDriverNone => &["T1562.006"],
            // Deploy Container (on every node the service lands on); Escape to Host.
            Rule::SwarmService => &["T1610", "T1611"],
        }
    }

    pub(crate) const fn title(self) -> &'static str {
        match self {
            Rule::Privileged => "Privileged container",
            Rule::HostNetwork => "Container shares the host network namespace",
            Rule::HostPid => "Container shares the host PID namespace",
            Rule::HostIpc => "Container shares the host IPC namespace",
            Rule::HostCgroupns => "Container shares the host cgroup namespace",
            Rule::DangerousCapability => "Container granted a dangerous capability",
            Rule::SensitiveMount => "Sensitive host path mounted into a container",
            Rule::HostDevice => "Host device passed into a container",
            Rule::SeccompUnconfined => "Container runs without a seccomp filter",
            Rule::AppArmorUnconfined => "Container runs without an AppArmor profile",
            Rule::LogDriverNone => "Container logging disabled",
            Rule::SwarmService => "Swarm service configured for container escape",
        }
    }

    /// Why it matters, completing "<subject> …".
    pub(crate) const fn consequence(self) -> &'static str {
        match self {
            Rule::Privileged => {
                "runs privileged: it has every capability and every host device, so escaping to the host is trivial"
            }
            Rule::HostNetwork => {
                "uses the host's network namespace: it can reach services bound to the host's loopback, \
                 sniff host traffic and bypass network policy"
            }
            Rule::HostPid => {
                "shares the host's PID namespace: it sees every host process and, with enough privilege, \
                 can enter or inject into them"
            }
            Rule::HostIpc => {
                "shares the host's IPC namespace: it can read and tamper with host shared memory and semaphores"
            }
            Rule::DangerousCapability => {
                "was granted a capability that lets a process break out of the container or tamper with the kernel"
            }
            Rule::HostCgroupns => {
                "shares the host's cgroup namespace: it sees the host's cgroup hierarchy and, able to mount \
                 cgroupfs, can run a command on the host through cgroup v1's `release_agent`"
            }
            Rule::SensitiveMount => {
                "mounts a sensitive host path: it can read or change host configuration, credentials or the \
                 container runtime itself"
            }
            Rule::HostDevice => {
                "has host devices passed in: a host disk lets it read and rewrite the host's filesystems, and \
                 memory or kernel-log devices expose or tamper with the kernel"
            }
            Rule::SeccompUnconfined => {
                "runs without a seccomp filter: every system call, including the rarely used kernel interfaces \
                 most container escapes go through, is open to it"
            }
            Rule::AppArmorUnconfined => {
                "runs without an AppArmor profile: the policy that stops containers from mounting and from \
                 writing to /proc and /sys is off"
            }
            Rule::LogDriverNone => {
                "runs with the `none` log driver: its output is discarded, hiding its activity from log \
                 collection and monitoring"
            }
            Rule::SwarmService => {
                "runs every task with settings that open a way to the host, on every node the swarm \
                 schedules it to"
            }
        }
    }
}

impl RuleSet for Rule {
    const PLUGIN: &'static str = "container-escape";
    const RULES: &'static [Self] = &Rule::ALL;

    fn short_name(self) -> &'static str {
        self.name()
    }
}

/// What one container matched for one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hit {
    pub(crate) rule: Rule,
    pub(crate) severity: Severity,
    /// The fields that matched (`network-mode`=`host`, `capability`=`SYS_ADMIN` …).
    pub(crate) evidence: Vec<KeyValue>,
}

/// Where a container's configuration comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A container engine (Docker and the like).
    Engine,
    /// A Kubernetes pod spec.
    Pod,
}

/// Every enabled rule `security` matches, at most one hit per rule, in
/// [`Rule::ALL`] order.
///
/// A privileged container is seccomp- and AppArmor-unconfined by
/// construction (Docker reports its AppArmor profile as `unconfined`): an
/// `unconfined` profile on a privileged container is added to the
/// `privileged` hit's evidence instead of giving hits of its own.
pub(crate) fn inspect(
    security: &ContainerSecurityView<'_>,
    config: &Config,
    origin: Origin,
) -> Vec<Hit> {
    let mut hits = Vec::new();
    let mut hit = |rule: Rule, severity: Severity, evidence: Vec<KeyValue>| {
        if config.enabled(rule) && !evidence.is_empty() {
            hits.push(Hit {
                rule,
                severity,
                evidence,
            });
        }
    };

    let seccomp_unconfined = is_unconfined(security.seccomp_profile);
    let apparmor_unconfined = is_unconfined(security.apparmor_profile);
    if security.privileged {
        let mut evidence = vec![KeyValue::new("privileged", "true")];
        if seccomp_unconfined {
            evidence.push(KeyValue::new("seccomp-profile", "unconfined"));
        }
        if apparmor_unconfined {
            evidence.push(KeyValue::new("apparmor-profile", "unconfined"));
        }
        hit(Rule::Privileged, Rule::Privileged.severity(), evidence);
    }
    for (rule, key, mode) in [
        (Rule::HostNetwork, "network-mode", &security.network_mode),
        (Rule::HostPid, "pid-mode", &security.pid_mode),
        (Rule::HostIpc, "ipc-mode", &security.ipc_mode),
    ] {
        if is_host(mode) {
            hit(rule, rule.severity(), vec![KeyValue::new(key, "host")]);
        }
    }

    if is_host(security.cgroupns_mode) {
        let mut evidence = vec![KeyValue::new("cgroupns-mode", "host")];
        // What lets the container mount cgroupfs (and so use the namespace).
        if security.privileged {
            evidence.push(KeyValue::new("privileged", "true"));
        }
        evidence.extend(
            security
                .cap_add
                .iter()
                .map(normalize_capability)
                .filter(|capability| capability == "SYS_ADMIN" || capability == "ALL")
                .map(|capability| KeyValue::new("capability", capability)),
        );
        if config.host_cgroupns == HostCgroupns::Always || evidence.len() > 1 {
            hit(Rule::HostCgroupns, Rule::HostCgroupns.severity(), evidence);
        }
    }

    let capabilities: Vec<KeyValue> = security
        .cap_add
        .iter()
        .filter(|capability| config.capability_dangerous(capability))
        .map(|capability| KeyValue::new("capability", normalize_capability(capability)))
        .collect();
    hit(
        Rule::DangerousCapability,
        Rule::DangerousCapability.severity(),
        capabilities,
    );

    let mut severity = Rule::SensitiveMount.severity();
    let mut mounts = Vec::new();
    for mount in &security.mounts {
        if !is_host_path_mount(mount.kind) {
            continue;
        }
        let Some(source) = normalize_path(mount.source) else {
            continue;
        };
        let mut exposed = config
            .sensitive_paths
            .iter()
            .filter(|path| path.exposed_by(&source))
            .peekable();
        if exposed.peek().is_none() {
            continue;
        }
        if exposed.any(|path| path.socket) {
            severity = Severity::Critical;
        }
        mounts.push(KeyValue::new("mount.source", mount.source));
        mounts.push(KeyValue::new("mount.destination", mount.destination));
        mounts.push(KeyValue::new(
            "mount.read-only",
            mount.read_only.to_string(),
        ));
    }
    hit(Rule::SensitiveMount, severity, mounts);

    let mut severity = Rule::HostDevice.severity();
    let mut devices = Vec::new();
    for device in &security.devices {
        let device = device.trim();
        if device.is_empty() {
            continue;
        }
        if is_critical_device(device) {
            severity = Severity::Critical;
        }
        devices.push(KeyValue::new("device", device));
    }
    hit(Rule::HostDevice, severity, devices);

    if seccomp_unconfined && !security.privileged {
        hit(
            Rule::SeccompUnconfined,
            Rule::SeccompUnconfined.severity(),
            vec![KeyValue::new("seccomp-profile", "unconfined")],
        );
    }
    if apparmor_unconfined && !security.privileged {
        hit(
            Rule::AppArmorUnconfined,
            Rule::AppArmorUnconfined.severity(),
            vec![KeyValue::new("apparmor-profile", "unconfined")],
        );
    }

    // Only container engines have log drivers; a pod's logs are the node's.
    if origin == Origin::Engine && security.log_driver.trim().eq_ignore_ascii_case("none") {
        hit(
            Rule::LogDriverNone,
            Rule::LogDriverNone.severity(),
            vec![KeyValue::new("log-driver", "none")],
        );
    }

    hits
}

fn is_host(mode: &str) -> bool {
    mode.trim().eq_ignore_ascii_case("host")
}

fn is_unconfined(profile: &str) -> bool {
    profile.trim().eq_ignore_ascii_case("unconfined")
}

/// Host devices that hand over the host outright: disks and partitions
/// (`/dev/sda1`, `/dev/nvme0n1`, `/dev/vda`, `/dev/xvda`, `/dev/mmcblk0`,
/// device-mapper and LVM volumes, `/dev/disk/by-*` links), physical and
/// kernel memory and I/O ports (`/dev/mem`, `/dev/kmem`, `/dev/port`), and the
/// kernel log (`/dev/kmsg`: kernel addresses, log forging).
fn is_critical_device(device: &str) -> bool {
    // A `host:container:permissions` triple names the host path first.
    let host = device.split(':').next().unwrap_or(device);
    let Some(path) = normalize_path(host) else {
        return false;
    };
    let Some(name) = path.strip_prefix("/dev/") else {
        return false;
    };
    matches!(name, "mem" | "kmem" | "port" | "kmsg")
        || ["sd", "nvme", "vd", "xvd", "mmcblk", "dm-"]
            .iter()
            .any(|prefix| name.starts_with(prefix) && !name.contains('/'))
        || name.starts_with("mapper/")
        || name.starts_with("disk/")
}

/// Bind mounts (Docker) and hostPath volumes (Kubernetes) expose host paths;
/// named volumes, tmpfs, config maps and the like do not.
fn is_host_path_mount(kind: &str) -> bool {
    let kind = kind.trim();
    kind.eq_ignore_ascii_case("bind")
        || kind.eq_ignore_ascii_case("host-path")
        || kind.eq_ignore_ascii_case("hostPath")
}
