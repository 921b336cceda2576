//! The rules.

use vigil_plugin_sdk::Severity;
use vigil_plugin_sdk::util::rules::RuleSet;

/// A rule of this plugin; its id is `monitoring-tamper/<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// A security agent's container stopped, killed, removed or died.
    AgentStopped,
    /// A security agent's container paused (frozen), or sent SIGSTOP.
    AgentPaused,
    /// A security agent's pod, workload or namespace deleted through the API.
    AgentDeleted,
    /// The Kubernetes audit policy or audit webhook configuration changed.
    AuditConfigChanged,
    /// Docker events were lost: the collector could not close a gap in the stream.
    DockerEventsGap,
    /// A Docker Swarm global service (a task on every node) mounts the
    /// container runtime's sockets or directories.
    GlobalServiceRuntimeMount,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 6] = [
        Rule::AgentStopped,
        Rule::AgentPaused,
        Rule::AgentDeleted,
        Rule::AuditConfigChanged,
        Rule::DockerEventsGap,
        Rule::GlobalServiceRuntimeMount,
    ];

    /// The short name (`agent-stopped`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Rule::AgentStopped => "agent-stopped",
            Rule::AgentPaused => "agent-paused",
            Rule::AgentDeleted => "agent-deleted",
            Rule::AuditConfigChanged => "audit-config-changed",
            Rule::DockerEventsGap => "docker-events-gap",
            Rule::GlobalServiceRuntimeMount => "global-service-runtime-mount",
        }
    }

    /// The rule id (`monitoring-tamper/agent-stopped`).
    #[must_use]
    pub const fn id(self) -> &'static str {
        match self {
            Rule::AgentStopped => "monitoring-tamper/agent-stopped",
            Rule::AgentPaused => "monitoring-tamper/agent-paused",
            Rule::AgentDeleted => "monitoring-tamper/agent-deleted",
            Rule::AuditConfigChanged => "monitoring-tamper/audit-config-changed",
            Rule::DockerEventsGap => "monitoring-tamper/docker-events-gap",
            Rule::GlobalServiceRuntimeMount => "monitoring-tamper/global-service-runtime-mount",
        }
    }

    /// The base severity (see the README for when it is raised or lowered).
    #[must_use]
    pub const fn severity(self) -> Severity {
        match self {
            Rule::AgentStopped
            | Rule::AgentPaused
            | Rule::AgentDeleted
            | Rule::AuditConfigChanged
            | Rule::GlobalServiceRuntimeMount => Severity::High,
            Rule::DockerEventsGap => Severity::Medium,
        }
    }

    /// MITRE ATT&CK techniques.
    #[must_use]
    pub const fn techniques(self) -> &'static [&'static str] {
        match self {
            // Impair Defenses: Disable or Modify Tools; Service Stop.
            Rule::AgentStopped => &["T1562.001", "T1489"],
            Rule::AgentPaused | Rule::AgentDeleted => &["T1562.001"],
            // Impair Defenses: Disable or Modify Cloud Logs (the cluster's audit log).
            Rule::AuditConfigChanged => &["T1562.008"],
            // Impair Defenses: Indicator Blocking.
            Rule::DockerEventsGap => &["T1562.006"],
            // Impair Defenses: Disable or Modify Tools; Deploy Container.
            Rule::GlobalServiceRuntimeMount => &["T1562.001", "T1610"],
        }
    }

    /// The one-line title.
    pub(crate) const fn title(self) -> &'static str {
        match self {
            Rule::AgentStopped => "Security agent container stopped",
            Rule::AgentPaused => "Security agent container paused",
            Rule::AgentDeleted => "Security agent deleted from the cluster",
            Rule::AuditConfigChanged => "Kubernetes audit configuration changed",
            Rule::DockerEventsGap => "Docker events lost (gap in the event stream)",
            Rule::GlobalServiceRuntimeMount => {
                "Swarm global service mounts the container runtime on every node"
            }
        }
    }
}

impl RuleSet for Rule {
    const PLUGIN: &'static str = "monitoring-tamper";
    const RULES: &'static [Self] = &Rule::ALL;

    fn short_name(self) -> &'static str {
        self.name()
    }
}
