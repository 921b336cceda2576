//! The rules and the path classes they are about.

use vigil_plugin_sdk::Severity;
use vigil_plugin_sdk::util::rules::RuleSet;

/// What a watched path is, which decides the rule and the severity of its
/// changes. Checked in this order: the first class whose patterns select a
/// path wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathClass {
    /// `dockerd`, `containerd`, the shims, `runc` …
    RuntimeBinary,
    /// The Docker daemon's configuration (`daemon.json`, `/etc/default/docker`).
    DaemonConfig,
    /// containerd's configuration and the runtimes' systemd units and drop-ins.
    RuntimeConfig,
    /// Static pod manifests (`/etc/kubernetes/manifests/`).
    StaticPod,
    /// CNI and kubelet configuration.
    OrchestrationConfig,
}

impl PathClass {
    /// Every class, in matching order.
    pub const ALL: [PathClass; 5] = [
        PathClass::RuntimeBinary,
        PathClass::DaemonConfig,
        PathClass::RuntimeConfig,
        PathClass::StaticPod,
        PathClass::OrchestrationConfig,
    ];

    /// The class's name, as in `severities` and in evidence.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            PathClass::RuntimeBinary => "runtime-binary",
            PathClass::DaemonConfig => "daemon-config",
            PathClass::RuntimeConfig => "runtime-config",
            PathClass::StaticPod => "static-pod",
            PathClass::OrchestrationConfig => "orchestration-config",
        }
    }

    /// The settings key holding the class's paths.
    #[must_use]
    pub const fn setting(self) -> &'static str {
        match self {
            PathClass::RuntimeBinary => "runtime_binaries",
            PathClass::DaemonConfig => "daemon_configs",
            PathClass::RuntimeConfig => "runtime_configs",
            PathClass::StaticPod => "static_pod_dirs",
            PathClass::OrchestrationConfig => "orchestration_configs",
        }
    }

    /// The default severity of a change in this class.
    #[must_use]
    pub const fn default_severity(self) -> Severity {
        match self {
            PathClass::RuntimeBinary => Severity::Critical,
            PathClass::DaemonConfig | PathClass::RuntimeConfig | PathClass::StaticPod => {
                Severity::High
            }
            PathClass::OrchestrationConfig => Severity::Medium,
        }
    }

    /// What the class is, in a summary ("Runtime binary").
    pub(crate) const fn noun(self) -> &'static str {
        match self {
            PathClass::RuntimeBinary => "Container runtime binary",
            PathClass::DaemonConfig => "Docker daemon configuration",
            PathClass::RuntimeConfig => "Container runtime configuration",
            PathClass::StaticPod => "Static pod manifest",
            PathClass::OrchestrationConfig => "Node orchestration configuration",
        }
    }

    /// Why a change matters, completing "… was <changed>: …".
    pub(crate) const fn consequence(self) -> &'static str {
        match self {
            PathClass::RuntimeBinary => {
                "the runtime binaries start and supervise every container's processes; a swapped one can \
                 hide, backdoor or escape any container on this node"
            }
            PathClass::DaemonConfig => {
                "the daemon's configuration decides container isolation and logging for every container \
                 it starts (review `log-driver`, `insecure-registries`, `userland-proxy`, `icc`, \
                 `userns-remap`, `no-new-privileges`, `seccomp-profile`, `authorization-plugins`, \
                 `hosts`); it takes effect at the next daemon restart or reload"
            }
            PathClass::RuntimeConfig => {
                "the runtime's configuration and service units decide how containers are isolated and \
                 which flags the daemons run with"
            }
            PathClass::StaticPod => {
                "the kubelet runs static pods on its own, without the API server's admission control \
                 ever seeing them"
            }
            PathClass::OrchestrationConfig => {
                "the CNI and kubelet configuration decide pod networking and the node agent's security \
                 (authentication, authorization, read-only port, eviction)"
            }
        }
    }
}

/// A rule of this plugin; its id is `runtime-tamper/<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// A runtime binary created, modified, deleted or re-permissioned.
    RuntimeBinaryChanged,
    /// The Docker daemon configuration changed.
    DaemonConfigChanged,
    /// containerd's configuration or a runtime unit changed.
    RuntimeConfigChanged,
    /// A new static pod manifest.
    StaticPodCreated,
    /// A static pod manifest modified, deleted or re-permissioned.
    StaticPodChanged,
    /// CNI or kubelet configuration changed.
    OrchestrationConfigChanged,
    /// Content changed while size and mtime did not (timestomping).
    InconsistentChange,
    /// A shell, package manager or network tool run in a container started
    /// without a terminal (process events).
    UnexpectedExec,
    /// A process of a container wrote to a watched runtime file (`write`
    /// process events: the file-integrity source names the writer).
    ContainerWrite,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 9] = [
        Rule::RuntimeBinaryChanged,
        Rule::DaemonConfigChanged,
        Rule::RuntimeConfigChanged,
        Rule::StaticPodCreated,
        Rule::StaticPodChanged,
        Rule::OrchestrationConfigChanged,
        Rule::InconsistentChange,
        Rule::UnexpectedExec,
        Rule::ContainerWrite,
    ];

    /// The short name (`daemon-config-changed`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Rule::RuntimeBinaryChanged => "runtime-binary-changed",
            Rule::DaemonConfigChanged => "daemon-config-changed",
            Rule::RuntimeConfigChanged => "runtime-config-changed",
            Rule::StaticPodCreated => "static-pod-created",
            Rule::StaticPodChanged => "static-pod-changed",
            Rule::OrchestrationConfigChanged => "orchestration-config-changed",
            Rule::InconsistentChange => "inconsistent-change",
            Rule::UnexpectedExec => "unexpected-exec",
            Rule::ContainerWrite => "container-write",
        }
    }

    /// The rule id (`runtime-tamper/daemon-config-changed`).
    #[must_use]
    pub const fn id(self) -> &'static str {
        match self {
            Rule::RuntimeBinaryChanged => "runtime-tamper/runtime-binary-changed",
            Rule::DaemonConfigChanged => "runtime-tamper/daemon-config-changed",
            Rule::RuntimeConfigChanged => "runtime-tamper/runtime-config-changed",
            Rule::StaticPodCreated => "runtime-tamper/static-pod-created",
            Rule::StaticPodChanged => "runtime-tamper/static-pod-changed",
            Rule::OrchestrationConfigChanged => "runtime-tamper/orchestration-config-changed",
            Rule::InconsistentChange => "runtime-tamper/inconsistent-change",
            Rule::UnexpectedExec => "runtime-tamper/unexpected-exec",
            Rule::ContainerWrite => "runtime-tamper/container-write",
        }
    }

    /// The rule for a (non-inconsistent) change in a class.
    pub(crate) const fn for_class(class: PathClass, created: bool) -> Rule {
        match class {
            PathClass::RuntimeBinary => Rule::RuntimeBinaryChanged,
            PathClass::DaemonConfig => Rule::DaemonConfigChanged,
            PathClass::RuntimeConfig => Rule::RuntimeConfigChanged,
            PathClass::StaticPod if created => Rule::StaticPodCreated,
            PathClass::StaticPod => Rule::StaticPodChanged,
            PathClass::OrchestrationConfig => Rule::OrchestrationConfigChanged,
        }
    }

    /// MITRE ATT&CK techniques.
    #[must_use]
    pub const fn techniques(self) -> &'static [&'static str] {
        match self {
            // Compromise Host Software Binary.
            Rule::RuntimeBinaryChanged => &["T1554"],
            // Create or Modify System Process: Container Service; Impair
            // Defenses: Disable or Modify Tools (logging, isolation).
            Rule::DaemonConfigChanged => &["T1543.005", "T1562.001"],
            Rule::RuntimeConfigChanged | Rule::OrchestrationConfigChanged => &["T1543.005"],
            // Deploy Container; Container Service.
            Rule::StaticPodCreated | Rule::StaticPodChanged => &["T1610", "T1543.005"],
            // Indicator Removal: Timestomp.
            Rule::InconsistentChange => &["T1070.006"],
            // Unix Shell; Ingress Tool Transfer (per finding: its class's).
            Rule::UnexpectedExec => &["T1059.004", "T1105"],
            // Escape to Host (plus, per finding, the class's technique).
            Rule::ContainerWrite => &["T1611"],
        }
    }

    /// The one-line title.
    pub(crate) const fn title(self) -> &'static str {
        match self {
            Rule::RuntimeBinaryChanged => "Container runtime binary changed",
            Rule::DaemonConfigChanged => "Docker daemon configuration changed",
            Rule::RuntimeConfigChanged => "Container runtime configuration changed",
            Rule::StaticPodCreated => "New static pod manifest",
            Rule::StaticPodChanged => "Static pod manifest changed",
            Rule::OrchestrationConfigChanged => "CNI or kubelet configuration changed",
            Rule::InconsistentChange => {
                "File content changed with size and modification time unchanged"
            }
            Rule::UnexpectedExec => {
                "Shell, package manager or network tool run in a container without a terminal"
            }
            Rule::ContainerWrite => "Container process wrote to a container runtime file",
        }
    }
}

impl RuleSet for Rule {
    const PLUGIN: &'static str = "runtime-tamper";
    const RULES: &'static [Self] = &Rule::ALL;

    fn short_name(self) -> &'static str {
        self.name()
    }
}

/// One step less severe (`info` stays `info`).
pub(crate) const fn lower(severity: Severity) -> Severity {
    match severity {
        Severity::Critical => Severity::High,
        Severity::High => Severity::Medium,
        Severity::Medium => Severity::Low,
        Severity::Low | Severity::Info => Severity::Info,
    }
}

/// A severity from its name.
pub(crate) fn parse_severity(name: &str) -> Option<Severity> {
    match name.trim().to_ascii_lowercase().as_str() {
        "info" => Some(Severity::Info),
        "low" => Some(Severity::Low),
        "medium" => Some(Severity::Medium),
        "high" => Some(Severity::High),
        "critical" => Some(Severity::Critical),
        _ => None,
    }
}
