//! The rules.

use vigil_plugin_sdk::Severity;
use vigil_plugin_sdk::util::rules::RuleSet;

/// A rule of this plugin; its id is `k8s-evasion/<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// A command run in a pod's container through the API (`pods/exec`).
    PodExec,
    /// A client attached to a pod's container through the API (`pods/attach`).
    PodAttach,
    /// An ephemeral container added to a running pod (`pods/ephemeralcontainers`).
    EphemeralContainer,
    /// A port of a pod tunnelled through the API server (`pods/portforward`).
    PortForward,
    /// A pod in a protected namespace created by (or on behalf of) a non-system user.
    SystemNamespacePod,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 5] = [
        Rule::PodExec,
        Rule::PodAttach,
        Rule::EphemeralContainer,
        Rule::PortForward,
        Rule::SystemNamespacePod,
    ];

    /// The short name (`pod-exec`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Rule::PodExec => "pod-exec",
            Rule::PodAttach => "pod-attach",
            Rule::EphemeralContainer => "ephemeral-container",
            Rule::PortForward => "port-forward",
            Rule::SystemNamespacePod => "system-namespace-pod",
        }
    }

    /// The rule id (`k8s-evasion/pod-exec`).
    #[must_use]
    pub const fn id(self) -> &'static str {
        match self {
            Rule::PodExec => "k8s-evasion/pod-exec",
            Rule::PodAttach => "k8s-evasion/pod-attach",
            Rule::EphemeralContainer => "k8s-evasion/ephemeral-container",
            Rule::PortForward => "k8s-evasion/port-forward",
            Rule::SystemNamespacePod => "k8s-evasion/system-namespace-pod",
        }
    }

    /// The base severity (see the README for when it is raised or lowered).
    #[must_use]
    pub const fn severity(self) -> Severity {
        match self {
            Rule::PodExec | Rule::PodAttach | Rule::PortForward => Severity::Medium,
            Rule::EphemeralContainer | Rule::SystemNamespacePod => Severity::High,
        }
    }

    /// MITRE ATT&CK techniques.
    #[must_use]
    pub const fn techniques(self) -> &'static [&'static str] {
        match self {
            // Container Administration Command.
            Rule::PodExec | Rule::PodAttach => &["T1609"],
            // Container Administration Command; Deploy Container.
            Rule::EphemeralContainer => &["T1609", "T1610"],
            // Protocol Tunneling.
            Rule::PortForward => &["T1572"],
            // Deploy Container; Masquerading: Match Legitimate Name or Location.
            Rule::SystemNamespacePod => &["T1610", "T1036.005"],
        }
    }

    /// The one-line title.
    pub(crate) const fn title(self) -> &'static str {
        match self {
            Rule::PodExec => "Command executed in a pod through the API server",
            Rule::PodAttach => "Attached to a pod's container through the API server",
            Rule::EphemeralContainer => "Ephemeral container added to a running pod",
            Rule::PortForward => "Pod port forwarded through the API server",
            Rule::SystemNamespacePod => "Pod created in a system namespace by a non-system user",
        }
    }
}

impl RuleSet for Rule {
    const PLUGIN: &'static str = "k8s-evasion";
    const RULES: &'static [Self] = &Rule::ALL;

    fn short_name(self) -> &'static str {
        self.name()
    }
}
