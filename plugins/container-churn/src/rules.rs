//! The rules of this plugin.

use vigil_plugin_sdk::Severity;
use vigil_plugin_sdk::util::rules::RuleSet;

/// A rule of this plugin; its id is `container-churn/<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// `spike`: more creations, starts or removals in a window than the
    /// scope's seasonal baseline allows.
    Spike,
    /// `short-lived`: a container or pod removed within seconds of its
    /// creation (run-and-remove).
    ShortLived,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 2] = [Rule::Spike, Rule::ShortLived];

    /// The short name (`spike`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Rule::Spike => "spike",
            Rule::ShortLived => "short-lived",
        }
    }

    /// The rule id of its findings (`container-churn/spike`).
    #[must_use]
    pub const fn id(self) -> &'static str {
        match self {
            Rule::Spike => "container-churn/spike",
            Rule::ShortLived => "container-churn/short-lived",
        }
    }

    /// The base severity of its findings (a short-lived container that was
    /// privileged or shared a host namespace is raised to medium; inside a
    /// `downgrade` maintenance window every finding is `info`).
    #[must_use]
    pub const fn severity(self) -> Severity {
        match self {
            Rule::Spike => Severity::Medium,
            Rule::ShortLived => Severity::Low,
        }
    }
}

impl RuleSet for Rule {
    const PLUGIN: &'static str = "container-churn";
    const RULES: &'static [Self] = &Rule::ALL;

    fn short_name(self) -> &'static str {
        self.name()
    }
}
