//! The rules, and the check of one container's security configuration
//! against them.

use vigil_plugin_sdk::{ContainerSecurity, KeyValue, Severity};

use crate::config::{Config, normalize_path};

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
    /// `dangerous-capability`: an added capability that opens a way out.
    DangerousCapability,
    /// `sensitive-mount`: a sensitive host path bind-mounted in.
    SensitiveMount,
}

impl Rule {
    /// Every rule, in the order findings are emitted.
    pub const ALL: [Rule; 6] = [
        Rule::Privileged,
        Rule::HostNetwork,
        Rule::HostPid,
        Rule::HostIpc,
        Rule::DangerousCapability,
        Rule::SensitiveMount,
    ];

    /// The short name (`host-network`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Rule::Privileged => "privileged",
            Rule::HostNetwork => "host-network",
            Rule::HostPid => "host-pid",
            Rule::HostIpc => "host-ipc",
            Rule::DangerousCapability => "dangerous-capability",
            Rule::SensitiveMount => "sensitive-mount",
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
            Rule::DangerousCapability => "container-escape/dangerous-capability",
            Rule::SensitiveMount => "container-escape/sensitive-mount",
        }
    }

    /// The rule named by a full id or a short name.
    #[must_use]
    pub fn from_id(id: &str) -> Option<Rule> {
        let name = id
            .trim()
            .strip_prefix("container-escape/")
            .unwrap_or(id.trim());
        Rule::ALL.into_iter().find(|rule| rule.name() == name)
    }

    /// The severity of its findings (a sensitive mount exposing a runtime
    /// socket is raised to critical).
    #[must_use]
    pub const fn severity(self) -> Severity {
        match self {
            Rule::Privileged => Severity::Critical,
            _ => Severity::High,
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
            Rule::HostPid | Rule::HostIpc | Rule::DangerousCapability | Rule::SensitiveMount => {
                &["T1611"]
            }
        }
    }

    pub(crate) const fn title(self) -> &'static str {
        match self {
            Rule::Privileged => "Privileged container",
            Rule::HostNetwork => "Container shares the host network namespace",
            Rule::HostPid => "Container shares the host PID namespace",
            Rule::HostIpc => "Container shares the host IPC namespace",
            Rule::DangerousCapability => "Container granted a dangerous capability",
            Rule::SensitiveMount => "Sensitive host path mounted into a container",
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
            Rule::SensitiveMount => {
                "mounts a sensitive host path: it can read or change host configuration, credentials or the \
                 container runtime itself"
            }
        }
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

/// Every enabled rule `security` matches, at most one hit per rule, in
/// [`Rule::ALL`] order.
pub(crate) fn inspect(security: &ContainerSecurity, config: &Config) -> Vec<Hit> {
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

    if security.privileged {
        hit(
            Rule::Privileged,
            Rule::Privileged.severity(),
            vec![KeyValue::new("privileged", "true")],
        );
    }
    for (rule, key, mode) in [
        (Rule::HostNetwork, "network-mode", &security.network_mode),
        (Rule::HostPid, "pid-mode", &security.pid_mode),
        (Rule::HostIpc, "ipc-mode", &security.ipc_mode),
    ] {
        if mode.trim().eq_ignore_ascii_case("host") {
            hit(rule, rule.severity(), vec![KeyValue::new(key, "host")]);
        }
    }

    let capabilities: Vec<KeyValue> = security
        .cap_add
        .iter()
        .filter(|capability| config.capability_dangerous(capability))
        .map(|capability| {
            KeyValue::new(
                "capability",
                crate::config::normalize_capability(capability),
            )
        })
        .collect();
    hit(
        Rule::DangerousCapability,
        Rule::DangerousCapability.severity(),
        capabilities,
    );

    let mut severity = Rule::SensitiveMount.severity();
    let mut mounts = Vec::new();
    for mount in &security.mounts {
        if !is_host_path_mount(&mount.kind) {
            continue;
        }
        let Some(source) = normalize_path(&mount.source) else {
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
        mounts.push(KeyValue::new("mount.source", mount.source.clone()));
        mounts.push(KeyValue::new(
            "mount.destination",
            mount.destination.clone(),
        ));
        mounts.push(KeyValue::new(
            "mount.read-only",
            mount.read_only.to_string(),
        ));
    }
    hit(Rule::SensitiveMount, severity, mounts);

    hits
}

/// Bind mounts (Docker) and hostPath volumes (Kubernetes) expose host paths;
/// named volumes, tmpfs, config maps and the like do not.
fn is_host_path_mount(kind: &str) -> bool {
    let kind = kind.trim();
    kind.eq_ignore_ascii_case("bind")
        || kind.eq_ignore_ascii_case("host-path")
        || kind.eq_ignore_ascii_case("hostPath")
}
