//! Rule ids and the `disabled_rules` setting.
//!
//! A plugin's rules are a field-less enum. Each rule has a short name
//! (`host-network`) and an id, `<plugin>/<name>`, which its findings carry
//! (`container-escape/host-network`). Operators turn rules off by either
//! spelling in `disabled_rules`; implementing [`RuleSet`] gives the plugin
//! the parsing ([`parse_disabled`]), the lookup ([`RuleSet::from_id`]) and
//! the description of the setting
//! ([`PluginInfoBuilder::disabled_rules_setting`]), all alike.

use crate::PluginInfoBuilder;
use crate::settings::Problems;

/// The key of the setting listing the rules turned off.
pub const DISABLED_RULES: &str = "disabled_rules";

/// The rules of one plugin.
///
/// ```
/// use vigil_plugin_sdk::util::rules::RuleSet;
///
/// #[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// enum Rule {
///     Privileged,
///     HostNetwork,
/// }
///
/// impl RuleSet for Rule {
///     const PLUGIN: &'static str = "container-escape";
///     const RULES: &'static [Self] = &[Rule::Privileged, Rule::HostNetwork];
///
///     fn short_name(self) -> &'static str {
///         match self {
///             Rule::Privileged => "privileged",
///             Rule::HostNetwork => "host-network",
///         }
///     }
/// }
///
/// assert_eq!(Rule::from_id("container-escape/host-network"), Some(Rule::HostNetwork));
/// assert_eq!(Rule::from_id(" privileged "), Some(Rule::Privileged));
/// assert_eq!(Rule::from_id("k8s-evasion/privileged"), None);
/// ```
pub trait RuleSet: Copy + PartialEq + 'static {
    /// The plugin's name, the first half of every rule id.
    const PLUGIN: &'static str;

    /// Every rule, in the order they are listed to the operator.
    const RULES: &'static [Self];

    /// The rule's short name (`host-network`), the second half of its id.
    fn short_name(self) -> &'static str;

    /// The rule named by a full id (`<plugin>/<name>`) or a short name;
    /// white space around it is ignored.
    #[must_use]
    fn from_id(id: &str) -> Option<Self> {
        let id = id.trim();
        let name = id
            .strip_prefix(Self::PLUGIN)
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(id);
        Self::RULES
            .iter()
            .copied()
            .find(|rule| rule.short_name() == name)
    }
}

/// The rules listed in the [`DISABLED_RULES`] setting, in order; each entry
/// naming no rule of `R` is reported at `disabled_rules[i]` with the list
/// of known names.
#[must_use]
pub fn parse_disabled<R: RuleSet>(entries: &[String], problems: &mut Problems) -> Vec<R> {
    let mut disabled = Vec::new();
    for (i, id) in entries.iter().enumerate() {
        match R::from_id(id) {
            Some(rule) => disabled.push(rule),
            None => problems.push(
                format!("{DISABLED_RULES}[{i}]"),
                format!("unknown rule `{id}`; known rules: {}", known_names::<R>()),
            ),
        }
    }
    disabled
}

/// `privileged, host-network, …`.
fn known_names<R: RuleSet>() -> String {
    let names: Vec<&str> = R::RULES.iter().map(|rule| rule.short_name()).collect();
    names.join(", ")
}

impl PluginInfoBuilder {
    /// Documents the [`DISABLED_RULES`] setting of a plugin whose rules are
    /// `R` (see [`parse_disabled`]).
    pub fn disabled_rules_setting<R: RuleSet>(self) -> Self {
        self.setting(
            DISABLED_RULES,
            "list of rule ids",
            "[]",
            format!("Rules turned off: `{}/<rule>` or `<rule>`.", R::PLUGIN),
        )
    }
}

#[cfg(test)]
mod tests;
