//! The rules of this plugin.

use vigil_plugin_sdk::Severity;
use vigil_plugin_sdk::util::rules::RuleSet;

/// A rule of this plugin; its id is `suspicious-egress/<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// `threat-intel`: an outbound connection to an address on a threat-intel feed.
    ThreatIntel,
    /// `non-standard-port`: an outbound connection outside the containers'
    /// networks on a port that is neither standard nor in the image's profile.
    NonStandardPort,
    /// `unexpected-peer-port`: a connection to another container on a port
    /// that is not a service port, not one the peer listens on, and not in the
    /// image's profile.
    UnexpectedPeerPort,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 3] = [
        Rule::ThreatIntel,
        Rule::NonStandardPort,
        Rule::UnexpectedPeerPort,
    ];

    /// The short name (`threat-intel`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Rule::ThreatIntel => "threat-intel",
            Rule::NonStandardPort => "non-standard-port",
            Rule::UnexpectedPeerPort => "unexpected-peer-port",
        }
    }

    /// The rule id of its findings (`suspicious-egress/threat-intel`).
    #[must_use]
    pub const fn id(self) -> &'static str {
        match self {
            Rule::ThreatIntel => "suspicious-egress/threat-intel",
            Rule::NonStandardPort => "suspicious-egress/non-standard-port",
            Rule::UnexpectedPeerPort => "suspicious-egress/unexpected-peer-port",
        }
    }

    /// The severity of its findings once the image's profile is trusted
    /// (while it learns, port findings take `warmup_severity`).
    #[must_use]
    pub const fn severity(self) -> Severity {
        match self {
            Rule::ThreatIntel => Severity::High,
            Rule::NonStandardPort | Rule::UnexpectedPeerPort => Severity::Medium,
        }
    }

    /// MITRE ATT&CK techniques.
    #[must_use]
    pub const fn techniques(self) -> &'static [&'static str] {
        match self {
            // Application Layer Protocol (C2); Exfiltration Over C2 Channel.
            Rule::ThreatIntel => &["T1071", "T1041"],
            // Non-Standard Port.
            Rule::NonStandardPort => &["T1571"],
            // Non-Standard Port; Remote Services (lateral movement).
            Rule::UnexpectedPeerPort => &["T1571", "T1021"],
        }
    }

    /// The one-line title.
    #[must_use]
    pub const fn title(self) -> &'static str {
        match self {
            Rule::ThreatIntel => "Connection to a threat-intel address",
            Rule::NonStandardPort => "Outbound connection on a non-standard port",
            Rule::UnexpectedPeerPort => "Container-to-container connection on an unexpected port",
        }
    }
}

impl RuleSet for Rule {
    const PLUGIN: &'static str = "suspicious-egress";
    const RULES: &'static [Self] = &Rule::ALL;

    fn short_name(self) -> &'static str {
        self.name()
    }
}
